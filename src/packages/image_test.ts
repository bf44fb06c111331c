import assert from "node:assert/strict";
import { type Image, isPackageName, isPackageVersion, parseImage, withoutEpoch } from "./image.ts";
import { PodError } from "../pod_error.ts";

const HEX = "ab".repeat(32);

Deno.test("parseImage accepts the three image forms", () => {
  const cases: [string, Image][] = [
    ["uptimed", { kind: "apt", name: "uptimed" }],
    ["libstdc++6", { kind: "apt", name: "libstdc++6" }],
    ["g++", { kind: "apt", name: "g++" }],
    ["prometheus-node-exporter", { kind: "apt", name: "prometheus-node-exporter" }],
    ["uptimed=1:0.4.6-4", { kind: "apt", name: "uptimed", version: "1:0.4.6-4" }],
    ["nginx=1.22.1-9+deb12u1", { kind: "apt", name: "nginx", version: "1.22.1-9+deb12u1" }],
    ["foo=2.0~rc1", { kind: "apt", name: "foo", version: "2.0~rc1" }],
    ["foo=1.0-beta-1", { kind: "apt", name: "foo", version: "1.0-beta-1" }],
    ["/usr/bin/sleep", { kind: "path", path: "/usr/bin/sleep" }],
    ["/opt/my app/bin", { kind: "path", path: "/opt/my app/bin" }],
    [
      "https://example.org/pool/coredns_1.11.1_amd64.deb",
      {
        kind: "deb",
        url: "https://example.org/pool/coredns_1.11.1_amd64.deb",
        name: "coredns",
        version: "1.11.1",
      },
    ],
    [
      `https://example.org/x/hello-svc_0.1-1_all.deb?token=1#sha256=${HEX.toUpperCase()}`,
      {
        kind: "deb",
        url: "https://example.org/x/hello-svc_0.1-1_all.deb?token=1",
        name: "hello-svc",
        version: "0.1-1",
        sha256: HEX,
      },
    ],
    [
      "https://deb.example/foo_1%3a2.0-1_amd64.deb",
      {
        kind: "deb",
        url: "https://deb.example/foo_1%3a2.0-1_amd64.deb",
        name: "foo",
        version: "1:2.0-1",
      },
    ],
  ];
  for (const [image, want] of cases) assert.deepEqual(parseImage(image), want, image);
});

Deno.test("parseImage rejects everything else with InvalidImageName and a useful message", () => {
  const cases: [string, RegExp][] = [
    ["", /empty/],
    ["nginx:1.25", /container image reference/],
    ["docker.io/library/nginx", /container image reference/],
    ["nginx@sha256:" + HEX, /container image reference/],
    ["Nginx", /container image reference/],
    ["my_app", /container image reference/],
    ["-oAPT::Get::Foo=1", /not a Debian package name/],
    ["--reinstall", /not a Debian package name/],
    ["a", /not a Debian package name/],
    ["foo-", /not a Debian package name/],
    ["foo bar", /not a Debian package name/],
    ["foo;rm -rf /", /container image reference|not a Debian package name/],
    ["$(id)", /not a Debian package name/],
    ["foo=", /not a Debian version/],
    ["foo=latest", /not a Debian version/],
    ["foo=1.0 -o x", /not a Debian version/],
    ["foo=1:2:3x-", /not a Debian version/],
    ["foo=1.0-", /not a Debian version/],
    ["http://example.org/foo_1_all.deb", /only https/],
    ["ftp://example.org/foo_1_all.deb", /only https/],
    ["https://u:p@example.org/foo_1_all.deb", /credentials/],
    ["https://example.org/foo.deb", /<name>_<version>_<arch>\.deb/],
    ["https://example.org/foo_1_amd64.rpm", /<name>_<version>_<arch>\.deb/],
    ["https://example.org/foo_1_x_amd64.deb", /<name>_<version>_<arch>\.deb/],
    ["https://example.org/Foo_1_amd64.deb", /not a Debian package name/],
    ["https://example.org/foo_v1_amd64.deb", /not a Debian version/],
    ["https://example.org/foo_1_AMD64.deb", /not a Debian architecture/],
    ["https://example.org/foo_1_amd64.deb#sha256=abc", /#sha256=/],
    ["https://example.org/foo_1_amd64.deb#md5=" + "a".repeat(32), /#sha256=/],
    ["https://example.org/%zz_1_amd64.deb", /percent-encoding/],
    ["https://", /not a valid URL/],
    ["/usr/../bin/sh", /`\.\.`/],
    ["/usr/bin/", /directory/],
    ["/usr/bin/x\ny", /control characters/],
  ];
  for (const [image, want] of cases) {
    assert.throws(() => parseImage(image), (e: unknown) => {
      assert.ok(e instanceof PodError, image);
      assert.equal(e.reason, "InvalidImageName", image);
      assert.match(e.message, want, image);
      assert.match(e.message, /absolute paths/, "names the accepted forms");
      return true;
    });
  }
});

Deno.test("isPackageName and isPackageVersion follow Debian policy", () => {
  for (const ok of ["ab", "0ad", "lib32z1", "x11-apps", "libc6.1", "a+b"]) {
    assert.equal(isPackageName(ok), true, ok);
  }
  for (const bad of ["a", "-ab", "+ab", ".ab", "Ab", "a_b", "a/b", "a:b", "a b", "ab-"]) {
    assert.equal(isPackageName(bad), false, bad);
  }
  for (const ok of ["0", "1.0", "1.0-1", "2:1.0-1", "1.0+dfsg-2~bpo12+1", "1:2:3-1", "1.0-a-b-1"]) {
    assert.equal(isPackageVersion(ok), true, ok);
  }
  for (const bad of ["", "a1", "1.0_1", "1.0-", "1:", ":1", "1.0:2", "1.0-1:2", "1.0 ", "x:1"]) {
    assert.equal(isPackageVersion(bad), false, bad);
  }
});

Deno.test("withoutEpoch drops only a leading epoch", () => {
  assert.equal(withoutEpoch("1:0.4.6-4"), "0.4.6-4");
  assert.equal(withoutEpoch("0.4.6-4"), "0.4.6-4");
  assert.equal(withoutEpoch("1:2:3-1"), "2:3-1");
});
