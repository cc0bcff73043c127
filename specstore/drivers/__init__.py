"""The drivers: they run the store's logic (generators of :mod:`specstore.core.calls`) against
Redis, blocking (:mod:`.sync`) or with asyncio (:mod:`.aio`)."""
