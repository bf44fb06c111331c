/**
 * A real-looking network for a test node: a veth pair joining the host to the node's own network
 * namespace, each end with an address of a documentation range (RFC 5737). Kubernetes refuses
 * loopback addresses in EndpointSlices, so a node whose pods must back a Service cannot live on
 * 127.0.0.1.
 *
 * Each link gets its own /30 (host end `.1`, node end `.2` of the block) so several nodes, of
 * this test or of tests running beside it, can exist at once. A block is claimed by creating the
 * interfaces named after it: `ip link add` fails when another process holds the same names, so
 * two processes never share a block. Blocks overlapping any address or route of the host are
 * skipped (`192.0.2.0/24` is never used: on these machines it is the real uplink).
 *
 * @module
 */

/** One veth pair, host end configured, node end waiting to be moved into a namespace. */
export interface VethLink {
  /** Address of the host end (the apiserver binds here). */
  readonly hostAddress: string;
  /** Address of the node end (the node's InternalIP, and its pods' IP). */
  readonly nodeAddress: string;
  /** Prefix length of both addresses. */
  readonly prefixLength: number;
  /** Name of the host end. */
  readonly hostInterface: string;
  /** Name of the node end (the same inside the namespace). */
  readonly nodeInterface: string;
  /**
   * Moves the node end into the network namespace of process `pid`, gives it its address and
   * brings it and that namespace's loopback up.
   */
  attach(pid: number): Promise<void>;
  /**
   * Deletes the pair (a pair whose node end went with its namespace is gone already) and waits
   * until the host end is gone.
   */
  remove(): Promise<void>;
}

/** The documentation ranges links are taken from, as /24 networks. */
const POOLS = ["198.51.100.0", "203.0.113.0"];
const PREFIX_LENGTH = 30;
const BLOCK_SIZE = 2 ** (32 - PREFIX_LENGTH);
const BLOCKS_PER_POOL = 256 / BLOCK_SIZE;

/** An IPv4 address as an unsigned 32-bit number. */
function toNumber(address: string): number {
  return address.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
}

function toAddress(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}

/** The first and last address of `cidr` (`a.b.c.d/n`; a bare address is a /32). */
function range(cidr: string): [number, number] {
  const [address, bits = "32"] = cidr.split("/");
  const size = 2 ** (32 - Number(bits));
  const first = Math.floor(toNumber(address) / size) * size;
  return [first, first + size - 1];
}

/** Runs `ip` with `args` (JSON output) and returns the parsed answer. */
async function ipJSON<T>(args: string[]): Promise<T> {
  const out = await new Deno.Command("ip", { args: ["-j", ...args], stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(new TextDecoder().decode(out.stdout)) as T;
}

/** Ranges the host already uses: every IPv4 address and every route but the default one. */
async function usedRanges(): Promise<[number, number][]> {
  const links = await ipJSON<{ addr_info?: { local: string; prefixlen: number }[] }[]>(
    ["-4", "addr", "show"],
  );
  const routes = await ipJSON<{ dst: string }[]>(["-4", "route", "show", "table", "all"]);
  return [
    ...links.flatMap((l) => (l.addr_info ?? []).map((a) => range(`${a.local}/${a.prefixlen}`))),
    ...routes.filter((r) => /^\d/.test(r.dst)).map((r) => range(r.dst)),
  ];
}

/** The blocks on no address or route of the host, in random order (parallel tests spread). */
async function freeBlocks(): Promise<{ index: number; first: number }[]> {
  const used = await usedRanges();
  const blocks = POOLS.flatMap((pool, p) =>
    Array.from({ length: BLOCKS_PER_POOL }, (_, b) => ({
      index: p * BLOCKS_PER_POOL + b,
      first: toNumber(pool) + b * BLOCK_SIZE,
    }))
  ).filter(({ first }) =>
    !used.some(([start, end]) => start <= first + BLOCK_SIZE - 1 && first <= end)
  );
  for (let i = blocks.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [blocks[i], blocks[j]] = [blocks[j], blocks[i]];
  }
  return blocks;
}

/**
 * The script that claims a link and keeps it: it tries the candidate blocks (`index,host`
 * words) until `ip link add` succeeds, configures the host end, prints the block's index, and
 * then waits for its standard input to close: remove() closes it, and so does the test process
 * ending or dying, so a crashed test leaves no interface behind. The waiting part runs in the
 * background so that it outlives the script should the test's runtime kill the script on exit.
 */
const KEEPER_SCRIPT = `set -u
exec 3<&0 </dev/null
for candidate in "$@"; do
  index=\${candidate%,*} host=\${candidate#*,}
  if ip link add "skv\${index}h" type veth peer name "skv\${index}n" 2>/dev/null; then
    if ip addr add "$host/${PREFIX_LENGTH}" dev "skv\${index}h" && ip link set "skv\${index}h" up
    then
      keeper() { cat <&3 >/dev/null; ip link del "skv\${index}h" 2>/dev/null; true; }
      keeper >/dev/null 2>&1 &
      echo "$index"
      exec >/dev/null 2>&1 3<&-
      wait $!
      exit 0
    fi
    ip link del "skv\${index}h"
    exit 1
  fi
done
echo "no free link among $#" >&2
exit 1
`;

/** Runs a command on the host and throws, with its stderr, if it fails. */
async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/**
 * Creates a veth pair on a free /30 of a documentation range; the host end is up with its
 * address. Always call {@link VethLink.remove} (in a `finally`).
 *
 * @return The link, its node end still in the host's namespace until {@link VethLink.attach}.
 */
export async function createVethLink(): Promise<VethLink> {
  const blocks = await freeBlocks();
  if (blocks.length === 0) throw new Error(`no free /${PREFIX_LENGTH} in ${POOLS.join(", ")}`);
  const keeper = new Deno.Command("/bin/bash", {
    args: [
      "-c",
      KEEPER_SCRIPT,
      "veth-keeper",
      ...blocks.map((b) => `${b.index},${toAddress(b.first + 1)}`),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const [stdout, stderr] = await Promise.all(
    [keeper.stdout, keeper.stderr].map((stream) => new Response(stream).text()),
  );
  const index = Number(stdout.trim());
  const block = blocks.find((b) => b.index === index);
  if (stdout.trim() === "" || !block) {
    await keeper.status;
    throw new Error(`claiming a veth link failed: ${stderr.trim()}`);
  }
  const stdin = keeper.stdin.getWriter();
  const link: VethLink = {
    hostAddress: toAddress(block.first + 1),
    nodeAddress: toAddress(block.first + 2),
    prefixLength: PREFIX_LENGTH,
    hostInterface: `skv${index}h`,
    nodeInterface: `skv${index}n`,
    async attach(pid) {
      await run("ip", ["link", "set", link.nodeInterface, "netns", String(pid)]);
      const inside = (args: string[]) => run("nsenter", ["-t", String(pid), "-n", "--", ...args]);
      await inside(["ip", "link", "set", "lo", "up"]);
      await inside([
        ...["ip", "addr", "add", `${link.nodeAddress}/${PREFIX_LENGTH}`],
        ...["dev", link.nodeInterface],
      ]);
      await inside(["ip", "link", "set", link.nodeInterface, "up"]);
    },
    async remove() {
      await stdin.close().catch(() => {});
      await keeper.status;
    },
  };
  return link;
}
