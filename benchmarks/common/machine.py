"""What machine a benchmark ran on: one line for the report, the details for the JSON."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def describe() -> dict[str, Any]:
    """CPU model, cores usable by this process, memory, Python and kernel versions."""
    return {
        "cpu_model": cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": memory_gib(),
        "python": platform.python_version(),
        "python_implementation": sys.implementation.name,
        "kernel": platform.release(),
        "hostname": platform.node(),
    }


def summary(info: dict[str, Any]) -> str:
    """One line, e.g. ``AMD EPYC, 2 cores, 23.4 GiB, Python 3.11.7, Linux 6.1``."""
    memory = f", {info['memory_gib']} GiB" if info.get("memory_gib") else ""
    return (
        f"{info['cpu_model']}, {info['cores']} cores{memory}, "
        f"Python {info['python']}, Linux {info['kernel']}"
    )
