"""``learnloop bench kt`` as a user runs it: a real subprocess on slices of the AKT files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "knowledge-tracing"
AKT = DATA / "akt-assist2009-pid"
pytestmark = pytest.mark.slow
SMALL = [
    "-p", "hidden=32", "-p", "embed_dim=32", "-p", "threads=1", "-p", "max_len=50",
    "-p", "batch_size=16",
]  # fmt: skip


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "learnloop", "bench", "kt", *args],
        env={**os.environ, "COLUMNS": "120", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def head(source: Path, learners: int, out: Path) -> Path:
    """The first ``learners`` records of a 4-line file."""
    lines = [x for x in source.read_text().splitlines() if x.strip()]
    out.write_text("\n".join(lines[: 4 * learners]) + "\n")
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not AKT.exists():
        pytest.skip(f"dataset not found: {AKT}")
    root = tmp_path_factory.mktemp("kt-bench")
    return {
        "train": head(AKT / "assist2009_pid_test3.csv", 300, root / "train.csv"),
        "valid": head(AKT / "assist2009_pid_test2.csv", 60, root / "valid.csv"),
        "test": head(AKT / "assist2009_pid_test1.csv", 100, root / "test.csv"),
    }


def test_bench_writes_the_documented_json(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "dkt.json"
    r = bench(
        "--format", "akt", "--train", str(files["train"]), "--valid", str(files["valid"]),
        "--test", str(files["test"]), "--model", "dkt", "--epochs", "2", *SMALL,
        "--json", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    body = json.loads(out.read_text())
    assert {"auc", "accuracy", "train_seconds", "model", "params"} <= set(body)
    assert body["model"] == "dkt" and body["params"]["epochs"] == 2
    assert 0.6 < body["auc"] < 1.0  # problem difficulties alone carry this much
    assert body["siblings"] == "merge" and "test AUC" in r.stdout + r.stderr


def test_keeping_sibling_rows_scores_more_rows(files: dict[str, Path], tmp_path: Path) -> None:
    rows = {}
    for rule in ("merge", "keep"):
        out = tmp_path / f"{rule}.json"
        r = bench(
            "--format", "akt", "--train", str(files["train"]), "--test", str(files["test"]),
            "--model", "bkt", "-p", "restarts=1", "-p", "em_iterations=5",
            "--siblings", rule, "--json", str(out),
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        rows[rule] = json.loads(out.read_text())["rows"]["test"]
    assert rows["keep"] > rows["merge"] > 0


def test_a_file_in_the_wrong_format_is_a_clear_error(
    files: dict[str, Path], tmp_path: Path
) -> None:
    r = bench("--format", "dkvmn", "--train", str(files["train"]), "--test", str(files["test"]))
    assert r.returncode == 1
    assert "train.csv, line" in r.stdout + r.stderr
    r = bench("--format", "akt", "--train", str(files["train"]))
    assert r.returncode == 2 and "--test" in r.stdout + r.stderr
    r = bench(
        "--format", "akt", "--train", str(files["train"]), "--test", str(files["test"]),
        "--siblings", "drop",
    )  # fmt: skip
    assert r.returncode == 1 and "siblings" in r.stdout + r.stderr
