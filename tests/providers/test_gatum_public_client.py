"""Fidelity: the public gatum-rest-py 1.0.0 client, unchanged, against the sandbox over HTTP.

It is given a base URL with a trailing slash, exactly as its README does, so
every request goes to `//v1/...` and the simulator must cope.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gatum_rest_py import GatumRESTAPI

from providers.sandbox import Sandbox
from providers.sandbox.server import SandboxServer

USER, PASSWORD = "sandbox", "sandbox-gatum-pass"


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    srv = SandboxServer(Sandbox(names=["gatum"]), push_reports=False).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server: SandboxServer) -> GatumRESTAPI:
    return GatumRESTAPI(base_url=server.urls()["gatum"] + "/")


@pytest.fixture(scope="module")
def token(client: GatumRESTAPI) -> str:
    response = client.access_token(username=USER, password=PASSWORD)
    assert response.status_code == 200
    return str(response.json()["data"]["access_token"])


def test_access_token_shape(client):
    """access_token returns {"status": true, "data": {access_token, expires_at}}."""
    data = client.access_token(username=USER, password=PASSWORD).json()
    assert data["status"] is True
    assert isinstance(data["data"]["access_token"], str)
    assert isinstance(data["data"]["expires_at"], int)


def test_access_token_wrong_password_is_the_documented_400(client):
    """Wrong credentials answer the README's 400 body verbatim."""
    response = client.access_token(username=USER, password="wrong")
    assert response.status_code == 400
    assert response.json() == {"status": False, "error_code": 400,
                               "errors": {"password": ["Incorrect username or password."]}}


def test_account_info(client, token):
    """account_info (GET /v1/me) returns the account fields."""
    response = client.account_info(access_token=token)
    assert response.status_code == 200
    assert {"balance_units", "currency", "login", "finance"} <= set(response.json()["data"])


def test_account_info_with_bad_token_is_401(client):
    """A bad token answers 401 with errors.token."""
    response = client.account_info(access_token="nope")
    assert response.status_code == 401
    assert response.json()["errors"] == {"token": ["Invalid or expired token"]}


def test_register_customer(client):
    """register_customer works without a token; a reused login is a 400."""
    args = dict(login="restapi141", password="secret-pw", name="John", phone="1234567890",
                email="john@example.com", company_name="John Doe LTD", skype="johndoe")
    first = client.register_customer(**args)
    assert first.status_code == 200 and first.json()["data"]["login"] == "restapi141"
    again = client.register_customer(**args)
    assert again.status_code == 400 and "login" in again.json()["errors"]


def test_send_sms_and_sms_full_data(client, token):
    """send_sms gives each number an id_state that sms_full_data lists."""
    sent = client.send_sms(access_token=token, numbers=["380957225759", "380661093766"],
                           sender_id="Verify", text="Your OTP is 42488", lifetime="86400",
                           begin_date="2023-03-19", begin_time="19:16:00")
    assert sent.status_code == 200
    item = sent.json()["data"][0]
    assert item["sending"]["details"]["senderID"] == "Verify"
    ids = {m["id_state"] for m in item["messages"]}
    rows = client.sms_full_data(access_token=token, mcc=255, mnc=1, sender_id="Verify",
                                phone=["380957225759", "380661093766"], limit=None,
                                type_sms="sms").json()["data"]
    assert {r["id_state"] for r in rows} == ids
    assert set(rows[0]) >= {"id_state", "num_parts", "originator", "part_no", "phone",
                            "state", "text_sms", "time", "type_sms"}
    assert client.sms_full_data(access_token=token).status_code == 200


def test_groups_numbers_bulk_and_black_list(client, token):
    """Every group, number, bulk and black-list method answers 200 with its shape."""
    gid = client.create_group(access_token=token, name_group="All clients", time_birth="13:00",
                              originator_birth="Greetings", text_birth="Happy birthday!",
                              on_birth=True).json()["data"]["id_group"]
    other = client.create_group(access_token=token,
                                name_group="Promo").json()["data"]["id_group"]
    listed = client.list_group(access_token=token, limit=10, offset=0).json()["data"]
    assert {g["id_group"] for g in listed["list"]} >= {gid, other}
    assert client.list_group(access_token=token, id_group=gid).json()["data"]["list"][0][
        "name_group"] == "All clients"
    numbers = [{"number": 12345678901, "name": "Iogan", "surname": "Bah", "male": "m",
                "date_birth": "1992-12-31", "note_1": "x"}, {"number": 12345678900}]
    added = client.group_number_add(access_token=token, id_group=gid, numbers=numbers)
    assert added.json()["data"]["groupDetails"]["countNumbers"] == 2
    found = client.group_number_search(access_token=token, id_group=gid,
                                       numbers=[12345678901, 17133010164]).json()["data"]
    assert [row["phone"] for row in found["list"]] == [12345678901]
    bulk = client.send_bulk(access_token=token, sender_id="VShop", text="Discount",
                            id_group=[gid], id_group_excluded=[other],
                            phone=["1234567890"], date_start="2023-08-02",
                            time_start="10:00", time_stop="17:00")
    assert bulk.status_code == 200 and bulk.json()["data"]["details"]["sentID"] > 0
    deleted = client.group_number_delete(access_token=token, id_group=gid,
                                         numbers=[12345678900]).json()["data"]
    assert deleted["groupDetails"]["deletedPhone"] == 1
    added = client.black_list_add(access_token=token, numbers=[12345665777, 12345665772])
    assert added.json()["data"]["blacklistDetails"] == {"countBefore": 0, "countAfter": 2}
    hits = client.black_list_search(access_token=token, numbers=[12345665777, 12345665000])
    assert hits.json()["data"]["list"] == [12345665777]
    gone = client.black_list_delete(access_token=token, numbers=[12345665777])
    assert gone.json()["data"]["blacklistDetails"]["countAfter"] == 1
    dropped = client.delete_group(access_token=token, id_group=[gid, other]).json()["data"]
    assert sorted(dropped["deleted"]) == sorted([gid, other])


def test_logout_destroys_the_token(client):
    """logout answers 200, and the same token is refused afterwards."""
    fresh = client.access_token(username=USER, password=PASSWORD).json()["data"]["access_token"]
    assert client.logout(access_token=fresh).status_code == 200
    assert client.account_info(access_token=fresh).status_code == 401
