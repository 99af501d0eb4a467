"""What a Telegram user sees: locale-keyed text, typed callback data, inline keyboards, and how keys are
shown. Rendering only: nothing here routes updates or calls a service that changes the shop; the buyer
and admin routers and the outbox sender all render through it."""
