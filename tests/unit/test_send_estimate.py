"""`smsq send` and `submit` say what a job takes before it is queued: SMS segments per
message and in total, the encoding, the estimated cost; a text over SMSQ_MAX_SEGMENTS is
refused naming the field; `--dry-run` queues nothing (real Redis, no worker)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from worker import api
from worker.cli import main as cli

CYRILLIC_2000 = ("Привет мир " * 182)[:2000]  # 2,000 UCS-2 characters: 30 segments
NUMBER = "+79161234567"


@pytest.fixture
def smsq_env(redis_server, redis_client, sandbox, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[dict[str, str]]:
    """This process as a producer of an SMSC account priced 0.35 per segment."""
    for key in [k for k in os.environ if k.startswith("SMSQ_")]:
        monkeypatch.delenv(key)
    env = {**sandbox.env(), "SMSQ_REDIS_URL": redis_server.url, "SMSQ_SMSC_PRICE": "0.35"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    api.reset()
    yield env
    api.reset()


def send(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["send", "--account", "smsc", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_long_cyrillic_text_is_refused_naming_the_field(smsq_env, redis_client, capsys):
    """The 2,000-character Cyrillic text that went out as 30 segments: exit 2, nothing
    written, the error names the text, its segments and the setting."""
    code, out, err = send(capsys, "--to", NUMBER, "--text", CYRILLIC_2000)
    assert code == 2 and out == ""
    assert "text" in err and "30 SMS segments (ucs2)" in err and "SMSQ_MAX_SEGMENTS allows 10" \
        in err
    assert redis_client.keys("smsq:*") == []
    with pytest.raises(Exception) as info:
        api.submit([NUMBER], CYRILLIC_2000, account="smsc")
    assert getattr(info.value, "field", None) == "text"


def test_the_limit_follows_the_setting(smsq_env, monkeypatch, capsys):
    """SMSQ_MAX_SEGMENTS=2 refuses 3 segments; 0 leaves only the gateway's own limit."""
    three = "a" * 400
    monkeypatch.setenv("SMSQ_MAX_SEGMENTS", "2")
    api.reset()
    code, _, err = send(capsys, "--to", NUMBER, "--text", three)
    assert code == 2 and "3 SMS segments (gsm7); SMSQ_MAX_SEGMENTS allows 2" in err
    monkeypatch.setenv("SMSQ_MAX_SEGMENTS", "0")
    api.reset()
    assert send(capsys, "--to", NUMBER, "--text", CYRILLIC_2000, "--json")[0] == 0
    code, _, err = send(capsys, "--account", "smsru", "--to", NUMBER, "--text", "b" * 1300)
    assert code == 2 and "the gateway allows 8" in err  # sms.ru's own limit still holds


def test_send_prints_segments_encoding_and_cost(smsq_env, capsys):
    """Text: "N segments each (UCS-2), M in total, est. cost X" with the ids."""
    text = "Ваш заказ 1234 передан в доставку. " * 3  # 105 UCS-2 characters: 2 segments
    code, out, _ = send(capsys, "--to", f"{NUMBER},+79161234568", "--text", text)
    first = out.splitlines()[0]
    assert code == 0, out
    assert first.endswith("2 message(s) queued; 2 segments each (UCS-2), 4 in total, "
                          "est. cost 1.40"), first
    assert len(out.splitlines()) == 3


def test_send_json_has_per_message_segments_and_cost(smsq_env, capsys):
    code, out, _ = send(capsys, "--to", NUMBER, "--text", "Code 4821", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["segments"] == [1] and data["total_segments"] == 1
    assert data["encodings"] == ["GSM-7"] and data["estimated_cost"] == 0.35
    assert data["price_per_segment"] == 0.35 and data["rejected"] == {}


def test_no_price_says_so(smsq_env, monkeypatch, capsys):
    monkeypatch.delenv("SMSQ_SMSC_PRICE")
    api.reset()
    code, out, _ = send(capsys, "--to", NUMBER, "--text", "hi")
    assert code == 0 and "1 segment each (GSM-7), 1 in total, no price set" in out
    assert json.loads(send(capsys, "--to", NUMBER, "--text", "hi", "--json")[1])[
        "estimated_cost"] is None


def test_dry_run_checks_and_estimates_but_queues_nothing(smsq_env, redis_client, capsys):
    text = "Скидка 20% на всё до воскресенья" * 3  # 96 UCS-2 characters: 2 segments
    code, out, _ = send(capsys, "--to", f"{NUMBER},+79161234568,+79161234569", "--text", text,
                        "--dry-run")
    assert code == 0
    assert out.startswith("dry run: 3 message(s), 2 segments each (UCS-2), 6 in total, "
                          "est. cost 2.10; nothing queued"), out
    assert redis_client.keys("*") == []
    data = json.loads(send(capsys, "--to", NUMBER, "--text", text, "--dry-run", "--json")[1])
    assert data == {"dry_run": True, "messages": 1, "segments": [2], "total_segments": 2,
                    "encodings": ["UCS-2"], "price_per_segment": 0.35, "estimated_cost": 0.7}
    code, _, err = send(capsys, "--to", "+7916abc", "--text", "hi", "--dry-run")
    assert code == 2 and "'+7916abc'" in err  # the same checks as a real send
    assert redis_client.keys("*") == []


def test_a_capped_recipient_is_shown_rejected(smsq_env, capsys):
    """The sixth OTP to one number within the hour: shown rejected, not counted in cost."""
    for _ in range(5):
        assert send(capsys, "--to", NUMBER, "--text", "Code 1", "--lane", "otp")[0] == 0
    code, out, _ = send(capsys, "--to", f"{NUMBER},+79160000000", "--text", "Code 2",
                        "--lane", "otp")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].endswith("1 message(s) queued, 1 rejected (recipient_cap); "
                             "1 segment each (GSM-7), 1 in total, est. cost 0.35"), lines[0]
    assert lines[1].endswith(".0  rejected: recipient_cap") and "rejected" not in lines[2]


def test_mixed_texts_are_described_by_range_and_encodings():
    """Per-recipient texts of different lengths and alphabets; a refused one counts 0."""
    from worker.producer.estimate import estimate

    est = estimate(["hi", "Привет, мир! " * 6, None], 0.1)
    assert est.segments == (1, 2, 0) and est.encodings == ("gsm7", "ucs2")
    assert est.describe() == "1-2 segments per message (GSM-7/UCS-2), 3 in total, est. cost 0.30"
    assert est.without({1}).total == 1 and estimate([None], None).describe() == "0 segments"
