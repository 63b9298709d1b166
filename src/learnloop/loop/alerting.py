"""Alert delivery: webhooks (JSON POST, retried with backoff) and the log.

Channels are configured with ``POST /v1/alerts/configure``. Raising an alert queues one delivery
per matching channel (in the alert's transaction); :class:`AlertDispatcher` sends the due ones:

* ``webhook`` — ``POST url`` with the alert as JSON (``{"alert": {...}, "channel": name}``) and a
  ``X-Learnloop-Signature: sha256=<HMAC of the body under privacy.secret>`` header so receivers
  can check the sender. 2xx is delivered; anything else (or a timeout) is retried after
  ``base_delay_s · 2^(attempt-1)`` (at most ``max_delay_s``), and after ``max_attempts`` the
  delivery is ``failed``. Failures and their last error are visible in ``GET
  /v1/alerts/deliveries`` and on each alert.
* ``log`` — one WARNING (or ERROR for critical) record on the ``learnloop.alerts`` logger.

The dispatcher runs as a thread in ``learnloop serve`` (and ``run_once`` in tests). With several
server processes, a delivery may rarely be sent twice (at-least-once); receivers can
de-duplicate by the alert id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from learnloop.storage.sql.alerts import SqlAlertStore

log = logging.getLogger("learnloop.alerts")


class AlertDispatcher:
    def __init__(
        self,
        store: SqlAlertStore,
        secret: bytes,
        *,
        max_attempts: int = 6,
        base_delay_s: float = 2.0,
        max_delay_s: float = 600.0,
        timeout_s: float = 5.0,
        poll_s: float = 1.0,
    ) -> None:
        self.store = store
        self.secret = secret
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.poll_s = poll_s
        self._client = httpx.Client(timeout=timeout_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="ll-alerts", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._client.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.run_once()
            except Exception:  # the store is down: try again at the next poll
                log.exception("alert dispatch failed")

    def run_once(self) -> int:
        """Send every due delivery once; return how many were attempted."""
        due = self.store.due(datetime.now(UTC))
        for item in due:
            self._send(item)
        return len(due)

    def _send(self, item: dict[str, Any]) -> None:
        delivery, alert, channel = item["delivery"], item["alert"], item["channel"]
        error: str | None = None
        try:
            if channel["kind"] == "log":
                level = logging.ERROR if alert["severity"] == "critical" else logging.WARNING
                log.log(level, alert["message"], extra={"alert": alert})
            else:
                body = json.dumps({"alert": alert, "channel": channel["name"]}).encode()
                signature = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
                response = self._client.post(
                    channel["url"],
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        "X-Learnloop-Signature": f"sha256={signature}",
                        "X-Learnloop-Alert": alert["id"],
                    },
                )
                if not 200 <= response.status_code < 300:
                    error = f"HTTP {response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {e}"
        attempt = delivery["attempts"] + 1
        retry = None
        if error is not None and attempt < self.max_attempts:
            retry = timedelta(seconds=min(self.base_delay_s * 2 ** (attempt - 1), self.max_delay_s))
        self.store.record_attempt(delivery["id"], ok=error is None, error=error, retry_in=retry)
        if error is not None:
            log.warning(
                "alert delivery failed",
                extra={"channel": channel["name"], "attempt": attempt, "error": error},
            )
