"""The simulated buyers of the benchmarks: scenarios run inside the emulator's own process
(``benchmarks.emulated.EmulatorProcess.run``), each returning plain data to the benchmark.

Every buyer waits only for its own chat (``Emulator.wait_for``) and its own query's answer
(``TimedEmulator.answered``): no buyer is woken by another's messages.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from benchmarks.emulated import TimedEmulator, percentile
from sandbox.telegram import Sent

PATIENCE = 60.0  # a storefront buyer gives up on a reply after this long (the journey counts as failed)
# The calls a bot makes that concern one buyer; anything else (getUpdates, setMyCommands, the Stars
# ledger) is background work, not a reply.
QUERY_FIELDS = ("callback_query_id", "pre_checkout_query_id")
CHAT, QUERY, MESSAGE = "$chat", "$query", "$message"


def _delivered(s: Sent) -> bool:
    return "delivered" in s.text


# ---------------------------------------------------------------------------------------------- storefront


async def journey(emu: TimedEmulator, uid: int, product: str, replies: list[float] | None = None) -> None:
    """/catalog, tap the product, tap Buy, pay (pre-checkout query, then successful_payment), and wait for
    the keys: five updates. ``replies`` gets, per update, the seconds until the reply the buyer waits for."""
    emu.user(uid, "Buyer")

    def took(t0: float) -> None:
        if replies is not None:
            replies.append(time.perf_counter() - t0)

    before = len(emu.messages(uid))
    t0 = time.perf_counter()
    await emu.send_text(uid, "/catalog")
    listing = await emu.wait_for(uid, after=before, within=PATIENCE)
    took(t0)
    before = len(emu.messages(uid))
    t0 = time.perf_counter()
    await emu.tap(uid, listing, listing.button(product)["callback_data"])
    card = await emu.wait_for(uid, after=before, within=PATIENCE)
    took(t0)
    before = len(emu.messages(uid))
    t0 = time.perf_counter()
    await emu.tap(uid, card, card.button("Buy")["callback_data"])
    invoice = await emu.wait_for(uid, lambda s: s.method == "sendInvoice", after=before, within=PATIENCE)
    took(t0)
    before = len(emu.messages(uid))
    t0 = time.perf_counter()
    paid = await emu.pay(uid, invoice)  # returns once the pre-checkout query was answered
    if not paid["paid"]:
        raise RuntimeError(f"payment failed: {paid['error']}")
    took(t0)
    t0 = time.perf_counter()
    await emu.wait_for(uid, _delivered, after=before, within=PATIENCE)
    took(t0)


async def journeys(
    emu: TimedEmulator, *, first_uid: int, buyers: int, concurrency: int, product: str
) -> dict[str, Any]:
    """``buyers`` journeys, ``concurrency`` at a time: wall time, each journey's and each reply's latency,
    and the journeys that failed (with the first errors)."""
    sem = asyncio.Semaphore(concurrency)
    journey_s: list[float] = []
    replies: list[float] = []
    errors: list[str] = []

    async def one(uid: int) -> None:
        async with sem:
            t0 = time.perf_counter()
            try:
                await journey(emu, uid, product, replies)
            except Exception as e:
                errors.append(f"{type(e).__name__}: {e}")
            else:
                journey_s.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(one(first_uid + i) for i in range(buyers)))
    return {
        "wall": time.perf_counter() - start,
        "journeys": journey_s,
        "replies": replies,
        "failed": len(errors),
        "errors": errors[:3],
    }


def _template(params: dict[str, Any], uid: int, tapped: int | None) -> dict[str, Any]:
    """A call's parameters with what belongs to this buyer and update replaced by placeholders."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, tuple):
            raise ValueError(f"the journey uploads a file ({key}); the echo replays JSON parameters only")
        if key == "chat_id":
            if str(value) != str(uid):
                raise ValueError(f"a reply to another chat ({value}) in the buyer's journey")
            out[key] = CHAT
        elif key in QUERY_FIELDS:
            out[key] = QUERY
        elif key == "message_id":
            if tapped is None or int(value) != tapped:
                raise ValueError("the journey edits a message other than the one tapped")
            out[key] = MESSAGE
        else:
            out[key] = value
    return out


async def record_journey(
    emu: TimedEmulator, *, uid: int, product: str, settle: float = 0.3
) -> dict[str, Any]:
    """One journey, unhurried, noting every call the bot made for this buyer and which update it answered:
    ``{update key: [(method, parameters with placeholders), ...]}``. Update keys: ``text:<text>``,
    ``callback:<data>``, ``pre_checkout_query``, ``successful_payment``. After each update the buyer waits
    ``settle`` seconds more, so calls made after the visible reply (an answer to the tap) are counted too;
    the outbox's delivery is counted with the payment that caused it."""
    emu.user(uid, "Buyer")
    steps: list[tuple[str, int, int | None]] = []  # (update key, first call index, tapped message id)

    def mine(params: dict[str, Any]) -> bool:
        return str(params.get("chat_id")) == str(uid) or any(f in params for f in QUERY_FIELDS)

    steps.append(("text:/catalog", len(emu.calls), None))
    await emu.send_text(uid, "/catalog")
    listing = await emu.wait_for(uid, within=PATIENCE)
    await asyncio.sleep(settle)
    sent = listing
    for label in (product, "Buy"):
        before = len(emu.messages(uid))
        data = sent.button(label)["callback_data"]
        steps.append((f"callback:{data}", len(emu.calls), int(sent.message["message_id"])))
        await emu.tap(uid, sent, data)
        sent = await emu.wait_for(uid, after=before, within=PATIENCE)
        await asyncio.sleep(settle)
    if sent.method != "sendInvoice":
        invoice = await emu.wait_for(uid, lambda s: s.method == "sendInvoice", within=PATIENCE)
    else:
        invoice = sent
    before = len(emu.messages(uid))
    steps.append(("payment", len(emu.calls), None))
    paid = await emu.pay(uid, invoice)
    if not paid["paid"]:
        raise RuntimeError(f"the recorded journey's payment failed: {paid['error']}")
    await emu.wait_for(uid, _delivered, after=before, within=PATIENCE)
    await asyncio.sleep(settle)
    ends = [start for _, start, _ in steps[1:]] + [len(emu.calls)]
    calls: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for (key, start, tapped), end in zip(steps, ends, strict=True):
        for method, params in emu.calls[start:end]:
            if not mine(params):
                continue
            update = key
            if key == "payment":  # pay() queues two updates: the query, then the payment itself
                update = "pre_checkout_query" if "pre_checkout_query_id" in params else "successful_payment"
            calls.setdefault(update, []).append((method, _template(params, uid, tapped)))
    return calls


# ---------------------------------------------------------------------------------------------- flash sale


async def open_card(emu: TimedEmulator, *, uid: int, product: str) -> dict[str, Any]:
    """A buyer opens the product's card (/catalog, then the product): the card as Telegram shows it."""
    emu.user(uid, "Scout")
    before = len(emu.messages(uid))
    await emu.send_text(uid, "/catalog")
    listing = await emu.wait_for(uid, after=before, within=PATIENCE)
    before = len(emu.messages(uid))
    await emu.tap(uid, listing, listing.button(product)["callback_data"])
    card = await emu.wait_for(uid, after=before, within=PATIENCE)
    return {k: v for k, v in card.message.items() if k in ("text", "entities", "reply_markup")}


def _card_for(emu: TimedEmulator, uid: int, card: dict[str, Any]) -> dict[str, Any]:
    """The card as if the bot had sent it to ``uid`` before the sale began (buyers wait on it for the start):
    a message of the bot in their chat, without a message to deliver now."""
    user = emu.user(uid, "Buyer")
    return emu._bot_message(uid, user.chat(), **card)


def _outcome(
    answers: list[tuple[float, bool, str, str]], first: Sent | None, refused: list[tuple[str, int]]
) -> str:
    """What a buyer who got no invoice saw: a message, else the answer to their tap (if Telegram took it)."""
    shown = [text for _, ok, _, text in answers if ok]
    if first is not None:
        said = f"a message: {first.text[:70]!r}"
    elif shown and shown[0]:
        said = f"an answer to the tap: {shown[0][:70]!r}"
    elif shown:
        said = "an empty answer to the tap, then nothing"
    else:
        said = "no answer and no message"
    if answers and not shown:
        late = next((text for _, _, _, text in answers if text), "")
        said += f" (the bot's answer to the tap{f' {late[:70]!r}' if late else ''} came too late: Telegram refused it)"
    if refused:  # what else the bot tried to send them and Telegram refused (flood limits: 429)
        said += " (Telegram refused the bot's " + ", ".join(sorted({f"{m} {c}" for m, c in refused})) + ")"
    return said


async def flash_sale(
    emu: TimedEmulator,
    *,
    first_uid: int,
    buyers: int,
    window: float,
    card: dict[str, Any],
    patience: float,
) -> dict[str, Any]:
    """``buyers`` tap Buy on ``card``, spread evenly over ``window`` seconds; whoever gets an invoice pays at
    once. Returns the timings of every callback and pre-checkout answer, measured by the emulator's clock
    from the buyer's action (where Telegram's deadline starts), and what became of each buyer."""
    buy_data = next(
        b["callback_data"]
        for row in card["reply_markup"]["inline_keyboard"]
        for b in row
        if "Buy" in b["text"]
    )
    cards = {first_uid + i: _card_for(emu, first_uid + i, card) for i in range(buyers)}
    taps: dict[int, str] = {}
    pre_checkouts: dict[int, str] = {}
    outcomes: Counter[str] = Counter()
    payments: Counter[str] = Counter()
    delivered = 0
    start = time.perf_counter() + 0.2

    async def buyer(i: int, uid: int) -> None:
        nonlocal delivered
        await asyncio.sleep(max(0.0, start + i * window / buyers - time.perf_counter()))
        before = len(emu.messages(uid))
        message = asyncio.create_task(emu.wait_for(uid, after=before, within=patience))
        qid = taps[uid] = await emu.tap(uid, cards[uid], buy_data)
        answers = await emu.answered(qid, patience)
        # The tap's answer only says "one moment": what the buyer gets (an invoice, or the card redrawn
        # with why not) comes after it, however long the invoices queue behind Telegram's 30 a second.
        try:
            first: Sent | None = await message
        except (TimeoutError, asyncio.CancelledError):
            first = None
        if first is None or first.method != "sendInvoice":
            outcomes[f"turned away: {_outcome(answers, first, emu.refused.get(uid, []))}"] += 1
            return
        outcomes["got an invoice"] += 1
        before = len(emu.messages(uid))
        paid = await emu.pay(uid, first)
        pre_checkouts[uid] = emu.pre_checkout_of[uid][-1]
        if not paid["paid"]:
            payments[f"payment failed: {paid['error'][:60]}"] += 1
            return
        payments["paid"] += 1
        try:
            await emu.wait_for(uid, _delivered, after=before, within=patience)
        except TimeoutError:
            payments["paid, no keys within the patience"] += 1
        else:
            delivered += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(buyer(i, uid) for i, uid in enumerate(cards)))
    wall = time.perf_counter() - t0

    def timings(issued: dict[str, float], qids: list[str]) -> dict[str, Any]:
        answered, waited, unanswered = [], [], 0
        for qid in qids:
            tries = emu.answers.get(qid)
            if not tries:
                unanswered += 1
                continue
            answered.append(tries[0][0] - issued[qid])
            if qid in emu.handed:
                waited.append(emu.handed[qid] - issued[qid])
        return {
            "answered": answered,
            "waited": waited,
            "unanswered": unanswered,
            "refused": sum(
                1 for q in qids if emu.answers.get(q) and not any(ok for _, ok, _, _ in emu.answers[q])
            ),
        }

    return {
        "wall": wall,
        "callbacks": timings(emu._queries, list(taps.values())),
        "pre_checkouts": timings(emu.pre_checkout_issued, list(pre_checkouts.values())),
        "outcomes": dict(outcomes),
        "payments": dict(payments),
        "delivered": delivered,
        "charged": sum(1 for p in emu.payments.values() if p.user_id in cards),
        "refunded": sum(1 for p in emu.payments.values() if p.user_id in cards and p.refunded),
    }


def summary(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50):6.2f} s  p99 {percentile(values, 99):6.2f} s  "
        f"max {max(values, default=0.0):6.2f} s"
    )
