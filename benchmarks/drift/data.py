"""The drift benchmark's data: 20 columns (15 numeric, 5 categorical), reference and current.

Numeric columns cover the shapes drift tests meet in practice: symmetric, skewed, heavy-tailed,
bounded, bimodal and discrete. Five columns get a shift in the ``shifted`` variant (the
``SHIFTS`` table, as in the project's peer notes):

* ``num_mean_shift``     normal, mean + 0.2 sd
* ``num_scale_shift``    normal, sd × 1.2
* ``num_lognormal_shift`` lognormal (σ = 0.6), every value × 1.105
* ``cat_level_shift``    4 levels, the largest loses 8 percentage points (to the others,
  proportionally)
* ``cat_rare_shift``     8 levels, 5 pp of mass moved from the 4 common levels to the 4 rare ones

The ``none`` variant draws the current window from the reference distributions. Seeds are
fixed: reference 1, current 2 (shifted) or 3 (none), so every run sees the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

Draw = Callable[[np.random.Generator, int, bool], np.ndarray]

CAT_LEVEL = (["A", "B", "C", "D"], [0.4, 0.3, 0.2, 0.1])
CAT_RARE = (
    ["w", "x", "y", "z", "r1", "r2", "r3", "r4"],
    [0.35, 0.25, 0.2, 0.15, 0.02, 0.015, 0.01, 0.005],
)


def _moved(probs: list[float], take_from: list[int], give_to: list[int], pp: float) -> np.ndarray:
    """``probs`` with ``pp`` of mass taken from ``take_from`` (proportionally) to ``give_to``
    (equally)."""
    p = np.array(probs)
    p[take_from] -= pp * p[take_from] / p[take_from].sum()
    p[give_to] += pp / len(give_to)
    return p


def _categorical(levels: list[str], probs: np.ndarray | list[float]) -> Draw:
    def draw(rng: np.random.Generator, n: int, _: bool) -> np.ndarray:
        return np.asarray(levels, dtype=object)[rng.choice(len(levels), n, p=probs)]

    return draw


def _cat_shifted(levels: list[str], base: list[float], shifted: np.ndarray) -> Draw:
    def draw(rng: np.random.Generator, n: int, shift: bool) -> np.ndarray:
        return _categorical(levels, shifted if shift else base)(rng, n, shift)

    return draw


def _mixture(rng: np.random.Generator, n: int, _: bool) -> np.ndarray:
    return np.where(rng.random(n) < 0.3, rng.normal(-2, 0.5, n), rng.normal(2, 1.0, n))


def _level_shift() -> np.ndarray:
    """The largest level loses 8 pp; the others gain it in proportion to their share."""
    p = np.array(CAT_LEVEL[1])
    rest = np.arange(1, len(p))
    p[rest] += 0.08 * p[rest] / p[rest].sum()
    p[0] -= 0.08
    return p


COLUMNS: dict[str, Draw] = {
    "num_mean_shift": lambda r, n, s: r.normal(0.2 if s else 0.0, 1.0, n),
    "num_scale_shift": lambda r, n, s: r.normal(5.0, 2.0 * (1.2 if s else 1.0), n),
    "num_lognormal_shift": lambda r, n, s: r.lognormal(0.0, 0.6, n) * (1.105 if s else 1.0),
    "num_normal": lambda r, n, s: r.normal(10.0, 3.0, n),
    "num_uniform": lambda r, n, s: r.uniform(0.0, 1.0, n),
    "num_exponential": lambda r, n, s: r.exponential(1.0, n),
    "num_gamma": lambda r, n, s: r.gamma(2.0, 2.0, n),
    "num_beta": lambda r, n, s: r.beta(2.0, 5.0, n),
    "num_student_t": lambda r, n, s: r.standard_t(5, n),
    "num_poisson": lambda r, n, s: r.poisson(4.0, n).astype(np.float64),
    "num_lognormal": lambda r, n, s: r.lognormal(1.0, 0.5, n),
    "num_bimodal": _mixture,
    "num_narrow": lambda r, n, s: r.normal(-3.0, 0.5, n),
    "num_chi2": lambda r, n, s: r.chisquare(3, n),
    "num_integer": lambda r, n, s: r.integers(0, 101, n).astype(np.float64),
    "cat_level_shift": _cat_shifted(*CAT_LEVEL, _level_shift()),
    "cat_rare_shift": _cat_shifted(
        *CAT_RARE, _moved(CAT_RARE[1], [0, 1, 2, 3], [4, 5, 6, 7], 0.05)
    ),
    "cat_colour": _categorical(["red", "green", "blue"], [0.5, 0.3, 0.2]),
    "cat_region": _categorical([f"region_{i:02d}" for i in range(12)], np.full(12, 1 / 12)),
    "cat_flag": _categorical(["yes", "no"], [0.15, 0.85]),
}


SHIFTS: dict[str, str] = {
    "num_mean_shift": "mean + 0.2 sd",
    "num_scale_shift": "sd × 1.2",
    "num_lognormal_shift": "lognormal × 1.105",
    "cat_level_shift": "one level − 8 pp",
    "cat_rare_shift": "5 pp moved to rare levels",
}
NUMERIC = [c for c in COLUMNS if c.startswith("num_")]
CATEGORICAL = [c for c in COLUMNS if c.startswith("cat_")]


def frame(rows: int, seed: int, shift: bool) -> pd.DataFrame:
    """One window of ``rows`` rows; ``shift`` applies the shifts of ``SHIFTS``."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({name: draw(rng, rows, shift) for name, draw in COLUMNS.items()})


def windows(rows: int, shifted: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, current) of ``rows`` rows each; the current one shifted or not."""
    return frame(rows, seed=1, shift=False), frame(rows, seed=2 if shifted else 3, shift=shifted)


def truth(shifted: bool) -> dict[str, bool]:
    """Whether each column really was shifted in this variant."""
    return {name: shifted and name in SHIFTS for name in COLUMNS}
