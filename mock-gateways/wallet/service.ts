// Wallet HTTP routes: thin handlers that validate, call the domain, and answer.
import type { Request } from 'express';
import type { IdentitySource } from '../chaos/engine.ts';
import { bodyField, paramField, queryField, tagged } from '../chaos/identity.ts';
import { drawKeyOf } from '../chaos/middleware.ts';
import { parseInput } from '../errors.ts';
import { IdempotencyStore } from '../idempotency.ts';
import type { ServiceDefinition } from '../service.ts';
import { walletApi } from './api.ts';
import { timeScaleProblem } from '../time-scale.ts';
import { Wallet, payStatusCode } from './domain.ts';
import { DECLINES, WALLET_DECLINE_REASONS, type WalletDeclineReason } from './reasons.ts';
import {
  closeInput,
  DEFAULT_NOTIFY_TIMEOUT_MS,
  listQuery,
  makeTradeInput,
  notificationsQuery,
  payInput,
  refundInput,
  statementQuery,
  tradeParams,
  WALLET_OPERATIONS,
  walletExtraSchema,
  type WalletExtra,
} from './schema.ts';

/** The notification secret when neither the option nor $FLASHCROWD_WALLET_SECRET is set. */
export const DEFAULT_WALLET_SECRET = 'flashcrowd-wallet-dev-secret';

export interface WalletOptions {
  /** HMAC-SHA256 key for notification signatures; default $FLASHCROWD_WALLET_SECRET, else DEFAULT_WALLET_SECRET. */
  secret?: string;
  /**
   * Multiplies the real retry schedules (default: the run's time-scale, the
   * service option `timeScale`; profile extra.notify.timeScale overrides both).
   */
  notifyTimeScale?: number;
  /** Deadline of one notification attempt in ms (default 5000; extra.notify.timeoutMs overrides it). */
  notifyTimeoutMs?: number;
  /** Accept notifyUrls that are not loopback (default false). */
  allowRemoteNotify?: boolean;
}

const idemKey = (req: Request) => req.get('idempotency-key');

export function createWallet(
  opts: WalletOptions = {},
): ServiceDefinition<WalletExtra> & { wallet(): Wallet; readonly secret: string } {
  const secret = opts.secret ?? process.env.FLASHCROWD_WALLET_SECRET ?? DEFAULT_WALLET_SECRET;
  const notifyTimeScale = opts.notifyTimeScale;
  const notifyTimeoutMs = opts.notifyTimeoutMs ?? DEFAULT_NOTIFY_TIMEOUT_MS;
  if (secret.length === 0) throw new Error('wallet: the notification secret must not be empty');
  if (notifyTimeScale !== undefined && timeScaleProblem(notifyTimeScale))
    throw new Error('wallet: notifyTimeScale must be a number in (0, 1]');
  if (!Number.isInteger(notifyTimeoutMs) || notifyTimeoutMs < 1 || notifyTimeoutMs > 60_000)
    throw new Error('wallet: notifyTimeoutMs must be an integer from 1 to 60000');
  const tradeInput = makeTradeInput({ allowRemoteNotify: opts.allowRemoteNotify ?? false });
  let wallet: Wallet | undefined;
  const idem = new IdempotencyStore();

  return {
    name: 'wallet',
    operations: WALLET_OPERATIONS,
    declineReasons: WALLET_DECLINE_REASONS,
    extraSchema: walletExtraSchema,
    api: walletApi,
    secret,
    wallet: () => wallet!,
    levels: () => ({ notify_backlog: wallet?.notifier.backlog() ?? 0 }),
    routes(r, { engine, metrics, op, url, timeScale }) {
      wallet = new Wallet(engine, metrics, {
        secret,
        timeScale,
        ...(notifyTimeScale !== undefined ? { notifyTimeScale } : {}),
        notifyTimeoutMs,
        baseUrl: url,
      });
      const w = wallet;
      // Every draw of a request keyed by the merchant's out-trade number (docs/CHAOS.md,
      // Reproducibility): trade numbers are given in arrival order, so a trade is named by it.
      const byTrade = (tradeNo: string | undefined) =>
        tradeNo === undefined
          ? undefined
          : (tagged('out', w.outTradeNoOf(tradeNo)) ?? `trade:${tradeNo}`);
      const byPath = (req: IdentitySource) => byTrade(paramField(req, 'tradeNo'));
      engine.identify('trades.create', (req) => tagged('out', bodyField(req, 'outTradeNo')));
      engine.identify('trades.list', (req) => tagged('out', queryField(req, 'outTradeNo')));
      engine.identify('trades.get', byPath);
      engine.identify('trades.pay', byPath);
      engine.identify('trades.close', byPath);
      engine.identify('refunds.create', (req) => byTrade(bodyField(req, 'tradeNo')));

      r.post(
        '/v1/trades',
        idem.guard(
          'trades',
          idemKey,
          op('trades.create', (req, res) => {
            const { trade, created } = w.createTrade(parseInput(tradeInput, req.body, '(body)'));
            res.status(created ? 201 : 200).json(trade);
          }),
        ),
      );
      r.get(
        '/v1/trades',
        op('trades.list', (req, res) => {
          const q = parseInput(listQuery, req.query, '(query)');
          res.json({ object: 'list', data: w.findByOutTradeNo(q.outTradeNo) });
        }),
      );
      r.get(
        '/v1/trades/:tradeNo',
        op('trades.get', (req, res) => {
          res.json(w.getTrade(parseInput(tradeParams, req.params, '(path)').tradeNo));
        }),
      );
      r.post(
        '/v1/trades/:tradeNo/pay',
        op('trades.pay', async (req, res) => {
          const { tradeNo } = parseInput(tradeParams, req.params, '(path)');
          const { trade, notice } = await w.pay(
            tradeNo,
            parseInput(payInput, req.body, '(body)'),
            drawKeyOf(res),
          );
          try {
            // Chaos notifyBeforeResponseRate: the merchant hears of it before the payer does.
            if (notice?.beforeResponse) await notice.release();
            if (trade.reason) res.locals.reason = trade.reason;
            res.status(payStatusCode(trade)).json(trade);
          } finally {
            void notice?.release();
          }
        }),
      );
      r.post(
        '/v1/trades/:tradeNo/close',
        op('trades.close', (req, res) => {
          const { tradeNo } = parseInput(tradeParams, req.params, '(path)');
          parseInput(closeInput, req.body, '(body)');
          res.json(w.closeTrade(tradeNo));
        }),
      );
      r.post(
        '/v1/refunds',
        idem.guard(
          'refunds',
          idemKey,
          op('refunds.create', (req, res) => {
            res.json(w.refund(parseInput(refundInput, req.body, '(body)')));
          }),
        ),
      );
      r.get(
        '/v1/statement',
        op('statement', (req, res) => {
          const q = parseInput(statementQuery, req.query, '(query)');
          res.json(w.statement(q));
        }),
      );
      // The notification log, for tests and audits: not an operation, so chaos never touches it.
      r.get('/v1/notifications', (req, res) => {
        const q = parseInput(notificationsQuery, req.query, '(query)');
        res.json({ object: 'list', data: w.notifier.list(q.tradeNo) });
      });
    },
    decline(req, res, operation, reason) {
      const r = reason as WalletDeclineReason;
      if (operation === 'trades.pay') {
        const { tradeNo } = parseInput(tradeParams, req.params, '(path)');
        parseInput(payInput, req.body, '(body)');
        res.status(402).json(wallet!.declinePay(tradeNo, r));
        return;
      }
      res.status(402).json({
        error: 'declined',
        reason,
        message: `chaos: ${operation} declined (${reason}): ${DECLINES[r]?.message ?? reason}`,
      });
    },
    reset() {
      wallet?.reset();
      idem.clear();
      wallet?.engine.forgetAttempts();
    },
    close() {
      wallet?.close();
    },
  };
}
