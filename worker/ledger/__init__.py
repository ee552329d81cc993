"""The ledger: every message's record in Redis, its indexes, and the Lua that moves them."""
