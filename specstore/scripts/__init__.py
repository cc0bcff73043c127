"""Server-side Lua scripts for every multi-step write (one round trip, atomic)."""
