"""The buyer's routers, one per feature: start (and the private catch-alls), catalog, checkout, orders,
language, invite, withdraw. Private chats only; each module's ``build()`` returns a fresh router, and the
dispatcher in ``handlers.telegram`` includes them in order."""
