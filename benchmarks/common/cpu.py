"""CPU accounting around a measurement: who used the cores while the load ran.

The machine is shared and small (2 cores here), so a run is only believed when the CPU used by
processes other than the server and the load generator stayed low. A :class:`CpuProbe` samples
``/proc/stat`` (machine-wide ticks) and the ``/proc/<pid>/stat`` of every process under the
server's root pid before and after the window; :meth:`CpuProbe.finish` subtracts the server's,
the load generator's (given by the caller, from ``wait4``) and this process's own CPU from the
machine's busy time. What remains is "other" CPU: a busy neighbour, a stray build, a cron job.
``steal`` (time the hypervisor gave to another guest) is reported on its own.
"""

from __future__ import annotations

import os
import resource
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")


def _machine_ticks() -> dict[str, int]:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    names = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]
    return dict(zip(names, map(int, fields[: len(names)]), strict=True))


def _proc_stat(pid: int) -> tuple[int, int, str] | None:
    """(ppid, utime+stime ticks, command name) of ``pid``, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2 :].split()
    return int(rest[1]), int(rest[11]) + int(rest[12]), name


def process_tree(root: int) -> dict[int, tuple[int, str]]:
    """``pid → (cpu ticks, name)`` of ``root`` and all its descendants alive now."""
    parents: dict[int, list[int]] = defaultdict(list)
    stats: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        found = _proc_stat(int(entry))
        if found is None:
            continue
        ppid, ticks, name = found
        parents[ppid].append(int(entry))
        stats[int(entry)] = (ticks, name)
    tree: dict[int, tuple[int, str]] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in stats and pid not in tree:
            tree[pid] = stats[pid]
            todo.extend(parents.get(pid, []))
    return tree


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class CpuUsage:
    """CPU seconds used during one window, by whom; fractions are of ``wall_s × cores``."""

    wall_s: float
    cores: int
    busy_s: float  # machine-wide, all processes (user + nice + system + irq + softirq)
    server_s: float
    server_by_process: dict[str, float]  # "pid name" → seconds
    loadgen_s: float
    driver_s: float
    other_s: float
    steal_s: float
    other_frac: float
    steal_frac: float
    contaminated: bool
    threshold: float

    def as_dict(self) -> dict[str, Any]:
        rounded = {k: round(v, 3) if isinstance(v, float) else v for k, v in self.__dict__.items()}
        rounded["server_by_process"] = {k: round(v, 2) for k, v in self.server_by_process.items()}
        return rounded


@dataclass
class CpuProbe:
    """Start it right before the load, :meth:`finish` it right after (see module docstring)."""

    server_pid: int
    threshold: float = 0.10  # "other" CPU above this fraction of the machine flags the run
    _wall: float = field(default=0.0, init=False)
    _machine: dict[str, int] = field(default_factory=dict, init=False)
    _server: dict[int, tuple[int, str]] = field(default_factory=dict, init=False)
    _self: float = field(default=0.0, init=False)

    def start(self) -> CpuProbe:
        self._server = process_tree(self.server_pid)
        self._self = _self_cpu_s()
        self._machine = _machine_ticks()
        self._wall = time.monotonic()
        return self

    def finish(self, loadgen_s: float) -> CpuUsage:
        wall = time.monotonic() - self._wall
        machine = _machine_ticks()
        driver_s = _self_cpu_s() - self._self
        server_now = process_tree(self.server_pid)
        delta = {k: machine[k] - self._machine[k] for k in machine}
        busy_s = sum(delta[k] for k in ("user", "nice", "system", "irq", "softirq")) / TICK
        steal_s = delta["steal"] / TICK
        by_process: dict[str, float] = {}
        for pid, (ticks, name) in server_now.items():
            before = self._server.get(pid, (0, name))[0]
            by_process[f"{pid} {name}"] = (ticks - before) / TICK
        server_s = sum(by_process.values())
        cores = os.cpu_count() or 1
        other_s = max(0.0, busy_s - server_s - loadgen_s - driver_s)
        capacity = max(wall * cores, 1e-9)
        return CpuUsage(
            wall_s=wall,
            cores=cores,
            busy_s=busy_s,
            server_s=server_s,
            server_by_process=by_process,
            loadgen_s=loadgen_s,
            driver_s=driver_s,
            other_s=other_s,
            steal_s=steal_s,
            other_frac=other_s / capacity,
            steal_frac=steal_s / capacity,
            contaminated=(other_s + steal_s) / capacity > self.threshold,
            threshold=self.threshold,
        )


def busy_fraction(sample_s: float = 2.0) -> float:
    """Share of the machine's CPU (busy + steal) used by anyone during the next ``sample_s``."""
    before = _machine_ticks()
    time.sleep(sample_s)
    after = _machine_ticks()
    delta = {k: after[k] - before[k] for k in after}
    total = sum(delta.values())
    return (total - delta["idle"] - delta["iowait"]) / total if total else 0.0


def wait_for_quiet(
    threshold: float, max_wait_s: float, sample_s: float = 2.0
) -> tuple[float, float]:
    """Sample until the machine's busy share is at most ``threshold`` or ``max_wait_s`` passed.

    Call it while the server under test is idle. Returns (seconds waited, last busy share).
    """
    started = time.monotonic()
    while True:
        share = busy_fraction(sample_s)
        waited = time.monotonic() - started
        if share <= threshold or waited >= max_wait_s:
            return waited, share
