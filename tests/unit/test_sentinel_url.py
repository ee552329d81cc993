"""The sentinel:// URL: one form, taken apart for redis-py and kombu; bad ones refused by
name; the password never in what smsq prints."""

from __future__ import annotations

import random

import pytest

from providers.errors import ConfigurationError
from worker import settings
from worker.transport.connection import redacted, sentinel_parts, target

URL = "sentinel://:s3cr3t-pw@127.0.0.1:26379,10.0.0.2:26380/smsq-main/2"


def test_the_url_is_taken_apart() -> None:
    found = sentinel_parts(URL)
    assert found.hosts == (("127.0.0.1", 26379), ("10.0.0.2", 26380))
    assert (found.service, found.db, found.password) == ("smsq-main", 2, "s3cr3t-pw")
    assert sentinel_parts("sentinel://h:1/svc").db == 0


def test_kombu_gets_its_own_form_and_the_sentinel_transport() -> None:
    conf = target(URL).celery_conf()
    assert conf["broker_url"] == "sentinel://127.0.0.1:26379;sentinel://10.0.0.2:26380/2"
    assert conf["broker_transport"] == "worker.transport.broker:SentinelTransport"
    assert conf["broker_transport_options"] == {"master_name": "smsq-main"}
    assert conf["broker_password"] == "s3cr3t-pw"
    plain = target("redis://127.0.0.1:6379/0").celery_conf()
    assert plain["broker_transport"] == "worker.transport.broker:Transport"


def test_names_never_show_the_password() -> None:
    t = target(URL)
    for shown in (str(t), t.where, repr(t), redacted(URL), repr(sentinel_parts(URL))):
        assert "s3cr3t-pw" not in shown
    assert str(t) == "sentinel://127.0.0.1:26379,10.0.0.2:26380/smsq-main"
    assert "s3cr3t-pw" not in repr(target("redis://:s3cr3t-pw@127.0.0.1:6379/0"))


@pytest.mark.parametrize("bad", [
    "sentinel://", "sentinel://h1:26379", "sentinel://h1:26379/", "sentinel://h1/svc",
    "sentinel://h1:0/svc", "sentinel://h1:99999/svc", "sentinel://:26379/svc",
    "sentinel://h1:26379,/svc", "sentinel://h1:26379/svc/x", "sentinel://:pw@h1:x/svc",
])
def test_bad_urls_are_refused_naming_the_form(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="sentinel://\\[:password@\\]host1:port1") as e:
        settings.load({"SMSQ_REDIS_URL": bad})
    assert "pw@" not in str(e.value)


def test_hostile_urls_fail_cleanly_and_never_echo_the_password() -> None:
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    alphabet = "ab:@/,;%\x00\u00e9 9:"
    for _ in range(500):
        tail = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 30)))
        url = f"sentinel://:TOPSECRET@{tail}"
        try:
            found = target(url).sentinel
        except ConfigurationError as exc:
            assert "TOPSECRET" not in str(exc), (seed, url)
            continue
        assert found is not None and found.service and found.hosts, (seed, url)
