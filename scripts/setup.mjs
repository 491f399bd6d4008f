#!/usr/bin/env node
// flashcrowd set-up: makes sure everything the demo and the tests need is here.
// Idempotent and quick when all is present. Plain Node with no dependencies,
// because it runs before `npm ci`.
//
//   node scripts/setup.mjs              npm packages, redis-server, toxiproxy-server (built with Go;
//                                       without Go a warning: only presets with network faults need it)
//   node scripts/setup.mjs --for-tests  the same (toxiproxy-server required), plus iproute2 (the
//                                       multi-host test's namespaces), promtool
//                                       (metric-name lint), chromium (the HTML report test), the
//                                       Prometheus server (the dashboard test), schemathesis
//                                       (the API fuzz test) and kubernetes-validate (the k8s test)
//   node scripts/setup.mjs --for-bench  the same, plus the benchmarks' third-party load generators:
//                                       vegeta (MIT; `go install` into .tools/bin) and wrk (Debian)
//   node scripts/setup.mjs --check      report only; install nothing; exit 1 if anything is missing
//
// It never installs k6 (AGPL-3.0) or Grafana: flashcrowd's own engine makes the
// load; a user who has k6 brings it (README "Engines").
// Pinned versions live in scripts/versions.mjs and in docs (README "Quick start").
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
  statSync,
  copyFileSync,
  cpSync,
  chmodSync,
  renameSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, delimiter } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  KUBERNETES_VALIDATE_VERSION,
  SCHEMATHESIS_VERSION,
  TOXIPROXY_BUILD,
  TOXIPROXY_MODULE,
  TOXIPROXY_VERSION,
  VEGETA_MODULE,
  VEGETA_VERSION,
} from './versions.mjs';

const MIN_NODE = [20, 19, 0];

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const toolsBin = join(root, '.tools', 'bin');
const args = new Set(process.argv.slice(2));
const forTests = args.has('--for-tests');
const forBench = args.has('--for-bench');
const checkOnly = args.has('--check');
const quiet = args.has('--quiet');

const did = [];
const problems = [];
// Missing pieces only some features need (plain set-up): said, but set-up still succeeds.
const warnings = [];
const log = (msg) => {
  if (!quiet) console.log(`[setup] ${msg}`);
};

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, {
    stdio: opts.capture ? 'pipe' : 'inherit',
    encoding: 'utf8',
    ...opts,
  });
  return r;
}

function which(name) {
  for (const dir of [toolsBin, ...(process.env.PATH ?? '').split(delimiter)]) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const hasApt = which('apt-get') !== null;
let aptUpdated = false;

function aptInstall(pkgs) {
  if (!hasApt || !isRoot) return false;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const policy = run('apt-cache', ['policy', pkgs[0]], { capture: true, env });
  if (!aptUpdated && !/Candidate: (?!\(none\))/.test(policy.stdout ?? '')) {
    log('apt-get update (package lists are empty or stale)');
    run('apt-get', ['update', '-qq'], { env });
    aptUpdated = true;
  }
  log(`apt-get install ${pkgs.join(' ')}`);
  let r = run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { env });
  if (r.status !== 0 && !aptUpdated) {
    run('apt-get', ['update', '-qq'], { env });
    aptUpdated = true;
    r = run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { env });
  }
  return r.status === 0;
}

// ---------------------------------------------------------------- Node + npm
function checkNode() {
  const v = process.versions.node.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if (v[i] > MIN_NODE[i]) return;
    if (v[i] < MIN_NODE[i]) {
      problems.push(
        `Node ${process.versions.node} is too old: flashcrowd needs Node ${MIN_NODE.join('.')}+ (20.19+, 22 or 24).`,
      );
      return;
    }
  }
}

function ensureNpm() {
  const lock = join(root, 'package-lock.json');
  const marker = join(root, 'node_modules', '.package-lock.json');
  const fresh = existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs;
  if (fresh) {
    log('npm packages: present');
    return;
  }
  if (checkOnly) {
    problems.push('npm packages are missing or older than package-lock.json: run `npm ci`.');
    return;
  }
  log('npm packages: running npm ci');
  const r = run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root });
  if (r.status !== 0) problems.push('`npm ci` failed (see its output above).');
  else did.push('installed npm packages (npm ci)');
}

// ---------------------------------------------------------------- redis-server
function ensureRedis() {
  const found = which('redis-server');
  const cli = which('redis-cli');
  if (found && cli) {
    const v = run(found, ['--version'], { capture: true }).stdout?.match(/v=([\d.]+)/)?.[1];
    log(`redis-server: ${found} (${v ?? 'unknown version'})`);
    return;
  }
  if (!checkOnly && aptInstall(['redis-server', 'redis-tools']) && which('redis-server')) {
    did.push("installed redis-server and redis-cli (Debian's redis-server, redis-tools)");
    log(`redis-server: ${which('redis-server')}`);
    return;
  }
  problems.push(
    'redis-server (and redis-cli) not found. Install Redis 6.2 or newer, e.g. `sudo apt-get install redis-server redis-tools` ' +
      '(Debian/Ubuntu), `brew install redis` (macOS), or set REDIS_URL to a Redis you run yourself.',
  );
}

// ---------------------------------------------------------------- iproute2 (tests only)
// test/multihost-netns.test.ts makes its own hosts (network namespaces, veth pairs) with `ip`.
// Without it, or without root, that suite skips itself and runs its runners on loopback.
function ensureIproute2() {
  const found = which('ip');
  if (found) {
    log(`ip (iproute2): ${found}`);
    return;
  }
  if (!checkOnly && aptInstall(['iproute2']) && which('ip')) {
    did.push("installed Debian's iproute2 (the multi-host test makes network namespaces with it)");
    log(`ip (iproute2): ${which('ip')}`);
    return;
  }
  warnings.push(
    'ip (iproute2) not found: test/multihost-netns.test.ts skips its network-namespace suite and runs its runners on loopback. ' +
      '`sudo apt-get install iproute2` (Debian/Ubuntu).',
  );
}

// ---------------------------------------------------------------- promtool (tests only)
function ensurePromtool() {
  const found = which('promtool');
  if (found) {
    log(`promtool: ${found}`);
    return;
  }
  // Debian's `prometheus` package ships promtool; we only need that one binary, so
  // download the package and extract it into .tools/bin instead of installing a daemon.
  if (!checkOnly && hasApt) {
    const dir = mkdtempSync(join(tmpdir(), 'flashcrowd-promtool-'));
    try {
      let r = run('apt-get', ['download', '-qq', 'prometheus'], { cwd: dir, capture: true });
      if (r.status !== 0 && isRoot && !aptUpdated) {
        run('apt-get', ['update', '-qq']);
        aptUpdated = true;
        r = run('apt-get', ['download', '-qq', 'prometheus'], { cwd: dir, capture: true });
      }
      const deb = readdirSync(dir).find((f) => f.endsWith('.deb'));
      if (deb) {
        run('dpkg-deb', ['-x', join(dir, deb), join(dir, 'x')]);
        const bin = join(dir, 'x', 'usr', 'bin', 'promtool');
        if (existsSync(bin)) {
          mkdirSync(toolsBin, { recursive: true });
          copyFileSync(bin, join(toolsBin, 'promtool'));
          chmodSync(join(toolsBin, 'promtool'), 0o755);
          did.push("extracted promtool from Debian's prometheus package into .tools/bin");
          return;
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  problems.push(
    "promtool not found (the metric-name test needs it). Install Debian's `prometheus` package, or put promtool from a Prometheus release on PATH.",
  );
}

// ---------------------------------------------------------------- chromium (tests only)
// The report test opens index.html in a headless browser (playwright-core drives it).
const CHROMIUM_NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];
function ensureChromium() {
  const env = process.env.FLASHCROWD_CHROMIUM;
  const found = env || CHROMIUM_NAMES.map(which).find(Boolean);
  if (found) {
    log(`chromium: ${found}`);
    return;
  }
  if (!checkOnly && aptInstall(['chromium']) && which('chromium')) {
    did.push("installed Debian's chromium (the HTML report test opens the report in it)");
    log(`chromium: ${which('chromium')}`);
    return;
  }
  problems.push(
    'chromium not found (the HTML report test opens the report in a headless browser). ' +
      '`sudo apt-get install chromium` (Debian), or set FLASHCROWD_CHROMIUM to a Chrome or Chromium binary.',
  );
}

// ---------------------------------------------------------------- Prometheus server (tests only)
// test/prometheus.test.ts starts a real Prometheus with the configuration flashcrowd ships,
// scrapes a short run and evaluates every dashboard query. Debian's `prometheus` package
// (the one promtool comes from): its server binary is extracted into .tools/bin, no daemon,
// no service, no user is installed.
function extractFromDeb(pkg, file, dest) {
  const dir = mkdtempSync(join(tmpdir(), `flashcrowd-${pkg}-`));
  try {
    let r = run('apt-get', ['download', '-qq', pkg], { cwd: dir, capture: true });
    if (r.status !== 0 && isRoot && !aptUpdated) {
      run('apt-get', ['update', '-qq']);
      aptUpdated = true;
      r = run('apt-get', ['download', '-qq', pkg], { cwd: dir, capture: true });
    }
    const deb = readdirSync(dir).find((f) => f.endsWith('.deb'));
    if (!deb) return false;
    run('dpkg-deb', ['-x', join(dir, deb), join(dir, 'x')]);
    const bin = join(dir, 'x', file);
    if (!existsSync(bin)) return false;
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(bin, dest);
    chmodSync(dest, 0o755);
    return true;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function ensurePrometheus() {
  const found = which('prometheus');
  if (found) {
    log(`prometheus: ${found}`);
    return;
  }
  if (
    !checkOnly &&
    hasApt &&
    extractFromDeb('prometheus', 'usr/bin/prometheus', join(toolsBin, 'prometheus'))
  ) {
    did.push("extracted the prometheus server from Debian's prometheus package into .tools/bin");
    return;
  }
  problems.push(
    "prometheus not found (the dashboard test scrapes a run with it). Install Debian's `prometheus` package, " +
      'or put the prometheus binary of a Prometheus 2.x release on PATH.',
  );
}

// ---------------------------------------------------------------- PyPI tools (tests only)
// Pinned, from PyPI into a venv of the project's own (.tools/venv) with a link in .tools/bin:
// nothing is installed into the system's Python.
//   schemathesis (MIT): the API fuzzer of test/fuzz.test.ts
//   kubernetes-validate (Apache-2.0): the Kubernetes JSON schemas test/k8s.test.ts validates
//     `flashcrowd k8s`'s manifests against (it ships them for Kubernetes 1.25 to 1.37)
const venv = join(root, '.tools', 'venv');
const PIP_TOOLS = [
  {
    name: 'schemathesis',
    version: SCHEMATHESIS_VERSION,
    versionOf: (out) => out.match(/version (\S+)/)?.[1],
    why: 'the API fuzz test runs it',
  },
  {
    name: 'kubernetes-validate',
    version: KUBERNETES_VALIDATE_VERSION,
    versionOf: (out) => out.trim() || undefined,
    why: 'the Kubernetes manifests test validates with its schemas',
  },
];

function pipToolVersion(tool, bin) {
  const r = run(bin, ['--version'], { capture: true });
  return r.status === 0 ? tool.versionOf(r.stdout ?? '') : undefined;
}

function ensurePipTool(tool) {
  const bin = join(venv, 'bin', tool.name);
  const link = join(toolsBin, tool.name);
  const have = existsSync(bin) ? pipToolVersion(tool, bin) : undefined;
  if (have === tool.version && existsSync(link)) {
    log(`${tool.name}: ${link} (${have})`);
    return;
  }
  const python = which('python3');
  if (!checkOnly && python) {
    log(`${tool.name}: pip install ${tool.name}==${tool.version} into .tools/venv`);
    let r = existsSync(join(venv, 'bin', 'pip'))
      ? { status: 0 }
      : run(python, ['-m', 'venv', venv]);
    if (r.status === 0)
      r = run(join(venv, 'bin', 'pip'), [
        'install',
        '--quiet',
        '--disable-pip-version-check',
        `${tool.name}==${tool.version}`,
      ]);
    if (r.status === 0 && pipToolVersion(tool, bin) === tool.version) {
      mkdirSync(toolsBin, { recursive: true });
      rmSync(link, { force: true });
      symlinkSync(bin, link);
      did.push(`installed ${tool.name} ${tool.version} into .tools/venv`);
      return;
    }
  }
  problems.push(
    `${tool.name} ${tool.version} not found (${tool.why}). It needs python3 with the venv module ` +
      `(\`sudo apt-get install python3-venv\` on Debian/Ubuntu); set-up then installs it from PyPI into .tools/venv.` +
      (have ? ` (.tools/venv has ${have}.)` : ''),
  );
}

// ---------------------------------------------------------------- Go (toxiproxy-server, vegeta)
function goBinary() {
  return which('go') ?? (existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : null);
}

// ---------------------------------------------------------------- toxiproxy-server
// Toxiproxy (MIT) puts network faults between the checkout and Redis or a gateway
// (harness/faults/toxiproxy.ts). There is no Debian package, so it is built from
// the module's source at TOXIPROXY_VERSION (fetched through the Go module proxy,
// checksum-verified against go.sum and sum.golang.org) with one line of
// cmd/server/server.go patched: stock v2.12.0 parses `-seed` and then builds a
// generator nothing draws from (`rand.New(rand.NewSource(seed))`), while the
// toxics draw from math/rand's global source, which Go 1.20+ seeds at random.
// The patch seeds that global source instead (`rand.Seed(seed)`, with
// `//go:debug randseednop=0` so Go 1.24+ still honours it). Everything else is
// upstream's code with upstream's go.sum.
const TOXIPROXY_SEED_LINE = 'rand.New(rand.NewSource(cli.seed))';

/** What `bin -version` reports ("2.12.0", "2.12.0+flashcrowd.seed"), or null. */
function toxiproxyVersion(bin) {
  const r = run(bin, ['-version'], { capture: true, timeout: 10_000 });
  return r.stdout?.match(/toxiproxy-server version (\S+)/)?.[1] ?? null;
}

// The test suite needs it (--for-tests: missing is a failure); the demo does not
// (plain set-up: a warning, and a run of a preset with network faults says what to do).
function toxiproxyProblem(msg) {
  (forTests ? problems : warnings).push(msg);
}

function ensureToxiproxy() {
  const found = which('toxiproxy-server');
  const version = found ? toxiproxyVersion(found) : null;
  if (version === TOXIPROXY_BUILD) {
    log(`toxiproxy-server: ${found} (${version})`);
    return;
  }
  const go = goBinary();
  const stock = version === TOXIPROXY_VERSION.replace(/^v/, '');
  if (checkOnly || !go) {
    if (stock) {
      // Usable: only the seed is lost. Not a problem, but say it.
      log(
        `toxiproxy-server: ${found} (${version}, a stock build: its -seed is ignored, so toxicity ` +
          `draws and jitter differ between runs; with Go 1.23+ set-up builds the seeded ${TOXIPROXY_BUILD})`,
      );
      return;
    }
    const what = found
      ? `toxiproxy-server at ${found} is version ${version ?? 'unknown'}, not ${TOXIPROXY_BUILD}`
      : 'toxiproxy-server not found (presets with network faults need it; the test suite does)';
    toxiproxyProblem(
      checkOnly && go
        ? `${what}. \`npm run setup\` builds it with Go into .tools/bin.`
        : `${what}. Install Go 1.23+ (https://go.dev/dl/, or Debian's golang-go if it is 1.23+) and re-run ` +
            `\`npm run setup\`: it builds ${TOXIPROXY_MODULE}@${TOXIPROXY_VERSION} (cmd/server) into .tools/bin. ` +
            `Or put toxiproxy-server ${TOXIPROXY_VERSION} on PATH (a stock release works, but ignores the seed).`,
    );
    return;
  }
  if (found)
    log(
      `toxiproxy-server: ${found} is ${version ?? 'of unknown version'}; building ${TOXIPROXY_BUILD} into .tools/bin`,
    );
  buildToxiproxy(go);
}

/** Make every folder under `dir` writable (the module cache's copies are read-only). */
function makeWritable(dir) {
  chmodSync(dir, 0o755);
  for (const e of readdirSync(dir, { withFileTypes: true }))
    if (e.isDirectory()) makeWritable(join(dir, e.name));
}

function buildToxiproxy(go) {
  const ref = `${TOXIPROXY_MODULE}@${TOXIPROXY_VERSION}`;
  log(`toxiproxy-server: building ${ref} (cmd/server, seed patch) with Go into .tools/bin`);
  const env = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' };
  const dl = run(go, ['mod', 'download', '-json', ref], { capture: true, env });
  let moduleDir;
  try {
    moduleDir = JSON.parse(dl.stdout).Dir;
  } catch {
    /* reported below */
  }
  if (dl.status !== 0 || !moduleDir) {
    toxiproxyProblem(
      `\`go mod download ${ref}\` failed: ${(dl.stderr || dl.stdout || '').trim().split('\n').slice(-3).join(' ')}. ` +
        'Check that the Go module proxy is reachable (GOPROXY).',
    );
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-toxiproxy-'));
  try {
    const src = join(tmp, 'src');
    cpSync(moduleDir, src, { recursive: true });
    makeWritable(src);
    const main = join(src, 'cmd', 'server', 'server.go');
    chmodSync(main, 0o644);
    const text = readFileSync(main, 'utf8');
    if (text.split(TOXIPROXY_SEED_LINE).length !== 2 || !text.startsWith('package main')) {
      toxiproxyProblem(
        `the seed patch does not apply to ${ref}'s cmd/server/server.go (\`${TOXIPROXY_SEED_LINE}\` not found ` +
          'exactly once): update buildToxiproxy in scripts/setup.mjs with the pin.',
      );
      return;
    }
    writeFileSync(
      main,
      '//go:debug randseednop=0\n\n' +
        text.replace(
          TOXIPROXY_SEED_LINE,
          'rand.Seed(cli.seed) // flashcrowd: -seed seeds the draws',
        ),
    );
    mkdirSync(toolsBin, { recursive: true });
    const out = join(tmp, 'toxiproxy-server');
    const ldflags = `-s -w -X ${TOXIPROXY_MODULE}.Version=${TOXIPROXY_BUILD}`;
    const r = run(go, ['build', '-trimpath', `-ldflags=${ldflags}`, '-o', out, './cmd/server'], {
      cwd: src,
      env,
    });
    if (r.status !== 0 || toxiproxyVersion(out) !== TOXIPROXY_BUILD) {
      toxiproxyProblem(`building ${ref} failed (see the go output above). Go 1.23+ is needed.`);
      return;
    }
    // Into place in one step, so a half-written binary never sits on the path.
    copyFileSync(out, join(toolsBin, 'toxiproxy-server.tmp'));
    chmodSync(join(toolsBin, 'toxiproxy-server.tmp'), 0o755);
    renameSync(join(toolsBin, 'toxiproxy-server.tmp'), join(toolsBin, 'toxiproxy-server'));
    did.push(`built toxiproxy-server ${TOXIPROXY_BUILD} into .tools/bin`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- bench generators (--for-bench only)
// vegeta (MIT) and wrk (Apache-2.0 with a naming clause; Debian's package) are the
// ceilings bench:engine, bench:mocks and bench:checkout compare flashcrowd's engine
// with. Never installed by plain set-up or for the tests.

function ensureVegeta() {
  const found = which('vegeta');
  if (found) {
    log(`vegeta: ${found}`);
    return;
  }
  const go = goBinary();
  if (!checkOnly && go) {
    mkdirSync(toolsBin, { recursive: true });
    log(`vegeta: building ${VEGETA_MODULE}@${VEGETA_VERSION} with \`go install\` into .tools/bin`);
    const r = run(go, ['install', `${VEGETA_MODULE}@${VEGETA_VERSION}`], {
      env: { ...process.env, GOBIN: toolsBin, CGO_ENABLED: '0', GOFLAGS: '-mod=mod' },
    });
    if (r.status === 0 && existsSync(join(toolsBin, 'vegeta'))) {
      did.push(`built vegeta ${VEGETA_VERSION} into .tools/bin`);
      return;
    }
    problems.push(
      `\`go install ${VEGETA_MODULE}@${VEGETA_VERSION}\` failed (see above). Check that the Go module proxy is reachable.`,
    );
    return;
  }
  problems.push(
    `vegeta not found (bench:engine's ceiling). Install Go 1.22+ and re-run \`node scripts/setup.mjs --for-bench\` ` +
      `(it runs \`go install ${VEGETA_MODULE}@${VEGETA_VERSION}\`), or put vegeta on PATH.`,
  );
}

function ensureWrk() {
  const found = which('wrk');
  if (found) {
    log(`wrk: ${found}`);
    return;
  }
  if (!checkOnly && aptInstall(['wrk']) && which('wrk')) {
    did.push("installed Debian's wrk");
    return;
  }
  problems.push(
    'wrk not found (the closed-model ceiling of the benchmarks). `sudo apt-get install wrk` (Debian/Ubuntu), or put wrk on PATH.',
  );
}

checkNode();
if (problems.length === 0) {
  ensureNpm();
  ensureRedis();
  ensureToxiproxy();
  if (forTests) {
    ensureIproute2();
    ensurePromtool();
    ensureChromium();
    ensurePrometheus();
    for (const tool of PIP_TOOLS) ensurePipTool(tool);
  }
  if (forBench) {
    ensureVegeta();
    ensureWrk();
  }
}

if (did.length) log(`done: ${did.join('; ')}`);
else if (problems.length === 0 && warnings.length === 0) log('everything is in place');
for (const w of warnings) console.error(`[setup] WARNING: ${w}`);
if (problems.length) {
  for (const p of problems) console.error(`[setup] MISSING: ${p}`);
  process.exit(1);
}
