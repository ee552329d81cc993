"""Gateway clients: one module per gateway, the registry, and the one session builder.

Adding a gateway = one module here, one simulator in `providers/sandbox/`, one
line in `_MODULES` (and one in the sandbox's `SIMULATORS`), its settings in
`deploy/env.example` and a quirks test. A gateway that pushes delivery reports
sets `reports = True` and parses them in `parse_report`; optional features
(stop list, black list, server-side groups, bulk send) are the interfaces in
`providers.capabilities`. Nothing in worker/ changes.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

import requests
from requests.adapters import HTTPAdapter

from providers.base import DEFAULT_TIMEOUT, Provider, Throttle
from providers.errors import ConfigurationError
from providers.models import AccountConfig

_MODULES: dict[str, str] = {
    "smsru": "providers.smsru:SmsRu",
    "smsclub": "providers.smsclub:SmsClub",
    "smsc": "providers.smsc:Smsc",
    "gatum": "providers.gatum:Gatum",
    "sms1000": "providers.sms1000:Sms1000",
}


class _Registry(Mapping[str, type[Provider]]):
    """name -> provider class; modules are imported on first use."""

    def __init__(self, paths: dict[str, str]) -> None:
        self._paths = paths
        self._loaded: dict[str, type[Provider]] = {}

    def __getitem__(self, name: str) -> type[Provider]:
        if name not in self._loaded:
            module_name, _, attr = self._paths[name].partition(":")
            cls = getattr(importlib.import_module(module_name), attr)
            self._loaded[name] = cls
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def add(self, name: str, target: str | type[Provider]) -> None:
        if name in self._paths:
            raise ConfigurationError(f"gateway {name!r} is already registered")
        if isinstance(target, str):
            if target.count(":") != 1:
                raise ConfigurationError(f"gateway {name!r}: {target!r} is not 'module:Class'")
            self._paths[name] = target
            return
        if getattr(target, "name", None) != name:
            raise ConfigurationError(f"gateway {name!r}: class is named "
                                     f"{getattr(target, 'name', None)!r}")
        self._paths[name] = f"{target.__module__}:{target.__qualname__}"
        self._loaded[name] = target

    def remove(self, name: str) -> None:
        self._paths.pop(name, None)
        self._loaded.pop(name, None)


_REGISTRY = _Registry(_MODULES)
REGISTRY: Mapping[str, type[Provider]] = _REGISTRY


def register(name: str, target: str | type[Provider]) -> None:
    """Add a gateway: its class, or "module:Class" imported on first use.

    The five built-in gateways are the lines in `_MODULES`; this is for a gateway
    shipped elsewhere (or a test's throwaway one). Settings and the receiver
    find it through REGISTRY like any other.
    """
    _REGISTRY.add(name, target)


def unregister(name: str) -> None:
    """Forget a gateway added with `register` (a no-op for an unknown name)."""
    _REGISTRY.remove(name)


def build_session(pool_size: int = 16) -> requests.Session:
    """The only place a session is made: pooled keep-alive connections, no hidden retries."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def build_provider(
    account: AccountConfig,
    *,
    session: requests.Session | None = None,
    throttle: Throttle | None = None,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
) -> Provider:
    """A provider for `account`, on `session` (a new pooled one if not given)."""
    cls = REGISTRY[account.provider]
    return cls(session or build_session(), account, throttle=throttle, timeout=timeout)


__all__ = ["REGISTRY", "AccountConfig", "Provider", "build_provider", "build_session",
           "register", "unregister"]
