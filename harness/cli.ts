import { readFileSync } from 'node:fs';
// The `flashcrowd` command line.
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from './errors.ts';
import { startMocks, type MockTarget } from './mocks.ts';
import { runDemo } from './demo.ts';
import { runCheckoutCommand, type CheckoutCommandOptions } from './checkout-cmd.ts';

function pkgVersion(): string {
  return (
    JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    }
  ).version;
}

function intArg(name: string, min: number, max: number) {
  return (v: string) => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
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

export function buildCli(): Command {
  const program = new Command();
  program
    .name('flashcrowd')
    .description(
      'Flash-sale load simulator and chaos testbed: mock bank, wallet and coupon gateways with a chaos engine.',
    )
    .version(pkgVersion(), '-V, --version')
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
    .option('--host <addr>', 'address to bind', '127.0.0.1')
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
    .addOption(new Option('--json', 'print one JSON line {service: url} instead of a table'))
    .action(
      async (
        service: MockTarget,
        o: {
          port: number;
          host: string;
          seed: number;
          profile?: string;
          adminRemote: boolean;
          json?: boolean;
        },
      ) => {
        const running = await startMocks({
          target: service,
          port: o.port,
          host: o.host,
          seed: o.seed,
          profileFile: o.profile,
          adminRemote: o.adminRemote,
        });
        if (o.json)
          console.log(JSON.stringify(Object.fromEntries(running.map((s) => [s.name, s.url]))));
        else {
          for (const s of running)
            console.log(
              `${s.name.padEnd(7)} ${s.url}   (chaos: ${s.url}/__chaos, metrics: ${s.url}/metrics)`,
            );
          console.log(
            `seed ${o.seed}${o.profile ? `, profile ${o.profile}` : ', no faults'}; Ctrl-C stops.`,
          );
        }
        onSignals(async () => {
          await Promise.all(running.map((s) => s.close()));
        });
      },
    );

  program
    .command('checkout')
    .description(
      'Start the reference checkout on Redis against the mock gateways; serves until Ctrl-C.',
    )
    .option('--port <n>', 'port; 0 picks a free one', intArg('--port', 0, 65535), 0)
    .option('--host <addr>', 'address to bind', '127.0.0.1')
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
    .addOption(new Option('--json', 'print one JSON line of URLs instead of a table'))
    .action(async (o: CheckoutCommandOptions) => {
      await runCheckoutCommand(o, onSignals);
    });

  program
    .command('demo')
    .description(
      'Start all mocks with the demo chaos profile, drive k6 traffic through them, print what the chaos did, stop.',
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
        await runDemo({ ...o, onSignals });
      },
    );

  return program;
}

export async function main(argv: string[]): Promise<void> {
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
