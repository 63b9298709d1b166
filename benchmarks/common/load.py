"""Drive one server with one load pattern and account for the CPU around it.

:func:`run_load` is what a benchmark driver calls: it runs the load generator in its own
process (``wrk`` for closed loops when installed, else :mod:`benchmarks.common.loadgen`; the
Python generator always for open loops, which wrk cannot do), warm-up first, then the measured
window, and returns the figures plus a :class:`~benchmarks.common.cpu.CpuUsage` of the window.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from benchmarks.common import wrk
from benchmarks.common.cpu import CpuProbe

LOADGEN = Path(__file__).with_name("loadgen.py")


@dataclass(frozen=True)
class Target:
    """Where to send load: the URL, extra headers and the request bodies (one row each)."""

    name: str
    url: str
    bodies: list[str]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadSpec:
    mode: Literal["closed", "open"]
    concurrency: int  # connections (open loop: the most requests in flight)
    warmup_s: float
    duration_s: float
    rate: float | None = None  # requests per second, open loop only
    tool: Literal["wrk", "python"] = "wrk"
    timeout_s: float = 30.0


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(cmd: list[str], timeout_s: float) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"load generator failed ({done.returncode}): {' '.join(cmd[:4])}…\n"
            f"{done.stderr[-2000:]}{done.stdout[-2000:]}"
        )
    return done.stdout


def run_load(
    target: Target,
    spec: LoadSpec,
    *,
    server_pid: int,
    scratch: Path,
    python: str = sys.executable,
    contamination_threshold: float = 0.10,
) -> dict[str, Any]:
    """Warm up, measure, return rps / p50 / p99 / errors and the window's CPU accounting.

    ``server_pid`` is the root of the server's process tree (its CPU is the server's).
    Raises ``RuntimeError`` when the load generator itself fails.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    tool = spec.tool if spec.mode == "closed" else "python"
    limit = spec.warmup_s + spec.duration_s + 120
    probe = CpuProbe(server_pid, threshold=contamination_threshold)
    children_before = _children_cpu_s()
    probe.start()
    if tool == "wrk":
        script = wrk.write_script(scratch / f"{target.name}.lua", target.bodies, target.headers)
        if spec.warmup_s > 0:
            _run(
                wrk.command(
                    target.url,
                    script,
                    concurrency=spec.concurrency,
                    duration_s=spec.warmup_s,
                    timeout_s=spec.timeout_s,
                ),
                limit,
            )
        result = wrk.parse(
            _run(
                wrk.command(
                    target.url,
                    script,
                    concurrency=spec.concurrency,
                    duration_s=spec.duration_s,
                    timeout_s=spec.timeout_s,
                ),
                limit,
            )
        )
    else:
        spec_path = scratch / f"{target.name}-loadgen.json"
        spec_path.write_text(
            json.dumps(
                {
                    "url": target.url,
                    "headers": target.headers,
                    "bodies": target.bodies,
                    "mode": spec.mode,
                    "concurrency": spec.concurrency,
                    "rate": spec.rate,
                    "warmup_s": spec.warmup_s,
                    "duration_s": spec.duration_s,
                    "timeout_s": spec.timeout_s,
                }
            )
        )
        result = json.loads(_run([python, str(LOADGEN), str(spec_path)], limit).splitlines()[-1])
    usage = probe.finish(loadgen_s=_children_cpu_s() - children_before)
    return {
        **result,
        "mode": spec.mode,
        "concurrency": spec.concurrency,
        "rate": spec.rate,
        "tool": tool,
        "warmup_s": spec.warmup_s,
        "duration_s": spec.duration_s,
        "cpu": usage.as_dict(),
    }
