"""Reading a request body within a size limit, whatever framing the client chose.

A body the receiver cannot read whole is refused with a status the gateway
retries (4xx/5xx, never the gateway's "accepted" answer): a report is never
acknowledged unless it was read and applied. With a Content-Length, exactly
that many bytes; with `Transfer-Encoding: chunked`, the chunks are decoded
here (wsgiref hands the raw stream over) or, when the server already
de-chunked (`wsgi.input_terminated`), read to the end; either way no more
than the limit is ever held.
"""

from __future__ import annotations

from typing import Any

MAX_CHUNK_LINE = 1024  # a chunk-size line: hex digits and optional extensions


class BodyRefused(Exception):
    """The body cannot be taken; `status` says how to answer."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def too_large(limit: int) -> BodyRefused:
    return BodyRefused("413 Payload Too Large", f"body larger than {limit} bytes")


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The whole body, at most `limit` bytes; BodyRefused when it cannot be read whole."""
    stream = environ["wsgi.input"]
    chunked = "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower()
    raw_length = str(environ.get("CONTENT_LENGTH") or "").strip()
    if chunked and not raw_length:
        if environ.get("wsgi.input_terminated"):
            body: bytes = stream.read(limit + 1)
            if len(body) > limit:
                raise too_large(limit)
            return body
        return read_chunked(stream, limit)
    if not raw_length:
        return b""
    if not raw_length.isdigit():
        raise BodyRefused("400 Bad Request", "bad content-length")
    length = int(raw_length)
    if length > limit:
        raise too_large(limit)
    body = stream.read(length) if length else b""
    if len(body) != length:
        raise BodyRefused("400 Bad Request", "body shorter than its content-length")
    return body


def read_chunked(stream: Any, limit: int) -> bytes:
    """Decode `Transfer-Encoding: chunked` from the raw stream (RFC 9112 7.1)."""
    parts: list[bytes] = []
    total = 0
    while True:
        size = _chunk_size(stream.readline(MAX_CHUNK_LINE + 1))
        if size == 0:
            _skip_trailers(stream)
            return b"".join(parts)
        total += size
        if total > limit:
            raise too_large(limit)
        data = stream.read(size)
        if len(data) != size or stream.read(2) != b"\r\n":
            raise BodyRefused("400 Bad Request", "chunked body ends inside a chunk")
        parts.append(data)


def _chunk_size(line: bytes) -> int:
    if len(line) > MAX_CHUNK_LINE or not line.endswith(b"\n"):
        raise BodyRefused("400 Bad Request", "bad chunk-size line")
    digits = line.split(b";", 1)[0].strip()
    if not digits or len(digits) > 16 or not all(c in b"0123456789abcdefABCDEF"
                                                  for c in digits):
        raise BodyRefused("400 Bad Request", "bad chunk-size line")
    return int(digits, 16)


def _skip_trailers(stream: Any) -> None:
    for _ in range(64):
        line = stream.readline(MAX_CHUNK_LINE + 1)
        if line in (b"\r\n", b"\n", b""):
            return
    raise BodyRefused("400 Bad Request", "too many chunked trailers")
