"""Serving a knowledge-tracing model: stateful single predictions and batched ones, ledger on.

    .venv/bin/python benchmarks/kt/serving.py [--model dkt] [--duration 20] [--quick]

A DKT (default params; ``--epochs`` of training on the DKVMN ASSISTments 2009 train1 file) is
registered as ``champion`` in a fresh home; ``learnloop serve`` serves it (one process, the
default deployment: batching on, the prediction ledger on, no response cache — knowledge-tracing
outputs depend on learner state). 2,000 learners get 50 stored answers each first (their states
are built once, then each prediction is one step).

Two loads, each from a one-thread load generator on the same 2 cores (so the figures include
the client's CPU):

* **single**: one request at a time, one stateful prediction per request (``learner_id`` +
  skill): latency percentiles as the client sees them (HTTP included);
* **batched**: requests of ``--batch`` stateful predictions (different learners) on 2
  connections: predictions per second.

Writes ``benchmarks/results/kt_serving.json`` (DKT) or ``kt_serving_MODEL.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import machine  # noqa: E402
from benchmarks.common.load import LoadSpec, Target, run_load  # noqa: E402
from benchmarks.common.processes import free_port, start_server  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "knowledge-tracing" / "dkvmn-assist2009"
OUT = ROOT / "benchmarks" / "results" / "kt_serving.json"
MODEL = "kt-bench"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="dkt", choices=["dkt", "attentive", "ensemble", "bkt"])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--learners", type=int, default=2000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--quick", action="store_true", help="short windows, 300 learners")
    p.add_argument(
        "--out", type=Path, default=None, help="default: results/kt_serving[_MODEL].json"
    )
    return p.parse_args(argv)


def prepare(home: Path, args: argparse.Namespace) -> tuple[str, list[str], dict[str, Any]]:
    """Train the model through a ``train`` job (champion); store 50 answers per learner.
    Returns the admin token, the skills and facts about the model."""
    from learnloop.container import Container
    from learnloop.core.auth import Role
    from learnloop.families.knowledge_tracing import load_interactions
    from learnloop.families.knowledge_tracing.schemas import Attempt
    from learnloop.families.knowledge_tracing.service import KnowledgeTracingService
    from learnloop.loop.training import TrainRequest
    from learnloop.settings import Settings

    c = Container(Settings(home=home)).open()  # type: ignore[call-arg]
    try:
        _, token = c.keys.create(Role.ADMIN, "kt-bench", actor="bench")
        frame = load_interactions(DATA / "assist2009_updated_train1.csv", "dkvmn")
        params = {"model": args.model, "epochs": args.epochs, "order_column": "order"}
        dataset = c.datasets.import_frame(
            frame, family="knowledge_tracing", params=params, name="dkvmn", source="bench",
            actor="bench",
        )  # fmt: skip
        request = c.training.validate(
            TrainRequest(
                family="knowledge_tracing",
                model=MODEL,
                dataset_id=dataset.id,
                params=params,
                alias="champion",
            )  # fmt: skip
        )
        job = c.jobs.submit("train", request.model_dump(), actor="bench")
        c.start_workers(1)
        done = c.jobs.wait(job.id, 1800)
        if done.status.value != "succeeded":
            raise SystemExit(f"training failed: {done.error}")
        skills = sorted(frame["skill_ids"].unique().tolist())
        service = KnowledgeTracingService(c)
        for u in range(args.learners):
            rows = frame.sample(50, random_state=u)
            attempts = [
                Attempt(skill_ids=[s], correct=int(k))
                for s, k in zip(rows["skill_ids"], rows["correct"], strict=True)
            ]
            service.add_answers(MODEL, f"u{u}", attempts)
        facts = {"train_job": done.result}
    finally:
        c.close()
    return token, skills, facts


def bodies_single(skills: list[str], learners: int) -> list[str]:
    return [
        json.dumps(
            {"inputs": [{"learner_id": f"u{i % learners}", "skill_ids": [skills[i % len(skills)]]}]}
        )
        for i in range(1000)
    ]


def bodies_batch(skills: list[str], learners: int, size: int) -> list[str]:
    out = []
    for b in range(20):
        inputs = [
            {
                "learner_id": f"u{(b * size + i) % learners}",
                "skill_ids": [skills[(b + i) % len(skills)]],
            }
            for i in range(size)
        ]
        out.append(json.dumps({"inputs": inputs}))
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.out is None:
        args.out = OUT if args.model == "dkt" else OUT.with_name(f"kt_serving_{args.model}.json")
    if args.quick:
        args.learners, args.duration, args.warmup, args.epochs = 300, 5.0, 2.0, 1
    with tempfile.TemporaryDirectory(prefix="ll-ktserve-") as tmp:
        home = Path(tmp)
        token, skills, facts = prepare(home, args)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **__import__("os").environ,
            "LEARNLOOP_HOME": str(home),
            "LEARNLOOP_LOGGING__LEVEL": "WARNING",
            "LEARNLOOP_JOBS__WORKERS": "0",
            "LEARNLOOP_API__MAX_BODY_BYTES": str(32 * 1024 * 1024),
        }
        server = start_server(
            "learnloop",
            [
                str(ROOT / ".venv" / "bin" / "learnloop"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            log_path=home / "server.log",
            env=env,
        )
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{base}/v1/models/{MODEL}/predict"
        try:
            server.wait_healthy(base + "/v1/health")
            # first touch of every learner rebuilds its state from the stored answers
            warm = bodies_batch(skills, args.learners, min(args.batch, args.learners))
            import urllib.request

            for body in warm[: max(1, args.learners // args.batch + 1)]:
                req = urllib.request.Request(
                    url, data=body.encode(), headers={**headers, "Content-Type": "application/json"}
                )
                with urllib.request.urlopen(req, timeout=120) as r:
                    assert r.status == 200
            single = run_load(
                Target("single", url, bodies_single(skills, args.learners), headers),
                LoadSpec("closed", 1, args.warmup, args.duration, tool="python"),
                server_pid=server.pid,
                scratch=home / "load",
            )
            batched = run_load(
                Target("batched", url, bodies_batch(skills, args.learners, args.batch), headers),
                LoadSpec("closed", 2, args.warmup, args.duration, tool="python"),
                server_pid=server.pid,
                scratch=home / "load",
            )
        finally:
            server.stop()
    result = {
        "model": args.model,
        "learners": args.learners,
        "answers_per_learner": 50,
        "facts": facts,
        "single": single,
        "batched": {
            **batched,
            "batch": args.batch,
            "predictions_per_s": batched["rps"] * args.batch,
        },
        "targets": {"single_p99_ms": 10, "batched_predictions_per_s": 5000},
        "machine": machine.describe(),
        "command": f"benchmarks/kt/serving.py --model {args.model} --epochs {args.epochs}"
        + (" --quick" if args.quick else ""),
    }
    rate = result["batched"]["predictions_per_s"]
    print(
        f"single: p50 {single['p50_ms']:.2f} ms, p99 {single['p99_ms']:.2f} ms, "
        f"{single['rps']:.0f} req/s; batched ({args.batch}/request): {rate:.0f} predictions/s, "
        f"p99 {batched['p99_ms']:.1f} ms"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
