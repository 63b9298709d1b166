"""``learnloop demo``: serves, trains the demo model as a job, sets champion, answers predict."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.cli.test_cli import FEATURES, free_port, run
from tests.conftest import AI4I

pytestmark = pytest.mark.slow


def test_demo_serves_a_champion_that_answers_with_the_printed_key(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "LEARNLOOP_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "learnloop", "demo", "--port", str(port), "--data", str(AI4I)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 180
        assert proc.stdout is not None
        while not lines or lines[-1].strip() != "admin key:":
            assert time.monotonic() < deadline, "".join(lines)
            line = proc.stdout.readline()
            assert line, "demo exited early:\n" + "".join(lines)
            lines.append(line)
        key = proc.stdout.readline().strip()
        output = "".join(lines)
        assert "succeeded" in output and "version 1 registered" in output
        assert f"serving on http://127.0.0.1:{port} (another port: make demo PORT=" in output
        assert "predict via champion" in output and key in output  # the curl line uses it
        base = f"http://127.0.0.1:{port}"
        answer = httpx.post(
            f"{base}/v1/models/machine-failure/predict",
            json={"inputs": [FEATURES]},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["version"] == "1" and body["alias"] == "champion"
        assert (
            httpx.post(
                f"{base}/v1/models/machine-failure/predict", json={"inputs": [FEATURES]}
            ).status_code
            == 401
        )
    finally:
        proc.terminate()
        proc.wait(30)


def test_demo_on_a_busy_port_says_how_to_choose_another(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(tmp_path / "home", "demo", "--port", str(port), "--data", str(AI4I))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: cannot serve on 127.0.0.1:{port}: Address already in use "
        "(choose another port: make demo PORT=8080, or learnloop demo --port 8080)"
    ]
