"""The `smsq` command line: one module per command group."""
