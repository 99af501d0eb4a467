"""The WeChat pages' sessions: a signed cookie names the buyer's openid until it expires, and an OAuth
``state`` is accepted back only for the page it was made for, unaltered and in time."""

from __future__ import annotations

from handlers.wechat.web.session import SESSION_TTL, STATE_TTL, Sessions

OPENID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def test_a_session_cookie_names_its_openid_until_it_expires() -> None:
    clock = Clock()
    s = Sessions("app-secret", clock)
    cookie = s.cookie(OPENID)
    assert s.openid(cookie) == OPENID
    clock.t += SESSION_TTL + 1
    assert s.openid(cookie) is None


def test_an_altered_or_foreign_cookie_is_no_session() -> None:
    s = Sessions("app-secret")
    cookie = s.cookie(OPENID)
    openid, expiry, mac = cookie.split(".")
    assert s.openid(f"oSomeoneElse.{expiry}.{mac}") is None  # another openid under the same signature
    assert s.openid(f"{openid}.{int(expiry) + 10**6}.{mac}") is None  # a longer life
    assert s.openid(Sessions("another-secret").cookie(OPENID)) is None
    for junk in ("", "x", "..", "a.b.c", "<script>.1.2", "o" * 500, None):
        assert s.openid(junk) is None


def test_an_oauth_state_is_accepted_only_for_its_own_page_and_in_time() -> None:
    clock = Clock()
    s = Sessions("app-secret", clock)
    state = s.state("/wechat/pay/ABCDEFGHIJKLMNOP")
    assert state.isalnum() and len(state) <= 128  # what WeChat passes back unchanged
    assert s.check_state(state, "/wechat/pay/ABCDEFGHIJKLMNOP")
    assert not s.check_state(state, "/wechat/order/ABCDEFGHIJKLMNOP")
    assert not s.check_state(state[:-1] + ("A" if state[-1] != "A" else "B"), "/wechat/pay/ABCDEFGHIJKLMNOP")
    assert not Sessions("another-secret", clock).check_state(state, "/wechat/pay/ABCDEFGHIJKLMNOP")
    clock.t += STATE_TTL + 1
    assert not s.check_state(state, "/wechat/pay/ABCDEFGHIJKLMNOP")
    for junk in ("", "0" * 60, "state", "ä" * 60):
        assert not s.check_state(junk, "/wechat/pay/ABCDEFGHIJKLMNOP")
