"""What a pushed delivery report is made of, before any gateway reads it.

A gateway that pushes reports parses them itself (`Provider.parse_report`);
this module holds what they share: the acknowledgement a receiver answers
with, and the two body shapes gateways post forms in (urlencoded, multipart).
Like every parser in providers/, these raise an smsq error on bad input,
never anything else, so the receiver can answer 400 instead of crashing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from providers.errors import SmsqError
from providers.models import StatusResult

FormPairs = list[tuple[str, str]]


@dataclass(frozen=True)
class ReportReply:
    """The answer a gateway expects for a report it pushed (anything else: it pushes again)."""

    content_type: str
    body: bytes
    status: int = 200


ParsedReport = tuple[list[StatusResult], ReportReply]


def form_pairs(body: bytes, content_type: str) -> FormPairs:
    """A posted form's name/value pairs, urlencoded or multipart, in their order."""
    if "multipart/form-data" in content_type:
        return multipart_pairs(body, content_type)
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise SmsqError("report body is not a form") from None


MAX_PARTS = 200


def multipart_pairs(body: bytes, content_type: str) -> FormPairs:
    """Flat multipart/form-data: one pass over the body, nested multiparts refused (a
    report is a few text fields; recursion would let a body choose our stack depth)."""
    boundary = _boundary(content_type)
    chunks = body.split(b"--" + boundary)
    if len(chunks) < 3 or len(chunks) > MAX_PARTS + 2:
        raise SmsqError(f"multipart body needs 1-{MAX_PARTS} parts and a closing boundary")
    out = []
    for chunk in chunks[1:-1]:
        head, sep, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise SmsqError("multipart part without headers")
        headers = head.decode("latin-1")
        if re.search(r"content-type:\s*multipart", headers, flags=re.IGNORECASE):
            raise SmsqError("nested multipart is not a report")
        found = re.search(r'content-disposition:[^\n]*;\s*name="?([^";\r\n]*)', headers,
                          flags=re.IGNORECASE)
        if found and found.group(1):
            out.append((found.group(1), data.removesuffix(b"\r\n").decode("utf-8", "replace")))
    return out


def _boundary(content_type: str) -> bytes:
    found = re.search(r'boundary="?([^";]{1,70})', content_type, flags=re.IGNORECASE)
    if not found:
        raise SmsqError("multipart body without a boundary")
    return found.group(1).strip().encode("latin-1", "replace")
