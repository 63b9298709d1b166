"""Deployment specs: validation, sticky routing, canary ramp, promotion (no I/O)."""

from __future__ import annotations

from collections import Counter

import pytest

from learnloop.core.deployments import Arm, DeploymentSpec, promote
from learnloop.core.errors import Conflict


def arm(name: str, weight: float = 0, *, version: str | None = None) -> Arm:
    return Arm(name=name, version=version or name[-1], weight=weight)


def test_ab_split_is_sticky_and_within_two_percent_of_weights() -> None:
    spec = DeploymentSpec(mode="ab", arms=[arm("a1", 70), arm("b2", 30)], salt="s1")
    counts = Counter(spec.choose(f"user-{i}").name for i in range(10_000))
    assert abs(counts["a1"] / 10_000 - 0.70) <= 0.02
    assert abs(counts["b2"] / 10_000 - 0.30) <= 0.02
    assert all(spec.choose("user-42").name == spec.choose("user-42").name for _ in range(20))
    three = DeploymentSpec(mode="ab", arms=[arm("a1", 50), arm("b2", 25), arm("c3", 25)], salt="s1")
    counts = Counter(three.choose(f"u{i}").name for i in range(10_000))
    for name, share in (("a1", 0.5), ("b2", 0.25), ("c3", 0.25)):
        assert abs(counts[name] / 10_000 - share) <= 0.02


def test_another_salt_reshuffles_subjects() -> None:
    a = DeploymentSpec(mode="ab", arms=[arm("a1", 50), arm("b2", 50)], salt="x")
    b = DeploymentSpec(mode="ab", arms=[arm("a1", 50), arm("b2", 50)], salt="y")
    moved = sum(a.choose(f"u{i}").name != b.choose(f"u{i}").name for i in range(2_000))
    assert 800 < moved < 1_200  # about half move: assignments are independent per salt


def test_canary_ramps_through_its_steps_then_hands_over() -> None:
    spec = DeploymentSpec(
        mode="canary",
        arms=[arm("stable1"), arm("cand2")],
        canary={"candidate": "cand2", "steps": [5, 25, 50, 100]},
        salt="c",
    )
    shares = []
    for _ in range(4):
        counts = Counter(spec.choose(f"u{i}").name for i in range(10_000))
        shares.append(round(counts["cand2"] / 100))
        spec, _ = promote(spec)
    assert [abs(s - e) <= 2 for s, e in zip(shares, [5, 25, 50, 100], strict=True)] == [True] * 4
    assert spec.mode == "single" and [a.name for a in spec.arms] == ["cand2"]
    with pytest.raises(Conflict):
        promote(spec)


def test_blue_green_switches_all_traffic_at_once() -> None:
    spec = DeploymentSpec(
        mode="blue_green", arms=[arm("blue1"), arm("green2")], blue_green={"active": "blue1"}
    )
    assert {spec.choose(f"u{i}").name for i in range(500)} == {"blue1"}
    switched, note = promote(spec)
    assert {switched.choose(f"u{i}").name for i in range(500)} == {"green2"}
    assert "green2" in note


def test_shadow_arm_never_serves() -> None:
    spec = DeploymentSpec(
        mode="shadow", arms=[arm("main1"), arm("shadow2")], shadow={"arm": "shadow2"}
    )
    assert {spec.choose(f"u{i}").name for i in range(500)} == {"main1"}
    promoted, _ = promote(spec)
    assert promoted.mode == "single" and promoted.arms[0].name == "shadow2"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {
                "mode": "ab",
                "arms": [
                    {"name": "a", "version": "1", "weight": 60},
                    {"name": "b", "version": "2", "weight": 30},
                ],
            },
            "sum to 90",
        ),
        ({"mode": "single", "arms": [{"name": "a", "version": "1", "alias": "x"}]}, "exactly one"),
        ({"mode": "canary", "arms": [{"name": "a", "version": "1"}]}, "canary"),
        (
            {
                "mode": "canary",
                "arms": [{"name": "a", "version": "1"}, {"name": "b", "version": "2"}],
                "canary": {"candidate": "zzz"},
            },
            "not in arms",
        ),
        (
            {
                "mode": "single",
                "arms": [{"name": "a", "version": "1"}],
                "fallback": {"chain": ["v3"]},
            },
            "fallback ref",
        ),
        (
            {
                "mode": "ab",
                "arms": [
                    {"name": "a", "version": "1", "weight": 50},
                    {"name": "a", "version": "2", "weight": 50},
                ],
            },
            "unique",
        ),
        (
            {
                "mode": "canary",
                "arms": [{"name": "a", "version": "1"}, {"name": "b", "version": "2"}],
                "canary": {"candidate": "b", "steps": [50, 10]},
            },
            "rise",
        ),
    ],
)
def test_invalid_specs_are_refused_with_a_reason(raw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DeploymentSpec.model_validate(raw)
