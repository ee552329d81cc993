"""The sentinel:// URL: one form, taken apart for redis-py and kombu; bad ones refused by
name; the password never in what smsq prints."""

from __future__ import annotations

import random
from pathlib import Path

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
    # the db on every sentinel: kombu reads it from the one it connects through
    assert conf["broker_url"] == "sentinel://127.0.0.1:26379/2;sentinel://10.0.0.2:26380/2"
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


@pytest.mark.parametrize("scheme", ["sentinel", "sentinel+tls"])
def test_hostile_urls_fail_cleanly_and_never_echo_the_password(scheme: str) -> None:
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    alphabet = "ab:@/,;%\x00\u00e9 9:"
    for _ in range(500):
        tail = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 30)))
        url = f"{scheme}://:TOPSECRET@{tail}"
        try:
            found = target(url).sentinel
        except ConfigurationError as exc:
            assert "TOPSECRET" not in str(exc), (seed, url)
            continue
        assert found is not None and found.service and found.hosts, (seed, url)


def test_sentinel_tls_url_settings_and_refusals(tmp_path: Path) -> None:
    """The URL's TLS reaches both redis-py and kombu; TLS options on plain sentinel:// are
    refused naming the TLS form."""
    ca = str(tmp_path / "ca.pem")
    cfg = settings.load({"SMSQ_REDIS_URL": "sentinel+tls://h1:26379,h2:26379/smsq",
                         "SMSQ_REDIS_TLS_CA": ca})
    t = target(cfg)
    assert t.tls and str(t) == "sentinel+tls://h1:26379,h2:26379/smsq"
    found = t.sentinel
    assert found is not None and found.ssl["ssl"] is True and found.ssl["ssl_ca_certs"] == ca
    conf = t.celery_conf()
    assert conf["broker_url"] == "sentinel://h1:26379/0;sentinel://h2:26379/0"
    assert conf["broker_use_ssl"]["ssl_ca_certs"] == ca
    kwargs = conf["broker_transport_options"]["sentinel_kwargs"]
    assert kwargs["ssl"] is True and kwargs["ssl_ca_certs"] == ca
    with pytest.raises(ConfigurationError, match="sentinel\\+tls://"):
        settings.load({"SMSQ_REDIS_URL": "sentinel://h1:26379/smsq", "SMSQ_REDIS_TLS_CA": ca})
    plain = target("sentinel://h1:26379/smsq").celery_conf()
    assert "broker_use_ssl" not in plain
    assert "sentinel_kwargs" not in plain["broker_transport_options"]


@pytest.mark.parametrize("url", ["sentinel://:s3cr3t-pw@h1:26379,h2:26380/smsq/3",
                                 "sentinel+tls://h1:26379,h2:26380/smsq/3"])
def test_a_broker_failover_keeps_password_transport_tls_and_db(url: str, tmp_path: Path) -> None:
    """kombu's own URL failover re-parsed the next sentinel URL and dropped the password and
    smsq's transport class; every reconnect after a failover was then refused. smsq's
    strategy keeps them all, whatever the number of failovers."""
    from kombu import Connection

    env = {"SMSQ_REDIS_URL": url}
    if "+tls" in url:
        env.update(SMSQ_REDIS_PASSWORD="s3cr3t-pw", SMSQ_REDIS_TLS_CA=str(tmp_path / "ca.pem"))
    conf = target(settings.load(env)).celery_conf()
    conn = Connection(conf["broker_url"], password=conf["broker_password"],
                      transport=conf["broker_transport"], ssl=conf.get("broker_use_ssl", False),
                      transport_options=conf["broker_transport_options"],
                      failover_strategy=conf["broker_failover_strategy"])
    for _ in range(5):
        conn.maybe_switch_next()
        assert conn.password == "s3cr3t-pw"
        assert conn.transport_cls == "worker.transport.broker:SentinelTransport"
        assert conn.virtual_host == "3"
        assert bool(conn.ssl) == ("+tls" in url)
    assert len(conn.alt) == 2
