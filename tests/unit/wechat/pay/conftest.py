"""The shop's WeChat Pay client against the emulated platform over HTTP (``tests.wechatpay_rig``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.wechatpay_rig import Rig, running_rig


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with running_rig(auto_settle_refunds=False) as r:
        yield r
