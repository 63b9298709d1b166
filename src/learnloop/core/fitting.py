"""A :class:`~learnloop.core.family.FitContext` for fits that run outside a job.

Used by notebooks, tests and ``learnloop.testing.check_family``: progress goes to a list,
checkpoints to a folder (a temporary one unless given), and control is never requested unless
``stop_after_checkpoints`` is set, which makes the fit raise ``JobPaused`` after that many
checkpoints — exactly what a paused job sees.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from learnloop.core.errors import JobPaused

CHECKPOINT_FILE = "checkpoint.pkl"


def write_checkpoint(folder: Path, state: object, step: int) -> None:
    """Atomically replace ``folder/checkpoint.pkl`` with ``(step, state)`` (fsynced)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{CHECKPOINT_FILE}.tmp"
    with open(tmp, "wb") as fh:
        pickle.dump((step, state), fh, protocol=pickle.HIGHEST_PROTOCOL)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / CHECKPOINT_FILE)


def read_checkpoint(folder: Path) -> tuple[int, object] | None:
    """``(step, state)`` of the last checkpoint in ``folder``, or ``None``."""
    path = folder / CHECKPOINT_FILE
    if not path.exists():
        return None
    with open(path, "rb") as fh:
        step, state = pickle.load(fh)
    return int(step), state


@dataclass
class ProgressEvent:
    fraction: float
    message: str
    metrics: dict[str, float]


@dataclass
class LocalFitContext:
    """FitContext for in-process fits; see module docstring."""

    checkpoint_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ll-fit-")))
    stop_after_checkpoints: int | None = None
    events: list[ProgressEvent] = field(default_factory=list)
    checkpoints_saved: int = 0
    last_step: int | None = None

    def progress(
        self, fraction: float, message: str = "", metrics: Mapping[str, float] | None = None
    ) -> None:
        self.events.append(ProgressEvent(float(fraction), message, dict(metrics or {})))

    def save_checkpoint(self, state: object, step: int) -> None:
        write_checkpoint(self.checkpoint_dir, state, step)
        self.checkpoints_saved += 1
        self.last_step = step

    def load_checkpoint(self) -> object | None:
        found = read_checkpoint(self.checkpoint_dir)
        return None if found is None else found[1]

    def check_control(self) -> None:
        if (
            self.stop_after_checkpoints is not None
            and self.checkpoints_saved >= self.stop_after_checkpoints
        ):
            self.stop_after_checkpoints = None
            raise JobPaused(f"paused after checkpoint at step {self.last_step}")
