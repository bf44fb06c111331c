import assert from "node:assert/strict";
import {
  chooseNodeAddresses,
  isRFC1918,
  localNodeFacts,
  nssResolvesUserRecords,
  parseAPIServer,
  parseGroup,
  parsePasswd,
} from "./local.ts";

const v4 = (address: string) => ({ family: "IPv4" as const, address });
const v6 = (address: string) => ({ family: "IPv6" as const, address });

Deno.test("isRFC1918: the three private ranges only", () => {
  for (const a of ["10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1"]) {
    assert.ok(isRFC1918(a), a);
  }
  for (
    const a of [
      "172.15.0.1",
      "172.32.0.1",
      "192.169.0.1",
      "11.0.0.1",
      "198.51.100.2",
      "::1",
      "fd00::1",
    ]
  ) {
    assert.ok(!isRFC1918(a), a);
  }
});

Deno.test("chooseNodeAddresses: the seed's rules", () => {
  const ifaces = [
    v4("127.0.0.1"),
    v6("::1"),
    v6("fe80::1"),
    v4("198.51.100.2"),
    v4("10.0.0.2"),
    v4("192.168.0.9"),
  ];
  assert.deepEqual(chooseNodeAddresses({}, ifaces), {
    internalIP: "10.0.0.2",
    externalIP: "198.51.100.2",
  });
  // flags win
  assert.deepEqual(
    chooseNodeAddresses({ internalIP: "10.9.9.9", externalIP: "2001:db8::1" }, ifaces),
    {
      internalIP: "10.9.9.9",
      externalIP: "2001:db8::1",
    },
  );
  // one missing → copied from the other
  assert.deepEqual(chooseNodeAddresses({}, [v4("127.0.0.1"), v4("10.0.0.2")]), {
    internalIP: "10.0.0.2",
    externalIP: "10.0.0.2",
  });
  assert.deepEqual(chooseNodeAddresses({}, [v6("2001:db8::5")]), {
    internalIP: "2001:db8::5",
    externalIP: "2001:db8::5",
  });
  assert.deepEqual(chooseNodeAddresses({ externalIP: "203.0.113.1" }, []), {
    internalIP: "203.0.113.1",
    externalIP: "203.0.113.1",
  });
  // none at all
  assert.throws(
    () => chooseNodeAddresses({}, [v4("127.0.0.1"), v6("fe80::2")]),
    /--node-ip.*--node-external-ip/,
  );
});

Deno.test("parsePasswd / parseGroup", () => {
  assert.deepEqual(
    parsePasswd(
      "root:x:0:0:root:/root:/bin/bash\n# c\nbad\nprometheus:x:998:997::/var/lib/prometheus:/usr/sbin/nologin\n",
    ),
    [
      { name: "root", uid: 0, gid: 0 },
      { name: "prometheus", uid: 998, gid: 997 },
    ],
  );
  assert.deepEqual([...parseGroup("root:x:0:\nadm:x:4:syslog\nadm:x:5:\n")], [["root", 0], [
    "adm",
    4,
  ]]);
});

Deno.test("parseAPIServer: host:port, URLs, IPv6", () => {
  assert.deepEqual(parseAPIServer("10.0.0.1:6443"), { host: "10.0.0.1", port: 6443 });
  assert.deepEqual(parseAPIServer("https://api.example:8443/"), {
    host: "api.example",
    port: 8443,
  });
  assert.deepEqual(parseAPIServer("https://api.example"), { host: "api.example", port: 443 });
  assert.deepEqual(parseAPIServer("[2001:db8::1]:6443"), { host: "2001:db8::1", port: 6443 });
  assert.equal(parseAPIServer("http://"), undefined);
});

Deno.test("localNodeFacts: this machine", () => {
  const facts = localNodeFacts({
    nodeName: "n1",
    internalIP: "10.1.2.3",
    apiServer: "127.0.0.1:6443",
  });
  assert.equal(facts.name, "n1");
  assert.equal(facts.hostname, Deno.hostname());
  assert.equal(facts.internalIP, "10.1.2.3");
  assert.ok(facts.externalIP !== "");
  assert.deepEqual(facts.lookupUser("root"), { name: "root", uid: 0, gid: 0 });
  assert.deepEqual(facts.lookupUser(0)?.name, "root");
  assert.equal(facts.lookupGroup("root"), 0);
  assert.equal(facts.apiServerPort, 6443);
  assert.ok(facts.allocatable!.cpuMilli >= 1000 && facts.allocatable!.memoryBytes > 0);
});

Deno.test("nssResolvesUserRecords: systemd among the sources of passwd and group", () => {
  const conf = (passwd: string, group: string) => `# comment\npasswd: ${passwd}\ngroup: ${group}\n`;
  assert.equal(nssResolvesUserRecords(conf("files systemd", "files systemd")), true);
  assert.equal(nssResolvesUserRecords(conf("compat [NOTFOUND=return] systemd", "systemd")), true);
  assert.equal(nssResolvesUserRecords(conf("files systemd", "files")), false);
  assert.equal(nssResolvesUserRecords(conf("files # systemd", "files systemd")), false);
  assert.equal(nssResolvesUserRecords(""), false);
});
