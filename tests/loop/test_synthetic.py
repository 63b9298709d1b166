"""Gaussian copula synthesizer, fidelity report and rare-class augmentation on UCI AI4I 2020.

Bounds were measured over several seeds (3000 synthetic rows from a 7000-row training split)
and set with margin: worst numeric KS statistic 0.016–0.019, strong correlations within 0.03,
column shape 0.99, correlation score 0.99, discriminator AUC 0.66–0.68 against 0.92 for
independently shuffled columns and 1.0 for a constant frame, TSTR ROC-AUC 0.81–0.92.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from learnloop.core.errors import InvalidInput
from learnloop.loop.synthetic import (
    GaussianCopulaSynthesizer,
    SyntheticDataError,
    augment_rare,
    fidelity_report,
)

DATA = (
    Path(__file__).resolve().parents[2].parent
    / "shared/datasets/predictive-maintenance/ai4i2020/ai4i2020.csv"
)
IDS = ("UDI", "Product ID")
TARGET = "Machine failure"
AIR, PROCESS = "Air temperature [K]", "Process temperature [K]"
SPEED, TORQUE, WEAR = "Rotational speed [rpm]", "Torque [Nm]", "Tool wear [min]"
NUMERIC = [AIR, PROCESS, SPEED, TORQUE, WEAR]
MODES = ["TWF", "HDF", "PWF", "OSF", "RNF"]

pytestmark = pytest.mark.skipif(not DATA.exists(), reason=f"AI4I data not found at {DATA}")


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return pd.read_csv(DATA, encoding="utf-8-sig")


@pytest.fixture(scope="module")
def train(real: pd.DataFrame) -> pd.DataFrame:
    return real.sample(7000, random_state=0)


@pytest.fixture(scope="module")
def holdout(real: pd.DataFrame, train: pd.DataFrame) -> pd.DataFrame:
    return real.drop(train.index)


@pytest.fixture(scope="module")
def synthesizer(train: pd.DataFrame) -> GaussianCopulaSynthesizer:
    return GaussianCopulaSynthesizer(seed=0, id_columns=IDS).fit(train)


@pytest.fixture(scope="module")
def synthetic(synthesizer: GaussianCopulaSynthesizer) -> pd.DataFrame:
    return synthesizer.sample(3000, seed=1)


@pytest.fixture(scope="module")
def report(
    train: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame
) -> dict[str, object]:
    return fidelity_report(train, synthetic, target=TARGET, id_columns=IDS, holdout=holdout)


# ----------------------------------------------------------------------------- the synthesizer


def test_sample_keeps_columns_dtypes_and_bounds(
    train: pd.DataFrame, synthetic: pd.DataFrame
) -> None:
    assert list(synthetic.columns) == list(train.columns)
    assert synthetic.dtypes.equals(train.dtypes)
    assert len(synthetic) == 3000
    assert synthetic.index.equals(pd.RangeIndex(3000))
    for column in NUMERIC:
        assert synthetic[column].between(train[column].min(), train[column].max()).all()
    # Temperatures keep their one decimal; integer columns stay integers.
    assert np.allclose(synthetic[AIR] * 10, np.round(synthetic[AIR] * 10))
    assert set(synthetic["Type"]) == {"L", "M", "H"}
    assert set(synthetic[TARGET]) == {0, 1}


def test_numeric_marginals_are_close(train: pd.DataFrame, synthetic: pd.DataFrame) -> None:
    for column in NUMERIC:
        statistic = stats.ks_2samp(train[column], synthetic[column]).statistic
        assert statistic < 0.04, (column, statistic)


def test_strong_correlations_are_reproduced(train: pd.DataFrame, synthetic: pd.DataFrame) -> None:
    for a, b, expected in [(AIR, PROCESS, 0.88), (SPEED, TORQUE, -0.88)]:
        real_corr = train[a].corr(train[b])
        assert real_corr == pytest.approx(expected, abs=0.02)
        assert abs(synthetic[a].corr(synthetic[b]) - real_corr) < 0.1


def test_categorical_frequencies_are_close(train: pd.DataFrame, synthetic: pd.DataFrame) -> None:
    for column, tolerance in [("Type", 0.03), (TARGET, 0.012), ("HDF", 0.008)]:
        p = train[column].value_counts(normalize=True)
        q = synthetic[column].value_counts(normalize=True).reindex(p.index, fill_value=0.0)
        assert (p - q).abs().max() < tolerance, column


def test_ids_are_fresh_and_never_copied(train: pd.DataFrame, synthetic: pd.DataFrame) -> None:
    assert synthetic["Product ID"].is_unique and synthetic["UDI"].is_unique
    assert synthetic["Product ID"].str.fullmatch(r"syn-\d{6}").all()
    assert not set(synthetic["Product ID"]) & set(train["Product ID"])
    assert synthetic["UDI"].min() > train["UDI"].max()
    # Text columns whose values are all distinct are ids even when not named.
    unnamed = GaussianCopulaSynthesizer(seed=0).fit(train).sample(500, seed=1)
    assert unnamed["Product ID"].str.startswith("syn-").all()
    assert unnamed["UDI"].between(train["UDI"].min(), train["UDI"].max()).all()


def test_sampling_is_reproducible(
    train: pd.DataFrame, synthesizer: GaussianCopulaSynthesizer, synthetic: pd.DataFrame
) -> None:
    pd.testing.assert_frame_equal(synthesizer.sample(3000, seed=1), synthetic)
    other = synthesizer.sample(3000, seed=2)
    assert not other[NUMERIC].equals(synthetic[NUMERIC])
    # Without a seed: a stream that advances, and restarts with a fresh fit.
    first = GaussianCopulaSynthesizer(seed=0, id_columns=IDS).fit(train)
    second = GaussianCopulaSynthesizer(seed=0, id_columns=IDS).fit(train)
    a, b = first.sample(200), first.sample(200)
    assert not a[NUMERIC].equals(b[NUMERIC])
    pd.testing.assert_frame_equal(second.sample(200), a)
    third = GaussianCopulaSynthesizer(seed=7, id_columns=IDS).fit(train)
    assert not third.sample(200)[NUMERIC].equals(a[NUMERIC])


def test_conditions_fix_columns_and_shift_the_rest(
    train: pd.DataFrame, synthesizer: GaussianCopulaSynthesizer, synthetic: pd.DataFrame
) -> None:
    failures = synthesizer.sample(2000, conditions={TARGET: 1}, seed=3)
    assert (failures[TARGET] == 1).all()
    assert failures.dtypes.equals(train.dtypes)
    # Real failures run at higher torque (about 50 Nm against 40) and with far more HDF.
    assert failures[TORQUE].mean() > synthetic[TORQUE].mean() + 3
    assert failures["HDF"].mean() > 5 * synthetic["HDF"].mean()

    mixed = synthesizer.sample(500, conditions={TARGET: 1, "Type": "H", WEAR: 200}, seed=3)
    assert (mixed[TARGET] == 1).all() and (mixed["Type"] == "H").all()
    assert (mixed[WEAR] == 200).all()
    assert mixed[AIR].nunique() > 10


@pytest.mark.parametrize(
    ("conditions", "column"),
    [
        ({"Colour": "red"}, "Colour"),
        ({"Type": "X"}, "Type"),
        ({TARGET: 2}, TARGET),
        ({TORQUE: 500.0}, TORQUE),
        ({"Product ID": "M14860"}, "Product ID"),
    ],
)
def test_bad_conditions_name_the_column(
    synthesizer: GaussianCopulaSynthesizer, conditions: dict[str, object], column: str
) -> None:
    with pytest.raises(ValueError, match=column.replace("[", r"\[")) as caught:
        synthesizer.sample(10, conditions=conditions)
    assert isinstance(caught.value, InvalidInput)


def test_parameters_round_trip_through_json(synthesizer: GaussianCopulaSynthesizer) -> None:
    document = json.loads(json.dumps(synthesizer.to_dict()))
    copy = GaussianCopulaSynthesizer.from_dict(document)
    pd.testing.assert_frame_equal(copy.sample(300, seed=9), synthesizer.sample(300, seed=9))
    pd.testing.assert_frame_equal(
        copy.sample(50, conditions={TARGET: 1}, seed=4),
        synthesizer.sample(50, conditions={TARGET: 1}, seed=4),
    )


def test_attenuation_correction_keeps_rare_label_correlations(train: pd.DataFrame) -> None:
    real_corr = train[TARGET].corr(train[TORQUE])  # about 0.19
    corrected = GaussianCopulaSynthesizer(seed=0, id_columns=IDS).fit(train).sample(6000, seed=1)
    uniform = (
        GaussianCopulaSynthesizer(seed=0, id_columns=IDS, attenuation_correction=False)
        .fit(train)
        .sample(6000, seed=1)
    )
    corrected_corr = corrected[TARGET].corr(corrected[TORQUE])
    uniform_corr = uniform[TARGET].corr(uniform[TORQUE])
    assert abs(corrected_corr - real_corr) < 0.1
    assert abs(uniform_corr - real_corr) > abs(corrected_corr - real_corr) + 0.05


def test_mixed_dtypes_and_missing_values_are_reproduced() -> None:
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame(
        {
            "when": pd.date_range("2024-01-01", periods=n, freq="h", tz="Europe/Berlin"),
            "flag": rng.random(n) < 0.3,
            "grade": pd.Categorical(
                rng.choice(["a", "b", "c"], n), categories=["a", "b", "c", "d"]
            ),
            "label": pd.Series(rng.choice(["x", "y"], n), dtype="string"),
            "count": pd.array(rng.integers(0, 100, n), dtype="Int64"),
            "value": np.where(rng.random(n) < 0.25, np.nan, rng.normal(size=n).round(3)),
            "blank": np.full(n, np.nan),
        }
    )
    frame.loc[:59, "count"] = pd.NA
    sample = GaussianCopulaSynthesizer(seed=1).fit(frame).sample(2000, seed=2)
    assert sample.dtypes.equals(frame.dtypes)
    for column in ("value", "count"):
        rate = frame[column].isna().mean()
        assert sample[column].isna().mean() == pytest.approx(rate, abs=0.03), column
    assert sample["blank"].isna().all()
    assert sample["when"].between(frame["when"].min(), frame["when"].max()).all()
    assert (sample["when"].dt.minute == 0).all()
    assert set(sample["grade"].dropna()) <= {"a", "b", "c"}


def test_fit_rejects_unknown_id_column(train: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="Serial"):
        GaussianCopulaSynthesizer(id_columns=["Serial"]).fit(train)
    with pytest.raises(SyntheticDataError, match="not fitted"):
        GaussianCopulaSynthesizer().sample(5)


# ----------------------------------------------------------------------------- fidelity report


def test_report_scores_a_good_synthesizer(report: dict[str, object]) -> None:
    json.dumps(report)
    columns = report["columns"]
    assert isinstance(columns, dict)
    assert set(columns) == set(NUMERIC) | {"Type", TARGET, *MODES}
    assert columns[AIR]["kind"] == "numeric" and 0.96 < columns[AIR]["ks"] <= 1
    assert columns["Type"]["kind"] == "categorical" and columns["Type"]["tvd_complement"] > 0.96
    assert columns[AIR]["missing_rate_real"] == columns[AIR]["missing_rate_synthetic"] == 0
    assert report["skipped_columns"] == {"UDI": "id column", "Product ID": "id column"}
    assert report["column_shape_score"] > 0.97
    assert report["correlation_score"] > 0.97
    assert report["overall"] > 0.97
    assert 0.5 < report["discriminator_auc"] < 0.76
    privacy = report["privacy"]
    assert privacy["exact_copies"] == 0
    assert privacy["dcr_median"] > 0.5 * privacy["dcr_real_median"]


def test_report_gives_train_synthetic_test_real(report: dict[str, object]) -> None:
    tstr = report["tstr"]
    assert tstr["metric"] == "roc_auc"
    assert tstr["test_rows"] == 3000
    assert tstr["train_real_test_real"] > 0.95
    assert 0.7 < tstr["train_synthetic_test_real"] <= tstr["train_real_test_real"]


def test_report_catches_broken_synthesizers(train: pd.DataFrame, report: dict[str, object]) -> None:
    base = train.sample(2000, random_state=5)
    rng = np.random.default_rng(0)
    shuffled = pd.DataFrame({c: rng.permutation(base[c].to_numpy()) for c in base.columns}).astype(
        base.dtypes
    )
    shuffled_report = fidelity_report(train, shuffled, id_columns=IDS)
    # Marginals are perfect, but the strong pairs are gone.
    assert shuffled_report["column_shape_score"] > 0.98
    assert shuffled_report["correlation_score"] < report["correlation_score"] - 0.05
    assert shuffled_report["discriminator_auc"] > report["discriminator_auc"] + 0.15

    constant = pd.DataFrame([train.iloc[0]] * 2000).astype(train.dtypes)
    constant_report = fidelity_report(train, constant, id_columns=IDS)
    assert constant_report["discriminator_auc"] > 0.98
    assert constant_report["column_shape_score"] < 0.8
    assert constant_report["privacy"]["exact_copies"] == 2000
    assert constant_report["privacy"]["dcr_median"] == 0


def test_report_rejects_missing_columns(train: pd.DataFrame, synthetic: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="Torque"):
        fidelity_report(train, synthetic.drop(columns=TORQUE))
    with pytest.raises(ValueError, match="Failure type"):
        fidelity_report(train, synthetic, target="Failure type")


# ----------------------------------------------------------------------------- augmentation


@pytest.mark.parametrize("method", ["copula", "smote"])
def test_augment_rare_tops_up_the_rare_class(real: pd.DataFrame, method: str) -> None:
    augmented = augment_rare(real, TARGET, min_fraction=0.2, method=method, id_columns=IDS)
    positives = int((real[TARGET] == 1).sum())
    added = len(augmented) - len(real)
    assert (positives + added) / len(augmented) >= 0.2
    assert (positives + added - 1) / (len(augmented) - 1) < 0.2  # no more rows than needed
    assert augmented["_synthetic"].dtype == bool
    assert int(augmented["_synthetic"].sum()) == added
    assert not augmented["_synthetic"].iloc[: len(real)].any()
    pd.testing.assert_frame_equal(
        augmented.iloc[: len(real)].drop(columns="_synthetic"), real.reset_index(drop=True)
    )
    new = augmented[augmented["_synthetic"]]
    assert (new[TARGET] == 1).all()
    assert new.drop(columns="_synthetic").dtypes.equals(real.dtypes)
    assert augmented["Product ID"].is_unique and augmented["UDI"].is_unique
    failures = real[real[TARGET] == 1]
    for column in NUMERIC:
        assert new[column].between(failures[column].min(), failures[column].max()).all()
    # New rows look like failures, not like the whole table.
    assert new[TORQUE].mean() > real[TORQUE].mean() + 5
    assert set(new["Type"]) <= {"L", "M", "H"}


def test_augment_rare_handles_several_rare_classes(real: pd.DataFrame) -> None:
    augmented = augment_rare(real, "Type", min_fraction=0.3, method="smote", id_columns=IDS)
    shares = augmented["Type"].value_counts(normalize=True)
    assert shares.min() >= 0.3
    assert set(augmented.loc[augmented["_synthetic"], "Type"]) == {"M", "H"}
    assert shares["L"] == pytest.approx(6000 / len(augmented), abs=0.01)


def test_augment_rare_rejects_bad_input(real: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="Failure type"):
        augment_rare(real, "Failure type")
    for fraction in (0.0, 0.6):
        with pytest.raises(ValueError, match="min_fraction"):
            augment_rare(real, TARGET, min_fraction=fraction)
    single = pd.concat([real[real[TARGET] == 0].head(50), real[real[TARGET] == 1].head(1)])
    with pytest.raises(ValueError, match="at least 2"):
        augment_rare(single, TARGET, method="smote", id_columns=IDS)
    assert len(augment_rare(single, TARGET, method="copula", id_columns=IDS)) > len(single)
