// Bank HTTP routes: thin handlers that validate, call the domain, and answer.
import type { Request } from 'express';
import { bodyField, paramField, queryField, tagged } from '../chaos/identity.ts';
import { drawKeyOf } from '../chaos/middleware.ts';
import { parseInput } from '../errors.ts';
import { IdempotencyStore } from '../idempotency.ts';
import type { ServiceDefinition } from '../service.ts';
import { bankApi } from './api.ts';
import { BANK_DECLINE_REASONS, type BankDeclineReason } from './cards.ts';
import { Bank, paymentStatusCode } from './domain.ts';
import {
  BANK_OPERATIONS,
  bankExtraSchema,
  listQuery,
  paymentInput,
  refundInput,
  statementQuery,
  type BankExtra,
} from './schema.ts';

const idemKey = (req: Request) => req.get('idempotency-key');

export function createBank(): ServiceDefinition<BankExtra> & { bank(): Bank } {
  let bank: Bank | undefined;
  const idem = new IdempotencyStore();
  return {
    name: 'bank',
    operations: BANK_OPERATIONS,
    declineReasons: BANK_DECLINE_REASONS,
    extraSchema: bankExtraSchema,
    api: bankApi,
    bank: () => bank!,
    routes(r, { engine, op, timeScale }) {
      bank = new Bank(engine, { timeScale });
      const b = bank;
      // Every draw of a request keyed by the merchant's order id (docs/CHAOS.md, Reproducibility):
      // the bank's payment ids are numbered in arrival order, so a payment is named by its order.
      const byPayment = (id: string | undefined) =>
        id === undefined ? undefined : (tagged('order', b.orderOf(id)) ?? `payment:${id}`);
      engine.identify('payments.create', (req) => tagged('order', bodyField(req, 'orderId')));
      engine.identify('payments.get', (req) => byPayment(paramField(req, 'id')));
      engine.identify('payments.list', (req) => tagged('order', queryField(req, 'orderId')));
      engine.identify('refunds.create', (req) => byPayment(bodyField(req, 'paymentId')));

      r.post(
        '/v1/payments',
        idem.guard(
          'payments',
          idemKey,
          op('payments.create', (req, res) => {
            const p = b.createPayment(
              parseInput(paymentInput, req.body),
              engine.draws('bank.processing', drawKeyOf(res)),
            );
            if (p.reason) res.locals.reason = p.reason;
            res.status(paymentStatusCode(p)).json(p);
          }),
        ),
      );
      r.get(
        '/v1/payments/:id',
        op('payments.get', (req, res) => {
          res.json(b.getPayment(String(req.params.id)));
        }),
      );
      r.get(
        '/v1/payments',
        op('payments.list', (req, res) => {
          const q = parseInput(listQuery, req.query, '(query)');
          res.json({ object: 'list', data: b.listByOrder(q.orderId) });
        }),
      );
      r.post(
        '/v1/refunds',
        idem.guard(
          'refunds',
          idemKey,
          op('refunds.create', (req, res) => {
            res.json(b.refund(parseInput(refundInput, req.body)));
          }),
        ),
      );
      r.get(
        '/v1/statement',
        op('statement', (req, res) => {
          const q = parseInput(statementQuery, req.query, '(query)');
          res.json(b.statement(q));
        }),
      );
    },
    decline(req, res, operation, reason) {
      if (operation !== 'payments.create') {
        res
          .status(402)
          .json({ error: 'declined', reason, message: `chaos: ${operation} declined (${reason})` });
        return;
      }
      const p = bank!.decline(parseInput(paymentInput, req.body), reason as BankDeclineReason);
      res.status(402).json(p);
    },
    reset() {
      bank?.reset();
      idem.clear();
      bank?.engine.forgetAttempts();
    },
    close() {
      bank?.close();
    },
  };
}
