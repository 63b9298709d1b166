"""The ``learnloop`` command as a user runs it: real subprocesses on a temp LEARNLOOP_HOME."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from learnloop.container import Container
from tests.conftest import fast_settings

pytestmark = pytest.mark.slow

FEATURES = {
    "Type": "M",
    "Air temperature [K]": 299.0,
    "Process temperature [K]": 309.5,
    "Rotational speed [rpm]": 1450,
    "Torque [Nm]": 45.0,
    "Tool wear [min]": 120,
}


def run(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEARNLOOP_HOME": str(home), "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "learnloop", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, ai4i_sample: pd.DataFrame) -> Iterator[Path]:
    """A home where the CLI trained model ``cli-failure`` (version 1) from a CSV."""
    root = tmp_path_factory.mktemp("cli")
    csv = root / "machines.csv"
    ai4i_sample.drop(columns=["TWF", "HDF", "PWF", "OSF", "RNF"]).to_csv(csv, index=False)
    home = root / "home"
    result = run(
        home,
        "train",
        "tabular",
        "--data",
        str(csv),
        "--target",
        "Machine failure",
        "--model",
        "cli-failure",
        "--param",
        "n_estimators=40",
        "--param",
        "checkpoint_every=10",
    )
    assert result.returncode == 0, result.stderr
    home.joinpath("train.out").write_text(result.stdout)
    home.joinpath("train.err").write_text(result.stderr)
    yield home


def test_train_shows_progress_and_registers_in_mlflow(trained: Path) -> None:
    err = trained.joinpath("train.err").read_text()
    out = trained.joinpath("train.out").read_text()
    assert "100%" in err and "succeeded" in err  # the progress bar's final frame
    assert "version 1" in out and "roc_auc=" in out
    c = Container(fast_settings(trained)).open()
    try:
        version = c.registry.get_version("cli-failure", "1")
        run_data = c.model_registry.client.get_run(version.run_id).data
    finally:
        c.close()
    assert run_data.params["n_estimators"] == "40"
    assert run_data.params["dataset_id"] == version.dataset_id
    assert run_data.metrics["final_roc_auc"] == pytest.approx(version.metrics["roc_auc"])
    assert f"dataset {version.dataset_id}" in out


def test_predict_alias_and_rollback_from_the_cli(trained: Path) -> None:
    missing = run(trained, "predict", "cli-failure", "--input", json.dumps(FEATURES))
    assert missing.returncode == 1 and "cli-failure@champion" in missing.stderr
    assert run(trained, "alias", "set", "cli-failure", "champion", "1").returncode == 0
    result = run(trained, "predict", "cli-failure", "--input", json.dumps(FEATURES))
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["version"] == "1"
    assert sum(body["outputs"][0]["probabilities"].values()) == pytest.approx(1.0)
    bad = run(trained, "predict", "cli-failure", "--input", json.dumps({"Type": "M"}))
    assert bad.returncode == 1 and "inputs[0].Torque [Nm]" in bad.stderr
    not_objects = run(trained, "predict", "cli-failure", "--input", "[1,2]")
    assert not_objects.returncode == 2 and "Traceback" not in not_objects.stderr
    assert "'--input': item 0 is a number" in not_objects.stderr
    history = run(trained, "alias", "history", "cli-failure")
    assert history.returncode == 0 and "champion" in history.stdout and "local" in history.stdout
    rollback = run(trained, "alias", "rollback", "cli-failure", "champion")
    assert rollback.returncode == 1 and "no earlier version" in rollback.stderr


def test_dataset_import_names_offending_columns(tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    frame = pd.DataFrame({"a": [i % 7 for i in range(30)], "b": ["x", "y", "z"] * 10})
    frame.to_csv(csv, index=False)
    result = run(
        tmp_path / "home", "dataset", "import", str(csv), "--family", "tabular", "--target", "label"
    )
    assert result.returncode == 1
    assert "label" in result.stderr and "a, b" in result.stderr.replace("'", "")
    ok = run(
        tmp_path / "home", "dataset", "import", str(csv), "--family", "tabular", "--target", "b"
    )
    assert ok.returncode == 0 and "30 rows" in ok.stdout
    listing = run(tmp_path / "home", "dataset", "list")
    assert "d.csv" in listing.stdout


def test_keys_create_prints_the_key_last(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run(home, "keys", "create", "--role", "operator", "--name", "ci")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("ll_")
    with sqlite3.connect(home / "learnloop.db") as conn:
        stored = [r[0] for r in conn.execute("SELECT key_hash FROM api_keys")]
    assert len(stored) == 1 and token not in stored[0]
    c = Container(fast_settings(home)).open()
    try:
        assert c.keys.authenticate(token).role.value == "operator"
    finally:
        c.close()
    bad = run(home, "keys", "create", "--role", "superuser")
    assert bad.returncode == 1 and "superuser" in bad.stderr


def test_migrate_refuses_a_foreign_database_and_leaves_it_alone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with sqlite3.connect(home / "learnloop.db") as conn:
        conn.execute("CREATE TABLE orders (id INTEGER)")
    before = (home / "learnloop.db").read_bytes()
    for command in (["migrate"], ["keys", "create", "--role", "admin"]):
        result = run(home, *command)
        assert result.returncode == 1
        assert "not a learnloop database" in result.stderr
    assert (home / "learnloop.db").read_bytes() == before


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_keeps_all_state_under_learnloop_home(tmp_path: Path) -> None:
    home = tmp_path / "state"
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    token = run(home, "keys", "create", "--role", "admin").stdout.strip().splitlines()[-1]
    port = free_port()
    env = {**os.environ, "LEARNLOOP_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "learnloop", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{base}/v1/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert httpx.get(f"{base}/v1/models").status_code == 401
        ready = httpx.get(f"{base}/v1/ready", headers={"Authorization": f"Bearer {token}"})
        assert ready.status_code == 200 and ready.json()["ready"] is True
        models = httpx.get(f"{base}/v1/models", headers={"X-API-Key": token})
        assert models.status_code == 200 and models.json() == []
    finally:
        proc.terminate()
        proc.wait(20)
    assert (home / "learnloop.db").exists()
    assert list(cwd.iterdir()) == []  # nothing written outside the home


def test_serve_with_two_processes_answers_on_one_port(tmp_path: Path) -> None:
    home = tmp_path / "state"
    token = run(home, "keys", "create", "--role", "admin").stdout.strip().splitlines()[-1]
    port = free_port()
    env = {**os.environ, "LEARNLOOP_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "learnloop", "serve", "--port", str(port), "--processes", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.3)
        headers = {"Authorization": f"Bearer {token}"}
        answers = [httpx.get(f"{base}/v1/ready", headers=headers) for _ in range(10)]
        assert all(a.status_code == 200 and a.json()["ready"] for a in answers)
        assert httpx.get(f"{base}/v1/models").status_code == 401
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
