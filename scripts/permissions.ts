/**
 * The Deno permissions systemk runs with, in one place: `deno task compile` bakes them into the
 * binary, `deno task start` and the end-to-end tests run `main.ts` with exactly these, so the
 * tested program is the shipped program minus the packaging step. Why each is needed:
 *
 * - `--allow-run`: `apt-get`, `apt-cache`, `dpkg`, `dpkg-query`, `dpkg-deb` install images;
 *   `systemctl --version` reports the runtime version; `dmesg` follows the kernel log for
 *   OOM kills; `mount`/`umount` for `medium: Memory`
 *   emptyDirs; `git` only for `systemk version` from a checkout; `journalctl` reads container
 *   logs for the kubelet API; `openssl` makes keys, certificate requests and the self-signed
 *   serving certificate; `systemd-run` runs `exec` probes, lifecycle hooks and `kubectl exec`
 *   as transient units inside containers (src/exec/container.ts: what runs inside, `nsenter`,
 *   `setpriv`, `script`, `stty`, is started by systemd, not by systemk). Like `systemctl`, it
 *   can run anything as root: systemk is the node's root agent anyway. `grep` reads the CPU
 *   time of pods' and containers' cgroups (`/sys/fs/cgroup/…/cpu.stat`) where systemd accounts
 *   none (src/node/cgroup.ts). `systemd-inhibit` holds logind's delay lock for a graceful node
 *   shutdown (src/systemd/logind.ts).
 * - `--allow-read` / `--allow-write`: the whole filesystem, because systemk is the node's root
 *   agent: it writes unit files (`/run/systemd/system`), pod volume files (`/run/systemk`), the
 *   package marker files (`/var/lib/systemk`), downloads (`/var/cache/systemk`),
 *   `/usr/sbin/policy-rc.d` during installs, chowns files to pod users, talks to the D-Bus
 *   socket (`/run/dbus/system_bus_socket`), and reads `/etc/passwd`, `/etc/os-release`, the
 *   kubeconfig and manifests wherever they are. (Deno 2.9 opens `/proc` and `/sys` only with
 *   `--allow-all`, even with `--allow-read=/sys/fs/cgroup`, so systemk reads machine facts
 *   through `--allow-sys` APIs, systemd and `grep`.)
 * - `--allow-net`: the API server, `https://` .deb images.
 * - `--allow-env`: `KUBECONFIG`, `DBUS_SYSTEM_BUS_ADDRESS`, client-node's proxy settings.
 * - `--allow-sys`: hostname, network interfaces (node addresses), kernel release, load.
 *
 * Not granted: `--allow-ffi`, `--allow-import` of remote code at run time, `--allow-hrtime`.
 *
 * @module
 */

/** Commands systemk may run. */
export const ALLOWED_COMMANDS = [
  "apt-get",
  "apt-cache",
  "dpkg",
  "dpkg-query",
  "dpkg-deb",
  "systemctl",
  "mount",
  "umount",
  "git",
  "journalctl",
  "dmesg",
  "openssl",
  "systemd-run",
  "grep",
  "systemd-inhibit",
] as const;

/** The flags, for `deno run` and `deno compile`. */
export const PERMISSION_FLAGS: readonly string[] = [
  `--allow-run=${ALLOWED_COMMANDS.join(",")}`,
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-env",
  "--allow-sys",
];

if (import.meta.main) console.log(PERMISSION_FLAGS.join(" "));
