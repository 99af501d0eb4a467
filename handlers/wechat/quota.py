"""A WeChat sender round's view of WeChat's limits: each user's window as the round knows it and what the
round spent of it, when a daily quota (45009) is counted again, and the backoff between retries."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, timezone

from core.windows import Spent, WechatWindow

BEIJING = timezone(timedelta(hours=8))  # WeChat's quotas turn at midnight there


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(300, 2 ** min(attempts, 9)))


def next_beijing_midnight(now: datetime) -> datetime:
    """The next midnight in Beijing after ``now``, in UTC (when a 45009 daily quota is counted again)."""
    local = now.astimezone(BEIJING)
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=BEIJING).astimezone(UTC)


@dataclass
class RoundUser:
    """One user's share of a round: their window as known, and whether they are parked now."""

    window: WechatWindow | None
    known_at: datetime  # when the window was read: an opening after it is newer than what we know
    parked: bool = False
    spent: dict[Spent, int] = field(default_factory=lambda: defaultdict(int))

    def closed(self, now: datetime) -> bool:
        return self.parked or (self.window is not None and self.window.left(now) == 0)

    def sent_one(self, now: datetime) -> None:
        if self.window is not None and self.window.left(now) != 0:
            self.window, spent = self.window.spend(now)
            if spent is not None:
                self.spent[spent] += 1
