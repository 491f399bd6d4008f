// A worker thread of the engine: TypeScript through tsx, then worker.ts.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
