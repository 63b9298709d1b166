"""Schemathesis over learnloop's whole OpenAPI: configuration, steering hooks, and a report.

``fuzz(base_url, demo, ...)`` loads ``/openapi.json`` from a running server and drives
schemathesis's engine (the one behind ``st run``) with every check, then folds the events into a
:class:`FuzzReport`: requests sent, operations reached, and failures deduplicated by (operation,
check, status, title) with one ``curl`` reproduction each.

Checks, and the statuses they accept where the defaults do not fit this API:

* ``positive_data_acceptance`` (schema-valid data must not be refused) also accepts 422 and 413:
  a JSON schema cannot say "a model that exists", "a dataset of this family", "``low`` below
  ``high``" or "features the model was trained on", and learnloop answers those with 422 and the
  field path; 413 is the body limit. On ``/v2/`` the Open Inference Protocol answers a request
  that does not fit the model with 400, so there 400 is accepted too. 404/409 are accepted by
  the default (a well-formed name that does not exist, a state conflict).
* ``negative_data_rejection`` also accepts 413 (the body limit comes before validation).
* ``not_a_server_error`` accepts 503 only on the readiness routes (``/v1/ready``,
  ``/v2/health/ready``, ``/v2/models/.../ready``), whose documented "not ready" answer it is.
* ``max_response_time`` stays off: it measures the machine, not the contract.
* Every other check runs as schemathesis ships it: ``status_code_conformance`` (undocumented
  statuses), ``content_type_conformance``, ``response_schema_conformance``,
  ``response_headers_conformance``, ``use_after_free``, ``ensure_resource_availability``,
  ``ignored_auth``, ``missing_required_header``, ``unsupported_method``,
  ``allow_header_conformance``, ``object_level_authorization``.

Steering (a ``before_call`` hook, so it applies to every phase, stateful steps included):

* routes that destroy or move state (alias set/delete/rollback, deployment apply/promote/
  rollback, policy set/tick, key revocation, subject erasure, job and training-run
  pause/resume/cancel, differential-privacy releases that spend a dataset's budget) never act on
  what the other operations read: ``failure`` becomes ``scratch``, the fuzzer's own admin key
  becomes a spare key, the demo subject becomes a scratch subject, the finished jobs become a
  queued scratch job, the demo dataset becomes a scratch dataset;
* half of the requests (chosen by a hash of the request, so a seed reproduces the run) get real
  values for the parameters the demo holds — model ``failure``, version ``1``, alias
  ``champion``, the dataset, job, prediction, feedback event, channel and subject ids, and real
  feature rows for predict — so the fuzz reaches past 404. Schemathesis re-validates an edited
  case, so a request that was generated invalid and became valid is judged as valid.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from schemathesis.core.result import Ok
from schemathesis.engine import events, from_schema
from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER

from benchmarks.fuzz.server import LEARNER, MODEL, SCRATCH, SCRATCH_SUBJECT, SUBJECT, Demo

SERVER_ERRORS = ("not_a_server_error",)
SCHEMA_VIOLATIONS = (
    "response_schema_conformance",
    "content_type_conformance",
    "response_headers_conformance",
)
UNDOCUMENTED = ("status_code_conformance",)
READINESS = r"^/v1/ready$|^/v2/health/ready$|^/v2/models/\{name\}(/versions/\{version\})?/ready$"

# (method, path template) of the routes that change what others read, keyed to the parameter
# that names the thing changed
DESTRUCTIVE: dict[tuple[str, str], str] = {
    ("PUT", "/v1/models/{name}/aliases/{alias}"): "name",
    ("DELETE", "/v1/models/{name}/aliases/{alias}"): "name",
    ("POST", "/v1/models/{name}/aliases/{alias}/rollback"): "name",
    ("PUT", "/v1/models/{name}/deployment"): "name",
    ("POST", "/v1/models/{name}/deployment/promote"): "name",
    ("POST", "/v1/models/{name}/deployment/rollback"): "name",
    ("PUT", "/v1/models/{name}/policy"): "name",
    ("POST", "/v1/models/{name}/policy/tick"): "name",
    ("DELETE", "/v1/keys/{key_id}"): "key_id",
    ("DELETE", "/v1/subjects/{subject_id}"): "subject_id",
    ("POST", "/v1/jobs/{job_id}/pause"): "job_id",
    ("POST", "/v1/jobs/{job_id}/resume"): "job_id",
    ("POST", "/v1/jobs/{job_id}/cancel"): "job_id",
    ("POST", "/v1/training/{run_id}/pause"): "run_id",
    ("POST", "/v1/training/{run_id}/resume"): "run_id",
    ("POST", "/v1/training/{run_id}/cancel"): "run_id",
    ("POST", "/v1/datasets/{dataset_id}/dp-release"): "dataset_id",
}


@dataclass
class Finding:
    """One distinct failure: where, which check, what status, and how to reproduce it."""

    operation: str
    check: str
    status: int | None
    title: str
    message: str
    reproduce: str
    count: int = 1

    def as_json(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "check": self.check,
            "status": self.status,
            "title": self.title,
            "message": self.message,
            "reproduce": self.reproduce,
            "occurrences": self.count,
        }

    def line(self) -> str:
        first = self.message.strip().splitlines()[0] if self.message.strip() else ""
        return (
            f"{self.operation} | {self.check} | {self.status} | {self.title}: {first[:200]}\n"
            f"    {_clip(self.reproduce, 600)}"
        )


@dataclass
class FuzzReport:
    """What a run sent and found."""

    requests: int = 0
    operations: set[str] = field(default_factory=set)
    operations_in_schema: set[str] = field(default_factory=set)
    failing_checks: dict[str, int] = field(default_factory=dict)  # failed requests per check
    findings: dict[tuple[str, str, int | None, str], Finding] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # engine errors (hooks, schema, network)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    def count(self, checks: tuple[str, ...]) -> int:
        return sum(self.failing_checks.get(c, 0) for c in checks)

    @property
    def server_errors(self) -> int:
        return self.count(SERVER_ERRORS)

    @property
    def schema_violations(self) -> int:
        return self.count(SCHEMA_VIOLATIONS)

    @property
    def undocumented_status_codes(self) -> int:
        return self.count(UNDOCUMENTED)

    @property
    def failures(self) -> list[Finding]:
        return sorted(self.findings.values(), key=lambda f: (f.check, f.operation, f.status or 0))

    @property
    def ok(self) -> bool:
        return not self.findings and not self.errors

    def describe(self) -> str:
        """Every distinct failure and engine error, one block each."""
        lines = [f.line() for f in self.failures] + [f"engine error: {e}" for e in self.errors]
        return "\n".join(lines)


def checks_config() -> dict[str, Any]:
    return {
        "enabled": True,
        "positive_data_acceptance": {
            "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "413", "422", "429"]
            + ["5xx"]  # a 5xx is `not_a_server_error`'s to report, not this check's
        },
        "negative_data_rejection": {
            "expected-statuses": ["400", "401", "403", "404", "405", "406", "409", "413", "415"]
            + ["422", "428", "429", "5xx"]
        },
    }


def config(
    base_url: str,
    token: str,
    *,
    seed: int,
    max_examples: int,
    phases: tuple[str, ...] = ("examples", "coverage", "fuzzing", "stateful"),
    workers: int = 2,
    max_steps: int | None = None,
) -> schemathesis.Config:
    """The run's settings: every check, the admin key on every request, a fixed seed."""
    checks = checks_config()
    stateful: dict[str, Any] = {"enabled": "stateful" in phases}
    if max_steps is not None:
        stateful["max-steps"] = max_steps
    v2_checks = json.loads(json.dumps(checks))
    v2_checks["positive_data_acceptance"]["expected-statuses"].append("400")
    ready_checks = {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}}
    return schemathesis.Config.from_dict(
        {
            "seed": seed,
            "base-url": base_url,
            "headers": {"Authorization": f"Bearer {token}"},
            "workers": workers,
            "request-timeout": 60,
            "generation": {"max-examples": max_examples, "database": "none"},
            "checks": checks,
            "phases": {
                "examples": {"enabled": "examples" in phases},
                "coverage": {"enabled": "coverage" in phases},
                "fuzzing": {"enabled": "fuzzing" in phases},
                "stateful": stateful,
            },
            "operations": [
                {"include-path-regex": "^/v2", "checks": v2_checks},
                {"include-path-regex": READINESS, "checks": ready_checks},
            ],
        }
    )


class Steering:
    """The ``before_call`` hook: keep destructive routes off the demo data, aim the rest at it."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.protected: dict[str, dict[str, str]] = {
            "name": {MODEL: SCRATCH},
            "key_id": {demo.admin_key_id: demo.scratch_key_id},
            "subject_id": {SUBJECT: SCRATCH_SUBJECT},
            "job_id": {
                demo.train_job_id: demo.scratch_job_id,
                demo.batch_job_id: demo.scratch_job_id,
            },
            "run_id": {demo.train_job_id: demo.scratch_job_id},
            "dataset_id": {demo.dataset_id: demo.scratch_dataset_id},
        }
        self.real: dict[str, str] = {
            "name": MODEL,
            "model": MODEL,
            "version": "1",
            "alias": "champion",
            "dataset_id": demo.dataset_id,
            "job_id": demo.train_job_id,
            "run_id": demo.train_job_id,
            "prediction_id": demo.prediction_id,
            "event_id": demo.event_id,
            "channel_id": demo.channel_id,
            "subject_id": SUBJECT,
            "learner_id": LEARNER,
            "key_id": demo.scratch_key_id,
        }

    def __call__(self, context: Any, case: Any, kwargs: dict[str, Any]) -> None:
        template = case.operation.path
        if self._aim(case):
            self._realify(case.path_parameters, template)
            if isinstance(case.query, dict):
                self._realify(case.query, template)
            if isinstance(case.body, dict):
                self._realify(case.body, template, body=True)
        target = DESTRUCTIVE.get((case.method.upper(), template))
        if target is not None and isinstance(case.path_parameters, dict):
            value = case.path_parameters.get(target)
            swap = self.protected.get(target, {})
            if isinstance(value, str) and value in swap:
                case.path_parameters[target] = swap[value]

    @staticmethod
    def _aim(case: Any) -> bool:
        """Half of the requests, by a stable hash of what was generated."""
        text = repr((case.method, case.path, case.path_parameters, case.query, case.body))
        return zlib.crc32(text.encode("utf-8", "surrogatepass")) % 2 == 0

    def _realify(self, values: dict[str, Any], template: str, *, body: bool = False) -> None:
        for key in list(values):
            if key not in self.real or not isinstance(values[key], str | None):
                continue
            if key == "name" and (body or template.startswith("/v1/tuning")):
                continue  # a dataset, key, channel or study name: any string will do
            values[key] = self.real[key]
        if body and template == "/v1/models/{name}/predict" and "inputs" in values:
            values["inputs"] = list(self.demo.rows)


@contextmanager
def _hooks(steering: Steering, on_call: Callable[[int], None]) -> Iterator[None]:
    """Register the global hooks for one run and take them away after it."""

    def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
        steering(context, case, kwargs)

    def after_call(context: Any, case: Any, response: Any) -> None:
        on_call(response.status_code)

    GLOBAL_HOOK_DISPATCHER.register_hook_with_name(before_call, "before_call")
    GLOBAL_HOOK_DISPATCHER.register_hook_with_name(after_call, "after_call")
    try:
        yield
    finally:
        GLOBAL_HOOK_DISPATCHER.unregister(before_call)
        GLOBAL_HOOK_DISPATCHER.unregister(after_call)


def fuzz(
    base_url: str,
    demo: Demo,
    *,
    seed: int,
    max_examples: int,
    phases: tuple[str, ...] = ("examples", "coverage", "fuzzing", "stateful"),
    workers: int = 2,
    max_steps: int | None = None,
    report: FuzzReport | None = None,
    progress: Callable[[FuzzReport], None] | None = None,
    stop_after: int | None = None,
) -> FuzzReport:
    """One engine run over every operation; adds to ``report`` when given (for several runs)."""
    report = report if report is not None else FuzzReport()
    cfg = config(
        base_url, demo.token, seed=seed, max_examples=max_examples, phases=phases,
        workers=workers, max_steps=max_steps,
    )  # fmt: skip
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=cfg)
    for result in schema.get_all_operations():
        if isinstance(result, Ok):
            report.operations_in_schema.add(result.ok().label)
        else:
            report.errors.append(f"schema: {result.err()}")
    started = time.monotonic()
    last = [started]

    def on_call(status: int) -> None:
        report.requests += 1
        report.statuses[status] = report.statuses.get(status, 0) + 1

    with _hooks(Steering(demo), on_call):
        stream = from_schema(schema).execute()
        for event in stream:
            if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
                _record(report, event.recorder, demo.token)
            elif isinstance(event, events.NonFatalError):
                report.errors.append(f"{event.label}: {event.info.title}: {event.info.message}")
            elif isinstance(event, events.FatalError):
                report.errors.append(f"fatal: {event.exception!r}")
            now = time.monotonic()
            if progress is not None and now - last[0] >= 5:
                last[0] = now
                progress(report)
            if stop_after is not None and report.requests >= stop_after:
                stream.stop()
    report.seconds += time.monotonic() - started
    return report


def _record(report: FuzzReport, recorder: Any, token: str) -> None:
    for case_id, nodes in recorder.checks.items():
        node = recorder.cases.get(case_id)
        interaction = recorder.interactions.get(case_id)
        status = interaction.response.status_code if interaction and interaction.response else None
        if node is not None:
            report.operations.add(node.value.operation.label)
        for check in nodes:
            info = check.failure_info
            if info is None:
                continue
            report.failing_checks[check.name] = report.failing_checks.get(check.name, 0) + 1
            failure = info.failure
            operation = failure.operation or (node.value.operation.label if node else "?")
            key = (operation, check.name, status, failure.title or "")
            found = report.findings.get(key)
            if found is None:
                report.findings[key] = Finding(
                    operation=operation,
                    check=check.name,
                    status=status,
                    title=failure.title or "",
                    message=failure.message or "",
                    reproduce=_one_line(info.code_sample).replace(token, "$LEARNLOOP_KEY"),
                )
            else:
                found.count += 1


def _one_line(code_sample: str) -> str:
    """A code sample (a curl command) on one line."""
    text = " ".join(part.strip() for part in code_sample.strip().splitlines())
    return text.replace("\\ ", "")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
