"""Reading accounts, routes and callback secrets from the environment (for `load`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers import REGISTRY
from providers.errors import ConfigurationError
from providers.models import AccountConfig, Secret


def number(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{key} must be a number, got {raw!r}") from None


def _account(env: Mapping[str, str], name: str, provider: str) -> AccountConfig | None:
    if provider not in REGISTRY:
        known = ", ".join(REGISTRY)
        raise ConfigurationError(f"account {name!r}: unknown provider {provider!r} ({known})")
    cls = REGISTRY[provider]
    prefix = f"SMSQ_{name.upper()}_"
    creds = {f: Secret(env[prefix + f.upper()]) for f in cls.credential_fields
             if env.get(prefix + f.upper())}
    if not creds:
        return None
    mirrors = tuple(u.strip() for u in env.get(prefix + "MIRRORS", "").split(",") if u.strip())
    rate = number(env, prefix + "RATE", cls.default_rate or 0.0) or None
    options = {"sender": env[prefix + "SENDER"]} if env.get(prefix + "SENDER") else {}
    return AccountConfig(name=name, provider=provider, credentials=creds,
                         base_url=env.get(prefix + "BASE_URL") or None, mirrors=mirrors,
                         rate_per_second=rate, options=options)


def accounts(env: Mapping[str, str]) -> dict[str, AccountConfig]:
    accounts: dict[str, AccountConfig] = {}
    pairs = [(p, p) for p in REGISTRY]
    for item in env.get("SMSQ_ACCOUNTS", "").split(","):
        if item.strip():
            name, _, provider = item.strip().partition(":")
            pairs.append((name.strip(), (provider or name).strip()))
    for name, provider in pairs:
        acc = _account(env, name, provider)
        if acc is not None:
            accounts[name] = acc
        elif name != provider:
            raise ConfigurationError(f"account {name!r} declared in SMSQ_ACCOUNTS has no "
                                     f"credentials (set SMSQ_{name.upper()}_...)")
    return accounts


def routes(env: Mapping[str, str], accounts: Mapping[str, AccountConfig]
            ) -> dict[str, tuple[str, ...]]:
    """`SMSQ_ROUTES="main=smsclub,smsc;ru=smsru,sms1000"`."""
    routes: dict[str, tuple[str, ...]] = {}
    for item in env.get("SMSQ_ROUTES", "").split(";"):
        if not item.strip():
            continue
        name, _, steps = item.partition("=")
        chain = tuple(s.strip() for s in steps.split(",") if s.strip())
        missing = [s for s in chain if s not in accounts]
        if not chain or missing:
            raise ConfigurationError(f"route {name.strip()!r} names unknown accounts {missing}")
        routes[name.strip()] = chain
    return routes


def callbacks(env: Mapping[str, str], accounts: Mapping[str, AccountConfig]
              ) -> dict[str, Any]:
    """`SMSQ_CALLBACK_SECRETS="billing=whsec_...;crm=whsec_..."`: secrets by name; and
    `SMSQ_<ACCOUNT>_CALLBACK` (as `SMSQ_CALLBACK`): an account's default subscription."""
    named: dict[str, str] = {}
    for item in env.get("SMSQ_CALLBACK_SECRETS", "").split(";"):
        name, sep, value = item.strip().partition("=")
        if not item.strip():
            continue
        if not sep or not name.strip() or not value.strip():
            raise ConfigurationError("SMSQ_CALLBACK_SECRETS takes name=secret pairs split by ';'")
        named[name.strip()] = value.strip()
    by_account = {name: env[f"SMSQ_{name.upper()}_CALLBACK"].strip() for name in accounts
                  if env.get(f"SMSQ_{name.upper()}_CALLBACK", "").strip()}
    return {
        "callback_secrets": named,
        "callback_accounts": by_account,
        "callback_finals_only": env.get("SMSQ_CALLBACK_FINALS_ONLY", "") in ("1", "true", "yes"),
        "callback_schemes": _words(env, "SMSQ_CALLBACK_SCHEMES") or ("https",),
        "callback_allowed_hosts": _words(env, "SMSQ_CALLBACK_ALLOWED_HOSTS"),
    }


def _words(env: Mapping[str, str], key: str) -> tuple[str, ...]:
    return tuple(w.strip().lower() for w in env.get(key, "").split(",") if w.strip())
