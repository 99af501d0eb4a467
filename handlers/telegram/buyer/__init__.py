"""The buyer's routers, one per feature: start (and the private catch-alls), catalog, checkout, paying
with the shop balance, orders, language, invite, share, withdraw. Private chats only, but for sharing
(/share in groups, inline queries); each module's ``build()`` returns a fresh router, and the dispatcher in
``handlers.telegram`` includes them in order."""
