"""The store's logic, with no I/O: keys, stored records and Lua replies -> typed errors, the
Lua scripts, the calls an operation asks for, the operations and the fenced two-phase move
(as generators of calls), the repair rules, and what operations return. The drivers
(:mod:`specstore.drivers`) run it."""
