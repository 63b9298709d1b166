"""Alert channels over the real app: a real webhook receiver gets signed alerts, a failing one
is retried and its failure is visible, channels filter by kind, roles apply."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from learnloop.core.auth import Role
from learnloop.loop.alerting import AlertDispatcher
from tests.api.conftest import Served


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((self.path, dict(self.headers), body))
        self.send_response(500 if self.path == "/broken" else 204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_webhooks_are_signed_retried_and_failures_visible(served: Served, receiver: str) -> None:
    c = served.container
    c.alert_dispatcher.stop()  # deliveries are driven by hand below, step by step
    dispatcher = AlertDispatcher(c.alerts, c.privacy_secret, max_attempts=2, base_delay_s=0)
    h = served.auth(Role.ADMIN)
    for body in (
        {"name": "ops-drift", "url": f"{receiver}/hook", "kinds": ["drift"]},
        {"name": "broken", "url": f"{receiver}/broken", "min_severity": "warning"},
        {"name": "logs", "kind": "log"},
    ):
        r = served.client.post("/v1/alerts/configure", json=body, headers=h)
        assert r.status_code == 201, r.text
    assert (
        served.client.post(
            "/v1/alerts/configure", json={"name": "logs", "kind": "log"}, headers=h
        ).status_code
        == 409
    )
    assert (
        served.client.post(
            "/v1/alerts/configure", json={"name": "x", "url": "ftp://nope"}, headers=h
        ).status_code
        == 422
    )
    assert (
        served.client.get("/v1/alerts/channels", headers=served.auth(Role.OPERATOR)).status_code
        == 403
    )

    assert c.alerts.raise_alert("t:drift:1", "drift", "m", "warning", "drift in m: Torque", {})
    assert c.alerts.raise_alert("t:conf:1", "confidence_shift", "m", "info", "confidence", {})
    assert not c.alerts.raise_alert("t:drift:1", "drift", "m", "warning", "again", {})

    assert dispatcher.run_once() == 4  # drift → hook, broken, log; confidence → log
    hooks = [(hd, b) for p, hd, b in Receiver.received if p == "/hook"]
    assert len(hooks) == 1  # only the drift alert: the channel filters by kind
    headers, body = hooks[0]
    payload = json.loads(body)
    assert payload["alert"]["kind"] == "drift" and payload["channel"] == "ops-drift"
    expected = hmac.new(c.privacy_secret, body, hashlib.sha256).hexdigest()
    assert headers["X-Learnloop-Signature"] == f"sha256={expected}"

    # the broken receiver got only the warning (min severity), failed, and is retried
    assert [p for p, _, _ in Receiver.received].count("/broken") == 1
    alerts = served.client.get("/v1/alerts", params={"model": "m"}, headers=served.auth()).json()
    drift = next(a for a in alerts if a["kind"] == "drift")
    by_status = {d["status"] for d in drift["deliveries"]}
    assert "delivered" in by_status and len(drift["deliveries"]) == 3
    confidence = next(a for a in alerts if a["kind"] == "confidence_shift")
    assert len(confidence["deliveries"]) == 1  # the log channel only
    broken = served.client.get(
        "/v1/alerts/deliveries", params={"status": "pending"}, headers=served.auth()
    ).json()
    assert any(d["attempts"] >= 1 and "HTTP 500" in (d["last_error"] or "") for d in broken)

    # the retry fails again; after max_attempts (2) the delivery is failed, its error kept
    assert dispatcher.run_once() == 1
    assert [p for p, _, _ in Receiver.received].count("/broken") == 2
    failed = served.client.get(
        "/v1/alerts/deliveries", params={"status": "failed"}, headers=served.auth()
    ).json()
    assert len(failed) == 1 and failed[0]["attempts"] == 2
    assert failed[0]["last_error"].startswith("HTTP 500")
    assert dispatcher.run_once() == 0
    dispatcher.stop()

    channels = served.client.get("/v1/alerts/channels", headers=h).json()
    for ch in channels:
        assert served.client.delete(f"/v1/alerts/channels/{ch['id']}", headers=h).status_code == 204
    assert served.client.get("/v1/alerts/channels", headers=h).json() == []
