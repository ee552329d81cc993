"""A table of bad inputs, each through the Python API, the CLI and `smsq.send` enqueued by
name: a clear error naming the problem, and nothing partially written or enqueued."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from celery import Celery

from providers.errors import ConfigurationError, SmsqError, ValidationError
from tests.integration.conftest import use_stack, wait_for
from tests.reliability.conftest import snapshot
from worker import api, settings
from worker.cli import main as cli
from worker.local.stack import Stack

pytestmark = pytest.mark.integration

OK = "+79161234567"
BASE: dict[str, Any] = {"recipients": [OK], "text": "hello", "account": "smsru"}
SKIP = object()


@dataclass(frozen=True)
class Case:
    id: str
    kwargs: dict[str, Any]
    words: tuple[str, ...]  # what the error must say (lower-case substrings, all of them)
    cli: list[str] | object | None = None  # argv for `smsq send`; SKIP when not expressible
    drop: tuple[str, ...] = field(default=())  # BASE keys to leave out

    def call(self) -> dict[str, Any]:
        args = {k: v for k, v in BASE.items() if k not in self.drop}
        args.update(self.kwargs)
        return args

    def argv(self) -> list[str] | None:
        if self.cli is SKIP:
            return None
        if isinstance(self.cli, list):
            return ["send", *self.cli]
        out = ["send"]
        for key, value in self.call().items():
            flag = {"recipients": "--to", "text": "--text", "account": "--account",
                    "route": "--route", "sender": "--sender", "job_id": "--job-id",
                    "idempotency_key": "--idempotency-key"}.get(key)
            if flag is None or not isinstance(value, str | list):
                return None
            if isinstance(value, list):
                if not all(isinstance(v, str) and v.strip() and "," not in v for v in value):
                    return None
                value = ",".join(value)
            out += [flag, value]
        return out


LONG_GSM = "Hello world, this is long. " * 50          # 1350 chars: 9 GSM segments
LONG_UCS = "Привет, это длинный текст. " * 21         # 567 chars: 9 UCS-2 segments
CASES = [
    Case("short-number", {"recipients": ["12345"]}, ("recipient", "not")),
    Case("short-plus", {"recipients": ["+7916123"]}, ("recipient", "not")),
    Case("long-number", {"recipients": ["+7916123456789012345678"]}, ("recipient",)),
    Case("very-long-number", {"recipients": ["7" * 60]}, ("recipient", "too long")),
    Case("letters", {"recipients": ["not-a-number"]}, ("recipient",)),
    Case("letters-inside", {"recipients": ["+7916abc4567"]}, ("recipient", "letters")),
    Case("no-digits", {"recipients": ["+-()"]}, ("recipient", "digits")),
    Case("empty-number", {"recipients": [""]}, ("recipient", "empty"), cli=SKIP),
    Case("blank-number", {"recipients": ["   "]}, ("recipient", "empty"), cli=SKIP),
    Case("zeros", {"recipients": ["+0000000000"]}, ("recipient",)),
    Case("double-plus", {"recipients": ["++7916123456"]}, ("recipient",)),
    Case("bool-number", {"recipients": [True]}, ("recipient", "string")),
    Case("float-number", {"recipients": [79161234567.0]}, ("recipient", "string")),
    Case("none-number", {"recipients": [None]}, ("recipient", "string")),
    Case("one-bad-of-two", {"recipients": [OK, "bad"]}, ("recipient", "#2")),
    Case("recipients-str", {"recipients": OK}, ("recipients", "list"), cli=SKIP),
    Case("recipients-empty", {"recipients": []}, ("recipients", "no recipients"),
         cli=["--text", "hi", "--account", "smsru"]),
    Case("recipients-dict", {"recipients": {"a": 1}}, ("recipients", "list")),
    Case("recipients-nested", {"recipients": [[OK]]}, ("recipient", "string")),
    Case("empty-text", {"text": ""}, ("text", "empty")),
    Case("blank-text", {"text": "  \n "}, ("text", "empty")),
    Case("none-text", {"text": None}, ("text",), cli=SKIP),
    Case("int-text", {"text": 12345}, ("text",)),
    Case("dict-text", {"text": {"a": 1}}, ("text",)),
    Case("text-9-gsm-segments", {"text": LONG_GSM}, ("text", "segments", "allows 8")),
    Case("text-9-ucs2-segments", {"text": LONG_UCS}, ("text", "segments", "allows 8")),
    Case("text-over-5000", {"text": "x" * 5001, "account": "smsc"}, ("text", "5000")),
    Case("unknown-account", {"account": "nosuch"}, ("account", "unknown account", "nosuch")),
    Case("int-account", {"account": 7}, ("account", "string")),
    Case("unknown-route", {"route": "nosuch"}, ("route", "nosuch"), drop=("account",)),
    Case("route-bad-step", {"route": ["smsru", "ghost"]}, ("route", "ghost"),
         drop=("account",)),
    Case("route-empty-list", {"route": []}, ("route",), drop=("account",)),
    Case("account-and-route", {"route": "smsru"}, ("route", "not both")),
    Case("no-account", {}, ("account", "no account"), drop=("account",)),
    Case("sender-too-long", {"sender": "ThisSenderIsTooLong"}, ("sender",)),
    Case("sender-cyrillic", {"sender": "Магазин"}, ("sender",)),
    Case("sender-int", {"sender": 123}, ("sender",)),
    Case("options-not-object", {"options": "fast"}, ("options", "object")),
    Case("messages-and-recipients", {"messages": [{"to": OK, "text": "x"}]},
         ("messages", "not both")),
    Case("messages-no-to", {"messages": [{"text": "hi"}]}, ("messages", "'to'"),
         drop=("recipients",)),
    Case("messages-str", {"messages": "hello"}, ("messages",), drop=("recipients",)),
    Case("messages-empty-text", {"messages": [{"to": OK, "text": ""}]}, ("text", "empty"),
         drop=("recipients", "text")),
    Case("job-id-chars", {"job_id": "bad id!"}, ("job_id",)),
    Case("job-id-long", {"job_id": "j" * 41}, ("job_id",)),
    Case("idem-empty", {"idempotency_key": ""}, ("idempotency_key",), cli=SKIP),
    Case("idem-long", {"idempotency_key": "k" * 201}, ("idempotency_key",)),
    Case("idem-int", {"idempotency_key": 5}, ("idempotency_key",)),
    Case("too-many-recipients", {"recipients": [OK] * 100_001}, ("recipients", "100000"),
         cli=SKIP),
]
TASK_ONLY = [
    Case("unknown-kwarg", {"colour": "red"}, ("colour",)),
    Case("two-unknown-kwargs", {"priority": 1, "ttl": 5}, ("priority", "ttl")),
    Case("missing-text", {}, ("text",), drop=("text",)),
    Case("missing-recipients", {}, ("recipients",), drop=("recipients",)),
    Case("nothing-at-all", {}, ("no account",), drop=("recipients", "text", "account")),
]


def describe(exc: BaseException) -> str:
    return str(exc).lower()


def has_words(message: str, words: tuple[str, ...]) -> bool:
    return all(w.lower() in message.lower() for w in words)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    s = Stack(queued_for=0.3, final_after=1.5, poll_interval=1.0)
    s.start(workers=1, concurrency=2, beat=False, receiver=False)
    use_stack(s)
    yield s
    s.stop()
    api.reset()


@pytest.fixture(scope="module")
def r(stack: Stack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.redis_url or "")
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _point_at_stack(stack: Stack) -> None:
    use_stack(stack)


def quiet(client: redis.Redis) -> dict[bytes, Any]:
    """The ledger and broker state, minus Celery's own bookkeeping of idle workers."""
    return {k: v for k, v in snapshot(client).items() if not k.startswith(b"_kombu.binding")}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_api_refuses_and_writes_nothing(case: Case, r: redis.Redis) -> None:
    """worker.api.submit raises ValidationError naming the field; Redis is unchanged."""
    before = quiet(r)
    with pytest.raises(ValidationError) as info:
        api.submit(**case.call())
    assert has_words(describe(info.value), case.words), str(info.value)
    assert info.value.field and info.value.field.rstrip("s") in describe(info.value)
    assert quiet(r) == before


@pytest.mark.parametrize("case", [c for c in CASES if c.argv() is not None],
                         ids=lambda c: c.id)
def test_cli_exits_2_naming_the_problem(case: Case, r: redis.Redis,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """`smsq send ...` prints one error line naming the problem and exits 2."""
    before = quiet(r)
    code = cli.main(case.argv())
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("smsq: error: ") and err.count("\n") == 1
    words = case.words if case.id != "recipients-empty" else ("no recipients",)
    assert has_words(err, words), err
    assert quiet(r) == before


def _job_error(job: str) -> str | None:
    try:
        data = api.job_status(job)
    except ValidationError:
        return None
    ids = api.engine().ledger.job_ids(job)
    reasons = [s.get("reason") or "" for s in api.get_status(ids)] if ids else []
    return f"{data.get('error') or ''} {' '.join(reasons)}"


def test_tasks_by_name_end_rejected_with_reason(stack: Stack, r: redis.Redis) -> None:
    """Every bad input sent as `smsq.send` by name ends as a rejected job saying why."""
    client = Celery(broker=stack.redis_url)
    cases = [c for c in [*CASES, *TASK_ONLY] if c.id != "too-many-recipients"
             and not c.id.startswith("job-id") and c.id != "one-bad-of-two"]
    for i, case in enumerate(cases):
        client.send_task("smsq.send", queue="smsq", kwargs={**case.call(), "job_id": f"bad{i}"})
    assert wait_for(lambda: all(_job_error(f"bad{i}") is not None
                                for i in range(len(cases))), timeout=60)
    for i, case in enumerate(cases):
        job = api.job_status(f"bad{i}")
        assert set(job["counts"]) <= {"rejected"}, (case.id, job)
        said = _job_error(f"bad{i}") or ""
        per_number = tuple("phone number" if w == "recipient" else w for w in case.words)
        assert has_words(said, case.words) or has_words(said, per_number), (case.id, said)
    assert r.zcard("smsq:q") == 0
    assert all(r.llen(f"smsq.{gw}") == 0 for gw in ("smsru", "smsc", "smsclub"))
    client.close()


def test_task_rejects_only_the_bad_number(stack: Stack) -> None:
    """By name, a job with one bad number sends the good one; the bad one is rejected."""
    client = Celery(broker=stack.redis_url)
    client.send_task("smsq.send", queue="smsq", kwargs={**BASE, "recipients": [OK, "bad"],
                                                        "job_id": "mixed1"})
    assert wait_for(lambda: _job_error("mixed1") is not None, timeout=30)
    (good, bad) = api.get_status(["mixed1.0", "mixed1.1"])
    assert bad["status"] == "rejected" and "phone number" in (bad["reason"] or "")
    assert good["status"] != "rejected"
    client.close()


def test_task_with_bad_job_id_still_ends_rejected(stack: Stack, r: redis.Redis) -> None:
    """A malformed job_id does not make the task vanish: a job of its own records why."""
    client = Celery(broker=stack.redis_url)
    before = set(r.zrange("smsq:jobs", 0, -1))
    client.send_task("smsq.send", queue="smsq", kwargs={**BASE, "job_id": "bad id!"})
    assert wait_for(lambda: len(set(r.zrange("smsq:jobs", 0, -1)) - before) == 1, timeout=30)
    (job,) = set(r.zrange("smsq:jobs", 0, -1)) - before
    data = api.job_status(job.decode())
    assert "job_id" in (data["error"] or "") and set(data["counts"]) <= {"rejected"}
    client.close()


def test_idempotency_key_reused_with_other_content(stack: Stack, r: redis.Redis,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A key reused with different content is refused on every channel; the first job stands."""
    first = api.submit([OK], "original", account="smsru", idempotency_key="reuse-1")
    time.sleep(0.5)
    before = {k: v for k, v in quiet(r).items() if not k.startswith((b"smsq:m:", b"smsq:job:",
                                                                     b"smsq:rl", b"smsq:p:",
                                                                     b"smsq:pid", b"smsq:s"))}
    with pytest.raises(ValidationError, match="different content"):
        api.submit([OK], "changed", account="smsru", idempotency_key="reuse-1")
    assert cli.main(["send", "--to", OK, "--text", "changed", "--account", "smsru",
                     "--idempotency-key", "reuse-1"]) == 2
    assert "idempotency_key" in capsys.readouterr().err
    client = Celery(broker=stack.redis_url)
    client.send_task("smsq.send", queue="smsq", kwargs={
        "recipients": [OK], "text": "changed", "account": "smsru",
        "idempotency_key": "reuse-1", "job_id": "reuse-task"})
    assert wait_for(lambda: _job_error("reuse-task") is not None, timeout=30)
    assert "different content" in (_job_error("reuse-task") or "")
    assert api.job_status(first.job_id)["total"] == 1
    assert r.get(b"smsq:idem:reuse-1") == before[b"smsq:idem:reuse-1"]
    client.close()


def test_unknown_message_and_job_ids(r: redis.Redis, capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    """Status of ids that never existed: a clear error naming them, on API and CLI."""
    for bad in (["nope.0"], ["abc.1", "abc.2"]):
        with pytest.raises(ValidationError, match=bad[0]):
            api.get_status(bad)
    for bad_arg in ([], "abc.1", None, [None]):
        with pytest.raises(ValidationError):
            api.get_status(bad_arg)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="nojob"):
        api.job_status("nojob")
    assert cli.main(["status", "nope.0"]) == 2
    assert "nope.0" in capsys.readouterr().err
    assert cli.main(["status", "--job", "nojob"]) == 2
    assert "nojob" in capsys.readouterr().err
    assert cli.main(["status"]) == 2
    assert "ids" in capsys.readouterr().err


def test_missing_credentials_named_at_start(stack: Stack) -> None:
    """An account declared without credentials fails settings with the variable to set."""
    env = {k: v for k, v in stack.env().items() if k.startswith("SMSQ_")}
    env["SMSQ_ACCOUNTS"] = "backup:smsru"
    with pytest.raises(ConfigurationError, match="SMSQ_BACKUP_"):
        settings.load(env)
    for key in [k for k in env if k.startswith("SMSQ_SMSC_")]:
        del env[key]
    del env["SMSQ_ACCOUNTS"]
    cfg = settings.load(env)
    assert "smsc" not in cfg.accounts
    with pytest.raises(SmsqError, match="unknown account 'smsc'"):
        cfg.account("smsc")


def test_cli_without_credentials_names_the_account(stack: Stack,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`smsq send --account smsc` on a machine without SMSC credentials: exit 2, says so."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SMSQ_SMSC_")}
    api.reset()
    try:
        assert cli.main(["send", "--to", OK, "--text", "hi", "--account", "smsc"]) == 2
        assert "unknown account 'smsc'" in capsys.readouterr().err
    finally:
        os.environ.update(saved)
        api.reset()


def test_table_has_at_least_forty_cases() -> None:
    """The issue asks for at least 40 distinct bad inputs."""
    assert len(CASES) + len(TASK_ONLY) >= 40
