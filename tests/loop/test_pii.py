"""PII detection (``detect``) and field scrubbing (``PiiScrubber``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.privacy.pii_eval import evaluate, load
from learnloop.core.errors import InvalidInput
from learnloop.loop.privacy.pii import (
    MASK,
    PiiScrubber,
    PiiSpan,
    detect,
    iban_valid,
    is_card_number,
    luhn_valid,
)

DATASET = Path(__file__).resolve().parents[2] / "benchmarks/privacy/pii_labelled.jsonl"
SECRET = b"test-secret"


def found(text: str, kind: str | None = None) -> list[str]:
    return [s.text for s in detect(text) if kind is None or s.kind == kind]


# --------------------------------------------------------------------------------- detect


def test_spans_are_exact_sorted_and_non_overlapping() -> None:
    text = "Mail a.b@example.com, card 4111 1111 1111 1111, call +44 20 7946 0958, ip 10.0.0.1"
    spans = detect(text)
    assert [s.kind for s in spans] == ["email", "card", "phone", "ip"]
    for s in spans:
        assert text[s.start : s.end] == s.text
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:], strict=False))
    assert spans[0] == PiiSpan("email", 5, 20, "a.b@example.com")


def test_email_in_angle_brackets_without_trailing_dot() -> None:
    assert found("Write to <ops@learnloop.dev>.", "email") == ["ops@learnloop.dev"]
    assert found("mail me at jo.smith+x@mail.co.uk.", "email") == ["jo.smith+x@mail.co.uk"]
    assert found("not an address: user@localhost or @handle", "email") == []


@pytest.mark.parametrize(
    "pan",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "5500-0055-5555-5559",
        "3782 822463 10005",
        "6011111111111117",
        "2223003122003222",
        "3056 9309 0259 04",
    ],
)
def test_valid_cards_are_found_in_any_grouping(pan: str) -> None:
    assert found(f"charged on {pan} twice", "card") == [pan]


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111112",  # Luhn fails
        "4111 1111 1111 1113",
        "1234567812345670",  # Luhn passes, no issuer starts with 1
        "9999888877776668",  # Luhn passes, no issuer starts with 9
        "41111111111",  # too short
    ],
)
def test_numbers_that_are_not_cards(number: str) -> None:
    assert found(f"order {number} shipped", "card") == []
    assert found(f"order {number} shipped", "phone") == []


def test_luhn_and_issuer_checks() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert is_card_number("378282246310005")
    assert not is_card_number("378282246310006")
    assert luhn_valid("3782822463100003")
    assert not is_card_number("3782822463100003")  # an Amex prefix needs 15 digits


@pytest.mark.parametrize(
    "iban",
    [
        "DE89370400440532013000",
        "DE89 3704 0044 0532 0130 00",
        "GB82WEST12345698765432",
        "FR14 2004 1010 0505 0001 3M02 606",
        "NL91ABNA0417164300",
    ],
)
def test_valid_ibans_are_found(iban: str) -> None:
    assert found(f"refund to {iban} please", "iban") == [iban]


@pytest.mark.parametrize(
    "iban",
    [
        "DE89370400440532013001",  # check digits do not match
        "GB82 WEST 1234 5698 7654 33",
        "DE8937040044053201300",  # one character short for DE
        "XX12345678901234567890",  # no such country
    ],
)
def test_invalid_ibans_are_not_flagged(iban: str) -> None:
    assert found(f"refund to {iban} please") == []
    assert not iban_valid(iban.replace(" ", ""))


def test_ipv4_and_ipv6_but_not_versions() -> None:
    text = "from 192.168.1.20 and 2001:db8::8a2e:370:7334 and ::1 then fe80::1ff:fe23:4567:890a."
    assert found(text, "ip") == [
        "192.168.1.20",
        "2001:db8::8a2e:370:7334",
        "::1",
        "fe80::1ff:fe23:4567:890a",
    ]
    assert found("tag 1.2.3.4.5 and version 3.14.15.92 and v10.1.2.3", "ip") == []
    assert found("octets 256.1.1.1 and time 12:30:45 and mac 00:1A:2B:3C:4D:5E") == []


def test_phones_across_regions_but_not_references_or_dates() -> None:
    text = "US (415) 555-2671, UK +44 20 7946 0958, DE +49 30 901820, FR 06 12 34 56 78."
    assert found(text, "phone") == [
        "(415) 555-2671",
        "+44 20 7946 0958",
        "+49 30 901820",
        "06 12 34 56 78",
    ]
    assert found("order #2025550143 and ticket 4155552671", "phone") == []
    assert found("the run at 2024.01.15 10:00 failed", "phone") == []


def test_card_is_never_reported_as_phone() -> None:
    assert detect("pay with 4012888888881881", kinds=["phone"]) == []
    assert [s.kind for s in detect("pay with 4012888888881881")] == ["card"]


def test_person_cues_and_gazetteer() -> None:
    text = "Hi, my name is Tomasz Wróblewski. Dr. Okafor said to ask for Sarah."
    assert found(text, "person") == ["Tomasz Wróblewski", "Okafor", "Sarah"]
    assert found("Great app!\nRegards,\nHannah Becker", "person") == ["Hannah Becker"]
    assert found("Emma Watson from accounting called.", "person") == ["Emma Watson"]


def test_capitalised_non_names_are_not_persons() -> None:
    text = (
        "Monday in Paris was fine. Will this work? Mark it as done. Support Team was quick. "
        "Thanks, Great job. I'm Very Happy. Windows Update broke Chrome."
    )
    assert found(text, "person") == []


def test_kinds_filter_and_unknown_kind() -> None:
    text = "a@b.co from 10.0.0.1"
    assert [s.kind for s in detect(text, kinds={"ip"})] == ["ip"]
    with pytest.raises(InvalidInput):
        detect(text, kinds=["ssn"])


# ------------------------------------------------------------------------------- scrubber


def test_each_action() -> None:
    scrubber = PiiScrubber(
        {"a": "drop", "b": "mask", "c": "hash", "d": "redact", "e": "keep"}, secret=SECRET
    )
    value = "mail x.y@example.com or call +44 20 7946 0958"
    out, _ = scrubber.scrub({"a": value, "b": value, "c": value, "d": value, "e": value})
    assert "a" not in out
    assert out["b"] == MASK
    assert out["c"] == scrubber.hash_value(value)
    assert out["c"].startswith("h:") and len(out["c"]) == 34
    assert out["d"] == "mail [EMAIL] or call [PHONE]"
    assert out["e"] == value


def test_redact_placeholders_for_every_kind() -> None:
    scrubber = PiiScrubber(secret=SECRET)
    text = (
        "I'm Priya Raman, a@b.io, +1 202 555 0143, 4242-4242-4242-4242, "
        "GB82 WEST 1234 5698 7654 32, 203.0.113.9"
    )
    assert scrubber.scrub_text(text) == ("I'm [PERSON], [EMAIL], [PHONE], [CARD], [IBAN], [IP]")


def test_hash_is_stable_and_depends_on_secret() -> None:
    one = PiiScrubber(secret=b"one")
    assert one.hash_value("alice@example.com") == PiiScrubber(secret=b"one").hash_value(
        "alice@example.com"
    )
    assert one.hash_value("alice@example.com") != PiiScrubber(secret=b"two").hash_value(
        "alice@example.com"
    )
    assert one.hash_value("alice@example.com") != one.hash_value("bob@example.com")
    assert one.hash_value(42) == one.hash_value("42")  # str(value) is what is hashed


def test_wildcards_nested_paths_and_specific_rule_wins() -> None:
    scrubber = PiiScrubber(
        {"attributes.*": "mask", "attributes.email": "hash", "inputs.customer.name": "drop"},
        secret=SECRET,
    )
    record = {
        "attributes": {"email": "a@b.co", "city": "Lyon", "age": 41},
        "inputs": {"customer": {"name": "Jane Roe", "tier": "gold"}, "amount": 3},
        "missing": None,
    }
    out, events = scrubber.scrub(record)
    assert out["attributes"] == {
        "email": scrubber.hash_value("a@b.co"),
        "city": MASK,
        "age": MASK,
    }
    assert out["inputs"] == {"customer": {"tier": "gold"}, "amount": 3}
    assert [(e.path, e.action) for e in events] == [
        ("attributes.age", "mask"),
        ("attributes.city", "mask"),
        ("attributes.email", "hash"),
        ("inputs.customer.name", "drop"),
    ]
    assert record["attributes"]["email"] == "a@b.co"  # the input is not modified


def test_wildcard_over_lists_and_drop_keeps_indices_right() -> None:
    scrubber = PiiScrubber(
        {"items.*.note": "redact", "tags.1": "drop", "tags.3": "drop"}, secret=SECRET
    )
    record = {
        "items": [{"note": "call +44 20 7946 0958"}, {"note": 7}, {"other": "x"}],
        "tags": ["a", "b", "c", "d", "e"],
    }
    out, events = scrubber.scrub(record)
    assert out["items"] == [{"note": "call [PHONE]"}, {"note": 7}, {"other": "x"}]
    assert out["tags"] == ["a", "c", "e"]
    assert [e.path for e in events] == ["items.0.note", "tags.1", "tags.3"]


def test_text_fields_get_the_default_action_unless_a_rule_says_otherwise() -> None:
    record = {"text": "from a@b.co", "body": {"text": "from a@b.co"}, "n": 1}
    default = PiiScrubber(secret=SECRET, text_fields=("text", "body.text", "n", "gone"))
    out, _ = default.scrub(record)
    assert out == {"text": "from [EMAIL]", "body": {"text": "from [EMAIL]"}, "n": 1}
    masked = PiiScrubber(secret=SECRET, default_text_action="mask")
    assert masked.scrub(record)[0]["text"] == MASK
    overridden = PiiScrubber({"text": "keep"}, secret=SECRET)
    assert overridden.scrub(record)[0]["text"] == "from a@b.co"


def test_events_count_kinds_and_never_carry_the_data() -> None:
    secret_bits = ["x.y@example.com", "4111 1111 1111 1111", "Tomasz", "7946"]
    scrubber = PiiScrubber({"attributes.email": "hash", "attributes.phone": "mask"}, secret=SECRET)
    record = {
        "text": "I'm Tomasz, x.y@example.com, card 4111 1111 1111 1111, also x.y@example.com",
        "attributes": {"email": "x.y@example.com", "phone": "+44 20 7946 0958"},
    }
    out, events = scrubber.scrub(record)
    text_event = next(e for e in events if e.path == "text")
    assert text_event.action == "redact"
    assert text_event.kinds == {"card": 1, "email": 2, "person": 1}
    dumped = repr(events) + json.dumps([e.__dict__ for e in events])
    for bit in secret_bits:
        assert bit not in dumped
        assert bit not in json.dumps(out)


def test_redact_leaves_non_strings_and_emits_nothing_when_clean() -> None:
    scrubber = PiiScrubber({"meta": "redact", "text": "redact"}, secret=SECRET)
    out, events = scrubber.scrub({"meta": {"x": 1}, "text": "all good, thanks"})
    assert out == {"meta": {"x": 1}, "text": "all good, thanks"}
    assert events == []


def test_invalid_configuration_is_rejected() -> None:
    with pytest.raises(InvalidInput):
        PiiScrubber(secret=b"")
    with pytest.raises(InvalidInput):
        PiiScrubber({"text": "shred"}, secret=SECRET)  # type: ignore[dict-item]


# ----------------------------------------------------------------------------- benchmark

# measured 1.0 for every structured kind (IP precision 0.94); floors leave a little room
FLOORS = {
    "email": (0.95, 0.95),
    "phone": (0.9, 0.9),
    "card": (0.95, 0.9),
    "iban": (0.95, 0.9),
    "ip": (0.9, 0.95),
}


def test_labelled_set_is_well_formed() -> None:
    examples = load(DATASET)
    assert len(examples) >= 250
    assert sum(1 for _, spans in examples if not spans) >= 50  # plenty of negatives


def test_precision_and_recall_floors_on_the_labelled_set() -> None:
    report = evaluate(DATASET)
    for kind, (precision, recall) in FLOORS.items():
        measured = report["kinds"][kind]
        assert measured["support"] >= 20, kind
        assert measured["precision"] >= precision, (kind, measured)
        assert measured["recall"] >= recall, (kind, measured)
    assert report["structured"]["precision"] >= 0.95
    assert report["structured"]["recall"] >= 0.95
    assert report["kinds"]["person"]["precision"] >= 0.9
    assert report["kinds"]["person"]["recall"] >= 0.85
