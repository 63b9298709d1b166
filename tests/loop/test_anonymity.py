"""k-anonymity / l-diversity: checked on the real AI4I 2020 data with the independent pycanon."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pycanon import anonymity as canon

from learnloop.core.errors import InvalidInput
from learnloop.loop.privacy import anonymity
from learnloop.loop.privacy.anonymity import Hierarchy, anonymize, auto_hierarchy

AI4I = (
    Path(__file__).resolve().parents[2].parent
    / "shared/datasets/predictive-maintenance/ai4i2020/ai4i2020.csv"
)
QIS = ["Type", "Air temperature [K]", "Rotational speed [rpm]", "Tool wear [min]"]
MODES = ["TWF", "HDF", "PWF", "OSF", "RNF"]


@pytest.fixture(scope="module")
def ai4i() -> pd.DataFrame:
    if not AI4I.exists():
        pytest.skip(f"AI4I 2020 data not found at {AI4I}")
    frame = pd.read_csv(AI4I, encoding="utf-8-sig")
    frame["failure_mode"] = np.select([frame[m] == 1 for m in MODES], MODES, default="none")
    return frame.sample(3000, random_state=7).reset_index(drop=True)


def _checked(result: anonymity.AnonymizationResult) -> pd.DataFrame:
    """pycanon indexes classes positionally, so hand it a fresh RangeIndex."""
    return result.frame.reset_index(drop=True)


@pytest.mark.parametrize("k", [5, 10])
@pytest.mark.parametrize("l", [None, 2])
def test_pycanon_confirms_k_and_l_on_ai4i(ai4i: pd.DataFrame, k: int, l: int | None) -> None:  # noqa: E741
    sensitive = ["failure_mode"] if l else []
    result = anonymize(ai4i, QIS, k=k, l=l, sensitive=sensitive, max_suppression=0.05)
    out = _checked(result)

    assert canon.k_anonymity(out, QIS) >= k
    assert canon.k_anonymity(out, QIS) == result.k
    if l:
        assert canon.l_diversity(out, QIS, sensitive) >= l
        assert canon.l_diversity(out, QIS, sensitive) == result.l
    assert result.suppressed <= 0.05 * len(ai4i)
    assert len(result.frame) == len(ai4i) - result.suppressed
    assert result.report["search"]["method"] == "exhaustive"
    loss = result.report["information_loss"]
    assert 0 < loss["ncp"] <= loss["ncp_with_suppression"] < 1
    print(f"k={k} l={l}: levels={result.levels} suppressed={result.suppressed} loss={loss}")


def test_non_quasi_identifier_columns_are_untouched(ai4i: pd.DataFrame) -> None:
    result = anonymize(ai4i, QIS, k=5)
    others = [c for c in ai4i.columns if c not in QIS]
    pd.testing.assert_frame_equal(result.frame[others], ai4i.loc[result.frame.index, others])
    assert list(result.frame.columns) == list(ai4i.columns)
    assert all(result.frame[q].map(type).eq(str).all() for q in QIS)


def test_suppression_limit_is_respected(ai4i: pd.DataFrame) -> None:
    none_allowed = anonymize(ai4i, QIS, k=10, max_suppression=0.0)
    some_allowed = anonymize(ai4i, QIS, k=10, max_suppression=0.2)

    assert none_allowed.suppressed == 0
    assert canon.k_anonymity(_checked(none_allowed), QIS) >= 10
    assert some_allowed.suppressed <= 0.2 * len(ai4i)
    # Suppressing more lets the QIs stay finer.
    finer = some_allowed.report["information_loss"]["ncp"]
    assert finer < none_allowed.report["information_loss"]["ncp"]


def test_is_deterministic(ai4i: pd.DataFrame) -> None:
    first = anonymize(ai4i, QIS, k=5, l=2, sensitive=["failure_mode"])
    second = anonymize(ai4i, QIS, k=5, l=2, sensitive=["failure_mode"])
    pd.testing.assert_frame_equal(first.frame, second.frame)
    assert first.report == second.report
    json.dumps(first.report)  # JSON-able


def test_greedy_search_also_meets_the_target(
    ai4i: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(anonymity.search, "_EXHAUSTIVE_WORK", 0)
    result = anonymize(ai4i, QIS, k=10, l=2, sensitive=["failure_mode"])
    out = _checked(result)

    assert result.report["search"]["method"] == "greedy"
    assert canon.k_anonymity(out, QIS) >= 10
    assert canon.l_diversity(out, QIS, ["failure_mode"]) >= 2
    assert result.suppressed <= 0.05 * len(ai4i)


def test_auto_hierarchies_for_ai4i_columns(ai4i: pd.DataFrame) -> None:
    assert auto_hierarchy(ai4i["Type"]) == Hierarchy("categorical")
    assert auto_hierarchy(ai4i["Air temperature [K]"]) == Hierarchy("numeric", base_width=0.5)
    assert auto_hierarchy(ai4i["Rotational speed [rpm]"]) == Hierarchy("numeric", base_width=100)
    assert auto_hierarchy(ai4i["Tool wear [min]"]).base_width == 10
    assert auto_hierarchy(pd.Series(["02139", "10001", None])) == Hierarchy("prefix")
    assert auto_hierarchy(pd.Series(pd.to_datetime(["2024-01-02"]))) == Hierarchy("date")
    assert auto_hierarchy(pd.Series([True, False])) == Hierarchy("categorical")


def test_small_table_with_known_optimum() -> None:
    frame = pd.DataFrame(
        {
            "age": [21, 23, 27, 29, 31, 33, 36, 38],
            "zip": ["13053", "13068", "13068", "13053", "14850", "14853", "14850", "14853"],
            "disease": ["flu", "cold", "flu", "cold", "flu", "cold", "flu", "cold"],
        }
    )
    qis = {"age": Hierarchy("numeric", base_width=5), "zip": Hierarchy("prefix")}
    result = anonymize(frame, qis, k=2, max_suppression=0.0)

    # Feasible nodes with the least loss: (age width 10, exact zip) costs (10/17 + 0) / 2 = 0.294;
    # the runner-up (age width 5, zip "130**") costs (5/17 + 1/3) / 2 = 0.314.
    assert result.levels == {"age": 2, "zip": 0}
    assert result.frame["age"].tolist() == ["[20, 30)"] * 4 + ["[30, 40)"] * 4
    assert result.frame["zip"].tolist() == frame["zip"].tolist()
    assert (result.k, result.suppressed, result.report["classes"]) == (2, 0, 4)
    assert result.report["information_loss"]["ncp"] == pytest.approx((10 / 17) / 2)
    assert result.report["quasi_identifiers"]["age"]["description"] == "intervals of width 10"


def test_hierarchy_kinds_render_as_documented() -> None:
    frame = pd.DataFrame(
        {
            "day": pd.to_datetime(["2024-03-05", "2024-03-20", "2024-04-01", "2024-04-30"]),
            "zip": ["12345", "12346", "12399", "12398"],
            "city": ["Paris", "Lyon", "Berlin", "Munich"],
        }
    )
    countries = {"Paris": "France", "Lyon": "France", "Berlin": "Germany", "Munich": "Germany"}
    for column, hierarchy, expected in [
        ("day", Hierarchy("date"), ["2024-03", "2024-03", "2024-04", "2024-04"]),
        ("zip", Hierarchy("prefix"), ["1234*", "1234*", "1239*", "1239*"]),
        ("city", Hierarchy("categorical", groups=(countries,)), ["France"] * 2 + ["Germany"] * 2),
    ]:
        result = anonymize(frame, {column: hierarchy}, k=2, max_suppression=0.0)
        assert result.frame[column].tolist() == expected, column
        assert result.levels == {column: 1}


def test_missing_values_are_a_value_of_their_own() -> None:
    frame = pd.DataFrame({"age": [21.0, 22.0, np.nan, np.nan, 35.0, 36.0], "y": range(6)})
    result = anonymize(frame, {"age": Hierarchy("numeric", base_width=10)}, k=2)
    assert result.frame["age"].tolist() == ["[20, 30)"] * 2 + ["NaN"] * 2 + ["[30, 40)"] * 2
    assert result.k == 2

    lonely = pd.DataFrame({"age": [21.0, 22.0, 23.0, np.nan], "y": range(4)})
    top = anonymize(lonely, {"age": Hierarchy("numeric", base_width=10)}, k=2, max_suppression=0)
    assert top.frame["age"].tolist() == ["*"] * 4


def test_errors_name_the_column_or_argument(ai4i: pd.DataFrame) -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({"quasi_identifiers": ["Type", "Nope"], "k": 5}, "'Nope'"),
        ({"quasi_identifiers": QIS, "k": 1}, "k must be an integer >= 2"),
        ({"quasi_identifiers": QIS, "k": 5, "l": 2}, "needs at least one sensitive column"),
        ({"quasi_identifiers": QIS, "k": 5, "l": 2, "sensitive": ["Gone"]}, "'Gone'"),
        ({"quasi_identifiers": QIS, "k": 5, "l": 2, "sensitive": ["Type"]}, "also a quasi"),
        ({"quasi_identifiers": QIS, "k": 5, "max_suppression": 1.5}, "max_suppression"),
        ({"quasi_identifiers": "Type", "k": 5}, "not a string"),
    ]
    for kwargs, fragment in cases:
        with pytest.raises(ValueError, match=fragment):
            anonymize(ai4i, **kwargs)  # type: ignore[arg-type]


def test_unreachable_targets_raise() -> None:
    tiny = pd.DataFrame({"age": [30, 40, 50], "mode": ["a", "a", "b"]})
    with pytest.raises(ValueError, match="fewer than k=5") as caught:
        anonymize(tiny, ["age"], k=5)
    assert isinstance(caught.value, InvalidInput)
    with pytest.raises(ValueError, match="'mode' has only 2 distinct values"):
        anonymize(tiny, ["age"], k=2, l=3, sensitive=["mode"])
    with pytest.raises(ValueError, match="'city'.*'Rome' has no group"):
        anonymize(
            pd.DataFrame({"city": ["Paris", "Rome"]}),
            {"city": Hierarchy("categorical", groups=({"Paris": "France"},))},
            k=2,
        )
    with pytest.raises(ValueError, match="base_width"):
        Hierarchy("numeric")
