// Idempotency keys, Stripe-style: the same key and payload (route and body)
// replay the first answer; the same key with another payload is 422; a key whose first request
// is still running is 409. Answers of 5xx (and 400s for bad input) are not
// stored, so the caller may retry them.
import { createHash } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import stringify from 'safe-stable-stringify';
import { HttpError, ValidationError } from './errors.ts';

/** res.locals key: true while the operation behind this request may still run or is running. */
export const OPERATION_PENDING = 'operationPending';
/** res.locals key: frees the request's idempotency key unless its answer was stored. */
export const IDEMPOTENCY_RELEASE = 'idempotencyRelease';

interface Entry {
  hash: string;
  done: boolean;
  status?: number;
  body?: unknown;
}

export class IdempotencyStore {
  private readonly entries = new Map<string, Entry>();

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Express guard for `scope`. `keyOf` extracts the key (undefined: not idempotent).
   * Put it before the operation's chaos wrapper: replays, 409s and 422s answer at once.
   * With `then`, the guard calls it itself rather than `next()`: one route layer
   * instead of two, which a route under load notices.
   */
  guard(
    scope: string,
    keyOf: (req: Request) => string | undefined,
    then?: RequestHandler,
  ): RequestHandler {
    return (req: Request, res: Response, next: NextFunction) => {
      const key = keyOf(req);
      if (key === undefined) return then ? then(req, res, next) : next();
      if (key.length === 0 || key.length > 255)
        throw new ValidationError([
          { field: 'Idempotency-Key', reason: 'must be 1 to 255 characters' },
        ]);
      const id = `${scope}\u0000${key}`;
      const hash = createHash('sha256')
        .update(stringify(req.body ?? null) ?? '')
        .digest('hex');
      const cur = this.entries.get(id);
      if (cur) {
        if (cur.hash !== hash)
          throw new HttpError(
            422,
            'idempotency_key_reused',
            `Idempotency-Key "${key}" was used with a different request body`,
          );
        if (!cur.done)
          throw new HttpError(
            409,
            'idempotency_key_in_use',
            `a request with Idempotency-Key "${key}" is still being processed; retry later`,
          );
        res.locals.reason = 'idempotent_replay';
        res
          .set('Idempotent-Replayed', 'true')
          .status(cur.status ?? 200)
          .json(cur.body);
        return;
      }
      const entry: Entry = { hash, done: false };
      this.entries.set(id, entry);
      // The key is free again only when the operation did not take effect: an
      // answer that is not stored (5xx, 400, 429), or a connection that closed
      // while no operation is pending. A client that gives up (a timeout) does
      // not stop an operation already under way (the chaos wrapper marks it
      // pending while it waits): its result is stored and replayed, as a real
      // gateway does, instead of letting a retry run the operation twice.
      const release = () => {
        if (!entry.done && this.entries.get(id) === entry) this.entries.delete(id);
      };
      res.locals[IDEMPOTENCY_RELEASE] = release;
      const json = res.json.bind(res);
      res.json = ((body: unknown) => {
        const s = res.statusCode;
        if (!entry.done) {
          if (s < 500 && s !== 400 && s !== 429) {
            entry.done = true;
            entry.status = s;
            // A copy: the domain may answer with a live object that changes later (a payment that settles).
            entry.body = structuredClone(body);
          } else release();
        }
        return json(body);
      }) as Response['json'];
      res.once('close', () => {
        if (!res.locals[OPERATION_PENDING]) release();
      });
      return then ? then(req, res, next) : next();
    };
  }
}
