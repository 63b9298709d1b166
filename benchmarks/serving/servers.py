"""The three servers under test: how each is prepared, started, called and stopped.

Each launcher is a context manager yielding a :class:`Running` server — healthy, model loaded,
answering a first prediction — and stops its whole process tree on exit. Each server's request
body is built by one small function from one feature row (a list of 30 floats):

* learnloop: :func:`learnloop_v1_body` for ``POST /v1/models/bench/predict`` (today's route);
  :func:`learnloop_v2_body` is the Open Inference Protocol body for ``/v2/models/bench/infer``.
* MLServer: :func:`mlserver_body`, the V2 (Open Inference Protocol) tensor body.
* BentoML: :func:`bentoml_body`, the JSON of the API's ``features`` argument.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common.load import Target
from benchmarks.common.processes import (
    ServerFailed,
    ServerProcess,
    free_port,
    log_tail,
    start_server,
)
from benchmarks.serving.model import FEATURES

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PEERS = ROOT / "benchmarks" / ".peers"
HOST = "127.0.0.1"

Row = Sequence[float]
BodyFn = Callable[[Row], dict[str, Any]]


def learnloop_v1_body(row: Row) -> dict[str, Any]:
    return {"inputs": [dict(zip(FEATURES, row, strict=True))]}


def learnloop_v2_body(row: Row) -> dict[str, Any]:
    return mlserver_body(row)


def mlserver_body(row: Row) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "predict", "shape": [1, len(row)], "datatype": "FP64", "data": list(row)}
        ]
    }


def bentoml_body(row: Row) -> dict[str, Any]:
    return {"features": list(row)}


@dataclass
class Running:
    """A healthy server and how to load it."""

    name: str  # "learnloop", "mlserver", "bentoml"
    variant: str  # e.g. "parallel_workers=2"
    process: ServerProcess
    target: Target
    first_answer: Any = None  # the decoded answer to the priming request
    info: dict[str, Any] = field(default_factory=dict)


def post_json(
    url: str, body: Mapping[str, Any], headers: Mapping[str, str], timeout_s: float = 60
) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as r:
        return json.loads(r.read() or b"null")


def _target(
    name: str, url: str, rows: Sequence[Row], body: BodyFn, headers: Mapping[str, str] | None = None
) -> Target:
    return Target(
        name=name, url=url, bodies=[json.dumps(body(r)) for r in rows], headers=dict(headers or {})
    )


def _clean_env(venv_bin: Path | None = None, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LEARNLOOP_", "VIRTUAL_ENV", "PYTHONPATH"))
    }
    if venv_bin is not None:
        env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


@contextmanager
def _serving(process: ServerProcess) -> Iterator[ServerProcess]:
    try:
        yield process
    finally:
        process.stop()


def _prime(
    url: str, body: dict[str, Any], headers: Mapping[str, str], process: ServerProcess
) -> Any:
    try:
        return post_json(url, body, headers)
    except Exception as e:  # the server is up but cannot predict: say why, with its log
        raise ServerFailed(
            f"{process.name}: first prediction failed: {e}\n{log_tail(process.log_path)}"
        ) from e


# --- learnloop ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LearnloopConfig:
    """How learnloop is prepared, started and called. Templates see ``{bin}``, ``{host}``,
    ``{port}``, ``{csv}``; commands run with ``LEARNLOOP_HOME`` set to a fresh folder."""

    keys_cmd: str  # prints the new admin key on its last stdout line
    train_cmd: str
    serve_cmd: str
    predict_path: str
    body: BodyFn
    health_path: str = "/v1/health"
    env: Mapping[str, str] = field(default_factory=dict)
    bin: Path = ROOT / ".venv" / "bin"


def _run_cli(template: str, config: LearnloopConfig, env: dict[str, str], **fmt: Any) -> str:
    cmd = template.format(bin=config.bin, host=HOST, **fmt).split()
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    if done.returncode != 0:
        raise ServerFailed(
            f"learnloop: `{' '.join(cmd)}` failed ({done.returncode}):\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return done.stdout


@contextmanager
def learnloop(config: LearnloopConfig, workdir: Path, rows: Sequence[Row]) -> Iterator[Running]:
    """Train the bench model with learnloop's CLI in a fresh home, then serve it."""
    home = Path(tempfile.mkdtemp(prefix="learnloop-home-", dir=workdir))
    env = _clean_env(config.bin, LEARNLOOP_HOME=str(home), **config.env)
    try:
        key_out = _run_cli(config.keys_cmd, config, env)
        key = [line for line in key_out.splitlines() if line.strip()][-1].strip()
        _run_cli(config.train_cmd, config, env, csv=workdir / "data.csv")
        port = free_port()
        process = start_server(
            "learnloop",
            config.serve_cmd.format(bin=config.bin, host=HOST, port=port).split(),
            log_path=workdir / "logs" / "learnloop.log",
            env=env,
            cwd=home,
        )
        with _serving(process):
            base = f"http://{HOST}:{port}"
            process.wait_healthy(base + config.health_path)
            headers = {"Authorization": f"Bearer {key}"}
            url = base + config.predict_path
            answer = _prime(url, config.body(rows[0]), headers, process)
            yield Running(
                "learnloop",
                "default",
                process,
                _target("learnloop", url, rows, config.body, headers),
                answer,
                {
                    "serve_cmd": config.serve_cmd,
                    "predict_path": config.predict_path,
                    "env": dict(config.env),
                },
            )
    finally:
        shutil.rmtree(home, ignore_errors=True)


def learnloop_ledger_rows(running: Running, limit: int = 10) -> int | str:
    """How many ledger rows learnloop lists for the bench model (up to ``limit``), or why not.

    A check that the ledger really recorded the predictions the benchmark sent.
    """
    base = running.target.url.split("/v1/", 1)[0].split("/v2/", 1)[0]
    request = urllib.request.Request(
        f"{base}/v1/models/bench/predictions?limit={limit}", headers=running.target.headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return len(json.loads(r.read()))
    except Exception as e:  # an older learnloop without the route: report, don't fail the run
        return f"{type(e).__name__}: {e}"


# --- MLServer -------------------------------------------------------------------------------


@contextmanager
def mlserver(workdir: Path, rows: Sequence[Row], parallel_workers: int = 1) -> Iterator[Running]:
    """MLServer 1.7 with ``mlserver_sklearn.SKLearnModel`` and ``parallel_workers`` workers."""
    venv_bin = PEERS / "mlserver" / "bin"
    folder = workdir / f"mlserver-pw{parallel_workers}"
    model_dir = folder / "bench"
    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(workdir / "model.joblib", model_dir / "model.joblib")
    (model_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "bench",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib"},
            },
            indent=2,
        )
    )
    port = free_port()
    (folder / "settings.json").write_text(
        json.dumps(
            {
                "host": HOST,
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                "parallel_workers": parallel_workers,
            },
            indent=2,
        )
    )
    process = start_server(
        "mlserver",
        [str(venv_bin / "mlserver"), "start", str(folder)],
        log_path=workdir / "logs" / f"mlserver-pw{parallel_workers}.log",
        env=_clean_env(venv_bin),
        cwd=folder,
    )
    with _serving(process):
        base = f"http://{HOST}:{port}"
        process.wait_healthy(base + "/v2/models/bench/ready")
        url = base + "/v2/models/bench/infer"
        answer = _prime(url, mlserver_body(rows[0]), {}, process)
        yield Running(
            "mlserver",
            f"parallel_workers={parallel_workers}",
            process,
            _target("mlserver", url, rows, mlserver_body),
            answer,
            {"parallel_workers": parallel_workers},
        )


# --- BentoML --------------------------------------------------------------------------------


@contextmanager
def bentoml(workdir: Path, rows: Sequence[Row], workers: int = 1) -> Iterator[Running]:
    """``bentoml serve bento_service:Bench`` (see bento_service.py) with ``workers`` workers."""
    venv_bin = PEERS / "bentoml" / "bin"
    port = free_port()
    env = _clean_env(
        venv_bin,
        BENTOML_DO_NOT_TRACK="True",
        BENTOML_HOME=str(workdir / "bentoml-home"),
        BENCH_MODEL_PATH=str(workdir / "model.joblib"),
        BENCH_BENTO_WORKERS=str(workers),
    )
    process = start_server(
        "bentoml",
        [
            str(venv_bin / "bentoml"),
            "serve",
            "bento_service:Bench",
            "--host",
            HOST,
            "--port",
            str(port),
        ],
        log_path=workdir / "logs" / f"bentoml-w{workers}.log",
        env=env,
        cwd=HERE,
    )
    with _serving(process):
        base = f"http://{HOST}:{port}"
        process.wait_healthy(base + "/readyz")
        url = base + "/predict"
        answer = _prime(url, bentoml_body(rows[0]), {}, process)
        yield Running(
            "bentoml",
            f"workers={workers}",
            process,
            _target("bentoml", url, rows, bentoml_body),
            answer,
            {"workers": workers},
        )
