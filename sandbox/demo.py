"""The demo catalog ``keyshop sandbox`` opens with: two categories, three products (unique keys, membership
codes, a shared password) and their keys. Added through the core services, so any channel's sandbox can use
it."""

from __future__ import annotations

import io

from core.models import DeliveryKind
from core.services import Services
from core.services.catalog import ProductDraft


async def seed_demo(services: Services) -> None:
    """A small catalog with keys, once (the sandbox keeps its own database between runs)."""
    if await services.catalog.products():
        return
    games = await services.catalog.add_category("Games 游戏")
    memberships = await services.catalog.add_category("Memberships 会员")
    steam = await services.catalog.add_product(
        ProductDraft(
            name="Steam Wallet 10 USD",
            description="Redeem on Steam. 在 Steam 兑换。",
            price=990,
            price_stars=50,
            category_id=games,
            max_qty=5,
            low_stock_threshold=3,
        )
    )
    vpn = await services.catalog.add_product(
        ProductDraft(
            name="VPN 30 days",
            description="Membership code. 会员激活码。",
            price=490,
            price_stars=25,
            category_id=memberships,
            validity_days=30,
            user_limit=2,
            user_limit_hours=24,
        )
    )
    wifi = await services.catalog.add_product(
        ProductDraft(
            name="Lounge Wi-Fi",
            description="Shared password. 通用卡密。",
            price=100,
            price_stars=5,
            category_id=memberships,
            delivery_kind=DeliveryKind.SHARED,
            max_qty=1,
        )
    )
    await services.stock.import_keys(
        steam, io.BytesIO("".join(f"STEAM-DEMO-{i:04d}-KEY\n" for i in range(25)).encode())
    )
    await services.stock.import_keys(
        vpn, io.BytesIO("".join(f"VPN-DEMO-{i:04d}\n" for i in range(10)).encode())
    )
    await services.stock.set_shared_key(wifi, "lounge-2026-demo")
