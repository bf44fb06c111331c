import assert from "node:assert/strict";
import { parseImage } from "./image.ts";
import {
  DEFAULT_IMAGE_POLICY,
  type ImagePolicy,
  imagePolicyProblem,
  urlCovered,
} from "./policy.ts";

Deno.test("urlCovered: same origin, whole path segments", () => {
  const table: [string, string, boolean][] = [
    ["https://h/pool/a_1_all.deb", "https://h/pool/", true],
    ["https://h/pool/a_1_all.deb", "https://h/pool", true],
    ["https://h/pool/sub/a_1_all.deb", "https://h/", true],
    ["https://h/pool2/a_1_all.deb", "https://h/pool", false],
    ["https://h.evil/pool/a_1_all.deb", "https://h", false],
    ["https://h:8443/pool/a_1_all.deb", "https://h/pool/", false],
    ["https://h/other/../pool/a_1_all.deb", "https://h/pool/", true], // normalized by URL
    ["https://h/pool/../etc/a_1_all.deb", "https://h/pool/", false],
    ["https://h/pool/%2e%2e/etc/a_1_all.deb", "https://h/pool/", false],
  ];
  for (const [url, prefix, covered] of table) {
    assert.equal(urlCovered(url, prefix), covered, `${url} under ${prefix}`);
  }
});

Deno.test("imagePolicyProblem: https images need an allowed prefix and a digest; package names", () => {
  const problem = (image: string, policy: ImagePolicy) =>
    imagePolicyProblem(parseImage(image), policy, { text: image });
  const url = "https://debs.example/pool/hello_1.0_all.deb";
  const digest = `#sha256=${"a".repeat(64)}`;
  // By default: no https image at all, apt packages of any name, paths always.
  assert.match(
    problem(url + digest, DEFAULT_IMAGE_POLICY)!,
    /from no URL \(--allowed-image-url-prefixes\)/,
  );
  assert.equal(problem("uptimed=1:0.4.6-3", DEFAULT_IMAGE_POLICY), undefined);
  assert.equal(problem("/usr/bin/sleep", DEFAULT_IMAGE_POLICY), undefined);

  const allowing = { ...DEFAULT_IMAGE_POLICY, allowedURLPrefixes: ["https://debs.example/pool/"] };
  assert.equal(problem(url + digest, allowing), undefined);
  assert.match(problem(url, allowing)!, /no #sha256=<digest>.*--require-image-digest/);
  assert.equal(problem(url, { ...allowing, requireDigest: false }), undefined);
  assert.match(
    problem("https://debs.example/other/hello_1.0_all.deb" + digest, allowing)!,
    /only from https:\/\/debs\.example\/pool\//,
  );

  const listed = { ...allowing, allowedPackages: ["hello"] };
  assert.equal(problem(url + digest, listed), undefined);
  assert.equal(problem("hello", listed), undefined);
  assert.match(
    problem("uptimed", listed)!,
    /package uptimed is not among .*--allowed-packages=hello/,
  );
});
