"""The MLflow adapter keeps MLflow's artifact progress bars out of the CLI's and the server's
output: loading a version prints nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from learnloop.storage.registry.mlflow_registry import MlflowModelRegistry


def test_loading_a_version_prints_no_progress_bar(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    registry = MlflowModelRegistry(
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        (tmp_path / "artifacts").as_uri(),
        "quiet",
        cache_dir=tmp_path / "models",
    )
    artifacts = tmp_path / "fitted"
    artifacts.mkdir()
    for name in ("weights.bin", "config.json", "vocab.txt"):
        (artifacts / name).write_text(name * 100)
    registry.create_model("quiet-model", "tabular")
    with registry.run("fit", tags={}) as run:
        version = registry.create_version(
            "quiet-model",
            artifacts,
            family="tabular",
            run_id=run.run_id,
            params={},
            metrics={},
            dataset_id=None,
            code_version="0.1.0",
        )
    capfd.readouterr()
    loaded = registry.artifact_path("quiet-model", version.version)
    assert {"config.json", "vocab.txt", "weights.bin"} <= {p.name for p in loaded.iterdir()}
    out, err = capfd.readouterr()
    assert "Downloading artifacts" not in err + out and "it/s" not in err + out, err
