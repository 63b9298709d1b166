"""The demo: a machine-failure classifier on AI4I 2020, trained as a job and served.

Steps, printed as they happen: open the home, create an admin key, start the server on
HOST:PORT (in-process workers), import the data, submit the training job through the API,
follow it, point ``champion`` at the new version, and call predict with the printed key.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import typer

from learnloop.cli.common import console, say_error
from learnloop.cli.server import run_server
from learnloop.container import Container
from learnloop.core.auth import LOCAL_OPERATOR
from learnloop.core.errors import LearnloopError
from learnloop.settings import Settings

MODEL = "machine-failure"
TARGET = "Machine failure"
LEAKS = ["TWF", "HDF", "PWF", "OSF", "RNF"]  # failure-mode flags determine the target
SAMPLE = {
    "Type": "L",
    "Air temperature [K]": 302.5,
    "Process temperature [K]": 310.9,
    "Rotational speed [rpm]": 1320,
    "Torque [Nm]": 68.0,
    "Tool wear [min]": 215,
}


def run_demo(settings: Settings, host: str, port: int, data: Path) -> None:
    if not data.is_file():
        what = "is a directory" if data.is_dir() else "not found"
        say_error(f"demo data {data} {what} (use --data)")
        raise typer.Exit(1)
    _check_port(host, port)
    container = Container(settings)
    try:
        container.open()
        _, key = container.keys.create("admin", "demo-admin", actor=LOCAL_OPERATOR.name)
    except LearnloopError as e:
        console.print(f"[bold red]error:[/] {e.message}")
        raise typer.Exit(1) from None
    started = threading.Event()
    threading.Thread(
        target=_drive, args=(host, port, key, data, started), name="ll-demo", daemon=True
    ).start()
    console.print(f"[bold]learnloop demo[/] home={settings.home}")
    run_server(container, host, port, started=started)


def _drive(host: str, port: int, key: str, data: Path, started: threading.Event) -> None:
    if not started.wait(60):
        console.print("[bold red]server did not start[/]")
        return
    base = f"http://{host}:{port}"
    console.print(
        f"serving on {base} (another port: make demo PORT=8080, or learnloop demo --port 8080)",
        soft_wrap=True,
        highlight=False,
    )
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            params = {"target": TARGET, "drop_columns": LEAKS}
            r = client.post(
                "/v1/datasets",
                params={"family": "tabular", "name": data.name, "params": _json(params)},
                content=data.read_bytes(),
            )
            r.raise_for_status()
            dataset = r.json()
            console.print(f"dataset {dataset['id']}: {dataset['rows']} rows")
            r = client.post(
                "/v1/jobs",
                json={
                    "kind": "train",
                    "payload": {
                        "family": "tabular",
                        "model": MODEL,
                        "dataset_id": dataset["id"],
                        "params": params,
                    },
                },
            )
            r.raise_for_status()
            job_id = r.json()["id"]
            console.print(f"training job {job_id} submitted")
            job = _follow(client, job_id)
            if job["status"] != "succeeded":
                console.print(f"[bold red]training {job['status']}[/]: {job['error']}")
                return
            version = job["result"]["version"]
            metrics = job["result"]["metrics"]
            console.print(
                f"version {version} registered: "
                + ", ".join(f"{k}={v:.3f}" for k, v in metrics.items())
            )
            client.put(
                f"/v1/models/{MODEL}/aliases/champion",
                json={"version": version, "reason": "demo"},
            ).raise_for_status()
            r = client.post(f"/v1/models/{MODEL}/predict", json={"inputs": [SAMPLE]})
            r.raise_for_status()
            console.print(f"predict via champion → {r.json()['outputs'][0]}")
    except httpx.HTTPError as e:
        console.print(f"[bold red]demo step failed:[/] {e}")
        return
    sample = _json({"inputs": [SAMPLE]})
    # plain print: no markup (feature names contain brackets) and no wrapping, so it pastes
    print(
        "\nready. Try:\n"
        f"  curl -s -X POST {base}/v1/models/{MODEL}/predict \\\n"
        f"    -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n"
        f"    -d '{sample}'\n"
        f"  OpenAPI docs: {base}/docs   metrics: {base}/metrics   (Ctrl-C stops)\n"
        f"admin key:\n{key}",
        flush=True,
    )


def _check_port(host: str, port: int) -> None:
    """Refuse a port something else listens on before a key is made and the server starts,
    saying how to choose another."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as e:
            say_error(
                f"cannot serve on {host}:{port}: {e.strerror or e} "
                f"(choose another port: make demo PORT=8080, or learnloop demo --port 8080)"
            )
            raise typer.Exit(1) from None


def _follow(client: httpx.Client, job_id: str) -> dict:
    last = -1.0
    while True:
        job = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        if job["progress"] - last >= 0.1 or job["status"] not in ("queued", "running"):
            console.print(f"  {job['status']:>9} {job['progress']:4.0%} {job['message']}")
            last = job["progress"]
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.3)


def _json(value: object) -> str:
    import json

    return json.dumps(value)
