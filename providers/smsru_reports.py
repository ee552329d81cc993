"""sms.ru's delivery reports: the callback POST, its `hash`, and the provider's parse_report.

sms.ru posts `data[N]` items (`sms_status\\n<id>\\n<code>\\n<ts>`, plus other
kinds smsq ignores) and expects the body "100" back; with the optional hash
enabled, `hash` is sha256 over the api_id and the items in order.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence

from providers.errors import MalformedResponse
from providers.models import AccountConfig, StatusResult
from providers.reports import ParsedReport, ReportReply, form_pairs
from providers.smsru_codes import PROVIDER, as_float, as_int, status_for

_DATA_KEY = re.compile(r"data(?:\[(\d*)\])?")


def callback_items(form: Mapping[str, str] | list[tuple[str, str]]) -> list[str]:
    """The `data[0]`, `data[1]`, … values of a callback POST, in index order."""
    pairs = list(form.items()) if isinstance(form, Mapping) else list(form)
    found: list[tuple[int, int, str]] = []
    for position, pair in enumerate(pairs):
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise MalformedResponse("callback form is not name/value pairs", provider=PROVIDER)
        key, value = pair
        match = _DATA_KEY.fullmatch(key) if isinstance(key, str) else None
        if match is None:
            continue
        if not isinstance(value, str):
            raise MalformedResponse("callback data item is not text", provider=PROVIDER)
        index = int(match.group(1)) if match.group(1) else position
        found.append((index, position, value))
    return [value for _, _, value in sorted(found)]


def parse_callback_item(item: str) -> StatusResult | None:
    """One `sms_status\\n<id>\\n<code>\\n<ts>` item; other kinds (callcheck_status) are None."""
    lines = [line.strip() for line in item.replace("\r", "").split("\n")]
    if not lines or lines[0] != "sms_status":
        return None
    if len(lines) < 3 or not lines[1] or as_int(lines[2]) is None:
        raise MalformedResponse("callback sms_status item is incomplete", provider=PROVIDER)
    code = as_int(lines[2])
    return StatusResult(provider_message_id=lines[1], status=status_for(code),
                        raw_code=str(code), updated_at=as_float(lines[3]) if len(lines) > 3
                        else None)


def parse_callback(form: Mapping[str, str] | list[tuple[str, str]]) -> list[StatusResult]:
    """Every message status in an sms.ru callback POST; the receiver answers CALLBACK_ACK."""
    results = [parse_callback_item(item) for item in callback_items(form)]
    return [r for r in results if r is not None]


CALLBACK_ACK = "100"


def callback_hash(api_id: str, items: list[str]) -> str:
    """sha256 hex of api_id followed by the data items in order (the `hash` field)."""
    return hashlib.sha256((api_id + "".join(items)).encode("utf-8", "surrogatepass")).hexdigest()


def verify_callback(api_id: str, form: Mapping[str, str] | list[tuple[str, str]]) -> bool:
    """True when the form's `hash` matches its data items; compared in constant time."""
    pairs = list(form.items()) if isinstance(form, Mapping) else list(form)
    given = next((v for k, v in pairs if k == "hash" and isinstance(v, str)), "")
    expected = callback_hash(api_id, callback_items(form))
    given_bytes = given.lower().encode("utf-8", "replace")
    return bool(given) and hmac.compare_digest(given_bytes, expected.encode())


def _api_ids(accounts: Sequence[AccountConfig]) -> list[str]:
    return [a.credentials["api_id"].reveal() if "api_id" in a.credentials else ""
            for a in accounts]


class SmsRuReports:
    """sms.ru's side of the report receiver (mixed into `SmsRu`)."""

    @classmethod
    def parse_report(cls, body: bytes, content_type: str) -> ParsedReport:
        """A callback POST -> its sms_status results; sms.ru wants "100" back."""
        results = parse_callback(form_pairs(body, content_type))
        return results, ReportReply("text/plain", CALLBACK_ACK.encode())

    @classmethod
    def verify_report(cls, body: bytes, content_type: str,
                      accounts: Sequence[AccountConfig]) -> bool:
        """The `hash` matches the items under the api_id of one of `accounts`."""
        form = form_pairs(body, content_type)
        return any(verify_callback(api_id, form) for api_id in _api_ids(accounts))
