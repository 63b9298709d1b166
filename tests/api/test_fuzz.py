"""API fuzzing: schemathesis over the whole OpenAPI, every check, fixed seed, zero failures.

The server is a real ``learnloop serve`` process over HTTP on a temp home with demo data
(``benchmarks/fuzz/server.py``: the AI4I sample as a dataset, model ``failure`` trained by a
real ``train`` job with ``champion`` on version 1, a throwaway model ``scratch`` for the routes
that destroy state, a finished batch job, a prediction, feedback, an alert channel). A process of
its own rather than the app in-process under a test client: requests go through uvicorn's HTTP
parsing and the real middleware, a crash or hang is the server's and not the test's, and the
fuzzer's data generation (CPU-bound, in this process) runs beside the server instead of taking
turns with it on one interpreter.

The checks, the statuses configured where schemathesis's defaults cannot fit this API, and how
destructive routes are kept off the data the others read are described in
``benchmarks/fuzz/harness.py``. The long run is ``make bench-fuzz``.

Bounded run: the explicit examples, the coverage phase (boundary and invalid values of every
parameter), ``MAX_EXAMPLES`` generated cases per operation and the stateful phase, seed
``SEED``. It fails listing every distinct failure: operation, check, status and a ``curl``
reproduction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from benchmarks.fuzz.harness import fuzz
from benchmarks.fuzz.server import AI4I, Demo, logged_errors, prepare, seed_http, serving

pytestmark = [pytest.mark.slow, pytest.mark.fuzz, pytest.mark.timeout(600)]

SEED = 20_240_613
MAX_EXAMPLES = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Demo, Path]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    demo = prepare(tmp / "home", AI4I)
    log = tmp / "server.log"
    with serving(tmp / "home", log) as base_url:
        yield base_url, seed_http(base_url, demo), log


def test_every_operation_passes_every_check(server: tuple[str, Demo, Path]) -> None:
    base_url, demo, log = server
    started = time.monotonic()
    report = fuzz(base_url, demo, seed=SEED, max_examples=MAX_EXAMPLES, workers=2)
    elapsed = time.monotonic() - started
    summary = (
        f"{report.requests} requests over {len(report.operations)}/"
        f"{len(report.operations_in_schema)} operations in {elapsed:.0f} s"
    )
    unreached = sorted(report.operations_in_schema - report.operations)
    assert not unreached, f"{summary}; never checked: {', '.join(unreached)}"
    assert_demo_data_intact(base_url, demo)
    assert report.ok, (
        f"{summary}: {len(report.findings)} distinct failures "
        f"({report.server_errors} server errors, {report.schema_violations} schema violations, "
        f"{report.undocumented_status_codes} undocumented statuses)\n"
        + report.describe()
        + "".join(f"\nserver log: {n} x {line}" for line, n in logged_errors(log).items())
    )


def assert_demo_data_intact(base_url: str, demo: Demo) -> None:
    """The destructive routes were steered to the throwaway model, key, subject and job: what
    the other operations read is still there after the run."""
    headers = {"Authorization": f"Bearer {demo.token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        champion = client.get("/v1/models/failure/aliases/champion")
        assert champion.status_code == 200 and champion.json()["version"] == "1", champion.text
        answer = client.post("/v1/models/failure/predict", json={"inputs": demo.rows})
        assert answer.status_code == 200, answer.text
        assert client.get(f"/v1/datasets/{demo.dataset_id}").status_code == 200
        job = client.get(f"/v1/jobs/{demo.train_job_id}")
        assert job.status_code == 200 and job.json()["status"] == "succeeded", job.text
