"""The drivers: they run the store's logic (generators of :mod:`specstore.calls`) against
Redis, blocking (:mod:`.sync`) or with asyncio (:mod:`.aio`)."""
