"""Serving benchmark results: aggregation of the raw runs, the JSON-safe form, the table.

:func:`aggregate` turns the raw measurements of every server × variant × start into the shape
``serving.json`` holds; :func:`print_table` prints it side by side. Contaminated windows (see
``benchmarks/common/cpu.py``) never decide a peak, a variant or a met goal.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

PEER_NAMES = ("mlserver", "bentoml")
TARGET_RATIO = 1.5
TARGET_P99_MS = 10.0


def peak(levels: dict[int, dict[str, Any]]) -> tuple[int | None, float]:
    """(concurrency, rps) of the highest-throughput level, among the clean levels if any.

    A busy neighbour can make a thread-pool server look faster, so a contaminated level only
    counts when no level was clean.
    """
    clean = {c: e for c, e in levels.items() if e and not e.get("contaminated")}
    pool = clean or {c: e for c, e in levels.items() if e}
    if not pool:
        return None, 0.0
    best = max(pool, key=lambda c: pool[c]["rps"])
    return best, float(pool[best]["rps"])


def _median_start(
    starts: list[dict[str, Any]], pick: Callable[[dict[str, Any]], Any]
) -> dict[str, Any] | None:
    found: list[dict[str, Any]] = [r for r in (pick(s) for s in starts) if r is not None]
    if not found:
        return None
    found.sort(key=lambda r: r["rps"])
    return found[(len(found) - 1) // 2]


def _level_of(concurrency: int, start: dict[str, Any]) -> dict[str, Any] | None:
    level: dict[str, Any] | None = start["levels"].get(concurrency)
    return level


def _entry(r: dict[str, Any] | None) -> dict[str, Any] | None:
    if r is None:
        return None
    keys = (
        "rps",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "max_ms",
        "errors",
        "requests",
        "concurrency",
        "rate",
        "mode",
        "tool",
        "variant",
        "contaminated",
        "attempts",
        "cpu",
        "saturation_rps",
        "error_samples",
        "error_kinds",
    )
    return {k: r[k] for k in keys if k in r and r[k] is not None}


def aggregate(
    raw: dict[str, dict[str, dict[str, Any]]], args: argparse.Namespace
) -> dict[str, Any]:
    """Pick each server's best variant, line the servers up per level, compute the ratios."""
    per_server: dict[str, dict[int, dict[str, Any]]] = {}
    variants: dict[str, dict[str, Any]] = {}
    open_loop = None
    for name, by_variant in raw.items():
        # the better variant: the higher peak (see `peak`), variants with a clean level first
        best_variant, best_rank = None, (False, -1.0)
        for variant, data in by_variant.items():
            if "error" in data:
                variants.setdefault(name, {})[variant] = {"error": data["error"]}
                continue
            levels = {
                c: _entry(_median_start(data["starts"], partial(_level_of, c))) for c in args.levels
            }
            present = {c: e for c, e in levels.items() if e}
            _, variant_peak = peak(present)
            clean = any(not e["contaminated"] for e in present.values())
            rank = (clean, variant_peak)
            variants.setdefault(name, {})[variant] = {
                "saturation_rps": variant_peak,
                "saturation_from_clean_levels": clean,
                "levels": {str(c): e for c, e in levels.items()},
                "first_prediction": [s["first_prediction"] for s in data["starts"]],
                **(
                    {"ledger_rows_listed": [s.get("ledger_rows_listed") for s in data["starts"]]}
                    if name == "learnloop"
                    else {}
                ),
            }
            if rank > best_rank:
                best_variant, best_rank = variant, rank
                per_server[name] = {c: e for c, e in levels.items() if e}
                if name == "learnloop":
                    open_loop = _entry(_median_start(data["starts"], lambda s: s.get("open_loop")))
        if best_variant is not None:
            variants[name]["best"] = best_variant

    peers = [p for p in PEER_NAMES if p in per_server]
    peaks = {n: peak(lv) for n, lv in per_server.items()}
    sat = {n: rps for n, (_, rps) in peaks.items()}
    best_peer = max(peers, key=lambda p: sat[p]) if peers else None
    levels_out: dict[str, Any] = {}
    for c in args.levels:
        row: dict[str, Any] = {n: per_server[n].get(c) for n in per_server}
        at_c = [p for p in peers if per_server[p].get(c)]
        if at_c:
            bp = max(at_c, key=lambda p: per_server[p][c]["rps"])
            row["best_peer"] = bp
            ll = per_server.get("learnloop", {}).get(c)
            if ll and per_server[bp][c]["rps"] > 0:
                row["ratio_vs_best_peer"] = ll["rps"] / per_server[bp][c]["rps"]
        levels_out[str(c)] = row

    out: dict[str, Any] = {}
    headline_c = peaks[best_peer][0] if best_peer is not None else None
    for n in ("learnloop", *PEER_NAMES):
        lv = per_server.get(n, {})
        c = headline_c if headline_c in lv else peaks.get(n, (None, 0.0))[0]
        out[n] = _short(lv[c]) if c is not None else None
    ratio = None
    if best_peer is not None and "learnloop" in per_server and headline_c is not None:
        ll = per_server["learnloop"].get(headline_c)
        bp = per_server[best_peer][headline_c]["rps"]
        ratio = ll["rps"] / bp if ll and bp > 0 else None
    out["ratio_vs_best_peer"] = ratio
    out["best_peer"] = best_peer
    out["headline_concurrency"] = headline_c
    ll_sat = sat.get("learnloop")
    ll_sat_c = peaks["learnloop"][0] if "learnloop" in peaks else None
    out["saturation"] = {
        "learnloop_rps": ll_sat,
        "at_concurrency": ll_sat_c,
        "load_fraction": args.load_fraction,
        "open_loop": open_loop,
        "peers_rps": {p: sat[p] for p in peers},
    }
    p99_70 = open_loop["p99_ms"] if open_loop else None
    headline_dirty = any(
        (out[n] or {}).get("contaminated", False)
        for n in ("learnloop", best_peer or "")
        if n in out
    )
    out["targets"] = {
        "ratio_vs_best_peer": {
            "goal": f">= {TARGET_RATIO}",
            "value": ratio,
            # a contaminated window cannot show the goal met
            "contaminated": headline_dirty,
            "met": ratio is not None and ratio >= TARGET_RATIO and not headline_dirty,
        },
        "p99_ms_at_load_fraction": {
            "goal": f"<= {TARGET_P99_MS}",
            "value": p99_70,
            "rate": open_loop["rate"] if open_loop else None,
            "contaminated": bool(open_loop and open_loop.get("contaminated")),
            "met": p99_70 is not None
            and open_loop is not None
            and open_loop.get("errors", 1) == 0
            and not open_loop.get("contaminated")
            and p99_70 <= TARGET_P99_MS,
        },
    }
    out["levels"] = levels_out
    out["variants"] = variants
    contaminated = [
        f"{n} c={c}" for n, lv in per_server.items() for c, e in lv.items() if e.get("contaminated")
    ]
    if open_loop and open_loop.get("contaminated"):
        contaminated.append("learnloop open-loop")
    out["contaminated_runs"] = contaminated
    return out


def _short(e: dict[str, Any]) -> dict[str, Any]:
    keys = ("rps", "p50_ms", "p99_ms", "errors", "concurrency", "variant", "contaminated")
    return {k: e[k] for k in keys if k in e}


# --- output --------------------------------------------------------------------------------


def clean_json(value: Any) -> Any:
    """JSON-safe: NaN/inf → None, floats rounded, int keys → str."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 3)
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def _cell(e: dict[str, Any] | None) -> str:
    if not e:
        return "—"
    mark = "*" if e.get("contaminated") else ""
    err = f" err {e['errors']}" if e.get("errors") else ""
    return f"{e['rps']:.0f} ({e['p50_ms']:.1f}/{e['p99_ms']:.1f}){err}{mark}"


def print_table(result: dict[str, Any]) -> None:
    names = [n for n in ("learnloop", *PEER_NAMES) if result.get(n)]
    header = [
        "concurrency",
        *[f"{n} ({result['variants'][n]['best']})" for n in names],
        "learnloop / best peer",
    ]
    rows = []
    for c, row in result["levels"].items():
        ratio = row.get("ratio_vs_best_peer")
        rows.append(
            [
                c,
                *[_cell(row.get(n)) for n in names],
                f"{ratio:.2f}× vs {row['best_peer']}" if ratio else "—",
            ]
        )
    title = "req/s (p50/p99 ms), one row per request; * = contaminated run"
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for h in header:
            table.add_column(h, justify="right")
        for r in rows:
            table.add_row(*r)
        # a pipe or a log file gets a wide table instead of rich's 80 columns
        Console(width=None if sys.stdout.isatty() else 150).print(table)
    except ImportError:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
        print(title)
        for r in [header, *rows]:
            print("  ".join(str(x).rjust(w) for x, w in zip(r, widths, strict=True)))
    sat = result["saturation"]
    ol = sat.get("open_loop")
    ratio = result["ratio_vs_best_peer"]
    t = result["targets"]
    if ratio is not None:
        print(
            f"ratio vs best peer ({result['best_peer']}, at c={result['headline_concurrency']}, "
            f"where it is best): {ratio:.2f}×  (goal ≥ {TARGET_RATIO}: "
            f"{'met' if t['ratio_vs_best_peer']['met'] else 'NOT met'})"
        )
    if sat.get("learnloop_rps"):
        print(f"learnloop saturation {sat['learnloop_rps']:.0f} req/s at c={sat['at_concurrency']}")
    if ol:
        print(
            f"learnloop open loop at {ol['rate']:.0f} req/s ({sat['load_fraction']:.0%}): "
            f"achieved {ol['rps']:.0f} req/s, p50 {ol['p50_ms']:.1f} ms, "
            f"p99 {ol['p99_ms']:.1f} ms, errors {ol['errors']}  (goal p99 ≤ {TARGET_P99_MS} ms: "
            f"{'met' if t['p99_ms_at_load_fraction']['met'] else 'NOT met'})"
        )
    for name, by_variant in result["variants"].items():
        for variant, data in by_variant.items():
            if isinstance(data, dict) and "error" in data:
                print(f"FAILED {name} {variant}: {data['error'].strip().splitlines()[0][:200]}")
    if result["contaminated_runs"]:
        print("contaminated (other CPU above threshold):", ", ".join(result["contaminated_runs"]))
