"""A model's lineage: data → run → version → rollout → outcome, as one timeline.

Merges, oldest first: dataset snapshots used by the model's versions (with their own lineage:
loop window, replay, erasure), training runs and the versions they registered, alias moves,
deployment revisions, and the policy engine's decisions with their reasons.
"""

from __future__ import annotations

from typing import Any

from learnloop.core.datasets import DatasetService
from learnloop.core.errors import NotFound
from learnloop.core.registry import RegistryService
from learnloop.core.rollout import DeploymentService
from learnloop.storage.sql.policy import SqlPolicyStore


def lineage(
    model: str,
    registry: RegistryService,
    datasets: DatasetService,
    deployments: DeploymentService,
    policy: SqlPolicyStore,
) -> dict[str, Any]:
    registry.get_model(model)
    events: list[dict[str, Any]] = []
    seen: set[str] = set()
    for v in registry.list_versions(model):
        if v.dataset_id and v.dataset_id not in seen:
            seen.add(v.dataset_id)
            try:
                record = datasets.get(v.dataset_id)
                events.append(
                    {
                        "at": record.created_at.isoformat(),
                        "kind": "data",
                        "what": f"dataset {record.id} ({record.rows} rows, {record.source})",
                        "details": {
                            "dataset": record.id,
                            "lineage": record.manifest.get("lineage"),
                            "erased": record.manifest.get("erased"),
                        },
                    }
                )
            except NotFound:
                pass
        events.append(
            {
                "at": v.created_at.isoformat(),
                "kind": "version",
                "what": f"version {v.version} from run {v.run_id} on {v.dataset_id}",
                "details": {
                    "version": v.version,
                    "run_id": v.run_id,
                    "dataset": v.dataset_id,
                    "metrics": dict(v.metrics),
                    "retrain_required": v.retrain_required,
                },
            }
        )
    for a in registry.alias_history(model):
        events.append(
            {
                "at": a.at.isoformat(),
                "kind": "alias",
                "what": f"{a.alias}: {a.from_version} → {a.to_version} ({a.action})",
                "details": {"actor": a.actor, "reason": a.reason},
            }
        )
    for d in deployments.history(model):
        events.append(
            {
                "at": d.created_at.isoformat() if d.created_at else "",
                "kind": "rollout",
                "what": f"deployment revision {d.revision}: {d.spec.mode}",
                "details": {"actor": d.actor, "reason": d.reason},
            }
        )
    for e in policy.events(model):
        events.append(
            {
                "at": e["at"],
                "kind": "policy",
                "what": f"{e['action']}: {e['reason']}",
                "details": {"stage": e["stage"], **e["details"]},
            }
        )
    events.sort(key=lambda e: e["at"])
    return {"model": model, "events": events}
