"""SMSC's e-mail transport: the seed's `send_sms_mail`, one mail per send request.

The mail goes to send@send.smscentre.com with the whole order in its body,
`login:password:id:time:translit,format,sender:phones:message`. SMTP gives no
message id back, so a message sent this way is known by our client id only —
which is why a valid client id is required, and why every accepted result
carries it as `provider_message_id` (status.php then finds it by id + phone).
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Sequence
from typing import Any

from providers.errors import (
    GatewayUnavailable,
    MessageRejected,
    OutcomeUnknown,
    ProviderAuthError,
    SmsqError,
    ValidationError,
)
from providers.models import AccountConfig, OutgoingMessage, SendResult
from providers.phones import digits
from providers.smsc_codes import FORMATS, PROVIDER, SWITCHES, client_id

MAIL_TO = "send@send.smscentre.com"
DEFAULT_HOST = "send.smscentre.com"
DEFAULT_FROM = "api@smscentre.com"
SmtpFactory = Callable[..., smtplib.SMTP]


def format_number(options: Any) -> int:
    """The seed's numeric `format` (0 = plain SMS) from message options."""
    fmt = options.get("format", 0)
    if isinstance(fmt, int) and (fmt == 0 or fmt in FORMATS):
        return fmt
    names = {name: num for num, (name, _) in FORMATS.items() if num != 5}
    if isinstance(fmt, str) and fmt in names:
        return names[fmt]
    return next((names[s] for s in SWITCHES if options.get(s)), 0)


def mail_body(messages: Sequence[OutgoingMessage], login: str, password: str) -> bytes:
    """The seed's mail: a Content-Type header, a blank line, then the colon-separated order."""
    first = messages[0]
    cid = client_id(first.ref)
    if cid is None:
        raise ValidationError("SMTP sends need a client id SMSC accepts", field="ref")
    if len({m.text for m in messages}) != 1 or len({m.sender for m in messages}) != 1:
        raise ValidationError("one mail carries one text from one sender", field="text")
    opts = first.options
    order = ":".join([
        login, password, cid, str(opts.get("time", "")),
        f"{opts.get('translit', 0)},{format_number(opts)},{first.sender or ''}",
        ",".join(digits(m.recipient) for m in messages), first.text,
    ])
    text = "Content-Type: text/plain; charset=utf-8\r\n\r\n" + order.replace("\n", "\r\n")
    return text.encode("utf-8")


class SmscMail:
    """Sends through SMTP; host/port (and optional SMTP login) come from account options."""

    def __init__(self, account: AccountConfig, *, timeout: float = 10.0,
                 smtp_factory: SmtpFactory = smtplib.SMTP) -> None:
        self.account = account
        self.timeout = timeout
        self.smtp_factory = smtp_factory
        self.host = str(account.options.get("smtp_host", DEFAULT_HOST))
        self.port = int(account.options.get("smtp_port", 25))
        self.mail_from = str(account.options.get("smtp_from", DEFAULT_FROM))

    def _credential(self, key: str) -> str:
        value = self.account.credentials.get(key)
        return value.reveal() if value is not None else ""

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """One mail; accepted results carry our client id (SMTP returns no id)."""
        if not messages:
            return []
        login = self._credential("login")
        password = self._credential("password") if login else self._credential("apikey")
        body = mail_body(messages, login, password)
        self._deliver(body)
        cid = client_id(messages[0].ref)
        return [SendResult(m.ref, m.recipient, cid) for m in messages]

    def _deliver(self, body: bytes) -> None:
        try:
            server = self.smtp_factory(self.host, self.port, timeout=self.timeout)
        except (OSError, smtplib.SMTPException):
            raise GatewayUnavailable("SMTP server unreachable", provider=PROVIDER,
                                     never_reached=True) from None
        try:
            smtp_login = str(self.account.options.get("smtp_login", ""))
            if smtp_login:
                server.login(smtp_login, self._credential("smtp_password"))
            server.sendmail(self.mail_from, [MAIL_TO], body)
        except smtplib.SMTPResponseException as exc:
            raise classify_smtp(exc.smtp_code) from None
        except smtplib.SMTPRecipientsRefused:
            raise MessageRejected("recipient address refused", provider=PROVIDER) from None
        except (OSError, smtplib.SMTPException):
            raise OutcomeUnknown("SMTP session broke off", provider=PROVIDER) from None
        finally:
            _quit(server)


def classify_smtp(code: int) -> SmsqError:
    """An SMTP reply code: 535/550 credentials, other 5xx refusal, 4xx try later."""
    if code in (530, 535, 550):
        return ProviderAuthError("SMTP order refused: authorise error", provider=PROVIDER,
                                 code=code)
    if 500 <= code < 600:
        return MessageRejected("SMTP order refused", provider=PROVIDER, code=code)
    if 400 <= code < 500:
        return GatewayUnavailable("SMTP server busy", provider=PROVIDER, code=code)
    return OutcomeUnknown("unexpected SMTP reply", provider=PROVIDER, code=code)


def _quit(server: smtplib.SMTP) -> None:
    try:
        server.quit()
    except (OSError, smtplib.SMTPException):
        server.close()
