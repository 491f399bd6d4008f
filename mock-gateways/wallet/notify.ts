// Asynchronous merchant notifications, Alipay- and WeChat-style: a signed POST
// to the trade's notifyUrl, retried on the real schedules (compressed by a
// time-scale) until the merchant acknowledges, with chaos on top (delay, loss,
// duplicates, reordering, delivery before the pay call answers). Every random
// choice of a notification is drawn up front, keyed by the trade's out-trade
// number (docs/CHAOS.md, Reproducibility), so the same seed gives the same
// chaos to the same trade whatever the timing. No express here.
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { sampleLatency } from '../chaos/latency.ts';
import type { LatencySpec } from '../chaos/profile.ts';
import type { Draws } from '../chaos/rng.ts';
import type { MockMetrics } from '../metrics.ts';
import type { NotifyStyle } from './schema.ts';

/** Gaps between attempts, in seconds, after the first attempt (WeChat Pay and Alipay docs). */
export const RETRY_SCHEDULES_S: Record<NotifyStyle, readonly number[]> = {
  wechat: [15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600],
  alipay: [240, 600, 600, 3600, 7200, 21600, 54000],
};
/** The most attempts any style makes (WeChat: 1 + 15 retries); plans draw this many. */
export const PLAN_ATTEMPTS = 16;

export const SIGNATURE_HEADER = 'x-flashcrowd-signature';
export const NOTIFY_ID_HEADER = 'x-flashcrowd-notify-id';
export const ATTEMPT_HEADER = 'x-flashcrowd-attempt';
export const STYLE_HEADER = 'x-flashcrowd-style';

/** `sha256=<hex>`: HMAC-SHA256 of the exact raw body with the wallet's secret. */
export function signBody(body: string | Buffer, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Check a notification's signature header against its raw body (constant time). */
export function verifySignature(
  body: string | Buffer,
  header: string | undefined,
  secret: string,
): boolean {
  if (typeof header !== 'string') return false;
  const want = Buffer.from(signBody(body, secret));
  const got = Buffer.from(header);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** Whether an answer acknowledges: Alipay wants 2xx with the body exactly `success`; WeChat any 2xx. */
export function isAck(style: NotifyStyle, status: number | undefined, body: string | undefined) {
  if (status === undefined || status < 200 || status > 299) return false;
  return style === 'wechat' || body === 'success';
}

/** Every random choice one notification needs, drawn at once (a fixed number of draws). */
export interface NotifyPlan {
  delayMs: number;
  beforeResponseU: number;
  reorderKey: number;
  lossU: number[];
  dupU: number[];
  /** Below `lostRate`: every attempt of this notification is lost (drawn last, so the others keep their values). */
  lostU: number;
}

const NO_DELAY: LatencySpec = { dist: 'fixed', ms: 0 };

/** Draw a plan: 4 draws for the delay, 2 more, then a loss and a duplicate draw per possible attempt. */
export function drawNotifyPlan(rng: Draws, delay: LatencySpec | undefined): NotifyPlan {
  const delayMs = sampleLatency(delay ?? NO_DELAY, rng);
  const beforeResponseU = rng.next();
  const reorderKey = rng.next();
  const lossU: number[] = [];
  const dupU: number[] = [];
  for (let i = 0; i < PLAN_ATTEMPTS; i++) {
    lossU.push(rng.next());
    dupU.push(rng.next());
  }
  return { delayMs, beforeResponseU, reorderKey, lossU, dupU, lostU: rng.next() };
}

/** The notification settings in force (read again at each step, so a profile change applies). */
export interface NotifyConfig {
  /** Multiplies the retry gaps (extra.notify.timeScale, else the service's option, else the run's time-scale). */
  timeScale: number;
  /** The run's time-scale: multiplies the first attempt's delay and the reorder window. */
  worldScale: number;
  lossRate: number;
  /** Probability that a notification is lost for good: no attempt is ever sent. */
  lostRate: number;
  duplicateRate: number;
  reorder?: { windowMs: number; order?: 'reverse' | 'shuffle' };
  notifyBeforeResponseRate: number;
  timeoutMs: number;
}

/** What a notification is about: a trade that has just been paid. */
export interface NotifySubject {
  tradeNo: string;
  outTradeNo: string;
  style: NotifyStyle;
  notifyUrl: string;
  amount: number;
  currency: string;
  subject?: string;
  buyerId?: string;
  createdAt: string;
  paidAt: string;
}

export type AttemptResult =
  'scheduled' | 'held' | 'sending' | 'acked' | 'failed' | 'dropped' | 'duplicate' | 'cancelled';

export interface AttemptLog {
  attempt: number;
  /** An extra identical delivery of `attempt` (chaos duplicateRate). */
  duplicate: boolean;
  /** The planned wait before this attempt: the notify delay for the first, the scaled retry gap after. */
  gapMs: number;
  scheduledAt: string;
  sentAt?: string;
  completedAt?: string;
  result: AttemptResult;
  status?: number;
  error?: string;
  /** The first 128 characters of the merchant's answer. */
  responseBody?: string;
}

export type NoticeState =
  | 'waiting'
  | 'delaying'
  | 'held'
  | 'sending'
  | 'retrying'
  | 'acked'
  | 'gave_up'
  | 'lost'
  | 'cancelled';

export interface Notice {
  notifyId: string;
  tradeNo: string;
  outTradeNo: string;
  style: NotifyStyle;
  notifyUrl: string;
  state: NoticeState;
  /** Delivered before the pay call answered (chaos notifyBeforeResponseRate). */
  beforeResponse: boolean;
  maxAttempts: number;
  createdAt: string;
  ackedAt?: string;
  gaveUpAt?: string;
  /** The exact raw body every attempt sends, and its signature header. */
  body: string;
  signature: string;
  attempts: AttemptLog[];
}

export interface NoticeHandle {
  notifyId: string;
  beforeResponse: boolean;
  /** Start delivering (idempotent); resolves once the first attempt is over (or cancelled). */
  release(): Promise<void>;
}

interface Live {
  notice: Notice;
  plan: NotifyPlan;
  started: boolean;
  firstDone: Promise<void>;
  resolveFirst: () => void;
}

interface DeliveryResult {
  status?: number;
  body?: string;
  error?: string;
}

export interface NotifierDeps {
  metrics: MockMetrics;
  secret: string;
  config(): NotifyConfig;
  /** Wall clock for timestamps (ms since the epoch). */
  clock?: () => number;
}

const pad = (n: number) => String(n).padStart(8, '0');
const MAX_ANSWER_BYTES = 64 * 1024;

/** `yyyy-MM-dd HH:mm:ss` in Beijing time, as Alipay writes notify_time. */
function alipayTime(ms: number): string {
  return new Date(ms + 8 * 3_600_000).toISOString().slice(0, 19).replace('T', ' ');
}
/** RFC 3339 in Beijing time, as WeChat Pay writes times. */
function wechatTime(ms: number): string {
  return `${new Date(ms + 8 * 3_600_000).toISOString().slice(0, 19)}+08:00`;
}
/** Minor units as a two-decimal string in major units, as Alipay writes total_amount. */
function majorUnits(amount: number): string {
  return `${Math.floor(amount / 100)}.${String(amount % 100).padStart(2, '0')}`;
}

/** The notification body of `style` (the same bytes on every attempt of one notice). */
export function notificationBody(
  s: NotifySubject,
  notifyId: string,
  nowMs: number,
): Record<string, unknown> {
  const paidMs = Date.parse(s.paidAt);
  if (s.style === 'alipay')
    return {
      notify_id: notifyId,
      notify_type: 'trade_status_sync',
      notify_time: alipayTime(nowMs),
      app_id: 'flashcrowd',
      out_trade_no: s.outTradeNo,
      trade_no: s.tradeNo,
      trade_status: 'TRADE_SUCCESS',
      total_amount: majorUnits(s.amount),
      receipt_amount: majorUnits(s.amount),
      trans_currency: s.currency,
      ...(s.subject !== undefined ? { subject: s.subject } : {}),
      ...(s.buyerId !== undefined ? { buyer_id: s.buyerId } : {}),
      gmt_create: alipayTime(Date.parse(s.createdAt)),
      gmt_payment: alipayTime(paidMs),
    };
  return {
    id: notifyId,
    create_time: wechatTime(nowMs),
    event_type: 'TRANSACTION.SUCCESS',
    out_trade_no: s.outTradeNo,
    transaction_id: s.tradeNo,
    trade_state: 'SUCCESS',
    trade_state_desc: 'payment succeeded',
    success_time: wechatTime(paidMs),
    amount: { total: s.amount, payer_total: s.amount, currency: s.currency },
    ...(s.buyerId !== undefined ? { payer: { openid: s.buyerId } } : {}),
  };
}

export class Notifier {
  private notices = new Map<string, Notice>();
  private byTrade = new Map<string, Notice[]>();
  private live = new Set<Live>();
  private timers = new Set<NodeJS.Timeout>();
  private requests = new Set<http.ClientRequest>();
  private held: { l: Live; entry: AttemptLog }[] = [];
  private holdTimer: NodeJS.Timeout | undefined;
  private seq = 0;
  private readonly clock: () => number;

  constructor(private readonly deps: NotifierDeps) {
    this.clock = deps.clock ?? Date.now;
  }

  private iso(ms = this.clock()): string {
    return new Date(ms).toISOString();
  }

  private event(event: string) {
    this.deps.metrics.notifications.inc({ event });
  }

  /** Register the notification of a paid trade; nothing is sent until `release()`. */
  create(s: NotifySubject, plan: NotifyPlan): NoticeHandle {
    const cfg = this.deps.config();
    this.seq += 1;
    const notifyId = `nt_${pad(this.seq)}`;
    const body = JSON.stringify(notificationBody(s, notifyId, this.clock()));
    const notice: Notice = {
      notifyId,
      tradeNo: s.tradeNo,
      outTradeNo: s.outTradeNo,
      style: s.style,
      notifyUrl: s.notifyUrl,
      state: 'waiting',
      beforeResponse: plan.beforeResponseU < cfg.notifyBeforeResponseRate,
      maxAttempts: RETRY_SCHEDULES_S[s.style].length + 1,
      createdAt: this.iso(),
      body,
      signature: signBody(body, this.deps.secret),
      attempts: [],
    };
    this.notices.set(notifyId, notice);
    const list = this.byTrade.get(s.tradeNo) ?? [];
    list.push(notice);
    this.byTrade.set(s.tradeNo, list);
    let resolveFirst: () => void = () => undefined;
    const firstDone = new Promise<void>((r) => (resolveFirst = r));
    const l: Live = { notice, plan, started: false, firstDone, resolveFirst };
    this.live.add(l);
    return {
      notifyId,
      beforeResponse: notice.beforeResponse,
      release: () => {
        this.begin(l);
        return firstDone;
      },
    };
  }

  /** Notices (with their attempts), for one trade or all, oldest first. */
  list(tradeNo?: string): Notice[] {
    if (tradeNo !== undefined) return this.byTrade.get(tradeNo) ?? [];
    return [...this.notices.values()];
  }

  private after(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        fn();
      },
      Math.max(0, ms),
    );
    this.timers.add(t);
    return t;
  }

  private begin(l: Live) {
    if (l.started || !this.live.has(l)) return;
    l.started = true;
    l.notice.state = 'delaying';
    // How late the wallet calls back is a world duration: the drawn delay, scaled with the run.
    const delayMs = l.plan.delayMs * this.deps.config().worldScale;
    this.schedule(l, 1, delayMs, delayMs);
  }

  private schedule(l: Live, attempt: number, gapMs: number, waitMs: number) {
    const entry: AttemptLog = {
      attempt,
      duplicate: false,
      gapMs,
      scheduledAt: this.iso(this.clock() + waitMs),
      result: 'scheduled',
    };
    l.notice.attempts.push(entry);
    this.after(waitMs, () => this.due(l, entry));
  }

  private due(l: Live, entry: AttemptLog) {
    if (!this.live.has(l)) return;
    const cfg = this.deps.config();
    const reorder = cfg.reorder;
    if (entry.attempt === 1 && reorder) {
      entry.result = 'held';
      l.notice.state = 'held';
      this.held.push({ l, entry });
      this.holdTimer ??= this.after(reorder.windowMs * cfg.worldScale, () => {
        this.holdTimer = undefined;
        this.flush().catch((err: unknown) => console.error('[wallet] notify flush failed:', err));
      });
      return;
    }
    this.run(l, entry).catch((err: unknown) => console.error('[wallet] notify failed:', err));
  }

  /** Release held first attempts, reversed or shuffled (by each plan's reorder key), one after another. */
  private async flush() {
    const items = this.held.splice(0);
    const order = this.deps.config().reorder?.order ?? 'reverse';
    const sorted =
      order === 'shuffle'
        ? [...items].sort((a, b) => a.l.plan.reorderKey - b.l.plan.reorderKey)
        : [...items].reverse();
    for (const { l, entry } of sorted) if (this.live.has(l)) await this.run(l, entry);
  }

  private async run(l: Live, entry: AttemptLog) {
    const { notice, plan } = l;
    const k = entry.attempt;
    const cfg = this.deps.config();
    const started = performance.now();
    if (k > 1) this.event('retried');
    if (k === 1 && plan.lostU < cfg.lostRate) {
      // Lost for good (lostRate): nothing is sent now or later; only a query finds the payment.
      entry.result = 'dropped';
      entry.completedAt = this.iso();
      notice.state = 'lost';
      this.event('lost');
      this.finish(l);
      return;
    }
    notice.state = 'sending';
    let acked = false;
    if ((plan.lossU[k - 1] ?? 1) < cfg.lossRate) {
      entry.result = 'dropped';
      entry.completedAt = this.iso();
      this.event('dropped');
    } else {
      entry.result = 'sending';
      entry.sentAt = this.iso();
      this.event('sent');
      const r = await this.deliver(notice, k, cfg.timeoutMs);
      if (!this.live.has(l)) return;
      this.fill(entry, r);
      acked = isAck(notice.style, r.status, r.body);
      entry.result = acked ? 'acked' : 'failed';
      this.event(acked ? 'acked' : 'failed');
      if (k === 1) l.resolveFirst();
      if ((plan.dupU[k - 1] ?? 1) < cfg.duplicateRate) {
        const dup: AttemptLog = {
          attempt: k,
          duplicate: true,
          gapMs: 0,
          scheduledAt: this.iso(),
          sentAt: this.iso(),
          result: 'sending',
        };
        notice.attempts.push(dup);
        this.event('duplicated');
        const r2 = await this.deliver(notice, k, cfg.timeoutMs);
        if (!this.live.has(l)) return;
        this.fill(dup, r2);
        dup.result = 'duplicate';
      }
    }
    if (k === 1) l.resolveFirst();
    if (acked) {
      notice.state = 'acked';
      notice.ackedAt = this.iso();
      this.finish(l);
    } else if (k >= notice.maxAttempts) {
      notice.state = 'gave_up';
      notice.gaveUpAt = this.iso();
      this.event('gave_up');
      this.finish(l);
    } else {
      // The next attempt is due one scaled gap after this one started (at once if this one took longer).
      const gapS = RETRY_SCHEDULES_S[notice.style][k - 1] ?? 0;
      const gapMs = Math.round(gapS * cfg.timeScale * 1e6) / 1e3; // to the microsecond
      notice.state = 'retrying';
      this.schedule(l, k + 1, gapMs, started + gapMs - performance.now());
    }
  }

  private fill(entry: AttemptLog, r: DeliveryResult) {
    entry.completedAt = this.iso();
    if (r.status !== undefined) entry.status = r.status;
    if (r.error !== undefined) entry.error = r.error;
    if (r.body !== undefined) entry.responseBody = r.body.slice(0, 128);
  }

  /** Notices still on their way: not yet acknowledged, given up, lost or cancelled. */
  backlog(): number {
    return this.live.size;
  }

  private finish(l: Live) {
    this.live.delete(l);
    l.resolveFirst();
  }

  /** One POST of the notice; never rejects, never outlives `timeoutMs`. */
  private deliver(notice: Notice, attempt: number, timeoutMs: number): Promise<DeliveryResult> {
    return new Promise((resolve) => {
      const payload = Buffer.from(notice.body);
      const url = new URL(notice.notifyUrl);
      const mod = url.protocol === 'https:' ? https : http;
      let done = false;
      const finish = (r: DeliveryResult) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.timers.delete(timer);
        this.requests.delete(req);
        resolve(r);
      };
      const req = mod.request(
        url,
        {
          method: 'POST',
          agent: false,
          headers: {
            'content-type': 'application/json',
            'content-length': payload.length,
            'user-agent': 'flashcrowd-wallet-notify/1',
            connection: 'close',
            [SIGNATURE_HEADER]: notice.signature,
            [NOTIFY_ID_HEADER]: notice.notifyId,
            [ATTEMPT_HEADER]: String(attempt),
            [STYLE_HEADER]: notice.style,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            if (size < MAX_ANSWER_BYTES) chunks.push(c);
            size += c.length;
          });
          res.on('end', () =>
            finish({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', (e: NodeJS.ErrnoException) =>
            finish({ status: res.statusCode, error: e.code ?? e.message }),
          );
          res.on('close', () =>
            finish({ status: res.statusCode, error: 'connection closed before the answer ended' }),
          );
        },
      );
      const timer = setTimeout(() => {
        finish({ error: `timeout after ${timeoutMs} ms` });
        req.destroy();
      }, timeoutMs);
      this.timers.add(timer);
      this.requests.add(req);
      req.on('error', (e: NodeJS.ErrnoException) => finish({ error: e.code ?? e.message }));
      req.end(payload);
    });
  }

  /** Stop everything in progress: timers, held notices, requests on the wire. The log stays. */
  cancelAll(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.holdTimer = undefined;
    this.held = [];
    const live = [...this.live];
    this.live.clear();
    for (const l of live) {
      for (const a of l.notice.attempts)
        if (a.result === 'scheduled' || a.result === 'held' || a.result === 'sending')
          a.result = 'cancelled';
      l.notice.state = 'cancelled';
      l.resolveFirst();
    }
    const reqs = [...this.requests];
    this.requests.clear();
    for (const r of reqs) r.destroy();
  }

  /** Cancel everything and forget the log. */
  reset(): void {
    this.cancelAll();
    this.notices = new Map();
    this.byTrade = new Map();
    this.seq = 0;
  }
}
