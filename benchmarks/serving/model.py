"""The reference model and request rows of the serving benchmark.

scikit-learn ``RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0)`` fitted on
sklearn's built-in breast-cancer data (569 rows, 30 float features), as in shared PEERS.md.
:func:`prepare` writes into the work folder (idempotent; redone when scikit-learn changes):

* ``model.joblib`` — the fitted model, loaded by MLServer and BentoML;
* ``rows.json``   — ``ROWS`` real feature rows (lists of 30 floats) sent one per request;
* ``data.csv``    — all rows with columns ``f0``…``f29`` and ``target``, for learnloop to train
  its own model with the same estimator and hyper-parameters;
* ``model.json``  — what was written, plus the in-process single-row ``predict`` time (the
  compute floor every server pays per request).

    .venv/bin/python benchmarks/serving/model.py [WORKDIR]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WORKDIR = ROOT / "benchmarks" / ".work" / "serving"
ROWS = 300
FEATURES = [f"f{i}" for i in range(30)]
PARAMS: dict[str, Any] = {"n_estimators": 50, "max_depth": 8, "random_state": 0}


def _predict_ms(model: Any, rows: list[list[float]], repeats: int = 200) -> float:
    import numpy as np

    batch = [np.asarray([row]) for row in rows]
    for x in batch[:20]:
        model.predict(x)
    started = time.perf_counter()
    for i in range(repeats):
        model.predict(batch[i % len(batch)])
    return (time.perf_counter() - started) / repeats * 1000


def prepare(workdir: Path = WORKDIR) -> dict[str, Any]:
    """Write the model, rows and CSV into ``workdir`` unless already there; return model.json."""
    import joblib
    import numpy as np
    import pandas as pd
    import sklearn
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    manifest_path = workdir / "model.json"
    if manifest_path.exists():
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        files = ("model.joblib", "rows.json", "data.csv")
        if manifest.get("sklearn") == sklearn.__version__ and all(
            (workdir / f).exists() for f in files
        ):
            return manifest
    workdir.mkdir(parents=True, exist_ok=True)
    data = load_breast_cancer()
    x, y = data.data.astype(np.float64), data.target
    model = RandomForestClassifier(**PARAMS).fit(x, y)
    joblib.dump(model, workdir / "model.joblib")

    order = np.random.default_rng(0).permutation(len(x))[:ROWS]
    rows = [[float(v) for v in x[i]] for i in order]
    (workdir / "rows.json").write_text(json.dumps(rows))

    frame = pd.DataFrame(x, columns=FEATURES)
    frame["target"] = y
    frame.to_csv(workdir / "data.csv", index=False)

    manifest = {
        "estimator": "sklearn.ensemble.RandomForestClassifier",
        "params": PARAMS,
        "data": "sklearn.datasets.load_breast_cancer (569 rows, 30 float features)",
        "sklearn": sklearn.__version__,
        "rows_sent": ROWS,
        "in_process_predict_ms": round(_predict_ms(model, rows), 3),
        "expected_predictions": [int(p) for p in model.predict(np.asarray(rows[:20]))],
    }
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return manifest


def load_rows(workdir: Path = WORKDIR) -> list[list[float]]:
    rows: list[list[float]] = json.loads((workdir / "rows.json").read_text())
    return rows


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else WORKDIR
    print(json.dumps(prepare(target), indent=2))
