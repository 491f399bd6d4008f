// The invariant audit (I1-I11 of the brief). It lives in harness/audit/: start
// at harness/audit/index.ts, which lists its modules in reading order. This
// file keeps the import path the harness, the tests and the benchmarks use.
export * from './audit/index.ts';
