"""What a pushed delivery report is made of, before any gateway reads it.

A gateway that pushes reports parses them itself (`Provider.parse_report`);
this module holds what they share: the acknowledgement a receiver answers
with, and the two body shapes gateways post forms in (urlencoded, multipart).
Like every parser in providers/, these raise an smsq error on bad input,
never anything else, so the receiver can answer 400 instead of crashing.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
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


def multipart_pairs(body: bytes, content_type: str) -> FormPairs:
    """The named parts of a multipart/form-data body (undecodable bytes replaced)."""
    msg = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    out = []
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            out.append((str(name), data.decode("utf-8", "replace")))
    return out
