"""The emulated WeChat Pay platform over HTTP, driven by the shop's client where that is simplest and by raw
requests where its rules are the point (``tests.wechatpay_rig``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.wechatpay_rig import Rig, running_rig


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with running_rig(auto_settle_refunds=False) as r:
        yield r
