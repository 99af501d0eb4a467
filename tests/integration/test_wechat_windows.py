"""WeChat windows and parked messages, on SQLite and PostgreSQL (``core.services.wechat_windows``): a message
parked while the user's window is closed waits, counted nowhere, until the user opens it again; an opening
that beats the park wins; a WeChat Pay payment opens the window in its own transaction."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from core import tables as t
from core.clock import FrozenClock
from core.messages import AwaitingManual, Message, RefundMade
from core.reactions import write_message
from core.services import Services
from core.windows import EVENT, MESSAGE, Spent
from tests.conftest import query, stocked

OPENID = "o-buyer-00000000000000000000001"


async def wechat_user(shop: Services, openid: str = OPENID) -> int:
    return (await shop.users.ensure("wechat", openid, language="zh_CN")).id


async def queue(shop: Services, user_id: int, *messages: Message) -> None:
    def add(uow: object) -> None:
        for m in messages:
            write_message(uow, user_id, m, shop.ctx.clock.now())  # type: ignore[arg-type]
        uow.commit()  # type: ignore[attr-defined]

    await shop.ctx.write(add)


async def statuses(shop: Services) -> list[tuple[str, str, int]]:
    o = t.outbox
    rows = await query(shop, select(o.c.kind, o.c.status, o.c.progress).order_by(o.c.id))
    return [(r.kind, r.status, r.progress) for r in rows]


async def park_all(shop: Services, clock: FrozenClock) -> list[int]:
    batch = await shop.outbox.claim("wechat")
    tried = clock.now()
    clock.advance(seconds=1)
    for m in batch:
        assert await shop.wechat_windows.park(m.id, m.user_id, tried_at=tried, why="45015 window", progress=1)
    return [m.id for m in batch]


async def test_a_parked_message_waits_outside_the_backlog_until_the_user_writes(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    uid = await wechat_user(shop)
    await queue(shop, uid, AwaitingManual("R-1"), RefundMade("R-2", None, 100, "CNY"))
    parked = await park_all(shop, clock)
    assert await statuses(shop) == [
        ("order_awaiting_manual", "parked", 1),
        ("payment_refunded_by_hand", "parked", 1),
    ]
    clock.advance(days=30)
    assert await shop.outbox.claim("wechat") == []  # never due while parked, however long
    backlog = await shop.monitoring.figures()
    assert backlog.outbox_pending == 0  # parked is no backlog: nothing for the admins to worry about
    windows = await shop.wechat_windows.windows([uid])
    assert windows[uid].closed_at is not None and windows[uid].left(clock.now()) == 0

    assert await shop.wechat_windows.contact(OPENID, MESSAGE) == 2
    again = await shop.outbox.claim("wechat")
    assert [m.id for m in again] == parked  # in the order they were written, their progress kept
    assert [m.progress for m in again] == [1, 1]
    assert [m.attempts for m in again] == [0, 0]  # a park is no failed attempt
    window = (await shop.wechat_windows.windows([uid]))[uid]
    assert window.closed_at is None and window.left(clock.now()) == 5


async def test_an_opening_after_the_refused_send_beats_the_park(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    uid = await wechat_user(shop)
    await queue(shop, uid, AwaitingManual("R-1"))
    [m] = await shop.outbox.claim("wechat")
    tried = clock.now()
    clock.advance(seconds=1)
    assert await shop.wechat_windows.contact(OPENID, EVENT) == 0  # the user tapped while we were refused
    clock.advance(seconds=1)
    assert not await shop.wechat_windows.park(m.id, uid, tried_at=tried, why="45015", progress=0)
    assert await statuses(shop) == [("order_awaiting_manual", "pending", 0)]
    assert [x.id for x in await shop.outbox.claim("wechat")] == [m.id]  # due again at once
    assert (await shop.wechat_windows.windows([uid]))[uid].closed_at is None


async def test_contact_from_someone_the_shop_never_saw_changes_nothing(any_shop: Services) -> None:
    assert await any_shop.wechat_windows.contact("o-stranger", MESSAGE) == 0
    assert await query(any_shop, select(t.wechat_windows)) == []


async def test_a_wechat_pay_payment_opens_the_payers_window_and_releases_what_waited(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    uid = await wechat_user(shop)
    await queue(shop, uid, AwaitingManual("R-0"))
    await park_all(shop, clock)
    pid = await stocked(shop, 2)
    order = await shop.checkout.checkout(uid, pid, 1, "USD")
    await shop.payments.confirm_payment("wechatpay", "4200000001", order.ref, order.amount, "USD")
    window = (await shop.wechat_windows.windows([uid]))[uid]
    assert window.paid_at == clock.now() and window.closed_at is None
    assert window.left(clock.now() + timedelta(hours=47)) is None
    kinds = [(k, s) for k, s, _ in await statuses(shop)]
    assert kinds == [("order_awaiting_manual", "pending"), ("order_delivered", "pending")]


async def test_a_telegram_payment_opens_no_wechat_window(any_shop: Services) -> None:
    shop = any_shop
    uid = (await shop.users.ensure("telegram", "4242")).id
    pid = await stocked(shop, 1)
    order = await shop.checkout.checkout(uid, pid, 1, "USD")
    await shop.payments.confirm_payment("telegram", "ch-1", order.ref, order.amount, "USD")
    assert await shop.wechat_windows.windows([uid]) == {}


async def test_messages_sent_count_only_in_the_opening_they_were_sent_in(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    uid = await wechat_user(shop)
    await shop.wechat_windows.contact(OPENID, MESSAGE)
    first = clock.now()
    await shop.wechat_windows.count_sent([(uid, Spent(MESSAGE, first), 3)])
    assert (await shop.wechat_windows.windows([uid]))[uid].left(clock.now()) == 2
    clock.advance(minutes=5)
    await shop.wechat_windows.contact(OPENID, MESSAGE)  # a new message: five again
    await shop.wechat_windows.count_sent([(uid, Spent(MESSAGE, first), 2)])  # late news of the old one
    assert (await shop.wechat_windows.windows([uid]))[uid].left(clock.now()) == 5


async def test_openings_and_parks_racing_leave_nothing_parked_behind_an_opening(
    any_shop: Services, clock: FrozenClock
) -> None:
    """Whatever the order they commit in, a message refused before the user wrote ends due, never parked
    with the window open."""
    shop = any_shop
    uid = await wechat_user(shop)
    await queue(shop, uid, *(AwaitingManual(f"R-{i}") for i in range(6)))
    batch = await shop.outbox.claim("wechat")
    tried = clock.now()
    clock.advance(seconds=1)
    await asyncio.gather(
        shop.wechat_windows.contact(OPENID, MESSAGE),
        *(shop.wechat_windows.park(m.id, uid, tried_at=tried, why="45015", progress=0) for m in batch),
    )
    assert {s for _, s, _ in await statuses(shop)} == {"pending"}
    assert (await shop.wechat_windows.windows([uid]))[uid].closed_at is None
