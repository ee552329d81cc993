"""deploy/env.example lists every setting smsq reads, with no secret values."""

from __future__ import annotations

import re

from providers import REGISTRY
from tests.deploy.conftest import DEPLOY, ROOT, SECRET

SOURCE = "\n".join(p.read_text() for p in sorted((ROOT / "worker" / "settings").glob("*.py")))
TEXT = (DEPLOY / "env.example").read_text()
LISTED = set(re.findall(r"^#?\s*(SMSQ_[A-Z0-9_]+)=", TEXT, flags=re.M))


def read_settings() -> set[str]:
    """Every SMSQ_ variable worker/settings/ reads, per-account ones for every gateway."""
    names = set(re.findall(r'"(SMSQ_[A-Z0-9_]+)"', SOURCE))
    suffixes = set(re.findall(r'prefix \+ "([A-Z_]+)"', SOURCE))
    suffixes |= set(re.findall(r'f"SMSQ_\{[^}]+\}_([A-Z_]+)"', SOURCE))
    for name, cls in REGISTRY.items():
        fields = {f.upper() for f in cls.credential_fields} | suffixes
        names |= {f"SMSQ_{name.upper()}_{field}" for field in fields}
    return names


def test_the_source_scan_finds_settings():
    """The scan itself works (guards the test against a silent empty set)."""
    found = read_settings()
    assert {"SMSQ_REDIS_URL", "SMSQ_SMSCLUB_TOKEN", "SMSQ_SMSC_MIRRORS"} <= found


def test_every_setting_is_listed():
    """Each variable worker/settings/ reads appears in env.example."""
    missing = sorted(read_settings() - LISTED)
    assert not missing, f"env.example lacks {missing}"


def test_nothing_listed_that_smsq_does_not_read():
    """env.example names no variable smsq ignores."""
    assert not sorted(LISTED - read_settings())


def test_no_secret_has_a_value():
    """Credentials and the webhook token are listed empty."""
    for key, value in re.findall(r"^#?\s*(SMSQ_[A-Z0-9_]+)=(\S*)", TEXT, flags=re.M):
        if SECRET.search(key):
            assert value == "", f"{key} has a value"


def test_values_carry_no_inline_comment():
    """systemd's EnvironmentFile would keep an inline comment as part of the value."""
    for line in TEXT.splitlines():
        if line.startswith("SMSQ_"):
            assert "#" not in line, line
