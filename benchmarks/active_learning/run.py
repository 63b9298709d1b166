"""Pool-based active-learning simulation on the UCI AI4I 2020 predictive-maintenance data.

    .venv/bin/python benchmarks/active_learning/run.py             # full: 5 seeds, up to 800
    .venv/bin/python benchmarks/active_learning/run.py --quick     # smoke run, under a minute

Per seed: a stratified 30 % test set is held out; of the remaining pool a stratified random
seed set is labelled (``--initial`` rows, at least two failures). Then, for every strategy of
``learnloop.loop.active_learning``, rounds of: fit the tabular family's estimator on the
labelled rows, predict the unlabelled pool, select ``--batch`` rows, reveal their labels from
the ground truth — until ``--max-labels``. After each fit the test set is scored with ROC-AUC
and average precision (AP, the area under the precision-recall curve; the telling metric for a
3 % positive class). All strategies of a seed start from the same labelled rows.

The model is the family's own estimator configuration (``TabularParams`` defaults: LightGBM,
200 rounds; ``--estimator``/``--n-estimators`` change them), built with the family's helpers
(``build_preprocessor``, ``grow_estimator``, ``predict_probabilities``) and grown in one chunk
on *all* labelled rows:
``TabularFamily.fit`` would also hold out 20 % of a few dozen labels for validation and write a
checkpoint per chunk, which is neither what a labelling loop wants nor cheap over ~1,200 fits.
The preprocessor (one-hot ``Type``, median imputation) is fitted on the unlabelled pool's
features, which an active learner has. Diversity uses the same transformed features.

The reference is the same model fitted on the whole labelled pool. Writes
``benchmarks/results/active_learning.json`` and ``active_learning.png`` (learning curves, mean
over seeds, band = ±1 standard deviation) and prints the summary table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split

from learnloop.families.tabular import TabularParams, read_table
from learnloop.families.tabular.estimators import (
    TrainingData,
    grow_estimator,
    predict_probabilities,
    total_rounds,
)
from learnloop.families.tabular.preprocessing import (
    apply_preprocessor,
    build_preprocessor,
    feature_matrix,
    plan_columns,
)
from learnloop.loop.active_learning import STRATEGIES, select

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = Path("/work/shared/datasets/predictive-maintenance/ai4i2020/ai4i2020.csv")
DEFAULT_OUT = ROOT / "benchmarks" / "results"
TARGET = "Machine failure"
DROP = ["UDI", "Product ID", "TWF", "HDF", "PWF", "OSF", "RNF"]  # ids, and the leaky modes
METRICS = ("ap", "auc")
MILESTONES = (200, 400, 800)
REFERENCE_SHARE = 0.95
STYLES: dict[str, dict[str, Any]] = {  # binary uncertainty, margin, entropy coincide: tell apart
    "random": {"color": "black", "linestyle": "--"},
    "uncertainty": {"linewidth": 3.0, "alpha": 0.6},
    "margin": {"linestyle": "--"},
    "entropy": {"linestyle": ":"},
}


@dataclass(frozen=True)
class Problem:
    """The transformed features and labels of the whole data set."""

    x: np.ndarray
    y: np.ndarray
    name: str


@dataclass(frozen=True)
class Config:
    seeds: int
    initial: int
    batch: int
    max_labels: int
    params: TabularParams
    strategies: tuple[str, ...]


def load_problem(path: Path) -> Problem:
    frame = read_table(path)
    plan = plan_columns(frame, TARGET, DROP)
    matrix = feature_matrix(frame, plan)
    x = apply_preprocessor(build_preprocessor(plan, scale=False).fit(matrix), matrix)
    return Problem(x, frame[TARGET].to_numpy(dtype=np.int64), path.name)


def fit_and_predict(
    params: TabularParams, x_train: np.ndarray, y_train: np.ndarray, *x_predict: np.ndarray
) -> list[np.ndarray]:
    """P(failure) for each of ``x_predict`` from the family's estimator fitted on the rows."""
    data = TrainingData("classification", 2, x_train, y_train, x_train[:0], y_train[:0])
    estimator = grow_estimator(None, params, data, 0, total_rounds(params))
    return [predict_probabilities(estimator, x, 2)[:, 1] for x in x_predict]


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {"ap": float(average_precision_score(y, p)), "auc": float(roc_auc_score(y, p))}


def initial_labels(y: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """A stratified random sample of ``count`` positions with at least two positives."""
    positives, negatives = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    n_pos = min(len(positives), max(2, round(count * len(positives) / len(y))))
    return np.concatenate(
        [
            rng.choice(positives, n_pos, replace=False),
            rng.choice(negatives, count - n_pos, replace=False),
        ]
    )


def run_strategy(
    strategy: str,
    config: Config,
    x_pool: np.ndarray,
    y_pool: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    start: np.ndarray,
    seed: int,
) -> dict[str, list[float]]:
    labelled = np.zeros(len(y_pool), dtype=bool)
    labelled[start] = True
    curve: dict[str, list[float]] = {"labels": [], "ap": [], "auc": [], "positives": []}
    for round_no in range(len(label_counts(config))):
        rows = np.flatnonzero(labelled)
        pool = np.flatnonzero(~labelled)
        p_test, p_pool = fit_and_predict(
            config.params, x_pool[rows], y_pool[rows], x_test, x_pool[pool]
        )
        curve["labels"].append(len(rows))
        curve["positives"].append(int(y_pool[rows].sum()))
        for name, value in scores(y_test, p_test).items():
            curve[name].append(value)
        budget = min(config.batch, config.max_labels - len(rows))
        if budget < 1:
            break
        chosen = select(
            strategy,  # type: ignore[arg-type]
            budget,
            probabilities=p_pool,
            features=x_pool[pool],
            labelled_features=x_pool[rows],
            seed=seed * 1000 + round_no,
        )
        labelled[pool[chosen.indices]] = True
    return curve


def label_counts(config: Config) -> list[int]:
    counts = list(range(config.initial, config.max_labels, config.batch))
    return [*counts, config.max_labels] if counts[-1] != config.max_labels else counts


def run_seed(problem: Problem, config: Config, seed: int) -> dict[str, Any]:
    positions = np.arange(len(problem.y))
    pool_rows, test_rows = train_test_split(
        positions, test_size=0.3, stratify=problem.y, random_state=seed
    )
    x_pool, y_pool = problem.x[pool_rows], problem.y[pool_rows]
    x_test, y_test = problem.x[test_rows], problem.y[test_rows]
    (p_full,) = fit_and_predict(config.params, x_pool, y_pool, x_test)
    start = initial_labels(y_pool, config.initial, np.random.default_rng(seed))
    curves = {}
    for strategy in config.strategies:
        began = time.perf_counter()
        curves[strategy] = run_strategy(
            strategy, config, x_pool, y_pool, x_test, y_test, start, seed
        )
        curve = curves[strategy]
        print(
            f"  seed {seed} {strategy:<11} AP {curve['ap'][0]:.3f} → {curve['ap'][-1]:.3f}  "
            f"AUC {curve['auc'][-1]:.3f}  failures labelled {curve['positives'][-1]:>3}  "
            f"({time.perf_counter() - began:.1f} s)",
            flush=True,
        )
    return {"full_pool": scores(y_test, p_full), "curves": curves}


def summarize(runs: Sequence[dict[str, Any]], config: Config) -> dict[str, Any]:
    """Mean/std curves per strategy, the summary figures and the full-pool reference."""
    full = {m: [r["full_pool"][m] for r in runs] for m in METRICS}
    full_pool = {f"{m}_mean": float(np.mean(v)) for m, v in full.items()}
    full_pool |= {f"{m}_std": float(np.std(v)) for m, v in full.items()}
    strategies: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    for strategy in config.strategies:
        curves = [r["curves"][strategy] for r in runs]
        labels = curves[0]["labels"]
        entry: dict[str, Any] = {"labels": labels}
        for key in (*METRICS, "positives"):
            values = np.array([c[key] for c in curves], dtype="float64")
            entry[f"{key}_mean"] = values.mean(axis=0).round(4).tolist()
            entry[f"{key}_std"] = values.std(axis=0).round(4).tolist()
        strategies[strategy] = entry
        figures: dict[str, Any] = {}
        for m in METRICS:
            mean = np.array(entry[f"{m}_mean"])
            figures[f"{m}_aulc"] = round(float(mean.mean()), 4)
            for milestone in MILESTONES:
                if milestone in labels:
                    figures[f"{m}_at_{milestone}"] = round(float(mean[labels.index(milestone)]), 4)
            goal = REFERENCE_SHARE * full_pool[f"{m}_mean"]
            reached = np.flatnonzero(mean >= goal)
            figures[f"{m}_labels_to_95"] = int(labels[reached[0]]) if len(reached) else None
        summary[strategy] = figures
    if "random" in summary:
        for figures in summary.values():
            for m in METRICS:
                base = summary["random"][f"{m}_aulc"]
                figures[f"{m}_aulc_vs_random"] = round(figures[f"{m}_aulc"] / base, 4)
    return {"strategies": strategies, "summary": summary, "full_pool": full_pool}


def print_table(result: dict[str, Any]) -> None:
    full = result["full_pool"]
    print(
        f"\nfull pool ({result['pool_rows']} labels): AP {full['ap_mean']:.3f} ± "
        f"{full['ap_std']:.3f}, ROC-AUC {full['auc_mean']:.3f} ± {full['auc_std']:.3f}"
    )
    milestones = [m for m in MILESTONES if m <= result["max_labels"]]
    for m, title in (("ap", "average precision"), ("auc", "ROC-AUC")):
        head = "".join(f"{'@' + str(n):>8}" for n in milestones)
        print(f"\n{title}: strategy, area under the curve, ×random, value at N labels, N to 95 %")
        print(f"{'strategy':<12}{'AULC':>8}{'×rand':>8}{head}{'N95':>8}")
        for strategy, f in result["summary"].items():
            at = "".join(f"{f.get(f'{m}_at_{n}', float('nan')):>8.3f}" for n in milestones)
            reach = f[f"{m}_labels_to_95"]
            ratio = f.get(f"{m}_aulc_vs_random", float("nan"))
            print(
                f"{strategy:<12}{f[f'{m}_aulc']:>8.3f}{ratio:>8.3f}{at}"
                f"{(str(reach) if reach else '>' + str(result['max_labels'])):>8}"
            )


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, m, title in zip(axes, METRICS, ("average precision", "ROC-AUC"), strict=True):
        for strategy, entry in result["strategies"].items():
            labels = np.array(entry["labels"])
            mean, std = np.array(entry[f"{m}_mean"]), np.array(entry[f"{m}_std"])
            style = {"linewidth": 1.6, **STYLES.get(strategy, {})}
            (line,) = ax.plot(labels, mean, label=strategy, **style)
            ax.fill_between(labels, mean - std, mean + std, color=line.get_color(), alpha=0.12)
        reference = result["full_pool"][f"{m}_mean"]
        ax.axhline(reference, color="black", linewidth=0.8, linestyle=":")
        ax.text(labels[0], reference, f" full pool ({result['pool_rows']} labels)", va="bottom")
        ax.set_xlabel("labelled rows")
        ax.set_ylabel(f"test {title}")
        ax.set_title(f"{title}, mean ± 1 std over {result['seeds']} seeds")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right")
    fig.suptitle(f"Active learning on AI4I 2020 ({result['estimator']}, batch {result['batch']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the ai4i2020.csv file")
    parser.add_argument("--seeds", type=int, default=5, help="repetitions (test split, seed set)")
    parser.add_argument("--initial", type=int, default=40, help="labelled rows at the start")
    parser.add_argument("--batch", type=int, default=40, help="rows labelled per round")
    parser.add_argument("--max-labels", type=int, default=800, help="stop at this many labels")
    parser.add_argument(
        "--estimator",
        choices=["random_forest", "lightgbm", "hist_gradient_boosting", "linear"],
        default="lightgbm",
        help="the tabular family's estimator (its default: lightgbm)",
    )
    parser.add_argument("--n-estimators", type=int, default=200, help="trees / boosting rounds")
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--quick", action="store_true", help="2 seeds, up to 200 labels")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for JSON and PNG")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.max_labels, args.n_estimators = 2, 200, min(args.n_estimators, 50)
    params = TabularParams(
        target=TARGET,
        estimator=args.estimator,
        n_estimators=args.n_estimators,
        checkpoint_every=args.n_estimators,
    )
    strategies = tuple(["random", *[s for s in args.strategies if s != "random"]])
    config = Config(args.seeds, args.initial, args.batch, args.max_labels, params, strategies)
    problem = load_problem(args.data)
    print(
        f"{problem.name}: {len(problem.y)} rows, {problem.y.mean():.1%} failures, "
        f"{problem.x.shape[1]} features; {args.estimator} ({args.n_estimators}), "
        f"{args.initial} → {args.max_labels} labels in batches of {args.batch}",
        flush=True,
    )
    began = time.perf_counter()
    runs = [run_seed(problem, config, seed) for seed in range(args.seeds)]
    result: dict[str, Any] = {
        "dataset": problem.name,
        "rows": len(problem.y),
        "positive_rate": round(float(problem.y.mean()), 4),
        "pool_rows": int(round(len(problem.y) * 0.7)),
        "test_rows": len(problem.y) - int(round(len(problem.y) * 0.7)),
        "estimator": args.estimator,
        "params": params.model_dump(mode="json"),
        "initial": args.initial,
        "batch": args.batch,
        "max_labels": args.max_labels,
        "rounds": len(label_counts(config)),
        "seeds": args.seeds,
        "command": " ".join(["benchmarks/active_learning/run.py", *(argv or sys.argv[1:])]),
        **summarize(runs, config),
        "seconds": round(time.perf_counter() - began, 1),
    }
    print_table(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "active_learning.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out / "active_learning.png")
    print(f"\nwrote {args.out / 'active_learning.json'} and active_learning.png")
    print(f"({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
