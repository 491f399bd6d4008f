// The admin token check: in constant time, so how long a refusal takes says
// nothing about how much of a guessed token was right.
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Whether an Authorization header carries `Bearer <token>`, compared in constant time. */
export function tokenMatches(authorization: string | undefined, token: string): boolean {
  // Both sides hashed first: equal lengths whatever was sent, and the length of the
  // token is not given away either.
  return timingSafeEqual(digest(authorization ?? ''), digest(`Bearer ${token}`));
}
