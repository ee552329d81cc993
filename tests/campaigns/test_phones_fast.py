"""The campaign's fast number path gives exactly providers.phones' answers."""

from __future__ import annotations

import random

import phonenumbers as pn
import pytest

from providers import phones
from providers.errors import ValidationError
from worker.campaigns.phones import PhoneCache


def reference(raw: str) -> object:
    try:
        e164 = phones.normalize(raw, "RU")
    except ValidationError as exc:
        return exc.message
    return e164, phones.time_zone(e164) or "Europe/Moscow"


def fast(cache: PhoneCache, raw: str) -> object:
    try:
        return cache.lookup(raw)
    except ValidationError as exc:
        return exc.message


def samples(n: int) -> list[str]:
    rnd = random.Random(7)
    examples = [pn.format_number(ex, pn.PhoneNumberFormat.E164)
                for region in sorted(pn.SUPPORTED_REGIONS)
                for kind in (pn.PhoneNumberType.MOBILE, pn.PhoneNumberType.FIXED_LINE)
                if (ex := pn.example_number_for_type(region, kind)) is not None]
    out = []
    for _ in range(n):
        k = rnd.random()
        if k < 0.3:
            out.append("+" + str(rnd.randrange(10**7, 10**15)))
        elif k < 0.45:
            out.append("8" + str(rnd.randrange(10**9, 10**10)))
        elif k < 0.55:
            out.append(str(rnd.randrange(10**9, 10**10)))
        elif k < 0.9:
            e = rnd.choice(examples)
            e = e[:-3] + f"{rnd.randrange(1000):03d}"
            out.append(e if rnd.random() < 0.5 else e[1:])
        else:
            out.append(f"+7 (9{rnd.randrange(100):02d}) {rnd.randrange(1000):03d}-"
                       f"{rnd.randrange(100):02d}-{rnd.randrange(100):02d}")
    return out


@pytest.mark.parametrize("zones", [True, False])
def test_fast_path_matches_phonenumbers(zones):
    """Random and every region's example numbers: same E.164, zone and error as the reference."""
    cache = PhoneCache("RU", "Europe/Moscow", zones=zones)
    for raw in samples(3000):
        want = reference(raw)
        if not zones and isinstance(want, tuple):
            want = (want[0], "Europe/Moscow")
        assert fast(cache, raw) == want, raw
