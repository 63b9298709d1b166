"""Precision / recall of :func:`learnloop.loop.privacy.pii.detect` on the labelled PII set.

``pii_labelled.jsonl`` holds one feedback-style text per line with its gold spans
(``{"text": ..., "spans": [{"start", "end", "kind"}], "split": "dev" | "holdout"}``). The
``dev`` lines were available while the detector's heuristics were tuned; the ``holdout`` lines
were written afterwards and never tuned against, so their figures are the less flattering and
more honest ones. Two matchings are scored:

* **exact** — a predicted span counts only if ``(start, end, kind)`` equals a gold span;
* **lenient** — a predicted span counts if it overlaps a gold span of the same kind (each gold
  span can be claimed once).

Prints a per-kind table of both, plus the per-split totals, and writes the exact figures (the
lenient ones under ``"lenient"``, the per-split ones under ``"splits"``) to
``benchmarks/results/pii.json``::

    .venv/bin/python benchmarks/privacy/pii_eval.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from learnloop.loop.privacy.pii import PII_KINDS, detect

ROOT = Path(__file__).resolve().parents[2]
DATASET = ROOT / "benchmarks/privacy/pii_labelled.jsonl"
RESULT = ROOT / "benchmarks/results/pii.json"

Span = tuple[int, int, str]


def load(path: Path = DATASET, split: str | None = None) -> list[tuple[str, list[Span]]]:
    """(text, gold spans) per line, optionally of one split; ``ValueError`` on a bad span."""
    examples: list[tuple[str, list[Span]]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if split is not None and row.get("split", "dev") != split:
            continue
        text: str = row["text"]
        spans = [(int(s["start"]), int(s["end"]), str(s["kind"])) for s in row["spans"]]
        for start, end, kind in spans:
            if not 0 <= start < end <= len(text) or kind not in PII_KINDS:
                raise ValueError(f"line {n}: bad span {(start, end, kind)}")
        examples.append((text, spans))
    return examples


def _exact(pred: list[Span], gold: list[Span]) -> int:
    return len(set(pred) & set(gold))


def _lenient(pred: list[Span], gold: list[Span]) -> int:
    claimed: set[Span] = set()
    hits = 0
    for ps, pe, pk in pred:
        for g in gold:
            if g not in claimed and g[2] == pk and ps < g[1] and g[0] < pe:
                claimed.add(g)
                hits += 1
                break
    return hits


def _prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float | int]:
    precision = tp / n_pred if n_pred else 1.0
    recall = tp / n_gold if n_gold else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "support": n_gold,
        "predicted": n_pred,
    }


def score(
    examples: Iterable[tuple[str, list[Span]]],
    match: Callable[[list[Span], list[Span]], int] = _exact,
    predictions: list[list[Span]] | None = None,
) -> dict[str, Any]:
    """Per-kind and overall precision/recall/F1 of ``detect`` (or given predictions)."""
    examples = list(examples)
    if predictions is None:
        predictions = [[(s.start, s.end, s.kind) for s in detect(t)] for t, _ in examples]
    counts = {k: [0, 0, 0] for k in PII_KINDS}  # tp, predicted, gold
    for (_, gold), pred in zip(examples, predictions, strict=True):
        for kind in PII_KINDS:
            p = [s for s in pred if s[2] == kind]
            g = [s for s in gold if s[2] == kind]
            counts[kind][0] += match(p, g)
            counts[kind][1] += len(p)
            counts[kind][2] += len(g)
    kinds = {k: _prf(*c) for k, c in counts.items()}
    total = [sum(c[i] for c in counts.values()) for i in range(3)]
    structured = [sum(counts[k][i] for k in PII_KINDS if k != "person") for i in range(3)]
    return {
        "kinds": kinds,
        "overall": _prf(*total),
        "structured": _prf(*structured),
        "examples": len(examples),
    }


def evaluate(path: Path = DATASET) -> dict[str, Any]:
    """Exact-match report with the lenient one under ``"lenient"`` and the run time."""
    examples = load(path)
    started = time.perf_counter()
    predictions = [[(s.start, s.end, s.kind) for s in detect(t)] for t, _ in examples]
    elapsed = time.perf_counter() - started
    report = score(examples, _exact, predictions)
    lenient = score(examples, _lenient, predictions)
    report["lenient"] = {k: lenient[k] for k in ("kinds", "overall", "structured")}
    report["splits"] = {}
    for split in ("dev", "holdout"):
        part = score(load(path, split))
        report["splits"][split] = {
            "examples": part["examples"],
            "structured": part["structured"],
            "person": part["kinds"]["person"],
            "overall": part["overall"],
        }
    report["ms_per_text"] = round(1000 * elapsed / max(1, len(examples)), 3)
    return report


def print_table(report: dict[str, Any]) -> None:
    lenient = report["lenient"]
    print(f"{report['examples']} texts, {report['ms_per_text']} ms per text")
    print(f"{'kind':<11}{'support':>8}{'P':>8}{'R':>8}{'F1':>8}   {'P~':>6}{'R~':>8}{'F1~':>8}")
    rows = [(k, report["kinds"][k], lenient["kinds"][k]) for k in PII_KINDS]
    rows += [(name, report[name], lenient[name]) for name in ("structured", "overall")]
    for name, e, le in rows:
        print(
            f"{name:<11}{e['support']:>8}{e['precision']:>8.3f}{e['recall']:>8.3f}{e['f1']:>8.3f}"
            f"   {le['precision']:>6.3f}{le['recall']:>8.3f}{le['f1']:>8.3f}"
        )
    print("exact match on (start, end, kind); ~ = lenient (same kind, overlapping)")
    for split, part in report["splits"].items():
        cells = "  ".join(
            f"{name} P {part[name]['precision']:.3f} R {part[name]['recall']:.3f}"
            for name in ("structured", "person", "overall")
        )
        print(f"{split:<8} ({part['examples']:>3} texts)  {cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DATASET)
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--errors", action="store_true", help="print every mismatching text")
    args = parser.parse_args(argv)
    report = evaluate(args.data)
    print_table(report)
    if args.errors:
        for text, gold in load(args.data):
            pred = {(s.start, s.end, s.kind) for s in detect(text)}
            if pred != set(gold):
                print(repr(text))
                for start, end, kind in sorted(pred - set(gold)):
                    print(f"   + {kind} {text[start:end]!r}")
                for start, end, kind in sorted(set(gold) - pred):
                    print(f"   - {kind} {text[start:end]!r}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
