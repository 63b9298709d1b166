"""The policy engine: one ``tick`` moves a model's loop one step, and every step is an event.

Stages (``policy_state``) and what a tick does in each:

``idle``
    Checks the retrain triggers (drift report with drift since the last retrain, enough newly
    labelled predictions, schedule; never inside the cooldown). On a trigger it builds a
    training snapshot from the loop (time split; the latest labelled predictions are the frozen
    evaluation set) — with the champion's training rows as replay when asked — and queues a
    ``train`` job whose version gets the ``challenger`` alias → ``training``.
``training``
    Waits for the job; a finished job's version is the candidate → ``evaluating`` (same tick).
``evaluating``
    Candidate vs champion on the frozen evaluation set: paired-bootstrap metric gates and the
    latency gate. Passed → a shadow deployment (the champion serves, the candidate gets a
    mirrored share) → ``shadow``; failed → rejected, back to ``idle``.
``shadow``
    After ``shadow_min_requests`` mirrored predictions → a canary deployment at the first step,
    with the champion as the fallback of the candidate arm → ``canary``.
``canary``
    Every tick checks rollback first: the candidate arm's requests that failed over to the
    champion (errors, timeouts, open breaker). More failures than ``max_error_rate`` ×
    max(requests, ``min_requests``) — so with the defaults the first failures already count —
    or a p99 over the bound → the champion takes all traffic again, a ``rollback`` alert is
    raised, back to ``idle``. Otherwise, after ``step_min_requests`` and ``step_dwell_s`` the
    canary moves a step; past the last step the candidate becomes ``champion`` (alias moved,
    single deployment) → ``idle``.

Failures served by the fallback never reach the client: the candidate arm's failures are
answered by the champion, and the rollback takes the candidate out of the traffic.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from learnloop.core.datasets import DatasetService
from learnloop.core.deployments import parse_spec
from learnloop.core.errors import InvalidInput, LearnloopError
from learnloop.core.jobs import JobService
from learnloop.core.records import JobStatus
from learnloop.core.registry import RegistryService
from learnloop.core.rollout import DeploymentService
from learnloop.loop.dataset_builder import LoopDatasetBuilder, LoopDatasetRequest
from learnloop.loop.evaluator import Evaluator
from learnloop.loop.feedback import FeedbackService
from learnloop.loop.model_insight import ModelInsight
from learnloop.loop.monitoring import DriftMonitor
from learnloop.loop.policy.spec import Policy, parse_policy
from learnloop.loop.training import TrainingService, TrainRequest
from learnloop.storage.sql.alerts import SqlAlertStore
from learnloop.storage.sql.monitors import SqlMonitorReports
from learnloop.storage.sql.policy import SqlPolicyStore
from learnloop.storage.sql.serving import SqlPredictionStore

ACTOR = "policy"
FAILURES = frozenset({"error", "timeout", "circuit_open"})
META = ["prediction_id", "subject_id", "predicted_at"]
CHAMPION_ONLY = {"mode": "single", "arms": [{"name": "champion", "alias": "champion"}]}


def _now() -> datetime:
    return datetime.now(UTC)


def _parse(ts: str | None) -> datetime | None:
    return datetime.fromisoformat(ts) if ts else None


class PolicyEngine:
    def __init__(
        self,
        store: SqlPolicyStore,
        registry: RegistryService,
        deployments: DeploymentService,
        jobs: JobService,
        training: TrainingService,
        builder: LoopDatasetBuilder,
        datasets: DatasetService,
        evaluator: Evaluator,
        feedback: FeedbackService,
        predictions: SqlPredictionStore,
        reports: SqlMonitorReports,
        alerts: SqlAlertStore,
        *,
        drift: DriftMonitor | None = None,
        insight: ModelInsight | None = None,
    ) -> None:
        self.drift = drift  # type: ignore[assignment]
        self.insight = insight
        self.store = store
        self.registry = registry
        self.deployments = deployments
        self.jobs = jobs
        self.training = training
        self.builder = builder
        self.datasets = datasets
        self.evaluator = evaluator
        self.feedback = feedback
        self.predictions = predictions
        self.reports = reports
        self.alerts = alerts
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # -- policy ------------------------------------------------------------------------------

    def set_policy(self, model: str, raw: object, *, actor: str) -> dict[str, Any]:
        self.registry.get_model(model)
        policy = parse_policy(raw)
        revision = self.store.put(model, policy.model_dump(mode="json"), actor)
        self.store.event(model, self.store.state(model)[0], "policy", f"revision {revision}", {})
        return {"model": model, "revision": revision, "policy": policy.model_dump(mode="json")}

    def policy(self, model: str) -> Policy | None:
        found = self.store.get(model)
        return Policy.model_validate(found[1]) if found else None

    def status(self, model: str) -> dict[str, Any]:
        found = self.store.get(model)
        stage, data = self.store.state(model)
        return {
            "model": model,
            "revision": found[0] if found else None,
            "policy": found[1] if found else None,
            "stage": stage,
            "state": data,
        }

    # -- ticking ----------------------------------------------------------------------------

    def tick_all(self) -> list[dict[str, Any]]:
        return [self.tick(m) for m in self.store.models()]

    def tick(self, model: str) -> dict[str, Any]:
        with self._guard:
            lock = self._locks.setdefault(model, threading.Lock())
        if not lock.acquire(blocking=False):
            return {"model": model, "action": "busy"}
        try:
            policy = self.policy(model)
            if policy is None:
                raise InvalidInput("no policy", [])
            stage, data = self.store.state(model)
            if not policy.enabled:
                return {"model": model, "stage": stage, "action": "disabled"}
            handler = getattr(self, f"_{stage}")
            action: str = handler(model, policy, data)
            return {"model": model, "stage": self.store.state(model)[0], "action": action}
        finally:
            lock.release()

    def _move(
        self,
        model: str,
        stage: str,
        data: dict[str, Any],
        action: str,
        reason: str,
        details: dict[str, Any] | None = None,
    ) -> str:
        self.store.set_state(model, stage, data)
        self.store.event(model, stage, action, reason, details or {})
        return action

    # -- idle: triggers ---------------------------------------------------------------------

    def _trigger(self, model: str, policy: Policy, data: dict[str, Any]) -> str | None:
        r = policy.retrain
        last = _parse(data.get("last_retrain_at"))
        now = _now()
        if last is not None and (now - last).total_seconds() < r.cooldown_s:
            return None
        if r.on_drift:
            latest = self.reports.list(model, "drift", 1)
            if latest and latest[0]["verdict"]:
                at = datetime.fromisoformat(latest[0]["created_at"])
                if last is None or at > last:
                    cols = latest[0]["summary"].get("drifted_columns") or []
                    return f"drift report {latest[0]['id']} ({', '.join(cols[:5]) or 'drift'})"
        if r.min_new_labels is not None:
            fresh = sum(
                1
                for e in self.feedback.labelled(model)
                if e.label_at is not None and (last is None or e.label_at > last)
            )
            if fresh >= r.min_new_labels:
                return f"{fresh} newly labelled predictions (≥ {r.min_new_labels})"
        if r.every_s is not None and (last is None or (now - last).total_seconds() >= r.every_s):
            return f"schedule (every {r.every_s:g} s)"
        return None

    def _monitor(self, model: str, policy: Policy, data: dict[str, Any]) -> dict[str, Any]:
        """Run the scheduled drift monitor when it is due (its report may trigger a retrain)."""
        m = policy.monitoring
        last = _parse(data.get("last_drift_at"))
        if m.drift_every_s is None or (
            last is not None and (_now() - last).total_seconds() < m.drift_every_s
        ):
            return data
        data = {**data, "last_drift_at": _now().isoformat()}
        try:
            report = self.drift.run(model, window=timedelta(seconds=m.drift_window_s))
            self.store.event(
                model,
                "idle",
                "drift_monitor",
                "drift" if report["summary"]["drift"] else "no drift",
                {"report": report["id"]},
            )
        except LearnloopError as e:
            self.store.event(model, "idle", "drift_monitor", f"skipped: {e.message}", {})
        self.store.set_state(model, "idle", data)
        return data

    def _idle(self, model: str, policy: Policy, data: dict[str, Any]) -> str:
        data = self._monitor(model, policy, data)
        why = self._trigger(model, policy, data)
        if why is None:
            return "wait"
        data = {**data, "last_retrain_at": _now().isoformat(), "trigger": why}
        try:
            dataset_id, replayed = self._training_set(model, policy)
            champion = self.registry.resolve(model, "champion")
            base = dict(self.registry.get_version(model, champion).params)
            params = {**base, **policy.training.params, "split_column": "split"}
            params["drop_columns"] = sorted({*base.get("drop_columns", []), *META})
            record = self.datasets.get(dataset_id)
            params["drop_columns"] = [c for c in params["drop_columns"] if c in dict(record.schema)]
            family = self.registry.get_model(model).family
            request = self.training.validate(
                TrainRequest(
                    family=family,
                    model=model,
                    dataset_id=dataset_id,
                    params=params,
                    alias="challenger",
                )
            )
            job = self.jobs.submit("train", request.model_dump(), actor=ACTOR)
        except LearnloopError as e:
            return self._move(model, "idle", data, "retrain_skipped", f"{why}: {e.message}")
        data.update(job_id=job.id, dataset_id=dataset_id, champion=champion)
        return self._move(
            model,
            "training",
            data,
            "retrain",
            why,
            {"job_id": job.id, "dataset_id": dataset_id, "replayed_rows": replayed},
        )

    def _training_set(self, model: str, policy: Policy) -> tuple[str, int]:
        """The loop's snapshot; with replay, plus the champion's training rows (as train)."""
        built, _ = self.builder.build(
            LoopDatasetRequest(
                model=model,
                name=f"{model}-retrain",
                valid_fraction=policy.training.valid_fraction,
            ),
            actor=ACTOR,
        )
        if not policy.training.include_champion_data:
            return built.id, 0
        champion = self.registry.get_version(model, self.registry.resolve(model, "champion"))
        if not champion.dataset_id:
            return built.id, 0
        fresh = self.datasets.load(built.id)
        old = self.datasets.load(champion.dataset_id)
        old = old[[c for c in old.columns if c in fresh.columns]].copy()
        if "split" in old.columns:
            old = old[old["split"] != "valid"]
        old["split"] = "train"
        for col in META:
            if col in fresh.columns and col not in old.columns:
                old[col] = pd.Series(index=old.index, dtype=fresh[col].dtype)
        old = old.astype({c: fresh[c].dtype for c in old.columns if old[c].isna().all()})
        frame = pd.concat([old, fresh], ignore_index=True)[list(fresh.columns)]
        record = self.datasets.import_frame(
            frame,
            family=built.family,
            params=built.manifest.get("params") or None,
            name=f"{model}-retrain-replay",
            source=f"replay:{champion.dataset_id}+{built.id}",
            actor=ACTOR,
            subject_column="subject_id",
            extra_manifest={
                "lineage": {
                    "source": "replay",
                    "loop_dataset": built.id,
                    "champion_dataset": champion.dataset_id,
                    "replayed_rows": len(old),
                }
            },
        )
        return record.id, len(old)

    # -- training → evaluating -------------------------------------------------------------

    def _training(self, model: str, policy: Policy, data: dict[str, Any]) -> str:
        job = self.jobs.get(str(data["job_id"]))
        if not job.status.finished:
            return "wait"
        if job.status is not JobStatus.SUCCEEDED:
            return self._move(model, "idle", data, "training_failed", job.error or job.status.value)
        data = {**data, "candidate": str((job.result or {})["version"])}
        self._move(model, "evaluating", data, "trained", f"version {data['candidate']}")
        return self._evaluating(model, policy, data)

    def _evaluating(self, model: str, policy: Policy, data: dict[str, Any]) -> str:
        g = policy.gates
        result = self.evaluator.evaluate(
            model,
            str(data["candidate"]),
            champion=str(data["champion"]),
            dataset_id=str(data["dataset_id"]),
            gates=[m.model_dump() for m in g.metrics],
            max_latency_p99_ms=g.max_latency_p99_ms,
            n_boot=g.n_boot,
        )
        if g.fairness is not None and self.insight is not None:
            result["gates"].extend(self._fairness_gate(model, policy, data))
            result["passed"] = all(x["passed"] for x in result["gates"])
        summary = {"gates": result["gates"], "metrics": result["metrics"], "rows": result["rows"]}
        if not result["passed"]:
            failed = [x["metric"] for x in result["gates"] if not x["passed"]]
            return self._move(model, "idle", data, "rejected", f"failed {failed}", summary)
        self.store.event(model, "evaluating", "gates_passed", "all gates passed", summary)
        spec = {
            "mode": "shadow",
            "arms": [
                {"name": "champion", "alias": "champion", "weight": 100},
                {"name": "candidate", "version": data["candidate"], "weight": 0},
            ],
            "shadow": {"arm": "candidate", "fraction": policy.rollout.shadow_fraction},
        }
        self.deployments.apply(model, parse_spec(spec), actor=ACTOR, reason="policy: shadow")
        data = {**data, "stage_since": _now().isoformat()}
        return self._move(model, "shadow", data, "shadow", f"candidate {data['candidate']}")

    def _fairness_gate(
        self, model: str, policy: Policy, data: dict[str, Any]
    ) -> list[dict[str, Any]]:
        f = policy.gates.fairness
        assert f is not None and self.insight is not None
        try:
            report = self.insight.bias(
                model,
                str(data["dataset_id"]),
                f.attributes,
                version=str(data["candidate"]),
                bounds=f.bounds,
                config={"min_group_size": f.min_group_size, "n_boot": 200},
            )
        except LearnloopError as e:
            return [{"kind": "fairness", "metric": "fairness", "passed": False, "error": e.message}]
        verdicts = [
            {"kind": "fairness", **v, "passed": bool(v["passed"])} for v in report.get("bounds", [])
        ]
        if not all(v["passed"] for v in verdicts):
            self.alerts.raise_alert(
                key=f"fairness:{model}:{data['candidate']}",
                kind="fairness",
                model=model,
                severity="warning",
                message=f"{model}: candidate {data['candidate']} breaks fairness bounds",
                details={"verdicts": verdicts},
            )
        return verdicts

    # -- shadow → canary ------------------------------------------------------------------

    def _shadow(self, model: str, policy: Policy, data: dict[str, Any]) -> str:
        since = _parse(data["stage_since"])
        mirrored = [
            r
            for r in self.predictions.list(model, limit=100_000, shadow=True, since=since)
            if r.version == data["candidate"]
        ]
        if len(mirrored) < policy.rollout.shadow_min_requests:
            return "wait"
        steps = [*policy.rollout.canary_steps, 100.0]
        spec = {
            "mode": "canary",
            "arms": [
                {"name": "champion", "alias": "champion"},
                {"name": "candidate", "version": data["candidate"]},
            ],
            "canary": {"candidate": "candidate", "steps": steps, "step": 0},
            "fallback": {"chain": ["alias:champion"]},
        }
        self.deployments.apply(model, parse_spec(spec), actor=ACTOR, reason="policy: canary")
        data = {**data, "stage_since": _now().isoformat(), "step": 0}
        return self._move(
            model, "canary", data, "canary", f"{steps[0]:g}% after {len(mirrored)} shadow requests"
        )

    # -- canary: rollback or advance ---------------------------------------------------------

    def _candidate_stats(self, model: str, data: dict[str, Any]) -> dict[str, Any]:
        since = _parse(data["stage_since"])
        rows = [
            r
            for r in self.predictions.list(model, limit=200_000, since=since)
            if r.arm == "candidate"
        ]
        failed = sum(
            1
            for r in rows
            if r.served_by.get("fallback")
            and any(
                f.get("version") == data["candidate"] and f.get("reason") in FAILURES
                for f in r.served_by.get("fallback_from", [])
            )
        )
        own = [r.latency_ms for r in rows if r.version == data["candidate"]]
        return {
            "requests": len(rows),
            "failed": failed,
            "p99_ms": float(np.percentile(own, 99)) if own else None,
        }

    def _outcomes(self, model: str, data: dict[str, Any]) -> dict[str, Any]:
        """Mean online outcome (from feedback) of each arm since the canary step began."""
        since = _parse(data["stage_since"])
        rows = self.predictions.list(model, limit=200_000, since=since)
        source = self.feedback.outcomes()
        found = source.outcomes([r.id for r in rows])
        out: dict[str, Any] = {}
        for arm in ("candidate", "champion"):
            values = [found[r.id] for r in rows if r.arm == arm and r.id in found]
            out[arm] = {"n": len(values), "mean": float(np.mean(values)) if values else None}
        return out

    def _canary(self, model: str, policy: Policy, data: dict[str, Any]) -> str:
        self.feedback.flush_ledger()
        stats = self._candidate_stats(model, data)
        rb = policy.rollback
        allowed = rb.max_error_rate * max(stats["requests"], rb.min_requests)
        slow = (
            rb.max_latency_p99_ms is not None
            and stats["p99_ms"] is not None
            and stats["requests"] >= rb.min_requests
            and stats["p99_ms"] > rb.max_latency_p99_ms
        )
        worse = None
        if rb.max_outcome_drop is not None:
            outcome = self._outcomes(model, data)
            stats["outcomes"] = outcome
            cand, champ = outcome["candidate"], outcome["champion"]
            if min(cand["n"], champ["n"]) >= rb.min_outcomes:
                drop = champ["mean"] - cand["mean"]
                if drop > rb.max_outcome_drop:
                    worse = f"online outcome {cand['mean']:.3f} vs champion {champ['mean']:.3f}"
        if stats["failed"] > allowed or slow or worse:
            if stats["failed"] > allowed:
                why = (
                    f"{stats['failed']} of {stats['requests']} candidate requests failed "
                    f"(allowed {allowed:g})"
                )
            elif slow:
                why = f"candidate p99 {stats['p99_ms']:.1f} ms > {rb.max_latency_p99_ms:g} ms"
            else:
                why = str(worse)
            self.deployments.apply(
                model, parse_spec(CHAMPION_ONLY), actor=ACTOR, reason=f"rollback: {why}"
            )
            self.alerts.raise_alert(
                key=f"rollback:{model}:{data['candidate']}:{data['stage_since']}",
                kind="rollback",
                model=model,
                severity="critical",
                message=f"{model}: candidate {data['candidate']} rolled back: {why}",
                details=stats,
            )
            return self._move(model, "idle", data, "rolled_back", why, stats)
        dwell = (_now() - _parse(data["stage_since"])).total_seconds()  # type: ignore[operator]
        if (
            stats["requests"] < policy.rollout.step_min_requests
            or dwell < policy.rollout.step_dwell_s
        ):
            return "wait"
        canary = self.deployments.get(model).spec.canary
        if canary is None or canary.step + 1 >= len(canary.steps):
            # past the last step the candidate is the champion: move the alias and serve it
            # (one revision, not a pinned single arm followed by the alias one)
            self.registry.set_alias(
                model,
                "champion",
                str(data["candidate"]),
                actor=ACTOR,
                reason=f"promoted by policy after canary ({data.get('trigger')})",
            )
            self.deployments.apply(model, parse_spec(CHAMPION_ONLY), actor=ACTOR, reason="promoted")
            return self._move(
                model, "idle", data, "promoted", f"version {data['candidate']} is champion", stats
            )
        deployment = self.deployments.promote(model, actor=ACTOR, reason="policy: canary step")
        share = deployment.spec.canary.steps[deployment.spec.canary.step]  # type: ignore[union-attr]
        data = {**data, "stage_since": _now().isoformat(), "step": deployment.spec.canary.step}  # type: ignore[union-attr]
        return self._move(model, "canary", data, "canary", f"{share:g}%", stats)
