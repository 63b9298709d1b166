"""The knowledge-tracing family: loaders on the shipped files and on broken ones, no label
leakage, BKT's EM recovering known parameters, the synthetic oracle, stateful = stateless,
input errors and cold start."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from learnloop.core.errors import InvalidInput
from learnloop.core.fitting import LocalFitContext
from learnloop.families.knowledge_tracing import (
    Attempt,
    FormatError,
    KnowledgeTracingFamily,
    generate_synthetic_data,
    load_interactions,
    oracle_probabilities,
)
from learnloop.families.knowledge_tracing.bkt import build_chains, fit_bkt
from learnloop.families.knowledge_tracing.data import normalize_table
from learnloop.families.knowledge_tracing.encoding import Vocab

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "knowledge-tracing"


def shipped(relative: str) -> Path:
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"dataset not found: {path}")
    return path


# -- loaders ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "fmt", "learners", "attempts"),
    [
        ("dkvmn-assist2009/assist2009_updated_train1.csv", "dkvmn", 2291, 176_684),
        ("dkvmn-assist2009/assist2009_updated_test.csv", "dkvmn", 1230, 101_419),
        ("dkt-assist2009-builder/builder_test.csv", "dkt", 856, 117_567),
        ("dkvmn-synthetic5/naive_c5_q50_s4000_v0_test.csv", "dkvmn", 2000, 100_000),
        ("akt-assist2009-pid/assist2009_pid_test1.csv", "akt", 830, None),
    ],
)
def test_shipped_files_load_with_the_documented_counts(
    relative: str, fmt: str, learners: int, attempts: int | None
) -> None:
    frame = load_interactions(shipped(relative), fmt)
    assert frame["learner_id"].nunique() == learners
    if attempts is not None:
        assert len(frame) == attempts
    assert set(frame["correct"].unique()) <= {0, 1}
    if fmt == "akt":
        assert frame["item_id"].notna().all()  # problem ids kept
    # order restarts at 0 for every learner and increases by one
    first = frame.groupby("learner_id")["order"].min()
    assert (first == 0).all()


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("fmt", "text", "line", "words"),
    [
        ("dkvmn", "3\n1,2,3\n1,0,1\n2\n4,5\n1,2\n", 6, "0 or 1"),
        ("dkvmn", "3\n1,2,3\n1,0,1\n4\n4,5\n1,0\n", 4, "says 4 interactions"),
        ("dkt", "2\n1,x\n1,0\n", 2, "integers"),
        ("akt", "1,99\n7,8\n3,3\n1,0\n2,100\n7,8,9\n3,3\n1,0\n", 6, "3 problems, 2 skills"),
        ("dkvmn", "3\n1,2,3\n", 2, "multiple of 3"),
    ],
)
def test_a_file_in_the_wrong_format_names_the_line(
    tmp_path: Path, fmt: str, text: str, line: int, words: str
) -> None:
    with pytest.raises(FormatError) as e:
        load_interactions(write(tmp_path, text), fmt)
    assert e.value.line == line
    assert words in str(e.value)


def test_csv_errors_name_the_line(tmp_path: Path) -> None:
    text = "learner_id,skill_id,correct\na,s1,1\na,s1,yes\n"
    with pytest.raises(FormatError) as e:
        load_interactions(write(tmp_path, text), "csv")
    assert e.value.line == 3 and "0 or 1" in str(e.value)
    with pytest.raises(FormatError, match="correct"):
        load_interactions(write(tmp_path, "learner_id,skill_id\na,s1\n"), "csv")


def test_multi_skill_siblings_become_one_attempt(tmp_path: Path) -> None:
    text = (
        "learner_id,item_id,skill_id,correct,timestamp\n"
        "a,q1,add,1,10\n"
        "a,q1,carry,1,10\n"  # the same attempt, repeated per skill
        "a,q2,add,0,20\n"
        "a,q2,add,1,30\n"  # a second attempt at q2: kept
        "b,q1,add,0,5\n"
    )
    frame = load_interactions(write(tmp_path, text), "csv")
    a = frame[frame["learner_id"] == "a"]
    assert a["skill_ids"].tolist() == ["add;carry", "add", "add"]
    assert a["correct"].tolist() == [1, 0, 1]
    assert a["order"].tolist() == [0, 1, 2]


def test_akt_rows_repeating_a_problem_are_merged(tmp_path: Path) -> None:
    # problem 7 expanded per skill (3, 4), then problem 8, then 8 again with another answer
    text = "1,99\n7,7,8,8\n3,4,3,3\n1,1,0,1\n"
    path = write(tmp_path, text)
    frame = load_interactions(path, "akt")
    assert frame["item_id"].tolist() == ["7", "8", "8"]
    assert frame["skill_ids"].tolist() == ["3;4", "3", "3"]
    assert frame["correct"].tolist() == [1, 0, 1] and frame["order"].tolist() == [0, 1, 2]
    kept = load_interactions(path, "akt", siblings="keep")  # the papers' expanded rows
    assert kept["item_id"].tolist() == ["7", "7", "8", "8"]


def test_shipped_akt_copies_are_one_attempt() -> None:
    path = shipped("akt-assist2009-pid/assist2009_pid_test1.csv")
    merged = load_interactions(path, "akt")
    kept = load_interactions(path, "akt", siblings="keep")
    assert len(kept) == 60_915 and len(merged) == 52_000
    assert merged["skill_ids"].str.contains(";").sum() == 8_065
    # no two consecutive attempts of a learner share problem and answer any more
    same = (
        (merged["learner_id"] == merged["learner_id"].shift())
        & (merged["item_id"] == merged["item_id"].shift())
        & (merged["correct"] == merged["correct"].shift())
    )
    assert not same.any()


# -- leakage --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    data = generate_synthetic_data(400, num_items=30, num_skills=3, attempts=30, seed=1)
    return data.interactions.drop(columns=["p_true"])


@pytest.fixture(scope="module", params=["dkt", "attentive", "bkt", "ensemble"])
def fitted(request: pytest.FixtureRequest, synthetic: pd.DataFrame) -> KnowledgeTracingFamily:
    params = {
        "model": request.param, "epochs": 3, "threads": 1, "max_len": 40, "hidden": 32,
        "embed_dim": 32, "d_model": 16, "heads": 2, "d_ff": 32, "restarts": 2,
        "members": ["dkt", "attentive"],
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        family = KnowledgeTracingFamily(params)
        family.fit(synthetic, LocalFitContext(Path(tmp)))
    return family


def test_an_answer_never_reaches_its_own_prediction(
    fitted: KnowledgeTracingFamily, synthetic: pd.DataFrame
) -> None:
    learner = synthetic[synthetic["learner_id"] == synthetic["learner_id"].iloc[0]].copy()
    base = fitted.predict_table(learner)["probability"].to_numpy()
    t = 12
    flipped = learner.copy()
    flipped.iloc[t, flipped.columns.get_loc("correct")] = 1 - flipped["correct"].iloc[t]
    moved = fitted.predict_table(flipped)["probability"].to_numpy()
    np.testing.assert_allclose(moved[: t + 1], base[: t + 1], atol=1e-6)  # up to t: unchanged
    assert np.abs(moved[t + 1 :] - base[t + 1 :]).max() > 1e-4  # later ones see it


def test_siblings_of_a_multi_skill_attempt_do_not_leak(fitted: KnowledgeTracingFamily) -> None:
    """Rows repeating one attempt per skill are predicted once, from earlier attempts only."""
    rows = pd.DataFrame(
        {
            "learner_id": ["z"] * 4,
            "item_id": ["q1", "q2", "q3", "q3"],
            "skill_ids": ["c0", "c1", "c0", "c1"],
            "correct": [1, 0, 1, 1],
            "timestamp": [1, 2, 3, 3],
        }
    )
    table = fitted.predict_table(rows)
    assert len(table) == 3 and table["skill_ids"].iloc[2] == "c0;c1"
    wrong = rows.assign(correct=[1, 0, 0, 0])
    np.testing.assert_allclose(
        fitted.predict_table(wrong)["probability"], table["probability"], atol=1e-6
    )


# -- stateful serving ------------------------------------------------------------------------------


def test_stateful_equals_stateless_and_survives_save_load(
    fitted: KnowledgeTracingFamily, tmp_path: Path
) -> None:
    history = [
        Attempt(item_id="q3", correct=1),
        Attempt(item_id="q7", skill_ids=["c1"], correct=0),
        Attempt(item_id="q3", correct=1),
        Attempt(skill_ids=["c2"], correct=1),
    ]
    fitted.observe("learner-eq", history)
    raw = [
        {"learner_id": "learner-eq", "item_id": "q5"},
        {"item_id": "q5", "history": [h.model_dump() for h in history]},
    ]
    stateful, stateless = fitted.predict(fitted.validate_inputs(raw))
    assert stateful.learner_state == "stored" and stateful.history_length == 4
    assert stateful.probability == pytest.approx(stateless.probability, abs=1e-5)
    folder = tmp_path / "saved"
    folder.mkdir()
    fitted.save(folder)
    loaded = KnowledgeTracingFamily.load(folder)
    again = loaded.predict(loaded.validate_inputs(raw[1:]))[0]
    assert again.probability == pytest.approx(stateless.probability, abs=1e-6)
    fresh = loaded.predict(loaded.validate_inputs(raw[:1]))[0]
    assert fresh.learner_state == "new"  # states are not in the artifact: rebuilt from answers


def test_a_batch_of_learners_matches_one_learner_at_a_time(
    fitted: KnowledgeTracingFamily,
) -> None:
    """The batched stateful pass (states padded to the longest history) gives every learner
    what the one-state step gives it: fresh, short, and trimmed-to-the-window histories,
    multi-skill attempts and unknown skills in one request."""
    rng = np.random.default_rng(3)
    lengths = {"b-fresh": 0, "b-one": 1, "b-five": 5, "b-long": 60}  # max_len is 40
    for learner, n in lengths.items():
        if n:
            fitted.observe(
                learner,
                [
                    Attempt(item_id=f"q{rng.integers(30)}", correct=int(rng.integers(2)))
                    for _ in range(n)
                ],
            )
    raw = [
        {"learner_id": "b-five", "item_id": "q4"},
        {"learner_id": "b-fresh", "item_id": "q9"},
        {"learner_id": "b-long", "skill_ids": ["c0", "c2"]},
        {"learner_id": "b-one", "item_id": "q11", "skill_ids": ["c1", "no-such-skill"]},
        {"learner_id": "b-long", "item_id": "q2"},
        {"learner_id": "b-five", "item_id": "q4"},
    ]
    batch = fitted.predict(fitted.validate_inputs(raw))
    assert [o.history_length for o in batch] == [5, 0, 60, 1, 60, 5]
    assert batch[3].cold_start == ["skill:no-such-skill"]
    for x, out in zip(fitted.validate_inputs(raw), batch, strict=True):
        state, _ = fitted.learners.get(x.learner_id or "")
        skills, item, _ = fitted._query(x)
        alone = fitted._step_probabilities(state, [skills], [item])[0]
        assert out.probability == pytest.approx(alone, abs=1e-5)
        wanted = x.skill_ids or fitted._item_skills(x.item_id)
        assert out.mastery == pytest.approx(fitted._mastery(state, wanted), abs=1e-5)
        assert out.mastery  # the known skills of the attempt
    assert batch[0] == batch[5]


def test_unknown_ids_are_predicted_cold_and_flagged(fitted: KnowledgeTracingFamily) -> None:
    out = fitted.predict(
        fitted.validate_inputs([{"item_id": "never-seen", "skill_ids": ["c0", "new-skill"]}])
    )[0]
    assert 0 < out.probability < 1
    assert "skill:new-skill" in out.cold_start
    if fitted.vocab is not None and fitted.vocab.uses_items:
        assert "item:never-seen" in out.cold_start


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ({"item_id": "q1", "history": {"item_ids": ["q1", "q2"], "correct": [1]}}, "history"),
        ({"item_id": "q1", "history": [{"item_id": "q1", "correct": 2}]}, "history.0.correct"),
        ({"learner_id": "a"}, "inputs[0]"),
        ({"item_id": "q1", "history": [{"correct": 1}]}, "history.0"),
    ],
)
def test_malformed_histories_name_the_field(
    fitted: KnowledgeTracingFamily, raw: dict[str, object], where: str
) -> None:
    with pytest.raises(InvalidInput) as e:
        fitted.validate_inputs([raw])
    locs = [i.loc for i in e.value.issues]
    assert any(loc.startswith("inputs[0]") and where in loc for loc in locs), locs


# -- BKT and the synthetic oracle ---------------------------------------------------------------


def test_bkt_em_recovers_the_generating_parameters() -> None:
    rng = np.random.default_rng(0)
    init, learn, guess, slip = 0.3, 0.15, 0.2, 0.1
    rows = []
    for u in range(3000):
        known = rng.random() < init
        for t in range(15):
            p = 1 - slip if known else guess
            rows.append((f"u{u}", "s", int(rng.random() < p), t))
            known = known or rng.random() < learn
    frame = pd.DataFrame(rows, columns=["learner_id", "skill_ids", "correct", "order"])
    frame["item_id"] = None
    vocab = Vocab.build(frame, use_items=False)
    params, _ = fit_bkt(
        build_chains(frame, vocab), vocab.n_skills, forgets=False, restarts=3,
        iterations=200, seed=0,
    )  # fmt: skip
    s = vocab.skills["s"]
    fitted = (params.init[s], params.learn[s], params.guess[s], params.slip[s])
    np.testing.assert_allclose(fitted, (init, learn, guess, slip), atol=0.04)


def test_the_oracle_beats_models_and_trails_the_omniscient() -> None:
    data = generate_synthetic_data(600, num_items=20, num_skills=2, attempts=20, seed=3)
    frame = data.interactions
    oracle = oracle_probabilities(frame, data.truth)
    y = frame["correct"].to_numpy()
    oracle_auc = roc_auc_score(y, oracle)
    omniscient_auc = roc_auc_score(y, frame["p_true"])
    marginal = frame.groupby("item_id")["correct"].transform("mean")  # item difficulty only
    assert roc_auc_score(y, marginal) < oracle_auc < omniscient_auc
    # the same seed simulates the same learners
    again = generate_synthetic_data(600, num_items=20, num_skills=2, attempts=20, seed=3)
    pd.testing.assert_frame_equal(frame, again.interactions)


def test_normalize_table_reads_loop_datasets() -> None:
    """The loop's datasets hold prediction inputs (skill lists) and ``predicted_at``."""
    frame = pd.DataFrame(
        {
            "learner_id": ["a", "a", "b"],
            "skill_ids": [["s1", "s2"], ["s1"], ["s2"]],
            "correct": [1, 0, 1],
            "predicted_at": pd.to_datetime(["2026-01-02", "2026-01-01", "2026-01-01"], utc=True),
            "subject_id": ["a", "a", "b"],
        }
    )
    table = normalize_table(frame)
    assert table[table["learner_id"] == "a"]["skill_ids"].tolist() == ["s1", "s1;s2"]
