"""Campaign tasks (filled in by the campaigns work)."""
