"""The serving engine on real trained versions: routing, fallback, shadow, caches, ledger."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from learnloop.container import Container
from learnloop.core.deployments import DeploymentSpec
from learnloop.core.errors import InvalidInput
from tests.conftest import LEAKS, fast_settings, train_version

MODEL = "failure"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, ai4i_sample: pd.DataFrame
) -> Iterator[Container]:
    """Three versions of ``failure``; champion → 1. Tests restore what they change."""
    c = Container(fast_settings(tmp_path_factory.mktemp("serving") / "home")).open()
    for seed in range(3):
        train_version(c, ai4i_sample, seed=seed, n_estimators=15 + seed)
    c.registry.set_alias(MODEL, "champion", "1", actor="t")
    yield c
    c.close()


@pytest.fixture(scope="module")
def rows(ai4i_sample: pd.DataFrame) -> list[dict[str, Any]]:
    frame = ai4i_sample.drop(columns=["Machine failure", "UDI", "Product ID", *LEAKS])
    return frame.head(40).to_dict(orient="records")


@pytest.fixture
def deploy(served: Container) -> Iterator[Any]:
    def apply(**raw: Any) -> Any:
        return served.deployments.apply(MODEL, DeploymentSpec.model_validate(raw), actor="t")

    yield apply
    apply(mode="single", arms=[{"name": "champion", "alias": "champion"}])


def test_without_a_deployment_champion_serves_and_every_output_is_in_the_ledger(
    served: Container, rows: list[dict[str, Any]]
) -> None:
    result = served.serving.predict(MODEL, rows[:5], subject_id="s-1")
    assert result.version == "1" and result.arm == "champion"
    assert len(result.prediction_ids) == 5
    assert all(uuid.UUID(pid).version == 7 for pid in result.prediction_ids)
    assert served.ledger is not None and served.ledger.flush(10)
    record = served.predictions.get(result.prediction_ids[2])
    assert record is not None
    assert (record.model, record.version, record.subject_id, record.cache_hit) == (
        MODEL,
        "1",
        "s-1",
        False,
    )
    assert dict(record.output) == result.outputs[2] and dict(record.inputs or {}) == rows[2]
    assert record.served_by["version"] == "1" and record.served_by["fallback"] is False


def test_ab_assignment_is_sticky_per_subject(
    served: Container, rows: list[dict[str, Any]], deploy: Any
) -> None:
    deploy(
        mode="ab",
        arms=[
            {"name": "a", "version": "1", "weight": 50},
            {"name": "b", "version": "2", "weight": 50},
        ],
    )
    first = {
        f"u{i}": served.serving.predict(MODEL, rows[:1], subject_id=f"u{i}").arm for i in range(60)
    }
    again = {s: served.serving.predict(MODEL, rows[:1], subject_id=s).arm for s in first}
    assert first == again
    assert set(Counter(first.values())) == {"a", "b"}


def test_a_failing_candidate_falls_back_and_says_so(
    served: Container, rows: list[dict[str, Any]], deploy: Any
) -> None:
    deploy(
        mode="single",
        arms=[{"name": "candidate", "version": "3"}],
        fallback={"chain": ["alias:champion"], "breaker_failures": 3, "breaker_reset_s": 60},
    )
    broken = served.serving.models.get(MODEL, "3")
    original = broken.instance.predict

    def explode(items: Any) -> Any:
        raise RuntimeError("candidate bug")

    broken.instance.predict = explode  # type: ignore[method-assign]
    try:
        reasons = []
        for _ in range(5):
            result = served.serving.predict(MODEL, rows[:2])
            assert result.version == "1" and result.served_by["fallback"] is True
            reasons.append(result.served_by["reason"])
        assert reasons == ["error", "error", "error", "circuit_open", "circuit_open"]
        assert result.served_by["fallback_from"] == [{"version": "3", "reason": "circuit_open"}]
    finally:
        broken.instance.predict = original  # type: ignore[method-assign]
        broken.breaker.record(
            True, DeploymentSpec.model_validate({"arms": [{"name": "x", "version": "3"}]}).fallback
        )


def test_out_of_range_inputs_and_timeouts_fall_back(
    served: Container, rows: list[dict[str, Any]], deploy: Any
) -> None:
    deploy(mode="single", arms=[{"name": "c", "version": "2"}], fallback={"chain": ["version:1"]})
    wild = [{**rows[0], "Torque [Nm]": 10_000.0}]
    result = served.serving.predict(MODEL, wild)
    assert (result.version, result.served_by["reason"]) == ("1", "out_of_range")
    # with nothing to fall back to, the only version answers
    deploy(mode="single", arms=[{"name": "c", "version": "2"}])
    assert served.serving.predict(MODEL, wild).version == "2"
    deploy(
        mode="single",
        arms=[{"name": "c", "version": "2"}],
        fallback={"chain": ["version:1"], "timeout_ms": 50},
        batching={"enabled": False},
    )
    slow = served.serving.models.get(MODEL, "2")
    original = slow.instance.predict

    def crawl(items: Any) -> Any:
        time.sleep(0.5)
        return original(items)

    slow.instance.predict = crawl  # type: ignore[method-assign]
    try:
        result = served.serving.predict(MODEL, rows[:1])
    finally:
        slow.instance.predict = original  # type: ignore[method-assign]
    assert (result.version, result.served_by["reason"]) == ("1", "timeout")


def test_bad_input_is_the_callers_error_not_a_fallback(
    served: Container, rows: list[dict[str, Any]], deploy: Any
) -> None:
    deploy(mode="single", arms=[{"name": "c", "version": "2"}], fallback={"chain": ["version:1"]})
    with pytest.raises(InvalidInput, match=r"inputs\[0\]\.Torque \[Nm\]"):
        served.serving.predict(MODEL, [{k: v for k, v in rows[0].items() if k != "Torque [Nm]"}])


def test_shadow_records_both_outputs_without_changing_responses(
    served: Container, rows: list[dict[str, Any]], deploy: Any
) -> None:
    plain = served.serving.predict(MODEL, rows[:10], version="1").outputs
    deploy(
        mode="shadow",
        arms=[{"name": "main", "version": "1"}, {"name": "shadow", "version": "3"}],
        shadow={"arm": "shadow", "fraction": 1.0},
    )
    result = served.serving.predict(MODEL, rows[:10])
    assert result.version == "1" and result.outputs == plain
    deadline = time.monotonic() + 10
    pairs: list[Any] = []
    while time.monotonic() < deadline:
        assert served.ledger is not None and served.ledger.flush(5)
        pairs = [
            p for p in served.predictions.shadow_pairs(MODEL) if p[0].id in result.prediction_ids
        ]
        if len(pairs) == 10:
            break
        time.sleep(0.05)
    assert len(pairs) == 10
    shadow_direct = served.serving.predict(MODEL, rows[:10], version="3").outputs
    by_id = {served_rec.id: shadow_rec for served_rec, shadow_rec in pairs}
    for pid, out in zip(result.prediction_ids, shadow_direct, strict=True):
        assert by_id[pid].version == "3" and dict(by_id[pid].output) == out
        assert by_id[pid].served_by["shadow"] is True


def test_blue_green_switch_and_back_under_load_fail_no_request(
    served: Container, rows: list[dict[str, Any]], deploy: Any
) -> None:
    deploy(
        mode="blue_green",
        arms=[{"name": "blue", "version": "1"}, {"name": "green", "version": "2"}],
        blue_green={"active": "blue"},
    )
    stop = threading.Event()
    seen: Counter[str] = Counter()
    errors: list[BaseException] = []

    def hammer(n: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                seen[served.serving.predict(MODEL, rows[i % 40 : i % 40 + 1]).version] += 1
            except BaseException as e:  # any failure is what this test is about
                errors.append(e)
            i += 1

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        served.deployments.promote(MODEL, actor="t")  # blue → green
        time.sleep(0.3)
        served.deployments.rollback(MODEL, actor="t")  # and straight back
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert errors == []
    assert seen["1"] > 0 and seen["2"] > 0
    assert served.serving.predict(MODEL, rows[:1]).version == "1"


def test_response_cache_hits_and_is_invalidated_by_an_alias_move(
    served: Container, rows: list[dict[str, Any]], deploy: Any
) -> None:
    deploy(
        mode="single",
        arms=[{"name": "champion", "alias": "champion"}],
        cache={"enabled": True, "ttl_s": 60},
    )
    first = served.serving.predict(MODEL, rows[:3])
    second = served.serving.predict(MODEL, rows[:3])
    assert (first.cache_hits, second.cache_hits) == (0, 3)
    assert second.outputs == first.outputs
    served.registry.set_alias(MODEL, "champion", "2", actor="t")
    try:
        moved = served.serving.predict(MODEL, rows[:3])
        assert moved.version == "2" and moved.cache_hits == 0
    finally:
        served.registry.set_alias(MODEL, "champion", "1", actor="t")


def test_concurrent_requests_are_batched_with_unchanged_results(
    served: Container, rows: list[dict[str, Any]], deploy: Any
) -> None:
    deploy(
        mode="single",
        arms=[{"name": "b", "version": "1"}],
        batching={"enabled": True, "max_batch_size": 64, "max_wait_ms": 20},
    )
    expected = [served.serving.predict(MODEL, [r], version="1").outputs[0] for r in rows[:16]]
    sizes: list[int] = []
    loaded = served.serving.models.get(MODEL, "1")
    original = loaded.instance.predict

    def spy(items: Any) -> Any:
        sizes.append(len(items))
        return original(items)

    loaded.instance.predict = spy  # type: ignore[method-assign]
    results: dict[int, Any] = {}
    try:
        threads = [
            threading.Thread(
                target=lambda i=i: results.__setitem__(i, served.serving.predict(MODEL, [rows[i]]))
            )
            for i in range(16)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    finally:
        loaded.instance.predict = original  # type: ignore[method-assign]
    assert [results[i].outputs[0] for i in range(16)] == expected
    assert sum(sizes) == 16 and max(sizes) > 1  # some requests shared a model call


def test_invalid_deployments_are_refused_and_the_old_one_keeps_serving(
    served: Container, rows: list[dict[str, Any]], deploy: Any
) -> None:
    before = served.deployments.get(MODEL).revision
    with pytest.raises(InvalidInput, match=r"arms\[1\]\.version"):
        deploy(
            mode="ab",
            arms=[
                {"name": "a", "version": "1", "weight": 50},
                {"name": "b", "version": "99", "weight": 50},
            ],
        )
    assert served.deployments.get(MODEL).revision == before
    assert served.serving.predict(MODEL, rows[:1]).version == "1"


def test_alias_moves_under_load_fail_no_request_and_cut_over(
    served: Container, rows: list[dict[str, Any]], deploy: Any
) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []
    versions: list[str] = []

    def hammer() -> None:
        while not stop.is_set():
            try:
                versions.append(served.serving.predict(MODEL, rows[:1]).version)
            except BaseException as e:  # any failure is what this test is about
                errors.append(e)

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        for target in ("3", "2", "1"):
            time.sleep(0.2)
            served.registry.set_alias(MODEL, "champion", target, actor="t")
            assert served.serving.predict(MODEL, rows[:1]).version == target  # at once here
        time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert errors == []
    assert {"1", "2", "3"} <= set(versions)


def test_the_engine_caches_in_the_real_redis(
    served: Container, rows: list[dict[str, Any]], deploy: Any
) -> None:
    from learnloop.storage.cache.redis_cache import RedisResponseCache
    from tests.storage.test_redis_cache import REDIS_URL

    redis_cache = RedisResponseCache(REDIS_URL, prefix=f"eng{uuid.uuid4().hex[:8]}")
    if not redis_cache.ping():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but Redis at {REDIS_URL} does not answer")
        pytest.skip(f"Redis tests skipped: no Redis at {REDIS_URL}")
    original = served.serving.cache
    served.serving.cache = redis_cache
    try:
        deploy(
            mode="single",
            arms=[{"name": "champion", "alias": "champion"}],
            cache={"enabled": True, "ttl_s": 30},
        )
        first = served.serving.predict(MODEL, rows[5:8])
        second = served.serving.predict(MODEL, rows[5:8])
        assert (first.cache_hits, second.cache_hits) == (0, 3)
        assert second.outputs == first.outputs
        deploy(
            mode="single",
            arms=[{"name": "champion", "alias": "champion"}],
            cache={"enabled": True, "ttl_s": 30},
        )  # a deployment change invalidates
        assert served.serving.predict(MODEL, rows[5:8]).cache_hits == 0
    finally:
        served.serving.cache = original
