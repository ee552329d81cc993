"""The gateway simulators served on loopback, for `smsq sandbox`, the demo and tests.

The CLI's door to `providers.sandbox`: this room is the only one allowed through it.
"""

from __future__ import annotations

from typing import Any


def ports_needed(queued_for: float, final_after: float) -> int:
    """How many consecutive ports a sandbox takes (one per gateway host, plus control)."""
    from providers.sandbox import Sandbox

    return len(Sandbox(queued_for=queued_for, final_after=final_after).apps()) + 1


def serve(host: str, port: int, *, queued_for: float, final_after: float) -> Any:
    """A started SandboxServer (call `.stop()` on it): `urls()`, `control_url`, `sandbox.env()`."""
    from providers.sandbox import Sandbox
    from providers.sandbox.server import SandboxServer

    sandbox = Sandbox(queued_for=queued_for, final_after=final_after)
    return SandboxServer(sandbox, host=host, port=port).start()
