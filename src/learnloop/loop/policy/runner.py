"""Ticks every model with a policy, every ``tick_s`` seconds, in a background thread of
``learnloop serve`` (one engine per process; a model is ticked by one thread at a time)."""

from __future__ import annotations

import logging
import threading

from learnloop.loop.policy.engine import PolicyEngine

log = logging.getLogger("learnloop.policy")


class PolicyRunner:
    def __init__(self, engine: PolicyEngine, tick_s: float) -> None:
        self.engine = engine
        self.tick_s = tick_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="ll-policy", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            for model in self.engine.store.models():
                try:
                    result = self.engine.tick(model)
                    if result.get("action") not in ("wait", "busy", "disabled"):
                        log.info("policy", extra=result)
                except Exception:
                    log.exception("policy tick failed", extra={"model": model})
