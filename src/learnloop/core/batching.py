"""Adaptive batching: concurrent requests for one model version share one ``predict`` call.

A worker thread per batcher takes the first waiting request, then keeps collecting until
``max_batch_size`` items are gathered or ``max_wait_ms`` has passed since that first request,
and runs the batch. Under light load a request waits at most ``max_wait_ms`` (0 = never waits
for company); under heavy load batches fill up and throughput rises with batch size.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

PredictFn = Callable[[Sequence[Any]], Sequence[Any]]
Observer = Callable[[int, float], None]  # (batch size, queue seconds of the oldest item)


@dataclass
class _Request:
    items: Sequence[Any]
    future: Future[list[Any]]
    enqueued: float = field(default_factory=time.perf_counter)


class AdaptiveBatcher:
    def __init__(
        self,
        predict: PredictFn,
        *,
        max_batch_size: int = 64,
        max_wait_ms: float = 2.0,
        observe: Observer | None = None,
        name: str = "batcher",
    ) -> None:
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000
        self.observe = observe
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"ll-{name}", daemon=True)
        self._thread.start()

    def submit(self, items: Sequence[Any]) -> Future[list[Any]]:
        """Queue ``items`` (one request); the future gets their outputs in order."""
        future: Future[list[Any]] = Future()
        if self._closed:
            future.set_exception(RuntimeError("batcher closed"))
        else:
            self._queue.put(_Request(items, future))
        return future

    def close(self) -> None:
        self._closed = True
        self._queue.put(None)
        self._thread.join(5)

    def _run(self) -> None:
        carry: _Request | None = None
        while True:
            first = carry if carry is not None else self._queue.get()
            carry = None
            if first is None:
                return
            batch = [first]
            size = len(first.items)
            deadline = first.enqueued + self.max_wait_s
            while size < self.max_batch_size:
                remaining = deadline - time.perf_counter()
                try:
                    nxt = (
                        self._queue.get(timeout=remaining)
                        if remaining > 0
                        else (self._queue.get_nowait())
                    )
                except queue.Empty:
                    break
                if nxt is None:
                    self._closed = True
                    break
                if size + len(nxt.items) > self.max_batch_size:
                    carry = nxt
                    break
                batch.append(nxt)
                size += len(nxt.items)
            self._execute(batch, size)
            if self._closed and carry is None and self._queue.empty():
                return

    def _execute(self, batch: list[_Request], size: int) -> None:
        started = time.perf_counter()
        items = [item for req in batch for item in req.items]
        try:
            outputs = list(self.predict(items))
            if len(outputs) != len(items):
                raise RuntimeError(f"predict returned {len(outputs)} outputs for {len(items)}")
        except BaseException as e:  # each waiting request gets the error
            for req in batch:
                if not req.future.done():
                    req.future.set_exception(e)
            return
        if self.observe is not None:
            self.observe(size, started - batch[0].enqueued)
        offset = 0
        for req in batch:
            n = len(req.items)
            req.future.set_result(outputs[offset : offset + n])
            offset += n
