"""A tiny SMTP front for the SMSC simulator (HELO/EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT).

It parses the seed's mail order `login:password:id:time:translit,format,sender:phones:message`
and records the messages through the simulator, so the SMTP path is tested end to end
over loopback with the real `smtplib`. Bad credentials answer 550 (the real gateway's
reply is undocumented; a permanent refusal is the closest honest shape).
"""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass
from typing import Any

from providers.sandbox.smsc import GATEWAY, SmscSim, good_phone, split_phones

HOST_LABEL = "smsc-smtp"


@dataclass(frozen=True)
class MailOrder:
    login: str
    password: str
    client_id: str
    time: str
    translit: str
    format: str
    sender: str
    phones: list[str]
    text: str


def parse_order(data: bytes) -> MailOrder | None:
    """The order in a mail's body (headers skipped); None when it has not 7 fields."""
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    _, sep, body = text.partition("\n\n")
    parts = (body if sep else text).rstrip("\n").split(":", 6)
    if len(parts) != 7:
        return None
    login, password, cid, when, opts, phones, message = parts
    translit, fmt, sender = ([*opts.split(",", 2), "", ""])[:3]
    return MailOrder(login, password, cid, when, translit, fmt, sender,
                     split_phones(phones), message)


def accept_order(sim: SmscSim, order: MailOrder) -> tuple[int, str]:
    """Record a mailed order; the SMTP reply (code, text) to give."""
    if not sim.authorised(order.login, order.password, "" if order.login else order.password):
        return 550, "5.7.1 authorise error"
    good = [(p, order.text) for p in order.phones if good_phone(p)]
    if not good:
        return 550, "5.1.1 invalid number"
    cid = order.client_id if order.client_id.strip("0") else ""
    msg_id = cid or str(sim.state.next_id(GATEWAY, 1))
    sim.record(HOST_LABEL, msg_id, good, order.sender or None, cid or None, via="smtp")
    return 250, f"2.0.0 queued as {msg_id}"


class _Handler(socketserver.StreamRequestHandler):
    server: SmscSmtpServer

    def reply(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode())

    def handle(self) -> None:
        self.reply("220 send.smscentre.com ESMTP sandbox")
        while raw := self.rfile.readline(65537):
            verb = raw.decode("utf-8", "replace").strip().split(" ", 1)[0].upper()
            if verb == "QUIT":
                self.reply("221 2.0.0 bye")
                return
            if verb == "EHLO":
                self.reply("250-send.smscentre.com")
                self.reply("250 8BITMIME")
            elif verb == "DATA":
                self.reply("354 end data with <CR><LF>.<CR><LF>")
                code, text = self.server.take(self._read_data())
                self.reply(f"{code} {text}")
            elif verb in ("HELO", "MAIL", "RCPT", "RSET", "NOOP"):
                self.reply("250 2.0.0 ok")
            else:
                self.reply("502 5.5.2 command not implemented")

    def _read_data(self) -> bytes:
        lines = []
        while (line := self.rfile.readline(65537)) and line.rstrip(b"\r\n") != b".":
            lines.append(line[1:] if line.startswith(b"..") else line)
        return b"".join(lines)


class SmscSmtpServer(socketserver.ThreadingTCPServer):
    """Loopback SMTP server in a daemon thread: `with SmscSmtpServer(sim) as srv: srv.port`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, sim: SmscSim, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.sim = sim
        self.mails: list[bytes] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def take(self, data: bytes) -> tuple[int, str]:
        self.mails.append(data)
        order = parse_order(data)
        if order is None:
            return 554, "5.6.0 cannot parse the order"
        return accept_order(self.sim, order)

    def start(self) -> SmscSmtpServer:
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> SmscSmtpServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
