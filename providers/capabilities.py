"""Optional gateway capabilities, as small interfaces the worker checks with `isinstance`.

Not every gateway has a stop list, a black list, server-side contact groups or
a bulk send to those groups. A gateway that has one declares it by
implementing the interface here; the worker asks `isinstance(provider,
StopList)` and never compares gateway names. Replies are already normalised:
the worker sees phone numbers and plain values, never a gateway's JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class StopList(Protocol):
    """An account-wide list of numbers the gateway will not send to, read whole."""

    def stoplist(self) -> Mapping[str, str]:
        """Every listed number (as the gateway writes it) -> its note."""
        ...


@runtime_checkable
class BlackList(Protocol):
    """A list of numbers the gateway will not send to, searched number by number."""

    def blacklisted(self, numbers: Sequence[str]) -> set[str]:
        """Those of `numbers` (E.164) that are on the list."""
        ...


@runtime_checkable
class ServerGroups(Protocol):
    """Contact groups stored at the gateway (to be sent to in one request)."""

    group_upload_chunk: int  # contacts per upload request

    def new_group(self, name: str) -> int:
        """Create a group; its id at the gateway."""
        ...

    def add_to_group(self, group_id: int,
                     members: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Upload (E.164 phone, contact fields) pairs into a group."""
        ...


@dataclass(frozen=True)
class BulkReceipt:
    """What a bulk send to groups was acknowledged with (values as the gateway gave them)."""

    sent_id: Any
    count: Any


@runtime_checkable
class BulkSend(Protocol):
    """One request that sends a text to whole server-side groups, maybe within a window."""

    def send_to_groups(self, sender: str, text: str, groups: Sequence[int], *,
                       excluded: Sequence[int], start: datetime,
                       window: tuple[time, time] | None) -> BulkReceipt:
        """Send to `groups` minus `excluded`, from the day of `start`, inside `window`."""
        ...
