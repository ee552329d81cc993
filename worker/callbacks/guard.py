"""Where callback HTTP may go: allowed schemes, and no private address unless allowed.

A producer chooses the URL, so without this smsq would POST wherever it is
told: `file:`, the metadata service at 169.254.169.254, Redis on loopback.
The URL is checked when a job subscribes (scheme, credentials, literal
addresses) and again before every request, after DNS, so a name that later
resolves to a private address is refused too. Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from providers.errors import PermanentError, ValidationError
from worker.settings import Settings

Resolve = Callable[[str, int], list[str]]


class CallbackRefused(PermanentError):
    """The callback URL points somewhere smsq must not send to."""


def _system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def check_url(url: Any, cfg: Settings) -> str:
    """The URL if its form is acceptable, else ValidationError (no DNS here)."""
    if not isinstance(url, str) or not url or len(url) > 2000:
        raise ValidationError("callback.url must be a URL", field="callback")
    parts = urlsplit(url)
    if parts.scheme.lower() not in cfg.callback_schemes:
        allowed = ", ".join(cfg.callback_schemes)
        raise ValidationError(f"callback.url scheme {parts.scheme or '(none)'!r} is not "
                              f"allowed (allowed: {allowed})", field="callback")
    if not parts.hostname:
        raise ValidationError("callback.url has no host", field="callback")
    if parts.username or parts.password:
        raise ValidationError("callback.url must not carry credentials", field="callback")
    if any(c in url for c in "\r\n\t "):
        raise ValidationError("callback.url contains whitespace", field="callback")
    try:
        _check_host(parts.hostname, cfg, lambda host, port: [host] if _is_ip(host) else [])
    except CallbackRefused as exc:
        raise ValidationError(exc.message, field="callback") from None
    return url


def check_before_send(url: str, cfg: Settings, resolve: Resolve | None = None) -> None:
    """Raise CallbackRefused unless every address the host resolves to is allowed."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in cfg.callback_schemes or not parts.hostname:
        raise CallbackRefused("callback URL scheme or host not allowed")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise CallbackRefused("callback URL has a bad port") from None
    _check_host(parts.hostname, cfg, resolve or _system_resolve, port)


def _check_host(host: str, cfg: Settings, resolve: Resolve, port: int = 443) -> None:
    host = host.lower().rstrip(".")
    if host in cfg.callback_allowed_hosts:
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise CallbackRefused(f"callback host {host!r} is loopback (not in "
                              "SMSQ_CALLBACK_ALLOWED_HOSTS)")
    try:
        addresses = resolve(host, port)
    except OSError:
        raise CallbackRefused(f"callback host {host!r} does not resolve") from None
    for addr in addresses:
        ip = ipaddress.ip_address(addr.split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            raise CallbackRefused(f"callback host {host!r} is a private or reserved address "
                                  "(not in SMSQ_CALLBACK_ALLOWED_HOSTS)")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def display(url: str) -> str:
    """The URL without its query string or fragment (they may carry tokens)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
