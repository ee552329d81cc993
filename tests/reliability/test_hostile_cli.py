"""Hostile input to the CLI: one line naming the problem, exit 2 (bad input), 1 (anything
else) or 130 (Ctrl-C), never a traceback. Redis-free cases run in-process; the ones about
pipes, signals and ports run `smsq` as a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.sandbox.server import free_port
from worker import api
from worker.cli import main as cli
from worker.local.embedded import EmbeddedRedis

DEAD = f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def env_redis(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in [k for k in os.environ if k.startswith("SMSQ_")]:
        monkeypatch.delenv(key)
    yield
    api.reset()


DOWN = [["campaign", "list"], ["campaign", "show", "c1"], ["campaign", "pause", "c1"],
        ["campaign", "report", "c1"], ["campaign", "create", "--csv", "x.csv", "--text", "hi"],
        ["suppress", "list"], ["suppress", "add", "+79161234567"], ["group", "list"],
        ["group", "show", "g1"], ["status", "a.0"], ["send", "--to", "+79161234567",
                                                   "--text", "hi", "--account", "smsru"]]


@pytest.mark.parametrize("argv", DOWN, ids=lambda a: "-".join(a[:2]))
def test_redis_unreachable_is_one_line_exit_1(argv: list[str], env_redis: None,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Every command with Redis down: `cannot reach Redis at <url>` (or the ledger's own
    message), exit 1 (2 when the input is refused first), no traceback."""
    monkeypatch.setenv("SMSQ_REDIS_URL", DEAD)
    monkeypatch.setenv("SMSQ_SMSRU_API_ID", "x")
    monkeypatch.setenv("SMSQ_PRODUCER_TIMEOUT", "0.5")
    api.reset()
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("smsq: error: "), err
    assert "Traceback" not in err
    assert code == (2 if argv[1] == "create" else 1), err
    if code == 1:
        assert "Redis" in err and ("127.0.0.1" in err or "unreachable" in err), err


@pytest.mark.parametrize("url,shown", [("notaurl", "'notaurl'"),
                                       ("http://x:6379", "'http://x:6379'"),
                                       ("redis://:hunter2@[::1", "unparseable"),
                                       ("redis://u:hunter2@h:1/0", "u:***@h:1")])
def test_bad_redis_url_is_exit_2_without_password(url: str, shown: str, env_redis: None,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """SMSQ_REDIS_URL that is no Redis URL: exit 2 naming it; a password is never shown."""
    monkeypatch.setenv("SMSQ_REDIS_URL", url)
    api.reset()
    code = cli.main(["campaign", "list"])
    err = capsys.readouterr().err
    assert "hunter2" not in err and "Traceback" not in err
    if url.startswith("redis://u:"):  # a valid URL to nowhere: unreachable, exit 1
        assert code == 1 and shown in err
    else:
        assert code == 2 and "SMSQ_REDIS_URL" in err and shown in err, err


def test_send_file_missing_is_exit_2(env_redis: None, capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    """`smsq send --file /nonexistent`: exit 2 naming the file."""
    assert cli.main(["send", "--file", "/nonexistent", "--text", "hi"]) == 2
    err = capsys.readouterr().err
    assert err == "smsq: error: /nonexistent: No such file or directory\n"


def test_typo_in_number_is_shown_as_typed(env_redis: None, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The error shows the number the user typed (logs keep it masked)."""
    monkeypatch.setenv("SMSQ_SMSRU_API_ID", "x")
    monkeypatch.setenv("SMSQ_REDIS_URL", DEAD)
    api.reset()
    assert cli.main(["send", "--to", "+7916abc4567", "--text", "hi", "--account",
                     "smsru"]) == 2
    assert "'+7916abc4567'" in capsys.readouterr().err


@pytest.mark.parametrize("argv,words", [
    (["sandbox", "--port", "65535"], "past 65535"),
    (["sandbox", "--port", "70000"], "not a port number"),
    (["webhooks", "--port", "-1"], "not a port number"),
    (["webhooks", "--port", "http"], "not a port number"),
])
def test_impossible_ports_are_exit_2(argv: list[str], words: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A port outside 0-65535 (or a sandbox range past it): exit 2 naming it."""
    assert cli.main(argv) == 2
    assert words in capsys.readouterr().err


def test_sandbox_port_taken_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    """`smsq sandbox --port N` with N taken: exit 1 naming the port, at once."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert cli.main(["sandbox", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is not free" in err and err.count("\n") == 1


# -- as real processes ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = EmbeddedRedis().start()
    yield server.url
    server.cleanup()


def smsq_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSQ_")}
    env.update({"SMSQ_REDIS_URL": redis_url, "SMSQ_SMSRU_API_ID": "x",
                "SMSQ_WEBHOOK_TOKEN": "tok", "PYTHONPATH": os.getcwd(), **extra})
    return env


def smsq(*args: str) -> list[str]:
    return [sys.executable, "-m", "worker.cli.main", *args]


def _campaign(redis_url: str, cid: str, n: int) -> None:
    from worker.campaigns import service as campaigns
    from worker.engine import Engine
    from worker.settings import load

    engine = Engine(load(smsq_env(redis_url)))
    campaigns.create(engine, text="hi", recipients=[f"+7916{i:07d}" for i in range(n)],
                     account="smsru", campaign_id=cid, draft=True)


@pytest.mark.integration
def test_report_json_into_head_is_quiet(redis_url: str) -> None:
    """`campaign report --json | head -1`: JSON, and no BrokenPipe traceback."""
    _campaign(redis_url, "pipe1", 3000)
    proc = subprocess.run(" ".join(smsq("campaign", "report", "pipe1", "--json"))
                          + " | head -c 200", shell=True, env=smsq_env(redis_url),
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.startswith('[{"id": "pipe1.0"'), proc.stdout
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") <= 1, proc.stderr


@pytest.mark.integration
def test_report_out_into_missing_dir_is_exit_2(redis_url: str, tmp_path: Path) -> None:
    """`campaign report --out /missing/dir/x.csv`: exit 2 naming the path, no file."""
    _campaign(redis_url, "out1", 2)
    target = tmp_path / "missing" / "x.csv"
    proc = subprocess.run(smsq("campaign", "report", "out1", "--out", str(target)),
                          env=smsq_env(redis_url), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr == \
        f"smsq: error: {target}: No such file or directory\n"
    unknown = subprocess.run(smsq("campaign", "report", "nope", "--out", str(tmp_path / "n")),
                             env=smsq_env(redis_url), capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and not (tmp_path / "n").exists()


@pytest.mark.integration
def test_ctrl_c_in_show_follow_is_130(redis_url: str) -> None:
    """Ctrl-C in `campaign show --follow`: exit 130, one line, no traceback."""
    _campaign(redis_url, "follow1", 2)
    proc = subprocess.Popen(smsq("campaign", "show", "follow1", "--follow"),
                            env=smsq_env(redis_url), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.rstrip("\n").split("\n")[-1].endswith("interrupted")


@pytest.mark.integration
def test_webhooks_port_0_prints_the_bound_port(redis_url: str) -> None:
    """`smsq webhooks --port 0` prints the port it really listens on."""
    proc = subprocess.Popen(smsq("webhooks", "--port", "0"), env=smsq_env(redis_url),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        assert port != 0
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


@pytest.mark.integration
def test_webhooks_port_taken_is_exit_1(redis_url: str) -> None:
    """`smsq webhooks --port N` with N taken: exit 1, one line, no traceback."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = subprocess.run(smsq("webhooks", "--port", str(port)), env=smsq_env(redis_url),
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "in use" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
