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
    pay = "/wechat/pay/ABCDEFGHIJKLMNOP"
    state = s.state(pay)
    browser = s.state_nonce(state)
    assert state.isalnum() and len(state) <= 128  # what WeChat passes back unchanged
    assert s.check_state(state, pay, browser)
    assert not s.check_state(state, "/wechat/order/ABCDEFGHIJKLMNOP", browser)
    assert not s.check_state(state[:-1] + ("A" if state[-1] != "A" else "B"), pay, browser)
    assert not Sessions("another-secret", clock).check_state(state, pay, browser)
    clock.t += STATE_TTL + 1
    assert not s.check_state(state, pay, browser)
    for junk in ("", "0" * 60, "state", "ä" * 60):
        assert not s.check_state(junk, pay, browser)


def test_an_oauth_state_is_accepted_only_from_the_browser_it_was_made_for() -> None:
    s = Sessions("app-secret")
    pay = "/wechat/pay/ABCDEFGHIJKLMNOP"
    state, other = s.state(pay), s.state(pay)
    assert s.check_state(state, pay, s.state_nonce(state))
    for browser in (None, "", s.state_nonce(other), "ä" * 16, s.state_nonce(state)[:-1]):
        assert not s.check_state(state, pay, browser)
