"""The README's two receivers, run for real: the WSGI one takes smsq's signed POSTs and
refuses a forged one; the Celery task accepts an event as smsq sends it (as kwargs)."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import requests

from tests.callbacks.conftest import SECRET
from worker.callbacks import signing
from worker.callbacks.subscription import Subscription

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SECTION = README[README.index("## Status callbacks"):README.index("## Task names")]
BLOCKS = re.findall(r"```python\n(.*?)```", SECTION, flags=re.S)


def block(marker: str) -> str:
    (found,) = [b for b in BLOCKS if marker in b]
    return found


class Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def readme_receiver():
    code = block("def app(environ, start_response)").replace('"whsec_..."', repr(SECRET))
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)  # our own README
    server = make_server("127.0.0.1", 0, ns["app"], handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield ns, f"http://127.0.0.1:{server.server_port}/sms-status"
    server.shutdown()
    server.server_close()


def event(status: str = "delivered") -> dict:
    return {"id": f"job1.0:{status}", "type": f"message.{status}", "timestamp": 1.0,
            "data": {"message_id": "job1.0", "job_id": "job1", "status": status}}


def test_the_readme_wsgi_receiver_verifies_smsq_posts(readme_receiver, cb_engine, capsys):
    ns, url = readme_receiver
    sub = Subscription("url", url, "", "test")
    signing.post(cb_engine.cfg, sub, [event("sent")])
    signing.post(cb_engine.cfg, sub, [event()])
    signing.post(cb_engine.cfg, sub, [event()])  # a repeat: taken, not processed twice
    assert ns["seen"] == {"job1.0:sent", "job1.0:delivered"}
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["message.sent job1.0 sent", "message.delivered job1.0 delivered"]


def test_the_readme_wsgi_receiver_refuses_forgeries(readme_receiver, cb_engine):
    ns, url = readme_receiver
    msg_id, body = signing.message([event()], False)
    good = signing.headers(SECRET, msg_id, body)
    other = signing.headers("whsec_" + "QUJD" * 8, msg_id, body)
    for hdrs, data in ((other, body), (good, body.replace("delivered", "failed")),
                       ({"content-type": "application/json"}, body)):
        resp = requests.post(url, data=data.encode(), headers=hdrs, timeout=5)
        assert resp.status_code == 400
    assert ns["seen"] == set()
    assert requests.post(url, data=body.encode(), headers=good, timeout=5).status_code == 204


def test_the_readme_celery_receiver_takes_an_event_as_kwargs(capsys):
    code = block("@app.task").replace('broker="redis://redis:6379/0"', 'broker="memory://"')
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)  # our own README
    ns["sms_status"](**event())  # smsq sends the task with the event as its kwargs
    completed = {"id": "job1:completed", "type": "job.completed", "timestamp": 2.0,
                 "data": {"job_id": "job1", "total": 1, "counts": {"delivered": 1}}}
    ns["sms_status"](**completed)
    assert capsys.readouterr().out.splitlines() == ["message.delivered job1.0 delivered",
                                                    "job.completed None None"]
