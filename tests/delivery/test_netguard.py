"""Webhooks reach public addresses only, unless the server allows private networks."""

from __future__ import annotations

import ipaddress
import socket
import warnings
from pathlib import Path

import pytest

from quanyu.api.app import create_app
from quanyu.config import Settings
from quanyu.delivery.models import DestinationCreate, MessageStatus
from quanyu.delivery.netguard import check_url, is_public
from quanyu.delivery.sender import Policy
from quanyu.delivery.service import create_destination, enqueue, list_messages
from quanyu.delivery.worker import deliver_due
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.errors import ValidationFailed

from .conftest import MASTER, TENANT, Receiver

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

GUARDED = Policy(timeout=2.0, max_attempts=1, give_up_after=0.0)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:10.0.0.1", False),
        ("8.8.8.8", True),
        ("::ffff:8.8.8.8", True),
        ("2001:4860:4860::8888", True),
    ],
)
def test_public_means_routable_on_the_internet(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hooks",
        "http://[::1]/hooks",
        "http://169.254.169.254/latest/meta-data",
        "https://10.0.0.5/crm",
        "http://localhost:9000/",
        "http://api.localhost/",
        "http://LocalHost.:9000/",
    ],
)
def test_plainly_private_urls_are_refused_when_made(url: str) -> None:
    with pytest.raises(ValidationFailed, match="not a public address.*ALLOW_PRIVATE_NETWORKS"):
        check_url(url, allow_private=False)
    check_url(url, allow_private=True)  # the operator's choice


def test_public_urls_and_names_pass_when_made() -> None:
    check_url("https://8.8.8.8/hooks", allow_private=False)
    # a name is judged at each connection, not here (what it resolves to may change)
    check_url("https://hooks.brand.example/crm", allow_private=False)


def test_a_message_to_a_private_address_fails_and_nothing_is_sent(
    store: DuckDBEngine, receiver: Receiver
) -> None:
    with store.connect() as db:
        # made while allowed; the server's setting was turned off since
        made = create_destination(
            db,
            DestinationCreate(name="crm", url=receiver.url),  # type: ignore[arg-type]
            tenant=TENANT,
            master_key=MASTER,
            allow_private=True,
        )
        enqueue(db, tenant=TENANT, destination_id=made.id, topic="t", key="k", payloads=[{"a": 1}])
    assert deliver_due(store, master_key=MASTER, policy=GUARDED) == 1
    assert receiver.hits == []
    with store.connect() as db:
        (msg,) = list_messages(db, tenant=TENANT)
    assert msg.status is MessageStatus.failed
    assert msg.last_error is not None
    assert "127.0.0.1 is not a public address" in msg.last_error


def test_a_name_that_resolves_to_loopback_is_refused_at_connection(
    store: DuckDBEngine, receiver: Receiver
) -> None:
    host = socket.gethostname()  # a name check_url cannot judge, resolving to this machine
    resolved = {i[4][0] for i in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    assert not any(is_public(ipaddress.ip_address(a)) for a in resolved)
    url = f"http://{host}:{receiver.port}/hooks"
    with store.connect() as db:
        made = create_destination(
            db,
            DestinationCreate(name="crm", url=url),  # type: ignore[arg-type]
            tenant=TENANT,
            master_key=MASTER,
        )
        enqueue(db, tenant=TENANT, destination_id=made.id, topic="t", key="k", payloads=[{"a": 1}])
    deliver_due(store, master_key=MASTER, policy=GUARDED)
    assert receiver.hits == []
    with store.connect() as db:
        (msg,) = list_messages(db, tenant=TENANT)
    assert msg.status is MessageStatus.failed
    assert msg.last_error is not None
    assert "resolves to" in msg.last_error and "not a public address" in msg.last_error


def test_the_api_refuses_a_private_destination_unless_the_server_allows_it(
    tmp_path: Path,
) -> None:
    admin = {"Authorization": "Bearer t"}
    for allowed, status in ((False, 400), (True, 201)):
        settings = Settings(
            data_dir=tmp_path / str(allowed), webhook_allow_private_networks=allowed
        )
        with TestClient(create_app(settings, local_token="t"), base_url="http://q.test") as c:
            tenant = c.post("/v1/tenants", json={"name": "Kao"}, headers=admin).json()["id"]
            for path, body in (
                ("destinations", {"name": "crm", "url": "http://169.254.169.254/latest"}),
                ("consent/subscribers", {"name": "pos", "url": "http://10.0.0.7/consent"}),
            ):
                r = c.post(f"/v1/tenants/{tenant}/{path}", json=body, headers=admin)
                assert r.status_code == status, r.text
                if not allowed:
                    assert "not a public address" in r.json()["message"]
            listed = c.get(f"/v1/tenants/{tenant}/destinations", headers=admin).json()
            assert len(listed) == (2 if allowed else 0)  # a refusal leaves nothing behind
