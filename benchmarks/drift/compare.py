"""Column-by-column comparison of learnloop's and Evidently's drift verdicts, with reasons.

Definitions used in the results:

* **agreement** — share of columns where both tools give the same verdict (drift or not).
* **well powered** — a column where Evidently's test can be trusted at these sample sizes: a
  drift exactly the size of Evidently's own threshold (Wasserstein 0.1 std, JS 0.1) would be
  found by the matching significance test (KS, chi-square) at α = 0.05 with 80 % power, i.e.
  learnloop's minimum detectable effect for that column is at most Evidently's threshold. Below
  that an effect-size verdict is partly sampling noise, and disagreement says nothing about
  either tool. **agreement_well_powered** is agreement over those columns only.
* **same-threshold agreement** — learnloop's statistic judged by Evidently's threshold alone
  (no p-value gate, no PSI), against Evidently's verdict: checks that both compute the same
  statistics, apart from any difference in the verdict rule.
* **correct** — verdicts matching the injected truth (the ``SHIFTS`` of ``data.py``).
"""

from __future__ import annotations

from typing import Any

from benchmarks.drift.data import SHIFTS


def _p(value: float) -> str:
    return "≈0" if value < 1e-300 else f"={value:.2g}"


def why(name: str, ours: dict[str, Any], theirs: dict[str, Any], config: dict[str, Any]) -> str:
    """One sentence on why the verdicts of ``name`` differ, with the numbers behind each."""
    truth = f"injected: {SHIFTS[name]}" if name in SHIFTS else "no shift injected"
    test = "KS" if ours["test"] == "ks" else "chi-square"
    effect = "JS" if ours["effect_name"] == "js" else "Wasserstein (normed)"
    if ours["drift"]:
        if ours["effect_reason"] == "psi":
            reason = (
                f"PSI {ours['psi']:.3f} ≥ {config['psi_threshold']} flags it in learnloop "
                f"while {effect} {theirs['score']:.3f} is below Evidently's {theirs['threshold']}"
            )
        elif ours["kind"] == "categorical" and theirs["score"] < theirs["threshold"]:
            reason = (
                f"categorical shift: JS {theirs['score']:.3f} below Evidently's "
                f"{theirs['threshold']} threshold; chi-square p{_p(ours['p_value'])} and "
                f"learnloop's JS threshold {ours['threshold']} flag it"
            )
        else:
            reason = (
                f"{effect} {ours['effect']:.4f} (learnloop) vs {theirs['score']:.4f} (Evidently) "
                f"on either side of the threshold {theirs['threshold']}"
            )
    elif not ours["significant"]:
        reason = (
            f"{effect} {theirs['score']:.3f} ≥ Evidently's {theirs['threshold']}, but {test} "
            f"p{_p(ours['p_value'])} ≥ α {config['alpha']}: not significant at "
            f"{ours['n_reference']:,} vs {ours['n_current']:,} values "
            f"(minimum detectable effect {ours['mde']:.3f})"
        )
    else:
        reason = (
            f"{effect} {ours['effect']:.4f} below learnloop's threshold {ours['threshold']}, "
            f"Evidently's {theirs['score']:.4f} ≥ its {theirs['threshold']}"
        )
    return f"{reason} ({truth})"


def compare(report: dict[str, Any], evidently: dict[str, Any], truth: dict[str, bool]) -> dict:
    """Agreement figures and per-column rows for one run (see the module docstring)."""
    rows, disagreements = [], []
    for name, ours in report["columns"].items():
        theirs = evidently[name]
        powered = ours["mde"] is not None and ours["mde"] <= theirs["threshold"]
        row = {
            "column": name,
            "kind": ours["kind"],
            "injected": SHIFTS.get(name),
            "learnloop_drift": ours["drift"],
            "evidently_drift": theirs["drift"],
            "learnloop_effect": ours["effect"],
            "evidently_score": theirs["score"],
            "evidently_method": theirs["method"],
            "p_value": ours["p_value"],
            "psi": ours["psi"],
            "mde": ours["mde"],
            "well_powered": powered,
            "same_threshold_drift": ours["effect"] >= theirs["threshold"],
        }
        rows.append(row)
        if ours["drift"] != theirs["drift"]:
            disagreements.append({"column": name, "why": why(name, ours, theirs, report["config"])})

    def share(selected: list[dict], key: str = "learnloop_drift") -> float | None:
        if not selected:
            return None
        return sum(r[key] == r["evidently_drift"] for r in selected) / len(selected)

    powered_rows = [r for r in rows if r["well_powered"]]
    return {
        "agreement": share(rows),
        "agreement_well_powered": share(powered_rows),
        "well_powered_columns": len(powered_rows),
        "agreement_same_thresholds": share(rows, "same_threshold_drift"),
        "max_effect_difference": max(
            abs(r["learnloop_effect"] - r["evidently_score"]) for r in rows
        ),
        "learnloop_correct": sum(r["learnloop_drift"] == truth[r["column"]] for r in rows),
        "evidently_correct": sum(r["evidently_drift"] == truth[r["column"]] for r in rows),
        "disagreements": disagreements,
        "per_column": rows,
    }
