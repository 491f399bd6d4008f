// Pinned versions of the external tools, in one place. flashcrowd never
// installs k6 (AGPL-3.0): K6_VERSION is the k6 it is tested with, named in
// messages, and the grafana/k6 image tag `--engine k6` runs through
// testcontainers on a user's own Docker engine when they have no k6 binary
// (harness/k6.ts). docker-compose.yml pins the same image tag
// (test/compose.test.ts checks it). Plain JavaScript with no imports:
// setup.mjs loads it before `npm ci`.
export const K6_VERSION = 'v1.8.1';
/** The official k6 image of K6_VERSION (its tags have no "v"). */
export const K6_IMAGE = `grafana/k6:${K6_VERSION.replace(/^v/, '')}`;
/**
 * vegeta (MIT), the third-party ceiling of `npm run bench:engine`: built with
 * `go install` into .tools/bin by `node scripts/setup.mjs --for-bench` only.
 */
export const VEGETA_MODULE = 'github.com/tsenart/vegeta/v12';
export const VEGETA_VERSION = 'v12.13.0';
/**
 * schemathesis (MIT), the API fuzzer of test/fuzz.test.ts: installed from PyPI
 * into a project-local venv (.tools/venv) by `node scripts/setup.mjs --for-tests`.
 */
export const SCHEMATHESIS_VERSION = '4.32.5';
/**
 * kubernetes-validate (Apache-2.0), whose Kubernetes JSON schemas test/k8s.test.ts
 * validates `flashcrowd k8s`'s manifests against (strict), for Kubernetes K8S_SCHEMA_VERSION:
 * installed like schemathesis by `node scripts/setup.mjs --for-tests`.
 */
export const KUBERNETES_VALIDATE_VERSION = '1.37.0';
export const K8S_SCHEMA_VERSION = '1.33.0';
/**
 * Toxiproxy (MIT), the network-fault proxy of the chaos timeline: built by
 * every set-up (plain, --for-tests) into .tools/bin/toxiproxy-server from the
 * module's source at TOXIPROXY_VERSION, fetched through the Go module proxy
 * (checksum-verified), with one line of cmd/server patched so that `-seed`
 * seeds the draws (toxicity, jitter, slicer sizes): in the stock v2.12.0 the
 * flag builds a generator nothing uses (upstream PR Shopify/toxiproxy#610 is
 * still open). TOXIPROXY_BUILD is what that build's `-version` prints; a stock
 * release prints TOXIPROXY_VERSION without the "v".
 */
export const TOXIPROXY_MODULE = 'github.com/Shopify/toxiproxy/v2';
export const TOXIPROXY_VERSION = 'v2.12.0';
export const TOXIPROXY_BUILD = `${TOXIPROXY_VERSION.replace(/^v/, '')}+flashcrowd.seed`;
