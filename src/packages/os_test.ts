import assert from "node:assert/strict";
import { isDebianLike, parseOsRelease, readOsRelease } from "./os.ts";

const DEBIAN_12 = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
`;

Deno.test("parseOsRelease reads ID, ID_LIKE, VERSION_ID and PRETTY_NAME", () => {
  assert.deepEqual(parseOsRelease(DEBIAN_12), {
    id: "debian",
    idLike: [],
    versionId: "12",
    prettyName: "Debian GNU/Linux 12 (bookworm)",
  });
  assert.deepEqual(
    parseOsRelease(`# comment\n\nNAME='Linux Mint'\nID=linuxmint\nID_LIKE="ubuntu debian"\n`),
    { id: "linuxmint", idLike: ["ubuntu", "debian"], prettyName: "Linux Mint" },
  );
  assert.equal(
    parseOsRelease(`PRETTY_NAME="a \\"quoted\\" \\$name"\n`).prettyName,
    'a "quoted" $name',
  );
  assert.deepEqual(parseOsRelease(""), { id: "linux", idLike: [], prettyName: "linux" });
});

Deno.test("isDebianLike decides by ID and ID_LIKE, never by VERSION_ID", () => {
  const cases: [string, boolean][] = [
    [DEBIAN_12, true],
    ['ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n', true],
    ["ID=raspbian\nID_LIKE=debian\n", true],
    ['ID=pop\nID_LIKE="ubuntu debian"\n', true],
    ["ID=linuxmint\nID_LIKE=ubuntu\n", true],
    ['ID=debian\nVERSION_ID=""\n', true],
    ["ID=fedora\nVERSION_ID=40\n", false],
    ["ID=arch\n", false],
    ['ID="rocky"\nID_LIKE="rhel centos fedora"\n', false],
    ['ID=opensuse-tumbleweed\nID_LIKE="opensuse suse"\n', false],
    ["VERSION_ID=debian\n", false],
    ["", false],
  ];
  for (const [text, want] of cases) assert.equal(isDebianLike(parseOsRelease(text)), want, text);
});

Deno.test("readOsRelease prefers /etc/os-release and falls back to /usr/lib/os-release", async () => {
  const root = await Deno.makeTempDir({ prefix: "systemk-os-" });
  try {
    assert.equal((await readOsRelease(root)).id, "linux");
    await Deno.mkdir(`${root}/usr/lib`, { recursive: true });
    await Deno.writeTextFile(`${root}/usr/lib/os-release`, "ID=ubuntu\n");
    assert.equal((await readOsRelease(root)).id, "ubuntu");
    await Deno.mkdir(`${root}/etc`);
    await Deno.writeTextFile(`${root}/etc/os-release`, "ID=fedora\n");
    assert.equal((await readOsRelease(root)).id, "fedora");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
