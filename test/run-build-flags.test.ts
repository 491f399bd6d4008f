// `flashcrowd run --mode` and `--set`: the checkout build a run starts is the
// preset's (or its variant's), with --mode replacing the mode and each --set on
// top; bad settings are refused before anything starts (exit 2, naming the
// key), and so are --mode/--set with --target, whose checkout the harness does
// not start. The run itself is exercised end to end by the phenomenon matrix.
import { describe, expect, it } from 'vitest';
import { loadPreset } from '../harness/preset.ts';
import { buildOf, buildOverridden, variantsOf } from '../harness/run/preset.ts';
import { runCli } from './support/cli.ts';

describe('the build of a run', () => {
  const { preset } = loadPreset('retry-storm');
  const [naive, hardened] = preset.variants!;

  it("is the variant's own without --mode or --set", () => {
    expect(buildOf(preset, naive, {})).toEqual({ ...naive!.checkout, instances: 1 });
    expect(buildOf(preset, hardened, {}).mode).toBe('hardened');
    expect(buildOverridden({})).toBe(false);
  });

  it("--mode replaces the mode of every variant and keeps the variant's settings", () => {
    const b = buildOf(preset, hardened, { mode: 'naive' });
    expect(b.mode).toBe('naive');
    expect(b.set).toEqual(hardened!.checkout?.set ?? preset.checkout.set);
    expect(buildOverridden({ mode: 'naive' })).toBe(true);
  });

  it('--set goes on top, the last of a key winning, without changing the preset', () => {
    const before = structuredClone(naive!.checkout);
    const b = buildOf(preset, naive, {
      set: ['splitStockCheck=true', 'stockCacheMs=100', 'stockCacheMs=200'],
    });
    expect(b.mode).toBe(naive!.checkout!.mode);
    expect(b.set).toMatchObject({ splitStockCheck: 'true', stockCacheMs: '200' });
    expect(naive!.checkout).toEqual(before);
    expect(buildOverridden({ set: ['holdPaying=true'] })).toBe(true);
  });
});

describe('the variants a run covers', () => {
  const { preset } = loadPreset('retry-storm');
  const names = (spec?: string) => variantsOf(preset, spec).map((v) => v?.name);

  it('are all without --variant, the one named, or those named in their order (--variant a --variant b is a,b)', () => {
    expect(names()).toEqual(['naive', 'hardened']);
    expect(names('hardened')).toEqual(['hardened']);
    expect(names('hardened,naive')).toEqual(['hardened', 'naive']);
    expect(names('naive,naive')).toEqual(['naive']);
  });

  it('refuses a variant the preset does not have, naming those it has', () => {
    expect(() => names('naive,clever')).toThrow(
      'preset retry-storm has no variant "clever" (variants: naive, hardened)',
    );
    const bare = { ...loadPreset('livestream-spike').preset, variants: undefined };
    expect(() => variantsOf(bare, 'naive')).toThrow(
      'preset livestream-spike has no variants (--variant does not apply)',
    );
  });
});

describe('run refuses a bad build before anything starts', () => {
  it.each([
    [['--set', 'nosuch=1'], /--set: nosuch: unknown setting; features: .*splitStockCheck/],
    [['--set', 'retries'], /--set retries: expected KEY=VALUE/],
    [['--set', 'maxAttempts=99'], /--set: maxAttempts: .*<=10/],
    [['--set', 'mode=naive'], /give --mode instead/],
    [['--mode', 'clever'], /--mode.*clever.*naive, hardened/],
    [
      ['--mode', 'naive', '--target', 'http://127.0.0.1:9'],
      /--mode, --set and --instances configure the checkout the harness starts/,
    ],
  ])('run retry-storm %j: exit 2 with the reason', async (args, reason) => {
    const r = await runCli(['run', 'retry-storm', '--ci', ...args], { timeoutMs: 60_000 });
    expect(r.code, r.log).toBe(2);
    expect(r.log).toMatch(reason);
    expect(r.log).not.toMatch(/starting|engine:/);
  });
});
