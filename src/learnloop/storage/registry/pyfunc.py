"""Makes every learnloop version loadable with ``mlflow.pyfunc.load_model``.

The MLflow model of a version wraps the family's saved folder (artifact ``family_model``); this
module is the model-from-code entry MLflow runs at load time, so nothing is pickled. ``predict``
takes a DataFrame (one row per input) or a list of dicts and returns a DataFrame of outputs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model

FAMILY_FILE = "learnloop_family.json"


class FamilyPythonModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    def load_context(self, context: Any) -> None:
        from learnloop.core.catalog import FamilyCatalog

        folder = Path(context.artifacts["family_model"])
        family = json.loads((folder / FAMILY_FILE).read_text())["family"]
        self.model = FamilyCatalog.default().get(family).load(folder)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if isinstance(model_input, pd.DataFrame):
            rows = model_input.to_dict(orient="records")
        else:
            rows = list(model_input)
        inputs = self.model.validate_inputs(rows)
        outputs = self.model.predict(inputs)
        return pd.DataFrame([o.model_dump() for o in outputs])


set_model(FamilyPythonModel())
