"""The shop itself, framework-free: models, services, unit of work, repositories, vault, errors.

Nothing in this package imports aiogram, wechatpy, aiohttp or apscheduler, so every channel (Telegram, WeChat,
the scheduler, the CLI) calls the same services.
"""
