/**
 * A real systemd 252 for tests, booted as PID 1 of its own PID + mount + cgroup + UTS namespaces
 * over a throw-away overlay of `/`, so nothing it does reaches the host's files: the host's
 * `/tmp`, `/run` and `/etc` stay untouched (booting on the shared root once emptied the host's
 * `/tmp` through `systemd-tmpfiles-setup`).
 *
 * What is shared with the host, on purpose: the network (the agent inside reaches an apiserver on
 * 127.0.0.1) unless the test gives it a {@link VethLink} of its own, `/dev` and `/sys` (read-only
 * apart from the test's own cgroups), the repository checkout, `/var/cache/systemk-dev`, the Deno
 * cache and whatever the test binds in.
 *
 * @module
 */
import type { VethLink } from "./network.ts";

/** A booted test systemd. */
export interface TestSystemd {
  /** The name given to the system (hostname and `container=` value). */
  readonly name: string;
  /** Its PID 1, as seen from the host. */
  readonly pid: number;
  /** D-Bus address of its system bus, reachable from the host. */
  readonly busAddress: string;
  /** Its root directory, reachable from the host (`/proc/<pid>/root`). */
  readonly root: string;
  /** The host directory holding its scripts and mount points; removed by stop(). */
  readonly tempDir: string;
  /** The link to the host when booted with one ({@link BootOptions.network}). */
  readonly network?: VethLink;
  /** Runs a command inside it to completion. */
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Starts a long-running command inside it (stdin/stdout/stderr piped). */
  spawn(argv: string[], opts?: { env?: Record<string, string> }): Deno.ChildProcess;
  /**
   * Whether its PID 1 still runs: a `systemctl reboot` or `poweroff` inside ends it (reboot(2)
   * in a PID namespace ends that namespace's init, never the host).
   */
  alive(): Promise<boolean>;
  /** Kills its PID 1 (and with it every process inside) and removes its temporary files. */
  stop(): Promise<void>;
}

/** Options of {@link TestSystemd.exec}. */
export interface ExecOptions {
  /** Text written to the command's standard input. */
  stdin?: string;
  /** Environment added to the clean default one (PATH, HOME, LANG). */
  env?: Record<string, string>;
}

/** Outcome of {@link TestSystemd.exec}. */
export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@link bootTestSystemd}. */
export interface BootOptions {
  /** Hostname and `container=` value; a unique one is made up when absent. */
  name?: string;
  /** Host paths to bind-mount at the same path inside (files or directories). */
  binds?: string[];
  /**
   * Boots it in a network namespace of its own, reached through this link: its node end is
   * moved in and configured, beside the namespace's loopback. The namespace, and with it the
   * pair, goes with the system; the caller still removes the link (it may outlive a failed boot).
   */
  network?: VethLink;
}

/**
 * Units a test system must not run: they touch state the namespaces do not isolate (kernel
 * settings, devices, audit, the clock, the host's ports and consoles) or are just slow noise.
 * Masked in the overlay's `/etc/systemd/system`.
 */
export const MASKED_UNITS: readonly string[] = [
  // Kernel-wide settings and modules.
  "systemd-sysctl.service",
  "systemd-binfmt.service",
  "proc-sys-fs-binfmt_misc.automount",
  "proc-sys-fs-binfmt_misc.mount",
  "systemd-modules-load.service",
  "kmod-static-nodes.service",
  "systemd-random-seed.service",
  "systemd-pstore.service",
  "systemd-hwdb-update.service",
  "systemd-journald-audit.socket",
  // Devices: /dev and /sys are the host's.
  "systemd-udevd.service",
  "systemd-udevd-control.socket",
  "systemd-udevd-kernel.socket",
  "systemd-udev-trigger.service",
  "systemd-udev-settle.service",
  "systemd-tmpfiles-setup-dev.service",
  "dev-hugepages.mount",
  "dev-mqueue.mount",
  "sys-fs-fuse-connections.mount",
  "sys-kernel-config.mount",
  "sys-kernel-debug.mount",
  "sys-kernel-tracing.mount",
  "systemd-remount-fs.service",
  // Consoles and terminals: the host's serial console is behind /dev.
  "getty@.service",
  "serial-getty@.service",
  "console-getty.service",
  "container-getty@.service",
  "getty-static.service",
  "systemd-ask-password-console.path",
  "systemd-ask-password-wall.path",
  // Clock, network and ports shared with the host.
  "systemd-timesyncd.service",
  "systemd-networkd.service",
  "systemd-networkd.socket",
  "systemd-networkd-wait-online.service",
  "systemd-resolved.service",
  "networking.service",
  "ssh.service",
  "ssh.socket",
  "cron.service",
  "docker.service",
  "docker.socket",
  "containerd.service",
  "postgresql.service",
  "postgresql@.service",
  // Periodic maintenance.
  "apt-daily.timer",
  "apt-daily-upgrade.timer",
  "dpkg-db-backup.timer",
  "e2scrub_all.timer",
  "e2scrub_reap.service",
  "fstrim.timer",
  "man-db.timer",
  "logrotate.timer",
];

/**
 * Generators that would turn host configuration into units (SysV init scripts such as
 * postgresql's, disks, consoles); masked in the overlay's `/etc/systemd/system-generators`.
 */
export const MASKED_GENERATORS: readonly string[] = [
  "systemd-sysv-generator",
  "systemd-rc-local-generator",
  "postgresql-generator",
  "systemd-gpt-auto-generator",
  "systemd-getty-generator",
  "systemd-hibernate-resume-generator",
  "systemd-cryptsetup-generator",
  "systemd-integritysetup-generator",
  "systemd-veritysetup-generator",
];

const LOG_PREFIX = "[test-systemd]";
const CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** Size cap of the overlay's upper layer (a tmpfs, so it vanishes with the namespace). */
const UPPER_SIZE = "4g";
const BOOT_TIMEOUT_MS = 60_000;

/** Quotes one word for POSIX sh. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The repository checkout this file belongs to. */
function repositoryRoot(): string {
  return Deno.realPathSync(new URL("../../", import.meta.url));
}

/** The Deno cache directory, so Deno inside finds the same modules without a network. */
async function denoDir(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "null",
  }).output();
  if (out.success) {
    const dir = JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
    if (typeof dir === "string") return dir;
  }
  return Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME") ?? "/root"}/.cache/deno`;
}

/** One cgroup hierarchy the test process is in, with where the host mounts it. */
interface CgroupHierarchy {
  /** `cgroup` (v1) or `cgroup2`. */
  fsType: string;
  /** Mount options selecting the hierarchy: `memory`, `none,name=systemd`, `` for cgroup2. */
  options: string;
  /** Where the host mounts it, relative to /sys/fs/cgroup (`memory`, `unified`, ``). */
  mountName: string;
  /** The host directory of this test's own cgroup in it. */
  ownDir: string;
}

/**
 * Finds each cgroup hierarchy the calling process is in and names a fresh child cgroup for the
 * test in it. Entering the child before `unshare --cgroup` makes it the namespace's root, so each
 * booted systemd manages its own subtree and several can run at once.
 */
async function cgroupHierarchies(id: string): Promise<CgroupHierarchy[]> {
  const membership = new Map<string, string>(); // controllers ("" for v2) → path
  for (const line of (await Deno.readTextFile("/proc/self/cgroup")).trim().split("\n")) {
    const [, controllers, path] = line.match(/^\d+:([^:]*):(.*)$/) ?? [];
    if (path !== undefined) membership.set(controllers, path);
  }
  const hierarchies: CgroupHierarchy[] = [];
  for (const line of (await Deno.readTextFile("/proc/self/mountinfo")).trim().split("\n")) {
    const [mountPart, fsPart] = line.split(" - ");
    const mountPoint = mountPart.split(" ")[4];
    const [fsType, , superOptions] = fsPart.split(" ");
    if (!mountPoint.startsWith("/sys/fs/cgroup")) continue;
    const mountName = mountPoint.slice("/sys/fs/cgroup".length).replace(/^\//, "");
    if (fsType === "cgroup2") {
      const path = membership.get("");
      if (path === undefined) continue;
      membership.delete("");
      hierarchies.push({ fsType, options: "", mountName, ownDir: `${mountPoint}${path}` });
    } else if (fsType === "cgroup") {
      const opts = new Set(superOptions.split(","));
      const controllers = [...membership.keys()].find((c) =>
        c !== "" && c.split(",").every((name) => opts.has(name))
      );
      if (controllers === undefined) continue;
      const path = membership.get(controllers)!;
      membership.delete(controllers);
      const options = controllers.startsWith("name=") ? `none,${controllers}` : controllers;
      hierarchies.push({ fsType, options, mountName, ownDir: `${mountPoint}${path}` });
    }
  }
  for (const h of hierarchies) h.ownDir = `${h.ownDir.replace(/\/$/, "")}/${id}`;
  return hierarchies;
}

/**
 * The script run on the host. It makes the test's own cgroups, starts `unshare` in them, and
 * waits for its standard input to close: the test's stop() closes it, and so does the test
 * process ending or dying, so a crashed test leaves nothing behind either. Then it takes the
 * namespace down and removes the cgroups and the temporary directory.
 */
function hostScript(dir: string, cgroups: CgroupHierarchy[], ownNetwork: boolean): string {
  const q = shellQuote;
  return `#!/bin/bash
set -u
# systemd logs to its stderr; keep it beside the scripts for post-mortems.
exec >> ${q(`${dir}/console.log`)} 2>&1
cgroups=(${cgroups.map((h) => q(h.ownDir)).join(" ")})

keeper() {
  for cg in "\${cgroups[@]}"; do
    mkdir "$cg" || return 1
    # A v1 cpuset cgroup takes no process before it has CPUs and memory nodes.
    if [ -f "$cg/cpuset.cpus" ]; then
      cat "$cg/../cpuset.cpus" > "$cg/cpuset.cpus"
      cat "$cg/../cpuset.mems" > "$cg/cpuset.mems"
    fi
  done
  (
    # Entered before unshare --cgroup, these become the root of the new cgroup namespace.
    for cg in "\${cgroups[@]}"; do echo "$BASHPID" > "$cg/cgroup.procs"; done
    # Should the keeper itself be killed, unshare and then PID 1 follow it.
    exec setpriv --pdeathsig KILL unshare --fork --kill-child=SIGKILL \\
      --pid --mount --cgroup --uts${ownNetwork ? " --net" : ""} -- /bin/sh ${q(`${dir}/boot.sh`)}
  ) &
  local unshare_pid=$!
  echo "$unshare_pid" > ${q(`${dir}/unshare.pid`)}

  cat <&3 > /dev/null
  # Killing PID 1 takes the whole PID namespace down; unshare then reaps it and exits (killing
  # unshare first would leave PID 1 a zombie for the host's init to reap).
  local pid1
  pid1=$(cat "/proc/$unshare_pid/task/$unshare_pid/children" 2>/dev/null)
  [ -n "$pid1" ] && kill -KILL $pid1 2>/dev/null
  wait "$unshare_pid"

  for cg in "\${cgroups[@]}"; do
    # Deepest first; killed processes can take a moment to leave their cgroups.
    for _ in $(seq 100); do
      find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null && break
      sleep 0.02
    done
  done
  # Every mount was made in the namespace's private mount table, gone with its last process;
  # so these are plain empty directories again (no recursive removal, on purpose).
  rm -f ${q(`${dir}/boot.sh`)} ${q(`${dir}/console.log`)} ${q(`${dir}/host.sh`)} \\
    ${q(`${dir}/unshare.pid`)}
  rmdir ${q(`${dir}/root`)} ${q(`${dir}/layer`)} ${q(dir)}
}

# The keeper runs in the background so that it outlives this shell should the test's runtime
# kill it on exit; it holds the test's end of standard input as fd 3 (a background job's own
# standard input would be /dev/null).
exec 3<&0
keeper &
wait $!
`;
}

/** The script run as PID 1 of the new namespaces; ends by exec'ing systemd. */
function bootScript(dir: string, name: string, cgroups: CgroupHierarchy[], binds: string[]) {
  const q = shellQuote;
  const root = `${dir}/root`;
  const mountCgroups = cgroups.map((h) => {
    const target = q(`${root}/sys/fs/cgroup/${h.mountName}`);
    const options = h.options === "" ? "" : ` -o ${q(h.options)}`;
    return `mkdir -p ${target}\nmount -t ${h.fsType}${options} ${h.fsType} ${target}`;
  }).join("\n");
  const bindMounts = binds.map((path) => `bind_same_path ${q(path)}`).join("\n");
  return `#!/bin/sh
set -eu
root=${q(root)}

# Nothing mounted from here on may propagate back to the host.
mount --make-rprivate /

# A copy-on-write view of the host's root; the upper layer lives in a tmpfs of this namespace
# (an upper directory on the lower filesystem itself would overlap the lower layer).
mount -t tmpfs -o size=${UPPER_SIZE},mode=0700 layer ${q(`${dir}/layer`)}
mkdir ${q(`${dir}/layer/upper`)} ${q(`${dir}/layer/work`)}
mount -t overlay -o lowerdir=/,upperdir=${q(`${dir}/layer/upper`)},workdir=${
    q(`${dir}/layer/work`)
  } overlay "$root"

mount --rbind /dev "$root/dev"
# Status output to /dev/console would reach the host's serial console.
mount --bind /dev/null "$root/dev/console"
mount --rbind /sys "$root/sys"
mount -o remount,bind,ro "$root/sys"
# The host's cgroup mounts show the host's whole tree; mount this namespace's own instead.
umount -R "$root/sys/fs/cgroup"
mount -t tmpfs -o mode=0755 cgroup "$root/sys/fs/cgroup"
${mountCgroups}
mount -t tmpfs -o mode=0755 run "$root/run"
mount -t tmpfs -o mode=1777 tmp "$root/tmp"

bind_same_path() {
  if [ -d "$1" ]; then mkdir -p "$root$1"; else mkdir -p "$(dirname "$root$1")"; touch "$root$1"; fi
  mount --rbind "$1" "$root$1"
}
${bindMounts}

# Units enabled on the host (services, timers) are not the test system's business.
rm -f "$root"/etc/systemd/system/*.wants/*
for unit in ${MASKED_UNITS.map(q).join(" ")}; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
mkdir -p "$root/etc/systemd/system-generators"
for generator in ${MASKED_GENERATORS.map(q).join(" ")}; do
  ln -sf /dev/null "$root/etc/systemd/system-generators/$generator"
done
: > "$root/etc/fstab"
echo ${q(name)} > "$root/etc/hostname"
hostname ${q(name)}

cd "$root"
mkdir -p .oldroot
pivot_root . .oldroot
mount -t proc proc /proc
# Kernel settings are shared with the host: keep them read-only.
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
umount -l /.oldroot
rmdir /.oldroot
cd /

exec env -i container=${q(name)} PATH=${CLEAN_PATH} /lib/systemd/systemd --system \\
  --unit=multi-user.target --show-status=no --log-target=console --log-level=notice
`;
}

/** `nsenter` arguments that run a command inside the system whose PID 1 is `pid`. */
function nsenterArgs(pid: number, argv: string[]): string[] {
  // -r/-w: take PID 1's root and working directory (its pivoted root), not the host's. -n: its
  // network namespace (the host's own unless it was booted with a link).
  return ["-t", String(pid), "-m", "-p", "-u", "-C", "-n", "-r", "-w", "--", ...argv];
}

function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: CLEAN_PATH, HOME: "/root", LANG: "C.UTF-8", ...extra };
}

/** The PID written to `path`, once it is there. */
async function readPidFile(path: string, deadline: number): Promise<number> {
  while (Date.now() < deadline) {
    const text = await Deno.readTextFile(path).catch(() => "");
    if (text.endsWith("\n")) return Number(text);
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`no PID in ${path} in time`);
}

/** PID of the first child of `parent`, once it has one. */
async function childPid(parent: number, deadline: number): Promise<number> {
  while (Date.now() < deadline) {
    try {
      const children = await Deno.readTextFile(`/proc/${parent}/task/${parent}/children`);
      const first = children.trim().split(" ")[0];
      if (first) return Number(first);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      throw new Error(`process ${parent} exited before starting its child`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`process ${parent} started no child in time`);
}

/**
 * Waits until `pid` runs systemd and its private socket exists, so that `systemctl` can talk to
 * it (before that, `systemctl is-system-running --wait` fails instead of waiting).
 */
async function waitForSystemdSocket(pid: number, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    let ready = false;
    try {
      ready = (await Deno.readLink(`/proc/${pid}/exe`)).endsWith("/systemd") &&
        (await Deno.stat(`/proc/${pid}/root/run/systemd/private`)).isSocket === true;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      await Deno.stat(`/proc/${pid}`).catch(() => {
        throw new Error(`PID ${pid} exited during boot`);
      });
    }
    if (ready) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`PID ${pid} did not start systemd in time`);
}

function mountsUnder(mountinfo: string, dir: string): string[] {
  return mountinfo.split("\n").map((line) => line.split(" ")[4]).filter((mountPoint) =>
    mountPoint !== undefined && (mountPoint === dir || mountPoint.startsWith(`${dir}/`))
  );
}

/**
 * Boots a test systemd and waits until `systemctl is-system-running` says `running` or
 * `degraded`. Always call {@link TestSystemd.stop} (in a `finally`).
 */
export async function bootTestSystemd(opts: BootOptions = {}): Promise<TestSystemd> {
  const started = performance.now();
  if (opts.name !== undefined && !/^[a-z0-9][a-z0-9-]{0,62}$/.test(opts.name)) {
    throw new Error(`invalid system name: ${opts.name}`);
  }
  for (const path of opts.binds ?? []) {
    if (!path.startsWith("/")) throw new Error(`bind path must be absolute: ${path}`);
    await Deno.stat(path); // throws NotFound before anything is set up
  }
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "systemk-test-" });
  const id = dir.slice("/tmp/".length);
  const name = opts.name ?? id;

  await Deno.mkdir(`${dir}/root`);
  await Deno.mkdir(`${dir}/layer`);
  await Deno.mkdir("/var/cache/systemk-dev", { recursive: true });
  const binds = [
    repositoryRoot(),
    "/var/cache/systemk-dev",
    await denoDir(),
    ...(opts.binds ?? []),
  ];
  const cgroups = await cgroupHierarchies(id);
  await Deno.writeTextFile(`${dir}/host.sh`, hostScript(dir, cgroups, opts.network !== undefined));
  await Deno.writeTextFile(`${dir}/boot.sh`, bootScript(dir, name, cgroups, binds));

  const host = new Deno.Command("/bin/bash", {
    args: [`${dir}/host.sh`],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
    clearEnv: true,
    env: cleanEnv(),
  }).spawn();
  const hostStdin = host.stdin.getWriter();

  let pid = 0;
  let unsharePid = 0;
  let stopped = false;
  // unshare stays unreaped until stop() closes the keeper's input, so its PID is not reused:
  // PID 1 runs exactly while unshare lists it as its child.
  const alive = async () => {
    const children = await Deno.readTextFile(`/proc/${unsharePid}/task/${unsharePid}/children`)
      .catch(() => "");
    return pid > 0 && children.trim().split(" ").includes(String(pid));
  };
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const stopStart = performance.now();
    // A PID 1 that ended by itself (a reboot inside) must not be "killed": its PID may be reused.
    if (await alive()) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    await hostStdin.close().catch(() => {});
    const { code } = await host.status;
    const leftover = mountsUnder(await Deno.readTextFile("/proc/self/mountinfo"), dir);
    if (leftover.length > 0) throw new Error(`mounts left under ${dir}: ${leftover.join(", ")}`);
    const dirLeft = await Deno.stat(dir).then(() => true, () => false);
    if (code !== 0 || dirLeft) throw new Error(`teardown of ${name} failed (${dir}, exit ${code})`);
    console.error(
      `${LOG_PREFIX} ${name}: torn down in ${(performance.now() - stopStart).toFixed(0)} ms`,
    );
  };

  const exec = async (argv: string[], execOpts: ExecOptions = {}): Promise<ExecResult> => {
    const child = new Deno.Command("nsenter", {
      args: nsenterArgs(pid, argv),
      stdin: execOpts.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      clearEnv: true,
      env: cleanEnv(execOpts.env),
    }).spawn();
    if (execOpts.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(execOpts.stdin));
      await writer.close();
    }
    const out = await child.output();
    const decoder = new TextDecoder();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  };

  const spawn = (argv: string[], spawnOpts: { env?: Record<string, string> } = {}) =>
    new Deno.Command("nsenter", {
      args: nsenterArgs(pid, argv),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      clearEnv: true,
      env: cleanEnv(spawnOpts.env),
    }).spawn();

  try {
    const deadline = Date.now() + BOOT_TIMEOUT_MS;
    unsharePid = await readPidFile(`${dir}/unshare.pid`, deadline);
    pid = await childPid(unsharePid, deadline);
    await waitForSystemdSocket(pid, deadline);
    await opts.network?.attach(pid);
    const seconds = String(Math.ceil((deadline - Date.now()) / 1000));
    const state = await exec(["timeout", seconds, "systemctl", "is-system-running", "--wait"]);
    const status = state.stdout.trim();
    if (status !== "running" && status !== "degraded") {
      const failed = await exec(["systemctl", "--failed", "--no-legend"]);
      throw new Error(`test systemd ${name} is ${status || state.stderr}: ${failed.stdout}`);
    }
  } catch (e) {
    const log = await Deno.readTextFile(`${dir}/console.log`).catch(() => "");
    await stop().catch((stopError) => console.error(LOG_PREFIX, stopError));
    throw new Error(`booting test systemd ${name} failed: ${e}\n${log.slice(-4000)}`);
  }
  console.error(
    `${LOG_PREFIX} ${name}: PID ${pid} booted in ${(performance.now() - started).toFixed(0)} ms`,
  );

  return {
    name,
    pid,
    busAddress: `unix:path=/proc/${pid}/root/run/dbus/system_bus_socket`,
    root: `/proc/${pid}/root`,
    tempDir: dir,
    network: opts.network,
    exec,
    spawn,
    alive,
    stop,
  };
}
