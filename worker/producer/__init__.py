"""Intake: a job checked and written to the ledger before anything is enqueued, from the
Python API (`submit`) or from `smsq.send` by name (`intake`)."""
