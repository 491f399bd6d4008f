import { flashcrowdVersion } from './tools.ts';
// The `flashcrowd` command line.
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { MAX_STOCK_BUCKETS } from '../checkout/buckets.ts';
import { UsageError } from './errors.ts';
// Each command loads what it runs when it runs (below): a `run` process then
// holds neither the mock services nor the checkout, only the harness.
import type { CheckoutCommandOptions } from './checkout-cmd.ts';
import type { K8sOptions } from './k8s/plan.ts';
import type { MockTarget } from './mocks.ts';
import type { RunOptions } from './run.ts';

function intArg(name: string, min: number, max: number) {
  return (v: string) => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

function numArg(name: string, min: number, max: number) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= min || n > max)
      throw new InvalidArgumentError(`${name} must be a number above ${min} and at most ${max}`);
    return n;
  };
}

function onSignals(stop: () => Promise<void>) {
  let stopping = false;
  const handler = (sig: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    console.error(`\n${sig}: stopping...`);
    stop().then(
      () => process.exit(0),
      (e) => {
        console.error(e);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('SIGTERM', () => handler('SIGTERM'));
}

/**
 * `--exit-with-stdin` (hidden; for the run harness, which starts `mock` and
 * `checkout` as child processes): stop cleanly when stdin closes, so the
 * children never outlive a harness that crashed or was killed.
 */
function onStdinClose(stop: () => Promise<void>) {
  process.stdin.resume();
  process.stdin.once('close', () => {
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

const exitWithStdinOption = () =>
  new Option('--exit-with-stdin', 'stop when stdin closes (used by `flashcrowd run`)').hideHelp();

export function buildCli(): Command {
  const program = new Command();
  program
    .name('flashcrowd')
    .description(
      "Flash-sale load simulator and chaos testbed: open-model livestream traffic (flashcrowd's own engine, or the k6 you bring) against a reference checkout on Redis and mock bank, wallet and coupon gateways under a chaos engine; budgets, invariant audit and reports. Start with `flashcrowd demo` or `flashcrowd list`.",
    )
    .version(flashcrowdVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('mock')
    .description(
      'Start mock gateways with a chaos engine; prints their URLs and serves until Ctrl-C.',
    )
    .addArgument(
      new Argument('<service>', 'bank, wallet, coupon or all').choices([
        'bank',
        'wallet',
        'coupon',
        'all',
      ]),
    )
    .option(
      '--port <n>',
      'port to listen on; 0 picks a free one (with "all": port, port+1, port+2)',
      intArg('--port', 0, 65533),
      0,
    )
    .option(
      '--host <addr>',
      'address to bind; outside loopback only with FLASHCROWD_ADMIN_TOKEN set',
      '127.0.0.1',
    )
    .option(
      '--seed <n>',
      'seed for every random draw (same seed + same request order = same faults)',
      intArg('--seed', 0, 2 ** 31 - 1),
      1,
    )
    .option(
      '--profile <file>',
      "chaos profile JSON (one service's, or keyed by service name); see docs/CHAOS.md",
    )
    .option(
      '--admin-remote',
      'accept /__chaos and /__reset from non-loopback clients (set FLASHCROWD_ADMIN_TOKEN too)',
      false,
    )
    .option(
      '--allow-remote-notify',
      "the wallet accepts a trade's notifyUrl outside loopback (a checkout on another address or host), and calls it back there",
      false,
    )
    .option(
      '--time-scale <x>',
      'multiply every world duration of the mocks (velocity windows, settlement and notification delays, retry schedules, lock lifetimes; not latencies) by x, above 0 and at most 1; see docs/MOCKS.md',
      numArg('--time-scale', 0, 1),
      1,
    )
    .addOption(new Option('--json', 'print one JSON line {service: url} instead of a table'))
    .addOption(exitWithStdinOption())
    .action(
      async (
        service: MockTarget,
        o: {
          port: number;
          host: string;
          seed: number;
          profile?: string;
          adminRemote: boolean;
          allowRemoteNotify: boolean;
          timeScale: number;
          json?: boolean;
          exitWithStdin?: boolean;
        },
      ) => {
        const { checkHostToken } = await import('./up.ts');
        checkHostToken('mock', o.host);
        const { startMocks } = await import('./mocks.ts');
        const running = await startMocks({
          target: service,
          port: o.port,
          host: o.host,
          seed: o.seed,
          profileFile: o.profile,
          adminRemote: o.adminRemote,
          allowRemoteNotify: o.allowRemoteNotify,
          timeScale: o.timeScale,
        });
        const stop = async () => {
          await Promise.all(running.map((s) => s.close()));
        };
        // Before anything is printed: a caller may send SIGINT as soon as it reads a line,
        // and until a handler is installed SIGINT kills the process outright.
        onSignals(stop);
        if (o.exitWithStdin) onStdinClose(stop);
        if (o.json)
          console.log(JSON.stringify(Object.fromEntries(running.map((s) => [s.name, s.url]))));
        else {
          for (const s of running)
            console.log(
              `${s.name.padEnd(7)} ${s.url}   (chaos: ${s.url}/__chaos, metrics: ${s.url}/metrics)`,
            );
          console.log(
            `seed ${o.seed}${o.timeScale !== 1 ? `, time-scale ${o.timeScale}` : ''}${o.profile ? `, profile ${o.profile}` : ', no faults'}; Ctrl-C stops.`,
          );
        }
      },
    );

  program
    .command('checkout')
    .description(
      'Start the reference checkout on Redis against the mock gateways; serves until Ctrl-C.',
    )
    .option('--port <n>', 'port; 0 picks a free one', intArg('--port', 0, 65535), 0)
    .option(
      '--host <addr>',
      'address to bind; outside loopback only with FLASHCROWD_ADMIN_TOKEN set',
      '127.0.0.1',
    )
    .option(
      '--redis <url>',
      'Redis URL (default $REDIS_URL, else a local redis-server started for this run)',
    )
    .option('--cluster', 'connect to --redis as a Redis Cluster', false)
    .option('--bank <url>', 'mock bank URL (default: start all three mocks in this process)')
    .option('--wallet <url>', 'mock wallet URL')
    .option('--coupon <url>', 'mock coupon URL')
    .addOption(
      new Option('--mode <mode>', 'preset of resilience features')
        .choices(['naive', 'hardened'])
        .default('hardened'),
    )
    .option(
      '--set <key=value>',
      'override one feature or parameter (repeatable); see docs/CHECKOUT.md',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option(
      '--seed <n>',
      'seed of the mocks this command starts',
      intArg('--seed', 0, 2 ** 31 - 1),
      1,
    )
    .option('--admin-remote', 'accept /admin routes from non-loopback clients', false)
    .option(
      '--instances <n>',
      'checkout processes on the one Redis and set of mocks; with --port P they listen on P..P+N-1',
      intArg('--instances', 1, 16),
      1,
    )
    .option(
      '--public-url <url>',
      'URL the gateways call this checkout back at (wallet notifications); default the address it listens on',
    )
    .option(
      '--stock-buckets <n>',
      "split each SKU's stock over N Redis hash slots (same as --set stockBuckets=N); see docs/CHECKOUT.md",
      intArg('--stock-buckets', 1, MAX_STOCK_BUCKETS),
    )
    .addOption(new Option('--json', 'print one JSON line of URLs instead of a table'))
    .addOption(exitWithStdinOption())
    .action(
      async (o: CheckoutCommandOptions & { exitWithStdin?: boolean; stockBuckets?: number }) => {
        const { checkHostToken } = await import('./up.ts');
        checkHostToken('checkout', o.host);
        if (o.stockBuckets !== undefined) o.set = [...o.set, `stockBuckets=${o.stockBuckets}`];
        const { runCheckoutCommand } = await import('./checkout-cmd.ts');
        await runCheckoutCommand(o, (stop) => {
          onSignals(stop);
          if (o.exitWithStdin) onStdinClose(stop);
        });
      },
    );

  program
    .command('demo')
    .description(
      'The quick-start demo: `run livestream-spike --ci`, its naive and its hardened variant (about 20 s of livestream traffic each through the whole stack) and their comparison; reports in reports/<run-id>/.',
    )
    .option('--seed <n>', 'seed', intArg('--seed', 0, 2 ** 31 - 1), 1)
    .option('--preset <name>', 'another preset to demo', 'livestream-spike')
    .action(async (o: { seed: number; preset: string }) => {
      const { runCommand } = await import('./run.ts');
      process.exitCode = await runCommand({
        preset: o.preset,
        seed: o.seed,
        ci: true,
        allowRemoteTarget: false,
        budgets: [],
        progress: 'auto',
      });
    });

  program
    .command('tour')
    .description(
      "A tour of the mock gateways alone: all three mocks under the demo chaos profile, shoppers through them (flashcrowd's engine), what the chaos did, stop.",
    )
    .option('--duration <s>', 'seconds of traffic', intArg('--duration', 1, 3600), 15)
    .option('--rate <n>', 'arrivals per second', intArg('--rate', 1, 100000), 50)
    .option('--seed <n>', 'seed', intArg('--seed', 0, 2 ** 31 - 1), 42)
    .option(
      '--profile <file>',
      'chaos profile keyed by service (default: mock-gateways/profiles/demo.json)',
    )
    .option('--keep', 'keep the mocks running after the traffic, until Ctrl-C', false)
    .action(
      async (o: {
        duration: number;
        rate: number;
        seed: number;
        profile?: string;
        keep: boolean;
      }) => {
        const { runDemo: runTour } = await import('./tour.ts');
        await runTour({ ...o, onSignals });
      },
    );

  program
    .command('run')
    .description(
      "Run a scenario preset end to end: start (or target) the stack, replay the traffic with the load engine (flashcrowd's own, or --engine k6) under the chaos timeline, audit, judge budgets, write reports/<run-id>/. Exit 0 pass, 1 budget or invariant failed (or the load did not run as scheduled), 2 usage or set-up error (or the engine cannot start).",
    )
    .argument('<preset>', 'a preset name (see `flashcrowd list`) or a preset JSON file')
    .option(
      '--seed <n>',
      'seed for shoppers, fault draws and the chaos timeline',
      intArg('--seed', 0, 2 ** 31 - 1),
      1,
    )
    .option(
      '--time-scale <x>',
      "multiply every duration (0 < x <= 1; default 1, or the preset's ci scale with --ci)",
      numArg('--time-scale', 0, 1),
    )
    .option(
      '--load-scale <x>',
      "multiply every arrival rate (default 1, or the preset's ci scale with --ci)",
      numArg('--load-scale', 0, 100),
    )
    .option(
      '--ci',
      "use the preset's short-run scales (about 20 s) where --time-scale/--load-scale are not given",
      false,
    )
    .option(
      '--variant <name>',
      'run this variant of a preset that has several (repeatable, or a,b: in that order; default: all); two or more also write compare.md and compare.html',
      (v: string, acc: string | undefined) => (acc ? `${acc},${v}` : v),
    )
    .addOption(
      new Option(
        '--mode <mode>',
        "the checkout build of every run, instead of the preset's or variant's (its `set` still applies); variants are then judged by their budgets alone",
      ).choices(['naive', 'hardened']),
    )
    .option(
      '--set <key=value>',
      "a checkout feature or parameter on top of the preset's build (repeatable), e.g. --set splitStockCheck=true; see docs/CHECKOUT.md",
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option(
      '--instances <n>',
      "checkout processes on the one Redis and set of mocks, instead of the preset's `checkout.instances`; each shopper sticks to one, drawn from the seed",
      intArg('--instances', 1, 16),
    )
    .option(
      '--target <url>',
      'a running checkout to load instead of starting the stack; several instances comma-separated (each shopper sticks to one)',
    )
    .option('--bank <url>', 'with --target: the mock bank (chaos and ledgers)')
    .option('--wallet <url>', 'with --target: the mock wallet')
    .option('--coupon <url>', 'with --target: the mock coupon service')
    .option('--redis <url>', "with --target: the checkout's Redis (for the audit)")
    .option(
      '--redis-cluster',
      "start a local Redis Cluster (three redis-server masters) instead of one Redis, the checkout and the audit on cluster clients (the preset's `checkout.redisCluster`); with --target: the --redis URL is a node of a Redis Cluster",
    )
    .option(
      '--redis-masters <n>',
      'masters of the local Redis Cluster (3-16; implies --redis-cluster)',
      intArg('--redis-masters', 3, 16),
    )
    .option(
      '--allow-remote-target',
      'allow targets outside loopback (never point this at production)',
      false,
    )
    .option(
      '--host <addr>',
      'the IP address the stack the run starts (mocks, checkout) binds and is reached at, for runners on other hosts (default 127.0.0.1); outside loopback only with FLASHCROWD_ADMIN_TOKEN set',
    )
    .option('--out <dir>', 'report directory (default reports/<run-id>)')
    .addOption(
      new Option(
        '--engine <name>',
        "the load generator: flashcrowd's own engine, or the k6 you bring (FLASHCROWD_K6, PATH, or its image where Docker runs)",
      )
        .choices(['flashcrowd', 'k6'])
        .default('flashcrowd'),
    )
    .option(
      '--k6-out <value>',
      'with --engine k6: a k6 output, forwarded as `k6 run --out VALUE` (repeatable): json=FILE, csv=FILE, ' +
        'experimental-prometheus-rw, web-dashboard, ...; configure it with K6_* variables (docs/SCENARIOS.md)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option(
      '--metrics-port <n>',
      "serve the run's own metrics (shoppers, arrivals, stock, faults in force) for Prometheus at " +
        'http://127.0.0.1:N/metrics while it runs (docs/OBSERVABILITY.md)',
      intArg('--metrics-port', 1, 65535),
    )
    .option(
      '--workers <n>',
      "worker threads of flashcrowd's engine, each running a fixed share of the arrivals",
      intArg('--workers', 1, 64),
      1,
    )
    .option(
      '--runners <n>',
      'spread the load over N runner processes (`flashcrowd load --segment k/N`, here or on other hosts) instead of this process',
      intArg('--runners', 1, 1024),
    )
    .option(
      '--listen <host:port>',
      'with --runners: where runners reach the harness (default 127.0.0.1 and a free port)',
    )
    .option(
      '--runner-timeout <s>',
      'with --runners: longest wait for every runner to register (default 120); a runner silent for 10 s is dead',
      intArg('--runner-timeout', 1, 3600),
    )
    .option(
      '--budget <expr>',
      'an extra budget, e.g. "pay.failure_rate<0.02" (repeatable); see docs/BUDGETS.md',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option(
      '--baseline <dir>',
      'an earlier run of this preset: relative budgets (`pay.failure_rate<=baseline*1.1`, `checkout.p99_ms<baseline+100ms`) are judged against its metrics',
    )
    .option(
      '--repeat <n>',
      'run each variant N times (same seed) and compare every repetition with the first (`flashcrowd compare`); exit 1 when one does not reproduce it',
      intArg('--repeat', 1, 20),
    )
    .option(
      '--no-reset',
      'do not reset the checkout and the mocks first (POST /admin/reset, /__reset); run on what they hold, with a warning when it is not clean',
    )
    .option(
      '--quiescence <s>',
      'longest wait for the system to settle after the traffic',
      intArg('--quiescence', 0, 3600),
    )
    .addOption(
      new Option(
        '--progress <mode>',
        'live progress: a rewritten line on a terminal, plain lines otherwise',
      )
        .choices(['auto', 'tty', 'plain', 'none'])
        .default('auto'),
    )
    .action(
      async (
        preset: string,
        o: Omit<RunOptions, 'preset' | 'budgets' | 'quiescenceS' | 'runnerTimeoutS'> & {
          budget: string[];
          quiescence?: number;
          runnerTimeout?: number;
        },
      ) => {
        // Ctrl-C or SIGTERM: stop the load, skip quiescence, audit what is there and
        // write every report, marked interrupted (exit 130 / 143). The stack runs in
        // process groups of its own, so the signal reaches this process only. A second
        // signal, or 120 s more, ends it at once.
        let stopping: NodeJS.Signals | undefined;
        const interrupted = new AbortController();
        const onInt = (signal: NodeJS.Signals) => {
          const code = signal === 'SIGTERM' ? 143 : 130;
          if (stopping) process.exit(code);
          stopping = signal;
          interrupted.abort(signal);
          console.error(
            `\ninterrupted (${signal}): stopping the load; auditing and writing the reports (again to quit now)...`,
          );
          setTimeout(() => process.exit(code), 120_000).unref();
        };
        process.on('SIGINT', onInt);
        process.on('SIGTERM', onInt);
        const { runCommand } = await import('./run.ts');
        const code = await runCommand({
          ...o,
          preset,
          budgets: o.budget,
          quiescenceS: o.quiescence,
          runnerTimeoutS: o.runnerTimeout,
          signal: interrupted.signal,
        });
        process.exitCode = stopping ? (stopping === 'SIGTERM' ? 143 : 130) : code;
      },
    );

  program
    .command('report')
    .description(
      "Re-render a run's summary.md, junit.xml and index.html from its summary.json and timeseries.json.",
    )
    .argument('<dir>', 'a run directory (reports/<run-id>, or one variant of it)')
    .action(async (dir: string) => {
      const { renderFromDir } = await import('./report/index.ts');
      const files = await renderFromDir(dir, { stepSummary: null });
      console.log(`re-rendered ${Object.values(files).join(', ')} in ${dir}`);
    });

  program
    .command('compare')
    .description(
      'Compare two runs of the same preset, seed and scales metric by metric: the audit, the schedule and the injected faults must be identical, the rest within the tolerances of docs/REPRODUCIBILITY.md. Exit 0 reproduced, 1 not, 2 a directory is not a run.',
    )
    .argument('<a>', 'a run directory (reports/<run-id>, or one variant of it)')
    .argument('<b>', 'another run of the same preset, seed and scales')
    .option('--json', 'the comparison as one JSON document', false)
    .option(
      '--out <dir>',
      'also write the two runs side by side (builds, budgets, invariants, cascade, every metric with its delta) to DIR/compare.md and DIR/compare.html',
    )
    .action(async (a: string, b: string, o: { json: boolean; out?: string }) => {
      const { compareCommand } = await import('./compare.ts');
      process.exitCode = await compareCommand(a, b, o);
    });

  program
    .command('sweep')
    .description(
      'The capacity curve: run a preset at several load scales (or bisect for the knee), each step a full run with its own report; write sweep.json, sweep.md and sweep.html (failure rate, p99, dropped arrivals and throughput against the offered arrival rate, the process that saturated, the knee and the first budget to break beyond it). Exit 0 when the capacity budgets hold (none given: always 0 once every step ran), 1 when one fails, 2 usage or set-up error.',
    )
    .argument('<preset>', 'a preset name or file')
    .option(
      '--load-scales <list>',
      'the steps, e.g. 0.25,0.5,1,2,4 (default); with --search, the two ends',
      (v: string) =>
        v.split(',').map((x) => {
          const n = Number(x);
          if (!Number.isFinite(n)) throw new InvalidArgumentError(`${x} is not a number`);
          return n;
        }),
    )
    .option('--search', 'bisect for the knee between the two load scales (default 0.25,4)', false)
    .option(
      '--search-steps <n>',
      'bisection steps after the two ends',
      intArg('--search-steps', 1, 10),
      4,
    )
    .option('--variant <name>', 'the variant to sweep (required for a preset with several)')
    .option('--seed <n>', 'seed of every step', intArg('--seed', 0, 2 ** 31 - 1), 1)
    .option(
      '--time-scale <x>',
      "every step's time-scale (default the preset's ci one)",
      numArg('--time-scale', 0, 1),
    )
    .option(
      '--budget <expr>',
      'capacity.arrivals_per_s>=X gates the sweep; any other budget is added to every step (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option(
      '--out <dir>',
      'where the steps and the sweep report go (default reports/sweep-<preset>-<time>)',
    )
    .action(
      async (
        preset: string,
        o: {
          loadScales?: number[];
          search: boolean;
          searchSteps: number;
          variant?: string;
          seed: number;
          timeScale?: number;
          budget: string[];
          out?: string;
        },
      ) => {
        const { sweepCommand } = await import('./sweep.ts');
        const { runCommand } = await import('./run.ts');
        const { readRunSummary } = await import('./compare.ts');
        process.exitCode = await sweepCommand({ ...o, preset, budgets: o.budget }, async (step) => {
          await runCommand({
            preset,
            seed: o.seed,
            ci: false,
            timeScale: step.timeScale,
            loadScale: step.loadScale,
            ...(o.variant ? { variant: o.variant } : {}),
            out: step.dir,
            budgets: step.budgets,
            allowRemoteTarget: false,
            progress: 'none',
          });
          return readRunSummary(step.dir);
        });
      },
    );

  program
    .command('phenomena')
    .description(
      "Reproduce the brief's failures: for each row of the phenomenon matrix (docs/PHENOMENA.md), run its preset at --ci with the naive build and with the hardened one, and check that the naive build shows the phenomenon and the hardened one passes. Writes phenomena.md and phenomena.json. Exit 0 every row holds, 1 one does not, 2 usage or set-up error.",
    )
    .option('--rows <list>', 'only these rows, e.g. 1,4,9 (default: all 18)')
    .option('--seed <n>', 'seed of every run', intArg('--seed', 0, 2 ** 31 - 1), 1)
    .option(
      '--time-scale <x>',
      "every run's time-scale instead of its preset's ci one",
      numArg('--time-scale', 0, 1),
    )
    .option(
      '--load-scale <x>',
      "every run's load-scale instead of its preset's ci one",
      numArg('--load-scale', 0, 100),
    )
    .option('--out <dir>', 'where the runs and the matrix go (default reports/phenomena-<time>)')
    .addOption(
      new Option('--progress <mode>', 'live progress of each run')
        .choices(['auto', 'tty', 'plain', 'none'])
        .default('none'),
    )
    .action(
      async (o: {
        rows?: string;
        seed: number;
        timeScale?: number;
        loadScale?: number;
        out?: string;
        progress: 'auto' | 'tty' | 'plain' | 'none';
      }) => {
        const { phenomenaCommand } = await import('./phenomena.ts');
        process.exitCode = await phenomenaCommand(o);
      },
    );

  program
    .command('list')
    .description('List the scenario presets (scenarios/presets/*.json).')
    .option('--json', 'one JSON document', false)
    .action(async (o: { json: boolean }) => {
      const { listPresetNames, loadPreset, PRESETS_DIR } = await import('./preset.ts');
      const rows = listPresetNames().map((name) => {
        try {
          const { preset } = loadPreset(name);
          return {
            name,
            description: preset.description,
            variants: preset.variants?.map((v) => v.name) ?? [],
            budgets: preset.budgets.length,
            fullS: preset.traffic.stages.reduce((a, st) => a + st.durationS, 0),
            ci: preset.ci,
          };
        } catch (e) {
          return { name, error: (e as Error).message };
        }
      });
      if (o.json) {
        console.log(JSON.stringify(rows, null, 2));
        return;
      }
      console.log(`presets in ${PRESETS_DIR}:`);
      for (const r of rows) {
        if ('error' in r) {
          console.log(`  ${r.name.padEnd(20)} INVALID: ${r.error}`);
          continue;
        }
        console.log(
          `  ${r.name.padEnd(20)} ${Math.round(r.fullS / 60)} min at full scale${r.variants.length ? `; variants ${r.variants.join(', ')}` : ''}`,
        );
        console.log(`  ${''.padEnd(20)} ${r.description}`);
      }
      console.log('\nflashcrowd run <name> --ci   runs one for about 20 s.');
    });

  program
    .command('load')
    .description(
      "One load runner of a run spread over several (`flashcrowd run --runners N`): takes segment k of N of the arrival schedule, starts at the harness's start instant, and reports to the harness every second. Exit 0 done, 1 the harness was lost, 2 usage error.",
    )
    .requiredOption('--harness <url>', 'the harness URL that `flashcrowd run --runners N` printed')
    .requiredOption('--segment <k/N>', 'which part of the schedule: arrivals i with i mod N = k-1')
    .option('--workers <n>', 'worker threads', intArg('--workers', 1, 64), 1)
    .option('--name <name>', 'how the harness names this runner (default host:pid)')
    .option(
      '--wait <s>',
      'longest wait for the harness to answer and the run to start',
      intArg('--wait', 1, 3600),
      120,
    )
    .option(
      '--allow-remote-target',
      'allow a plan whose targets are outside loopback (never point this at production)',
      false,
    )
    .action(
      async (o: {
        harness: string;
        segment: string;
        workers: number;
        name?: string;
        wait: number;
        allowRemoteTarget: boolean;
      }) => {
        const { loadCommand } = await import('./engine/load-cmd.ts');
        process.exitCode = await loadCommand({ ...o, waitS: o.wait });
      },
    );

  program
    .command('k8s')
    .description(
      'Write Kubernetes manifests of a run (a kustomize directory): the checkout as N replicas, the mocks and Redis (or your Redis Cluster), ' +
        'the load runners as an Indexed Job, the harness as a Job that audits and writes the report to a volume, and a k6-operator TestRun for k6 users. ' +
        'Apply with `kubectl apply -k DIR` (README, "Run on Kubernetes"). Exit 0 written, 2 usage error.',
    )
    .argument(
      '<preset>',
      'a preset name (see `flashcrowd list`; the image holds scenarios/presets)',
    )
    .option(
      '--runners <n>',
      "runner pods (the Indexed Job's parallelism; the TestRun's too)",
      intArg('--runners', 1, 1024),
      1,
    )
    .option(
      '--instances <n>',
      "checkout replicas (1-512: a StatefulSet's, not processes on this machine), instead of the preset's `checkout.instances`",
      intArg('--instances', 1, 512),
    )
    .option('--out <dir>', 'the manifests directory (default reports/k8s-<preset>)')
    .option(
      '--image <ref>',
      'the flashcrowd image (built from the Dockerfile) of every flashcrowd container (default flashcrowd:<version>)',
    )
    .option('--namespace <name>', 'the namespace the manifests create and use', 'flashcrowd')
    .option(
      '--redis-url <url>',
      'an external Redis Cluster (redis://host:port): no Redis Deployment, the checkout connects with --cluster',
    )
    .option('--variant <name>', 'the variant to deploy (required for a preset with several)')
    .option('--seed <n>', 'seed of the run and the mocks', intArg('--seed', 0, 2 ** 31 - 1), 1)
    .option(
      '--time-scale <x>',
      "the run's, the checkout's and the mocks' time-scale (default the preset's ci scale)",
      numArg('--time-scale', 0, 1),
    )
    .option(
      '--load-scale <x>',
      "the run's load-scale (default the preset's ci scale)",
      numArg('--load-scale', 0, 100),
    )
    .action(async (preset: string, o: Omit<K8sOptions, 'preset'>) => {
      const { k8sCommand } = await import('./k8s/index.ts');
      await k8sCommand({ ...o, preset }, ['k8s', ...process.argv.slice(3)]);
    });

  program
    .command('up')
    .description(
      'Start the whole stack (Redis, mocks, checkout), seed the sale of a preset and keep it up until Ctrl-C; ' +
        'prints a k6 command line that plays that preset against it, and the `flashcrowd run --target` one.',
    )
    .addOption(
      new Option('--mode <mode>', 'checkout build')
        .choices(['naive', 'hardened'])
        .default('hardened'),
    )
    .option(
      '--set <key=value>',
      'checkout override (repeatable); see docs/CHECKOUT.md',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option(
      '--seed <n>',
      'seed of the mocks and of the printed k6 line',
      intArg('--seed', 0, 2 ** 31 - 1),
      1,
    )
    .option(
      '--instances <n>',
      'checkout processes on the one Redis and set of mocks',
      intArg('--instances', 1, 16),
      1,
    )
    .option(
      '--preset <name>',
      'the preset whose sale is seeded and whose k6 line is printed (default livestream-spike, the demo’s)',
    )
    .option(
      '--time-scale <x>',
      "the checkout's and mocks' durations and the printed k6 line's TIME_SCALE (default the preset's ci scale)",
      numArg('--time-scale', 0, 1),
    )
    .option(
      '--load-scale <x>',
      "the sale's stock and the printed k6 line's LOAD_SCALE (default the preset's ci scale)",
      numArg('--load-scale', 0, 1000),
    )
    .option('--no-seed-sale', 'seed no sale (orders then answer 404 unknown_sku until one is)')
    .option(
      '--redis-cluster',
      'a local Redis Cluster (three redis-server masters) instead of one Redis; the checkout uses a cluster client',
      false,
    )
    .option(
      '--host <addr>',
      'address the mocks and checkout bind; outside loopback only with FLASHCROWD_ADMIN_TOKEN set',
      '127.0.0.1',
    )
    .option('--json', 'print one JSON line of URLs (and the k6 command as `k6`, an argv)', false)
    .action(
      async (o: {
        mode: 'naive' | 'hardened';
        set: string[];
        seed: number;
        instances: number;
        preset?: string;
        timeScale?: number;
        loadScale?: number;
        seedSale: boolean;
        redisCluster: boolean;
        host: string;
        json: boolean;
      }) => {
        const up = await import('./up.ts');
        up.checkHostToken('up', o.host);
        const plan = up.upPlan(o);
        const { startStack } = await import('./stack.ts');
        const { DEFAULT_MASTERS } = await import('./redis-cluster.ts');
        const ownTimeScale = o.set.some((s) => s.startsWith('timeScale='));
        const stack = await startStack({
          seed: o.seed,
          mode: o.mode,
          // The checkout's own durations (payment deadline, sweeper) at the plan's time-scale.
          set: ownTimeScale ? o.set : [...o.set, `timeScale=${plan.timeScale}`],
          timeScale: plan.timeScale,
          instances: o.instances,
          ...(o.redisCluster ? { redisCluster: DEFAULT_MASTERS } : {}),
          ...(o.host !== '127.0.0.1' ? { host: o.host } : {}),
          log: o.json ? undefined : (l) => console.log(l),
        });
        onSignals(stack.stop); // before printing: a reader may stop it as soon as it reads
        let seeded: string | undefined;
        try {
          if (o.seedSale) seeded = await up.seedUpSale(stack.urls.checkout, plan);
        } catch (e) {
          await stack.stop();
          throw e;
        }
        const k6 = up.k6CommandArgs(stack.urls, plan);
        if (o.json) console.log(JSON.stringify({ ...stack.urls, ...(seeded ? { k6 } : {}) }));
        else {
          const u = stack.urls;
          console.log(
            `\nstack up. ${seeded ?? 'No sale seeded (--no-seed-sale): seed one with POST /admin/sale first.'}\n` +
              `With your own k6 (from this folder; docs/SCENARIOS.md):\n  ${up.shellLine(k6)}\n` +
              `or: npx flashcrowd run ${plan.preset} --variant hardened --time-scale ${plan.timeScale} --load-scale ${plan.loadScale} ` +
              `--target ${u.checkout} --bank ${u.bank} --wallet ${u.wallet} --coupon ${u.coupon} --redis ${u.redis}` +
              `${u.redisCluster ? ' --redis-cluster' : ''}\nCtrl-C stops everything.`,
          );
        }
      },
    );

  program
    .command('prometheus-config')
    .description(
      'Print a Prometheus configuration that scrapes a stack (the checkout instances, the mocks) and a run ' +
        '(`run --metrics-port`); docs/OBSERVABILITY.md. Check it with `promtool check config`.',
    )
    .option(
      '--checkout <url>',
      'a checkout instance, host:port or URL (repeatable; default 127.0.0.1:8100)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--bank <url>', 'the mock bank (default 127.0.0.1:8101)')
    .option('--wallet <url>', 'the mock wallet (default 127.0.0.1:8102)')
    .option('--coupon <url>', 'the mock coupon service (default 127.0.0.1:8103)')
    .option('--run <url>', "the run's --metrics-port endpoint (default 127.0.0.1:9464)")
    .option('--scrape-interval <duration>', 'scrape and evaluation interval', '1s')
    .action(
      async (o: {
        checkout: string[];
        bank?: string;
        wallet?: string;
        coupon?: string;
        run?: string;
        scrapeInterval: string;
      }) => {
        const m = await import('./prometheus-config.ts');
        const d = m.DEFAULT_TARGETS;
        const given =
          o.checkout.length > 0 || [o.bank, o.wallet, o.coupon, o.run].some((v) => v !== undefined);
        if (!given && o.scrapeInterval === '1s') {
          process.stdout.write(m.composePrometheusConfig());
          return;
        }
        const targets = {
          checkout: o.checkout.length
            ? o.checkout.map((v) => m.hostPort('--checkout', v))
            : d.checkout,
          bank: o.bank === undefined ? d.bank : m.hostPort('--bank', o.bank),
          wallet: o.wallet === undefined ? d.wallet : m.hostPort('--wallet', o.wallet),
          coupon: o.coupon === undefined ? d.coupon : m.hostPort('--coupon', o.coupon),
          run: o.run === undefined ? d.run : m.hostPort('--run', o.run),
        };
        process.stdout.write(
          m.prometheusConfig(targets, {
            scrapeInterval: m.checkDuration('--scrape-interval', o.scrapeInterval),
          }),
        );
      },
    );

  return program;
}

export async function main(argv: string[]): Promise<void> {
  // `flashcrowd compare A B | head`: a reader that went away ends the output, not the
  // command (a run still judges, writes its reports and exits with its verdict).
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
  });
  const program = buildCli();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string };
    if (err.code?.startsWith('commander.')) {
      // commander already printed the message (or the help).
      process.exit(
        err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : 2,
      );
    }
    if (e instanceof UsageError) {
      console.error(`flashcrowd: ${e.message}`);
      process.exit(2);
    }
    console.error(e);
    process.exit(1);
  }
}
