"""A faithful local simulator of every gateway, in-process or over loopback HTTP.

    sandbox = Sandbox()
    session = sandbox.session()                  # every host mounted, no sockets
    provider = build_provider(sandbox.account("smsclub"), session=session)

`SandboxServer(sandbox).start()` serves the same apps over real HTTP (one
port per host, SMSC's mirrors each on their own) for integration tests, the
demo and the benchmarks.
"""

from __future__ import annotations

import importlib
from typing import Any

import requests

from providers.models import AccountConfig, Secret
from providers.sandbox.adapter import WSGIAdapter
from providers.sandbox.app import SandboxApp
from providers.sandbox.core import GatewaySimulator, SandboxState

SIMULATORS: dict[str, str] = {
    "smsru": "providers.sandbox.smsru:SmsRuSim",
    "smsclub": "providers.sandbox.smsclub:SmsClubSim",
    "smsc": "providers.sandbox.smsc:SmscSim",
    "gatum": "providers.sandbox.gatum:GatumSim",
    "sms1000": "providers.sandbox.sms1000:Sms1000Sim",
}


def register_simulator(name: str, target: str) -> None:
    """Add a simulator ("module:Class") for a gateway added with `providers.register`."""
    if name in SIMULATORS:
        raise ValueError(f"a simulator for {name!r} is already registered")
    SIMULATORS[name] = target


def unregister_simulator(name: str) -> None:
    SIMULATORS.pop(name, None)


def simulator_class(name: str) -> type[GatewaySimulator]:
    module_name, _, attr = SIMULATORS[name].partition(":")
    cls: type[GatewaySimulator] = getattr(importlib.import_module(module_name), attr)
    return cls


class Sandbox:
    """All five simulators over one shared state."""

    def __init__(self, state: SandboxState | None = None, *, names: list[str] | None = None,
                 **state_kw: Any) -> None:
        self.state = state or SandboxState(**state_kw)
        self.sims: dict[str, GatewaySimulator] = {
            name: simulator_class(name)(self.state) for name in (names or list(SIMULATORS))
        }
        self._urls: dict[str, str] = {}

    def apps(self) -> dict[str, SandboxApp]:
        """host label -> WSGI app, e.g. "smsc-www2" -> SMSC's second mirror."""
        return {host: SandboxApp(sim, host) for sim in self.sims.values() for host in sim.hosts}

    def host_url(self, host: str) -> str:
        return self._urls.get(host, f"http://{host}.sandbox")

    def use_urls(self, urls: dict[str, str]) -> None:
        """Point accounts at real listeners (the HTTP server calls this)."""
        self._urls = dict(urls)

    def session(self) -> requests.Session:
        """A session with every host mounted in-process."""
        session = requests.Session()
        for host, app in self.apps().items():
            session.mount(f"http://{host}.sandbox/", WSGIAdapter(app))
        return session

    def account(self, provider: str, name: str | None = None, **overrides: Any) -> AccountConfig:
        """An account for `provider` pointing at this sandbox, with its sandbox credentials."""
        sim = self.sims[provider]
        hosts = [self.host_url(h) + getattr(sim, "base_path", "") for h in sim.hosts]
        fields: dict[str, Any] = {
            "name": name or provider,
            "provider": provider,
            "credentials": {k: Secret(v) for k, v in sim.credentials.items()},
            "base_url": hosts[0],
            "mirrors": tuple(hosts[1:]),
            "options": {"sender": "smsq"},
        }
        fields.update(overrides)
        return AccountConfig(**fields)

    def env(self) -> dict[str, str]:
        """SMSQ_* settings that point a worker at this sandbox."""
        env: dict[str, str] = {}
        for name in self.sims:
            acc = self.account(name)
            prefix = f"SMSQ_{name.upper()}_"
            for key, value in acc.credentials.items():
                env[prefix + key.upper()] = value.reveal()
            env[prefix + "BASE_URL"] = acc.base_url or ""
            if acc.mirrors:
                env[prefix + "MIRRORS"] = ",".join(acc.mirrors)
            env[prefix + "SENDER"] = "smsq"
        return env
