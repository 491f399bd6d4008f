// Stock: I1 (the counters add up, and agree with the orders), I2 (no counter
// below zero, no more sold than there was) and I3 (no stock-lock leak: no open
// order past its deadline, no reserved unit that no open order holds).
// `snapshotI1` checks I1 and I2 on the counters alone, cheap enough to run
// while orders are in flight.
import { OPEN_STATES, type StockSnapshot, type Store } from '../../checkout/store.ts';
import { Breaks, decided } from './breaks.ts';
import type { AuditContext, AuditedOrder } from './inputs.ts';
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

function describeCounters(s: StockSnapshot): string {
  return `${s.sku}: sold ${s.sold} + reserved ${s.reserved} + available ${s.available} = ${s.sold + s.reserved + s.available}, initial ${s.initial}`;
}

function i1Breaks(s: StockSnapshot): boolean {
  return (
    s.sold + s.reserved + s.available !== s.initial ||
    [s.initial, s.sold, s.reserved, s.available].some(Number.isNaN)
  );
}
function i2Breaks(s: StockSnapshot): boolean {
  return s.available < 0 || s.reserved < 0 || s.sold < 0 || s.sold > s.initial;
}

/** I1 (and I2) at one instant: each SKU's counters read atomically (one HMGET per SKU). */
export async function snapshotI1(store: Store, skus?: string[]): Promise<I1Snapshot> {
  const ids = skus ?? (await store.skuIds());
  const snaps = await Promise.all(ids.map((id) => store.snapshot(id)));
  const i1 = snaps.filter(i1Breaks).map(describeCounters);
  const i2 = snaps.filter(i2Breaks).map(describeCounters);
  return { at: Date.now(), ok: i1.length === 0 && i2.length === 0, skus: snaps, i1, i2 };
}

/** Units per SKU that open orders hold (reserved) and paid or refunded orders hold (sold). */
interface Held {
  open: number;
  sold: number;
}

export class StockCheck {
  private readonly held: Map<string, Held>;
  private readonly i3: Breaks;
  private stockLeaks = 0;
  private stockLeakUnits = 0;

  constructor(private readonly ctx: AuditContext) {
    this.held = new Map(ctx.skus.map((sku) => [sku, { open: 0, sold: 0 }]));
    this.i3 = new Breaks(ctx.max);
  }

  order(o: AuditedOrder) {
    const h = this.held.get(o.sku);
    if (OPEN_STATES.includes(o.state)) {
      if (h) h.open += o.qty;
      // I3: an open order past its deadline holds stock it should have given back.
      if (o.deadline + this.ctx.grace < this.ctx.now) {
        this.i3.add(o.id);
        this.stockLeaks += 1;
        this.stockLeakUnits += o.qty;
      }
    } else if (o.state === 'paid' || o.state === 'refunded') if (h) h.sold += o.qty;
  }

  /** I1-I3 once every order has been read: each SKU's counters against what its orders hold. */
  finish(snaps: Map<string, StockSnapshot>, quiescent: boolean) {
    const { skus, max, grace } = this.ctx;
    const i1 = new Breaks(max);
    const i2 = new Breaks(max);
    for (const sku of skus) this.checkSku(sku, snaps.get(sku)!, this.held.get(sku)!, i1, i2);
    const results: InvariantResult[] = [
      decided(
        'I1',
        i1,
        'per SKU: the counters add up to the initial stock, reserved equals the units of open orders, sold the units of paid orders; examples describe SKUs',
      ),
      decided('I2', i2, 'per SKU; examples describe SKUs'),
      decided(
        'I3',
        this.i3,
        `open orders past their payment deadline${grace ? ` by more than ${grace} ms` : ''}, and reserved units no open order holds${quiescent ? '' : '; NOT quiescent (a gateway is still processing)'}`,
      ),
    ];
    const totals: Pick<AuditTotals, 'stockLeaks' | 'stockLeakUnits'> = {
      stockLeaks: this.stockLeaks,
      stockLeakUnits: this.stockLeakUnits,
    };
    return { results, totals };
  }

  private checkSku(sku: string, s: StockSnapshot, { open, sold }: Held, i1: Breaks, i2: Breaks) {
    if (i1Breaks(s)) i1.add(sku, describeCounters(s));
    if (open !== s.reserved)
      i1.add(sku, `${sku}: reserved ${s.reserved}, open orders hold ${open}`);
    if (sold !== s.sold) i1.add(sku, `${sku}: sold ${s.sold}, paid orders hold ${sold}`);
    if (i2Breaks(s)) i2.add(s.sku, describeCounters(s));
    if (s.reserved > open) {
      this.stockLeakUnits += s.reserved - open;
      this.i3.add(
        `${sku}:unexplained`,
        `${sku}: ${s.reserved - open} reserved units held by no open order`,
      );
    }
  }
}
