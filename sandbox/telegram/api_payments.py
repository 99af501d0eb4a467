"""The Bot API's payment methods: sendInvoice (fields as ``payments`` checks them, a Pay button first),
answerPreCheckoutQuery (the pending query, once, before its deadline), refundStarPayment and
getStarTransactions (the bot's Stars ledger)."""

from __future__ import annotations

import time
from typing import Any

from sandbox.telegram.errors import QUERY_INVALID, bad
from sandbox.telegram.limits import check_markup
from sandbox.telegram.payments import check_invoice
from sandbox.telegram.state import EmulatorState


class PaymentMethods(EmulatorState):
    async def m_sendinvoice(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id, chat = self._target(p)
        inv = check_invoice(p, self.stars_max)
        markup = p.get("reply_markup")
        check_markup(markup, inline_only=True)
        if markup and not markup["inline_keyboard"][0][0].get("pay"):
            raise bad("the first button of an invoice's keyboard must be a Pay button")
        self._flood(chat_id)
        msg = self._bot_message(chat_id, chat, invoice=inv)
        self._set_inline(msg, markup)
        msg["_payload"] = str(p["payload"])
        return await self._notify(self._record(chat_id, "sendInvoice", msg))

    def m_answerprecheckoutquery(self, p: dict[str, Any]) -> bool:
        """Only the pending query's id, once, within ``pre_checkout_timeout`` seconds (Telegram's 10) of the
        query; a late answer is refused and the payment fails: nothing is charged. The Bot API words an
        invalid or expired query id (``QUERY_ID_INVALID``) as for callback queries (telegram-bot-api,
        ``Client::fail_query_with_error``)."""
        qid = str(p.get("pre_checkout_query_id") or "")
        pending = self._pre_checkout.get(qid)
        if pending is None or pending[1].done():
            raise bad(QUERY_INVALID)
        issued, fut = pending
        if self.clock() - issued > self.pre_checkout_timeout:
            fut.set_result({"ok": False, "late": True})
            raise bad(QUERY_INVALID)
        ok = p.get("ok") in (True, "true", "True", 1)
        if not ok and not p.get("error_message"):
            raise bad("error_message is required when ok is false")
        fut.set_result({"ok": ok, "error_message": p.get("error_message")})
        return True

    def m_refundstarpayment(self, p: dict[str, Any]) -> bool:
        charge = self.payments.get(str(p.get("telegram_payment_charge_id") or ""))
        if charge is None or str(charge.user_id) != str(p.get("user_id")):
            raise bad("CHARGE_NOT_FOUND")
        if charge.refunded:
            raise bad("CHARGE_ALREADY_REFUNDED")
        charge.refunded = True
        self.star_ledger.append(
            {
                "id": charge.charge_id,
                "amount": charge.amount,
                "date": int(time.time()),
                "receiver": {
                    "type": "user",
                    "transaction_type": "invoice_payment",
                    "user": self.user(charge.user_id).as_tg(),
                },
            }
        )
        return True

    def m_getstartransactions(self, p: dict[str, Any]) -> dict[str, Any]:
        """The bot's Stars ledger in the order things happened: payments in, refunds out."""
        offset = int(p.get("offset") or 0)
        limit = int(p.get("limit") or 100)
        if offset < 0 or not 1 <= limit <= 100:
            raise bad("offset must be >= 0 and limit 1 to 100")
        return {"transactions": self.star_ledger[offset : offset + limit]}
