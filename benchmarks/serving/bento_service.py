"""The BentoML side of the serving benchmark (run by ``bentoml serve bento_service:Bench``).

One service, one API taking the feature list of one row, as a BentoML user would write it.
``BENCH_MODEL_PATH`` names the joblib model; ``BENCH_BENTO_WORKERS`` the worker processes (1).
Runs in BentoML's own virtualenv (benchmarks/.peers/bentoml), not learnloop's.
"""

from __future__ import annotations

import os

import bentoml
import joblib
import numpy as np


@bentoml.service(workers=int(os.environ.get("BENCH_BENTO_WORKERS", "1")))
class Bench:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["BENCH_MODEL_PATH"])

    @bentoml.api
    def predict(self, features: list[float]) -> int:
        return int(self.model.predict(np.asarray([features], dtype=np.float64))[0])
