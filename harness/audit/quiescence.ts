// Is anything still moving? Orders still in paying (stuck between the gateway
// and the checkout, after quiescence), and the bank's and wallet's view of the
// orders that tried to pay: a payment still processing there means the run is
// not quiescent, and the other verdicts may still change.
import { baseUrl, eachLimit, getJson } from './http.ts';
import { ENDED, type AuditContext, type AuditedOrder } from './inputs.ts';
import type { AuditTotals } from './report.ts';

interface Quiescence {
  quiescent: boolean;
  totals: Pick<AuditTotals, 'stuckProcessing' | 'pendingAtGateway'>;
}

export class GatewayProbe {
  private stuckProcessing = 0;
  /** Orders in paying, and ended orders that tried to pay. */
  private candidates = 0;
  /** The first `probeLimit` of them. */
  private readonly ids: string[] = [];

  constructor(private readonly ctx: AuditContext) {}

  order(o: AuditedOrder) {
    if (o.state === 'paying') this.stuckProcessing += 1;
    if (o.state === 'paying' || (ENDED.includes(o.state) && o.attempts > 0)) {
      this.candidates += 1;
      if (this.ids.length < this.ctx.probeLimit) this.ids.push(o.id);
    }
  }

  /** Ask the gateways about the candidates (unless `probeGateways` is false); notes what it could not. */
  async finish(): Promise<Quiescence> {
    const { opts, notes, max } = this.ctx;
    const pending: string[] = [];
    if (opts.probeGateways !== false) await this.probe(pending);
    else notes.push('gateways not probed: quiescence not verified');
    const quiescent = pending.length === 0;
    if (!quiescent)
      notes.push(
        `not quiescent: ${pending.length} orders have a payment still processing at a gateway (${pending.slice(0, max).join(', ')})`,
      );
    return {
      quiescent,
      totals: { stuckProcessing: this.stuckProcessing, pendingAtGateway: pending.length },
    };
  }

  /** Adds to `pending` each probed order with a payment still processing. */
  private async probe(pending: string[]) {
    const { notes, probeLimit } = this.ctx;
    if (this.candidates > probeLimit)
      notes.push(
        `${this.candidates - probeLimit} of ${this.candidates} orders that tried to pay were not probed at the gateways (probeLimit ${probeLimit})`,
      );
    let probeErrors = 0;
    await eachLimit(this.ids, 16, async (id) => {
      try {
        if (await this.processing(id)) pending.push(id);
      } catch {
        probeErrors += 1;
      }
    });
    if (probeErrors > 0)
      notes.push(`${probeErrors} gateway probes failed; pendingAtGateway may be undercounted`);
  }

  /** The bank or the wallet still has a payment of the order processing. */
  private async processing(orderId: string): Promise<boolean> {
    const { opts, attempts } = this.ctx;
    const id = encodeURIComponent(orderId);
    const [p, t] = await Promise.all([
      getJson<{ data: { status: string }[] }>(
        `${baseUrl(opts.bank)}/v1/payments?orderId=${id}`,
        attempts,
      ),
      getJson<{ data: { status: string }[] }>(
        `${baseUrl(opts.wallet)}/v1/trades?outTradeNo=${id}`,
        attempts,
      ),
    ]);
    return (
      p.data.some((x) => x.status === 'processing') || t.data.some((x) => x.status === 'USERPAYING')
    );
  }
}
