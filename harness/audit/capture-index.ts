// The captures of the sale in the bank and wallet ledgers, as the audit holds
// them: a column index (typed arrays, about 110 bytes a capture) chained per
// order id, with what was refunded of each and the flags the order pass sets.
// See docs/PERFORMANCE.md "How the audit streams".

export const GATEWAYS = ['bank', 'wallet'] as const;
export type Gateway = (typeof GATEWAYS)[number];

/** A column of numbers that grows as captures are added (a typed array, doubled when full). */
class Column<A extends Float64Array | Int32Array | Uint8Array> {
  data: A;
  constructor(private readonly make: (n: number) => A) {
    this.data = make(1024);
  }
  set(i: number, v: number) {
    if (i >= this.data.length) {
      const bigger = this.make(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[i] = v;
  }
}

/**
 * Every capture of the sale in the bank and wallet ledgers, column by column
 * (numbers in typed arrays, and two strings a capture), chained per order id,
 * with what was refunded of each. Built from statement pages; the orders are
 * then checked against it one SCAN batch at a time.
 */
export class CaptureIndex {
  size = 0;
  private readonly gatewayCol = new Column((n) => new Uint8Array(n));
  readonly ref: string[] = [];
  readonly orderId: string[] = [];
  private readonly amountCol = new Column((n) => new Float64Array(n));
  private readonly refundedCol = new Column((n) => new Float64Array(n));
  private readonly atCol = new Column((n) => new Float64Array(n));
  /** The order's next (older) capture, -1 at the end of its chain. */
  private readonly nextCol = new Column((n) => new Int32Array(n));
  /** 1 once a paid order names this capture as its payment. */
  private readonly matchedCol = new Column((n) => new Uint8Array(n));
  /** 1 on the head capture once its order has been read (SCAN may return an order twice). */
  private readonly sightedCol = new Column((n) => new Uint8Array(n));
  /** Order id -> its newest capture (the head of its chain). */
  readonly head = new Map<string, number>();

  add(gateway: Gateway, ref: string, orderId: string, amount: number, at: number) {
    const i = this.size++;
    this.gatewayCol.set(i, GATEWAYS.indexOf(gateway));
    this.ref.push(ref);
    this.orderId.push(orderId);
    this.amountCol.set(i, amount);
    this.refundedCol.set(i, 0);
    this.atCol.set(i, at);
    this.matchedCol.set(i, 0);
    this.sightedCol.set(i, 0);
    this.nextCol.set(i, this.head.get(orderId) ?? -1);
    this.head.set(orderId, i);
  }
  /** Credit a refund to its capture (same gateway and reference); false when none is known. */
  refund(gateway: Gateway, ref: string, orderId: string, amount: number): boolean {
    for (const i of this.of(orderId))
      if (this.ref[i] === ref && GATEWAYS[this.gatewayCol.data[i]!] === gateway) {
        this.refundedCol.data[i]! += amount;
        return true;
      }
    return false;
  }
  /** What is left of a capture after its refunds. */
  left(i: number) {
    return this.amountCol.data[i]! - this.refundedCol.data[i]!;
  }
  /** Captured and not refunded in full. */
  net(i: number) {
    return this.left(i) > 0;
  }
  amount(i: number) {
    return this.amountCol.data[i]!;
  }
  at(i: number) {
    return this.atCol.data[i]!;
  }
  matched(i: number) {
    return this.matchedCol.data[i] === 1;
  }
  match(i: number) {
    this.matchedCol.data[i] = 1;
  }
  /**
   * Mark an order read: true the first time, false after; undefined when it
   * has no capture (the caller keeps those ids itself).
   */
  firstSight(orderId: string): boolean | undefined {
    const i = this.head.get(orderId);
    if (i === undefined) return undefined;
    if (this.sightedCol.data[i] === 1) return false;
    this.sightedCol.data[i] = 1;
    return true;
  }
  /** The captures of an order, newest first. */
  *of(orderId: string): Generator<number> {
    for (let i = this.head.get(orderId) ?? -1; i >= 0; i = this.nextCol.data[i]!) yield i;
  }
  key(i: number) {
    return `${GATEWAYS[this.gatewayCol.data[i]!]}:${this.ref[i]}`;
  }
}
