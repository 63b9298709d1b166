"""Closed-loop load with ``wrk`` (Debian's package): POST bodies round-robin from a Lua script.

``wrk -t1 -cN`` keeps N connections busy from one thread; its ``done`` hook prints one JSON line
(latencies in microseconds from wrk's histogram) that :func:`parse` reads back.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

MARKER = "WRKJSON "

_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%.0f,"duration_us":%.0f,"connect":%.0f,"read":%.0f,"write":%.0f,' ..
    '"status":%.0f,"timeout":%.0f,"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"max_us":%.0f,' ..
    '"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


def available() -> str | None:
    """Path of the ``wrk`` binary, or None."""
    return shutil.which("wrk")


def _long_string(text: str) -> str:
    level = 1
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


def write_script(path: Path, bodies: Sequence[str], headers: Mapping[str, str]) -> Path:
    """A Lua script that POSTs ``bodies`` round-robin with ``headers`` (JSON content type)."""
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    lines.append("local bodies = {")
    lines += [f"  {_long_string(b)}," for b in bodies]
    lines.append("}")
    lines += [
        "local n = #bodies",
        "local i = 0",
        "request = function()",
        "  i = i % n + 1",
        "  return wrk.format(nil, nil, nil, bodies[i])",
        "end",
    ]
    path.write_text("\n".join(lines) + "\n" + _DONE)
    return path


def command(
    url: str, script: Path, *, concurrency: int, duration_s: float, timeout_s: float = 30.0
) -> list[str]:
    wrk = available() or "wrk"
    return [
        wrk,
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={max(1, round(timeout_s))}s",
        "-s",
        str(script),
        url,
    ]


def parse(output: str) -> dict[str, Any]:
    """The result dict from wrk's stdout (rps and latencies in ms, errors summed)."""
    for line in output.splitlines():
        if line.startswith(MARKER):
            raw = json.loads(line[len(MARKER) :])
            break
    else:
        raise ValueError(f"no {MARKER.strip()} line in wrk output:\n{output[-2000:]}")
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "requests": int(raw["requests"]),
        "errors": int(errors),
        "error_kinds": {k: int(raw[k]) for k in ("connect", "read", "write", "status", "timeout")},
        # wrk's count includes non-2xx answers; throughput counts successful requests only
        "rps": (raw["requests"] - raw["status"]) / seconds if seconds else float("nan"),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "mean_ms": raw["mean_us"] / 1000,
        "duration_s": seconds,
    }
