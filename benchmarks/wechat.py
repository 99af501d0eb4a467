"""The WeChat official account against WeChat's deadline, and WeChat Pay's notifies through the shop:

    python benchmarks/wechat.py [--users 1000] [--rounds 3] [--notifies 1000]
    python benchmarks/wechat.py --database-url postgresql://postgres@127.0.0.1:5432/test   # drops its schema!

**Pushes.** ``--users`` followers, each new to the shop, write 商品 (the catalog: a few products) at the
same moment: that many signed safe-mode pushes (``encrypt_type=aes``, ``msg_signature``, the body in
``<Encrypt>``), built by the WeChat emulator exactly as it sends them (``Players.signed_push``), are fired
at once at the shop's real callback (``handlers.wechat.channel``, wired as ``keyshop sandbox --channel
wechat`` wires it: ``bot.wechat_sandbox``). Each does the shop's whole work: signature, decryption,
parsing, the once-only row, the new user's row, the catalog, the encrypted passive reply. WeChat waits
5 s for an answer, then retries and shows the buyer "该公众号暂时无法提供服务": each answer is timed from
its push's sending, p50/p99/max, and a **miss** is an answer later than 5 s or one WeChat would not accept
(checked after the run by the emulator's own reader, ``Players.read_reply``: a correctly encrypted
passive reply to that user, or ``success``). Target: 0 misses.

The baseline is the least any handler does for the same pushes: a bare aiohttp handler in this same
process that verifies the signature, decrypts, parses (``wechatpy.parse_message``) and answers an
encrypted passive text reply with the shop's catalog text (no database). The same pushes go to it with
new MsgIds. The ratios are the bare handler's wall time (first push sent to last answer) over keyshop's,
and the bare p99 over keyshop's (target >= 0.5); their CPU time per push is compared beside them (on a
loaded machine, where neither side has a core to itself, the wall times say less than the CPU). Each
round runs both (keyshop first in odd rounds, last in even ones, with new users each round: the
machine's speed drifts within a minute); the figures are the medians of the rounds' ratios.

**Notifies.** ``--notifies`` pending orders, each a buyer's, made through checkout and recorded as opened
at WeChat Pay as the pay page does (set-up, not measured); then as many TRANSACTION.SUCCESS notifies,
signed by the WeChat Pay emulator's key and encrypted with the APIv3 key exactly as it sends them, are
POSTed ``--notify-concurrency`` at a time to the shop's ``/wechat/pay/notify``. Every one must be answered
204 and every order end delivered (checked in the database; otherwise the run fails and exits non-zero).
Beside it, a bare aiohttp endpoint that only verifies and decrypts the same notifies with the shop's own
``WechatPay.parse_notify`` and answers 204: the ratio shows what confirming and delivering cost (no
target).

The pushes and notifies are fired from a process of their own (``benchmarks/pusher.py``: prepared bytes
on bare asyncio connections, one per push, so the pusher's own cost stays small), as WeChat's servers
are not on the shop's CPU: the shop and the bare handlers share this process, whose CPU time over each
run is printed per push (PostgreSQL's server is another process, not counted). Both push servers listen
with a backlog of ``--backlog`` (1024): with aiohttp's default of 128, a thousand connections arriving
faster than a busy event loop accepts them overflow the kernel's accept queue, and the dropped SYNs come
back a second later (TCP's retransmission), which would time the listener, not the handler (seen with
an aiohttp client as the pusher: 728 of 1,000 dropped; the pusher here connects slower and met none).
The shop runs on SQLite (a temporary file) by default, on PostgreSQL with ``--database-url``.

Exits non-zero when an answer was invalid (a wrong reply, an error status), a notify was not taken or
an order not delivered; late answers are counted, not failed.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import logging
import statistics
import sys
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web
from sqlalchemy import Connection, func, select
from wechatpy import create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

from benchmarks.common import fresh_database
from benchmarks.emulated import percentile
from benchmarks.pusher import Answered, PusherProcess, Request
from bot.heap import settle_heap
from bot.i18n import compile_catalogs
from bot.wechat_sandbox import AES_KEY, APP_ID, MCH_ID, TOKEN, WechatSandbox, start_wechat_sandbox
from core import tables as t
from core.context import Context, ShopConfig
from core.models import OrderStatus
from core.services import Services
from core.services.catalog import ProductDraft
from core.vault import Vault, new_key_spec
from handlers.wechat.pay import NotifyRejected, WechatPay
from sandbox.http import serve_app
from sandbox.wechat.players import InvalidReply
from sandbox.wechatpay import Order
from sandbox.wechatpay import crypto as pay_crypto

DEADLINE = 5.0  # WeChat waits this long for the passive reply (WECHAT.md)
TEXT = "商品"
PRODUCTS = (("腾讯视频 VIP 月卡", 1990), ("爱奇艺黄金会员 月卡", 1800), ("网易云音乐 黑胶 VIP 月卡", 1500))
WARM_UP = 5  # pushes to each side before the measured ones
SETUP_CONCURRENCY = 20  # checkouts at once while setting the notifies' orders up (not measured)
_MSG_IDS = itertools.count(31_000_000_000_000_001)  # WeChat's MsgIds are 64-bit numbers


# ---------------------------------------------------------------------------------------------- figures


@dataclass
class Run:
    label: str
    wall: float
    latencies: list[float]
    cpu: float
    missed: int = 0  # late or not a valid answer
    late: int = 0
    invalid: int = 0
    passive: int = 0  # answered with a passive reply (the rest valid: success)
    example: str = ""  # one invalid answer, for the report

    @property
    def n(self) -> int:
        return len(self.latencies)

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)

    def line(self, unit: str) -> str:
        one = {"pushes": "push", "notifies": "notify"}[unit]
        return (
            f"    {self.label:<34}{self.n:>6} {unit} in {self.wall:6.2f} s  {self.n / self.wall:7.0f}/s   "
            f"answer p50 {self.p(50):5.2f} s  p99 {self.p(99):5.2f} s  max {max(self.latencies):5.2f} s   "
            f"CPU {1000 * self.cpu / self.n:5.2f} ms/{one}"
        )


# ---------------------------------------------------------------------------------------------- the shop


async def open_shop(url: str | None, notifies: int, backlog: int) -> tuple[WechatSandbox, list[int]]:
    """A fresh database with a few products (the first with a key for each notify's order) and the
    shop's WeChat application served, wired to both emulators."""
    db = await fresh_database(url)
    services = Services(Context(db, Vault.from_spec(new_key_spec()), ShopConfig(currency="CNY")))
    pids = []
    for i, (name, price) in enumerate(PRODUCTS):
        pid = await services.catalog.add_product(ProductDraft(name=name, price=price, max_qty=5))
        keys = notifies if i == 0 else 10
        data = "".join(f"BENCH-{i}-{k:07d}\n" for k in range(keys)).encode()
        await services.stock.import_keys(pid, io.BytesIO(data), actor="bench")
        pids.append(pid)
    sandbox = await start_wechat_sandbox(services, compile_catalogs(), mode="safe", backlog=backlog)
    return sandbox, pids


async def close_shop(sandbox: WechatSandbox) -> None:
    await sandbox.close()
    await sandbox.services.ctx.db.dispose()


# ---------------------------------------------------------------------------------------------- pushes


def openid(round_no: int, i: int, side: str) -> str:
    return f"oBench{side}{round_no:02d}{i:019d}"  # 28 characters, as WeChat's


def pushes(sandbox: WechatSandbox, openids: Iterable[str]) -> list[Request]:
    """A text push of 商品 from each, signed and sealed by the emulator as WeChat sends it (new MsgIds)."""
    made = []
    for who in openids:
        fields = {"MsgType": "text", "Content": TEXT, "MsgId": str(next(_MSG_IDS))}
        query, body = sandbox.emu.signed_push(who, fields)
        made.append((query, {"Content-Type": "text/xml"}, body))
    return made


def judged(
    label: str, sandbox: WechatSandbox, openids: list[str], wall: float, got: list[Answered], cpu: float
) -> Run:
    """Each answer as WeChat takes it (the emulator's reader): late, invalid, passive or ``success``."""
    run = Run(label, wall, [seconds for seconds, _, _ in got], cpu)
    for who, (seconds, status, text) in zip(openids, got, strict=True):
        valid = True
        try:
            if status != 200:
                raise InvalidReply(f"HTTP {status} {text[:80]}")
            run.passive += sandbox.emu.read_reply(who, text) is not None
        except InvalidReply as e:
            valid = False
            run.invalid += 1
            run.example = run.example or str(e)
        run.late += seconds > DEADLINE
        run.missed += seconds > DEADLINE or not valid
    return run


class BareHandler:
    """The baseline: what any handler of these pushes must do (signature, decryption, parsing, an
    encrypted passive reply), with no database and no dialogue; it answers every push with ``reply``."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)

    async def push(self, request: web.Request) -> web.Response:
        q = request.query
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        try:
            check_signature(TOKEN, q.get("signature", ""), timestamp, nonce)
            body = await request.read()
            plain = self.crypto.decrypt_message(body, q.get("msg_signature", ""), timestamp, nonce)
        except InvalidSignatureException:
            return web.Response(status=403)
        msg = parse_message(plain)
        reply = create_reply(self.reply, msg).render()
        sealed = self.crypto.encrypt_message(reply, nonce, str(int(time.time())))
        return web.Response(text=sealed, content_type="application/xml")


async def serve_bare(handler: Any, path: str, backlog: int) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post(path, handler)
    runner, base = await serve_app(app, backlog=backlog)
    return runner, base + path


async def push_round(
    pusher: PusherProcess, sandbox: WechatSandbox, bare_url: str, users: int, round_no: int
) -> tuple[Run, Run]:
    """One round: ``users`` new followers push 商品 at once to keyshop, and the same to the bare handler
    (keyshop first in odd rounds)."""
    shop_url = sandbox.shop_url + "/wechat"
    ours_ids = [openid(round_no, i, "K") for i in range(users)]
    bare_ids = [openid(round_no, i, "B") for i in range(users)]
    for who in ours_ids:
        sandbox.emu.follower(who)

    async def ours() -> Run:
        wall, got, cpu = await pusher.fire(shop_url, pushes(sandbox, ours_ids))
        # what the pushes left running once answered (each user's window recorded) is theirs too
        began = time.process_time()
        await sandbox.callback.settle()
        return judged("keyshop callback", sandbox, ours_ids, wall, got, cpu + time.process_time() - began)

    async def bare() -> Run:
        wall, got, cpu = await pusher.fire(bare_url, pushes(sandbox, bare_ids))
        return judged("bare aiohttp handler (no database)", sandbox, bare_ids, wall, got, cpu)

    if round_no % 2:
        k = await ours()
        b = await bare()
    else:
        b = await bare()
        k = await ours()
    return k, b


def push_lines(k: Run, b: Run) -> list[str]:
    return [
        k.line("pushes"),
        f"      missed WeChat's 5 s: {k.missed}  (late {k.late}, invalid {k.invalid}; answered passively "
        f"{k.passive}, success {k.n - k.passive - k.invalid}){'  e.g. ' + k.example if k.example else ''}",
        b.line("pushes"),
        f"      missed WeChat's 5 s: {b.missed}  (late {b.late}, invalid {b.invalid})"
        f"{'  e.g. ' + b.example if b.example else ''}",
        f"    ratio bare/keyshop               wall {b.wall / k.wall:5.2f}   p99 {b.p(99) / k.p(99):5.2f}"
        f"   CPU per push {b.cpu / k.cpu:5.2f}",
    ]


# ---------------------------------------------------------------------------------------------- notifies


async def bounded(coros: Iterable[Awaitable[Any]], n: int) -> list[Any]:
    gate = asyncio.Semaphore(n)

    async def one(c: Awaitable[Any]) -> Any:
        async with gate:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


async def pending_orders(sandbox: WechatSandbox, pid: int, n: int) -> list[tuple[str, str, int]]:
    """``n`` buyers each with a pending order of one key, opened at WeChat Pay as the pay page opens it:
    (buyer's openid, order reference, amount)."""
    services = sandbox.services

    async def one(i: int) -> tuple[str, str, int]:
        who = openid(99, i, "P")
        user = await services.users.ensure("wechat", who, language="zh_CN")
        order = await services.checkout.checkout(user.id, pid, 1, "CNY")
        await services.wechat_pay.opened(order.ref, "JSAPI")
        return who, order.ref, order.amount

    return await bounded((one(i) for i in range(n)), SETUP_CONCURRENCY)


def notify(sandbox: WechatSandbox, i: int, payer: str, ref: str, amount: int) -> Request:
    """TRANSACTION.SUCCESS for order ``ref`` paid by ``payer``: the resource as the WeChat Pay emulator
    shows a paid order, sealed with the APIv3 key and signed by its key, as its notifier sends it."""
    platform = sandbox.platform
    now = platform.now()
    paid = Order(
        out_trade_no=ref,
        trade_type="JSAPI",
        appid=APP_ID,
        description="bench",
        total=amount,
        notify_url=sandbox.pay.config.notify_url,
        time_expire=now + 900,
        params={},
        openid=payer,
        trade_state="SUCCESS",
        transaction_id=f"4200002{i:011d}{int(now) % 10**10:010d}",
        success_time=now,
        payer=payer,
    )
    resource = json.dumps(paid.transaction(MCH_ID, platform.rfc3339), ensure_ascii=False).encode()
    envelope = {
        "id": f"EV-BENCH-{i:08d}",
        "create_time": platform.rfc3339(now),
        "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": {
            "original_type": "transaction",
            **pay_crypto.seal(platform.api_v3_key, resource, "transaction"),
        },
    }
    body = json.dumps(envelope, ensure_ascii=False).encode()
    headers = platform.sign_notify(body) | {"Content-Type": "application/json", "User-Agent": "Mozilla/4.0"}
    return {}, headers, body


class BareNotify:
    """The baseline: the notify verified and decrypted by the shop's own client, answered 204."""

    def __init__(self, pay: WechatPay) -> None:
        self.pay = pay

    async def notify(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            self.pay.parse_notify(request.headers, body)
        except NotifyRejected as e:
            return web.json_response({"code": "FAIL", "message": e.reason}, status=401)
        return web.Response(status=204)


async def delivered(sandbox: WechatSandbox, refs: list[str]) -> int:
    def count(conn: Connection) -> int:
        o = t.orders
        q = select(func.count()).where(o.c.ref.in_(refs), o.c.status == OrderStatus.DELIVERED.value)
        return int(conn.execute(q).scalar_one())

    return await sandbox.services.ctx.db.read(count)


def notify_run(label: str, wall: float, got: list[Answered], cpu: float) -> Run:
    run = Run(label, wall, [seconds for seconds, _, _ in got], cpu)
    for _, status, text in got:
        if status != 204:
            run.invalid += 1
            run.example = run.example or f"HTTP {status} {text[:80]}"
    return run


# ---------------------------------------------------------------------------------------------- main


async def measure_pushes(
    pusher: PusherProcess, sandbox: WechatSandbox, users: int, rounds: int, backlog: int
) -> bool:
    """Warm both sides up, then ``rounds`` rounds; False when an answer was not valid."""
    warm = [openid(0, i, "W") for i in range(WARM_UP)]
    for who in warm:
        sandbox.emu.follower(who)
    _, got, _ = await pusher.fire(sandbox.shop_url + "/wechat", pushes(sandbox, warm))
    await sandbox.callback.settle()
    catalog = sandbox.emu.read_reply(warm[0], got[0][2]) or ""  # what the bare handler answers
    runner, bare_url = await serve_bare(BareHandler(catalog).push, "/bare", backlog)
    try:
        await pusher.fire(bare_url, pushes(sandbox, warm))
        settle_heap()  # as keyshop run does once the shop is up
        valid = True
        wall_ratios, p99_ratios, cpu_ratios = [], [], []
        for r in range(1, rounds + 1):
            k, b = await push_round(pusher, sandbox, bare_url, users, r)
            print(f"  round {r}")
            for text in push_lines(k, b):
                print(text)
            wall_ratios.append(b.wall / k.wall)
            p99_ratios.append(b.p(99) / k.p(99))
            cpu_ratios.append(b.cpu / k.cpu)
            valid &= k.invalid == b.invalid == 0
        print(
            f"  median of {rounds} round(s)            wall {statistics.median(wall_ratios):5.2f}   "
            f"p99 {statistics.median(p99_ratios):5.2f}   (bare/keyshop, target >= 0.5)   "
            f"CPU per push {statistics.median(cpu_ratios):5.2f}"
        )
        return valid
    finally:
        await runner.cleanup()


async def measure_notifies(
    pusher: PusherProcess, sandbox: WechatSandbox, pid: int, notifies: int, concurrency: int
) -> bool:
    """The notifies through keyshop, then the same through the bare endpoint; False unless every one was
    taken and every order delivered."""
    orders = await pending_orders(sandbox, pid, notifies)
    requests = [notify(sandbox, i, who, ref, amount) for i, (who, ref, amount) in enumerate(orders)]
    runner, bare_url = await serve_bare(BareNotify(sandbox.pay).notify, "/bare-notify", 128)
    try:
        wall, got, cpu = await pusher.fire(sandbox.shop_url + "/wechat/pay/notify", requests, concurrency)
        k = notify_run("keyshop /wechat/pay/notify", wall, got, cpu)
        wall, got, cpu = await pusher.fire(bare_url, requests, concurrency)
        b = notify_run("bare verify + decrypt, 204", wall, got, cpu)
    finally:
        await runner.cleanup()
    done = await delivered(sandbox, [ref for _, ref, _ in orders])
    print(k.line("notifies"))
    print(
        f"      answered 204: {k.n - k.invalid} of {k.n}   orders delivered: {done} of {notifies}"
        f"{'  e.g. ' + k.example if k.example else ''}"
    )
    print(b.line("notifies"))
    print(f"      answered 204: {b.n - b.invalid} of {b.n}{'  e.g. ' + b.example if b.example else ''}")
    print(
        f"    ratio keyshop/bare                 {(k.n / k.wall) / (b.n / b.wall):5.2f} notifies/s   "
        "(what confirming and delivering cost; no target)"
    )
    if k.invalid or b.invalid or done != notifies:
        print(f"  FAILED: {k.invalid} notifies not taken, {notifies - done} orders not delivered")
        return False
    return True


async def run(url: str | None, users: int, rounds: int, notifies: int, concurrency: int, backlog: int) -> int:
    kind = "postgresql" if url else "sqlite"
    sandbox, pids = await open_shop(url, notifies, backlog)
    try:
        async with PusherProcess() as pusher:
            print(
                f"wechat benchmark: {kind}, {users} followers new to the shop write {TEXT} (the catalog, "
                f"{len(PRODUCTS)} products) at once, safe mode; pushes fired from a process of their own; "
                f"{rounds} round(s), keyshop first in odd rounds; listen backlog {backlog} on both sides"
            )
            ok = await measure_pushes(pusher, sandbox, users, rounds, backlog)
            if notifies:
                print(
                    f"wechat pay notifies: {kind}, {notifies} TRANSACTION.SUCCESS notifies of pending "
                    f"orders, {concurrency} at a time"
                )
                ok &= await measure_notifies(pusher, sandbox, pids[0], notifies, concurrency)
    finally:
        await close_shop(sandbox)
    return 0 if ok else 1


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=1000, help="followers pushing at once")
    ap.add_argument("--rounds", type=int, default=3, help="keyshop/bare pairs of push runs")
    ap.add_argument("--notifies", type=int, default=1000, help="WeChat Pay notifies (0: none)")
    ap.add_argument("--notify-concurrency", type=int, default=10)
    ap.add_argument(
        "--backlog",
        type=int,
        default=1024,
        help="listen backlog of both push servers (aiohttp's default, 128, drops SYNs of a larger burst)",
    )
    ap.add_argument(
        "--database-url", help="default: a temporary SQLite file (PostgreSQL: its schema is dropped)"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # an answer past 4 s is logged by the callback one line each: the figures count them
    logging.getLogger("handlers.wechat.callback").setLevel(logging.ERROR)
    return await run(
        args.database_url,
        args.users,
        max(1, args.rounds),
        max(0, args.notifies),
        max(1, args.notify_concurrency),
        args.backlog,
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
