// Stock: I1 (the counters add up, and agree with the orders), I2 (no counter
// below zero, no more sold than there was: the orders holding the units beyond
// the stock are named) and I3 (no stock-lock leak: every unit still reserved
// is attributed to the order holding it, open or ended, or to no order).
// `snapshotI1` checks I1 and I2 on the counters alone, cheap enough to run
// while orders are in flight.
//
// Which orders hold reserved units: every open order holds its own (a leak
// once past its deadline). Units reserved beyond those are leaked, and the
// audit looks for the ended orders (failed, expired, cancelled) that still
// hold them. Only release.lua gives stock back, and it also sets the order's
// `endedAt`, takes it off the `deadlines` queue and lowers the shopper's
// count in `bought`; an ended order that shows it skipped any of these holds
// its units: no `endedAt` (seen in the order pass), still in the deadlines
// queue, or a shopper whose `bought` count exceeds the units of their open,
// paid and refunded orders (both in a second pass over that SKU, made only
// when units are unexplained). What is left after that is "unknown", counted
// per SKU. The second pass also names the orders holding oversold units.
import {
  OPEN_STATES,
  type OrderState,
  type StockCounters,
  type StockSnapshot,
  type Store,
} from '../../checkout/store.ts';
import { Breaks, decided } from './breaks.ts';
import { ENDED, type AuditContext, type AuditedOrder } from './inputs.ts';
import type { AuditTotals, InvariantResult } from './report.ts';

export interface I1Snapshot {
  at: number;
  /** I1 and I2 hold for every SKU of the snapshot. */
  ok: boolean;
  skus: StockSnapshot[];
  /** SKUs breaking I1 (counters do not add up), described. */
  i1: string[];
  /** SKUs breaking I2 (a negative counter, or more sold than initial), described. */
  i2: string[];
}

function countersText(s: StockCounters): string {
  return `sold ${s.sold} + reserved ${s.reserved} + available ${s.available} = ${s.sold + s.reserved + s.available}, initial ${s.initial}`;
}
/** A SKU's counters, and those of each of its stock buckets that breaks I1 or I2 on its own. */
export function describeCounters(s: StockSnapshot): string {
  const broken = (s.buckets ?? [])
    .map((b, i) => ({ b, i }))
    .filter(({ b }) => countersBreak(b) || belowZero(b))
    .map(({ b, i }) => `; bucket ${i}: ${countersText(b)}`);
  return `${s.sku}: ${countersText(s)}${broken.join('')}`;
}

function countersBreak(s: StockCounters): boolean {
  return (
    s.sold + s.reserved + s.available !== s.initial ||
    [s.initial, s.sold, s.reserved, s.available].some(Number.isNaN)
  );
}
function belowZero(s: StockCounters): boolean {
  return s.available < 0 || s.reserved < 0 || s.sold < 0 || s.sold > s.initial;
}
/** I1 breaks: the SKU's counters (summed over its buckets), or one bucket's, do not add up. */
export function i1Breaks(s: StockSnapshot): boolean {
  return countersBreak(s) || (s.buckets ?? []).some(countersBreak);
}
/** I2 breaks: a counter below zero or more sold than there was, in the SKU or in one of its buckets. */
export function i2Breaks(s: StockSnapshot): boolean {
  return belowZero(s) || (s.buckets ?? []).some(belowZero);
}
function oversoldIn(s: StockCounters): number {
  const n = Math.max(0, s.sold - s.initial, -s.available);
  return Number.isFinite(n) ? n : 0;
}
/**
 * Units sold or reserved beyond the initial stock (I2): max(0, sold - initial,
 * -available); for a bucketed SKU, summed over its buckets (a bucket's units
 * taken beyond its share are oversold even while another bucket has some left).
 */
export function oversoldUnits(s: StockSnapshot): number {
  if (!s.buckets) return oversoldIn(s);
  return Math.max(
    oversoldIn(s),
    s.buckets.reduce((n, b) => n + oversoldIn(b), 0),
  );
}

/**
 * I1 (and I2) at one instant: each SKU's counters read atomically (one HMGET
 * per SKU, or per stock bucket, summed: every bucket adds up on its own).
 */
export async function snapshotI1(store: Store, skus?: string[]): Promise<I1Snapshot> {
  const ids = skus ?? (await store.skuIds());
  const snaps = await Promise.all(ids.map((id) => store.snapshot(id)));
  const i1 = snaps.filter(i1Breaks).map(describeCounters);
  const i2 = snaps.filter(i2Breaks).map(describeCounters);
  return { at: Date.now(), ok: i1.length === 0 && i2.length === 0, skus: snaps, i1, i2 };
}

/** Per SKU, from the order pass: units open orders hold, paid or refunded orders hold, and ended orders never released hold. */
interface Held {
  open: number;
  sold: number;
  ended: number;
}

const SOLD_STATES: readonly OrderState[] = ['paid', 'refunded'];
/** The fields the second pass reads. */
const SECOND_PASS_FIELDS = ['user', 'qty', 'state', 'endedAt', 'createdAt'] as const;

export class StockCheck {
  private readonly held: Map<string, Held>;
  private readonly i3: Breaks;
  private leakOrdersOpen = 0;
  private leakOrdersEnded = 0;
  private leakUnits = 0;
  private unknownSkus = 0;
  private unknownUnits = 0;
  /** Ended orders that show they were never released hold more units than the counters have reserved. */
  private overAttributed = 0;

  constructor(private readonly ctx: AuditContext) {
    this.held = new Map(ctx.skus.map((sku) => [sku, { open: 0, sold: 0, ended: 0 }]));
    this.i3 = new Breaks(ctx.max);
  }

  order(o: AuditedOrder) {
    const h = this.held.get(o.sku);
    if (OPEN_STATES.includes(o.state)) {
      if (h) h.open += o.qty;
      // I3: an open order past its deadline holds stock it should have given back.
      if (o.deadline + this.ctx.grace < this.ctx.now) {
        this.i3.add(o.id);
        this.leakOrdersOpen += 1;
        this.leakUnits += o.qty;
      }
    } else if (SOLD_STATES.includes(o.state)) {
      if (h) h.sold += o.qty;
    } else if (ENDED.includes(o.state) && o.endedAt === undefined) {
      // Ended without release.lua (which sets endedAt): its reservation is still held.
      if (h) h.ended += o.qty;
      this.i3.add(o.id);
      this.leakOrdersEnded += 1;
      this.leakUnits += o.qty;
    }
  }

  /** I1-I3 once every order has been read: each SKU's counters against what its orders hold. */
  async finish(snaps: Map<string, StockSnapshot>, quiescent: boolean) {
    const { skus, max, grace } = this.ctx;
    const i1 = new Breaks(max);
    const i2 = new Breaks(max);
    let oversold = 0;
    for (const sku of skus) {
      const s = snaps.get(sku)!;
      const h = this.held.get(sku)!;
      this.checkI1(s, h, i1);
      oversold += oversoldUnits(s);
      await this.checkLeaksAndOversell(s, h, i2);
    }
    const results: InvariantResult[] = [
      decided(
        'I1',
        i1,
        'per SKU: the counters add up to the initial stock, reserved equals the units of open orders, sold the units of paid orders; count is SKUs, one example describing each',
      ),
      decided(
        'I2',
        i2,
        `${oversold} units sold or reserved beyond the initial stock (per SKU max(0, sold - initial, -available)); count is the orders holding them (the last created) plus SKUs whose counters no order explains (a negative count)`,
      ),
      decided(
        'I3',
        this.i3,
        `${this.leakUnits + this.unknownUnits} reserved units leaked: ${this.leakOrdersOpen} open orders past their payment deadline${grace ? ` by more than ${grace} ms` : ''}, ${this.leakOrdersEnded} ended orders whose reservation was never released, ${this.unknownUnits} units no order explains (${this.unknownSkus} SKUs); count is those orders and SKUs${this.overAttributed ? `; ended orders never released hold ${this.overAttributed} units more than the counters have reserved` : ''}${quiescent ? '' : '; NOT quiescent (a gateway is still processing)'}`,
      ),
    ];
    const totals: Pick<
      AuditTotals,
      | 'stockLeaks'
      | 'stockLeakUnits'
      | 'stockLeakOrdersOpen'
      | 'stockLeakOrdersEnded'
      | 'stockLeakUnitsUnknown'
      | 'oversoldUnits'
    > = {
      stockLeaks: this.leakOrdersOpen + this.leakOrdersEnded + this.unknownSkus,
      stockLeakUnits: this.leakUnits + this.unknownUnits,
      stockLeakOrdersOpen: this.leakOrdersOpen,
      stockLeakOrdersEnded: this.leakOrdersEnded,
      stockLeakUnitsUnknown: this.unknownUnits,
      oversoldUnits: oversold,
    };
    return { results, totals };
  }

  private checkI1(s: StockSnapshot, { open, sold }: Held, i1: Breaks) {
    const wrong: string[] = [];
    if (i1Breaks(s)) wrong.push(countersText(s));
    if (open !== s.reserved) wrong.push(`reserved ${s.reserved}, open orders hold ${open}`);
    if (sold !== s.sold) wrong.push(`sold ${s.sold}, paid orders hold ${sold}`);
    if (wrong.length) i1.add(s.sku, `${s.sku}: ${wrong.join('; ')}`);
  }

  /**
   * I3 beyond the order pass (reserved units that no open order and no ended
   * order without `endedAt` holds) and I2 (the orders holding oversold units):
   * a second pass over the SKU's orders, only when there is something to find.
   */
  private async checkLeaksAndOversell(s: StockSnapshot, h: Held, i2: Breaks) {
    const unexplained = s.reserved - h.open - h.ended;
    if (unexplained < 0 && h.ended > 0) this.overAttributed += Math.min(h.ended, -unexplained);
    const over = oversoldUnits(s);
    const leftover =
      unexplained > 0 ? await this.attributeLeaks(s.sku, unexplained, over) : undefined;
    const holders = leftover?.holders ?? (over > 0 ? await this.holders(s.sku) : []);
    const unknown = leftover?.unknown ?? 0;
    if (unknown > 0) {
      this.unknownSkus += 1;
      this.unknownUnits += unknown;
      this.i3.add(`${s.sku}\u0000unknown`, `${s.sku}: ${unknown} reserved units held by no order`);
    }
    if (i2Breaks(s)) {
      // The latest created orders hold the units beyond the stock.
      holders.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
      let covered = 0;
      for (const o of holders) {
        if (covered >= over) break;
        covered += o.qty;
        i2.add(o.id);
      }
      if (
        covered < over ||
        s.reserved < 0 ||
        s.sold < 0 ||
        [s.available, s.sold].some(Number.isNaN) ||
        (s.buckets ?? []).some(belowZero)
      )
        i2.add(s.sku, describeCounters(s));
    }
  }

  /** The orders of a SKU that hold stock (open, paid, refunded), for I2. */
  private async holders(sku: string) {
    const out: { id: string; createdAt: number; qty: number }[] = [];
    await this.secondPass(sku, (o) => {
      if (OPEN_STATES.includes(o.state) || SOLD_STATES.includes(o.state))
        out.push({ id: o.id, createdAt: o.createdAt, qty: o.qty });
    });
    return out;
  }

  /**
   * Find the ended orders holding `unexplained` reserved units of `sku`:
   * those still in the deadlines queue, then those of shoppers whose `bought`
   * count exceeds what their other orders hold. Returns the units left
   * unexplained, and (when `over` > 0) the orders holding stock, for I2.
   */
  private async attributeLeaks(sku: string, unexplained: number, over: number) {
    const { store } = this.ctx;
    // Summed over the SKU's stock buckets, if it has several.
    const queued = new Set(await store.deadlineIds(sku));
    const bought = await store.boughtByUser(sku);
    const holders: { id: string; createdAt: number; qty: number }[] = [];
    /** Units each shopper's orders are known to hold. */
    const userHolds = new Map<string, number>();
    /** Ended orders (released, as far as their fields say) of shoppers `bought` still counts. */
    const suspects = new Map<string, { id: string; qty: number; endedAt: number }[]>();
    let left = unexplained;
    const holds = (user: string, qty: number) =>
      userHolds.set(user, (userHolds.get(user) ?? 0) + qty);
    await this.secondPass(sku, (o) => {
      if (OPEN_STATES.includes(o.state) || SOLD_STATES.includes(o.state)) {
        holds(o.user, o.qty);
        if (over > 0) holders.push({ id: o.id, createdAt: o.createdAt, qty: o.qty });
      } else if (!ENDED.includes(o.state)) return;
      else if (o.endedAt === undefined)
        holds(o.user, o.qty); // found by the order pass
      else if (queued.has(o.id)) {
        holds(o.user, o.qty);
        this.endedLeak(o.id, o.qty);
        left -= o.qty;
      } else if (bought.has(o.user)) {
        const list = suspects.get(o.user) ?? [];
        list.push({ id: o.id, qty: o.qty, endedAt: o.endedAt });
        suspects.set(o.user, list);
      }
    });
    for (const [user, list] of suspects) {
      let excess = (bought.get(user) ?? 0) - (userHolds.get(user) ?? 0);
      list.sort((a, b) => b.endedAt - a.endedAt);
      for (const o of list) {
        if (excess <= 0 || left <= 0) break;
        this.endedLeak(o.id, o.qty);
        excess -= o.qty;
        left -= o.qty;
      }
    }
    return { unknown: Math.max(0, left), holders };
  }

  private endedLeak(id: string, qty: number) {
    this.i3.add(id);
    this.leakOrdersEnded += 1;
    this.leakUnits += qty;
  }

  /** Every order of `sku` once more (the fields the second pass needs), each once. */
  private async secondPass(
    sku: string,
    check: (o: {
      id: string;
      user: string;
      qty: number;
      state: OrderState;
      endedAt?: number;
      createdAt: number;
    }) => void,
  ) {
    const seen = new Set<string>();
    const opts = { count: this.ctx.pageSize, fields: SECOND_PASS_FIELDS };
    for await (const batch of this.ctx.store.orderBatches(sku, opts))
      for (const o of batch) {
        if (seen.has(o.id)) continue;
        seen.add(o.id);
        check(o);
      }
  }
}
