"""Detect and scrub personal data (PII) in records at ingestion.

:func:`detect` finds spans of six kinds in free text:

* ``email`` — an RFC-ish address (no trailing dot), also inside ``<…>``.
* ``phone`` — numbers ``phonenumbers`` accepts as *valid* when read as US, GB, DE or FR numbers
  (any ``+``-prefixed international number is read by its own country). A match is dropped when
  it is a date, sits inside a longer run of digits (a failed card number, an account number) or
  follows a reference word such as "order #", "ticket" or "invoice".
* ``card`` — 13–19 digits, optionally grouped by single spaces or dashes, that pass the Luhn
  check *and* start with a known issuer prefix of a matching length (Visa, Mastercard, Amex,
  Discover, Diners, JCB, UnionPay, Maestro).
* ``iban`` — country code, two check digits and the BBAN, compact or with single spaces, whose
  length matches the country's IBAN length and whose mod-97 remainder is 1.
* ``ip`` — IPv4 and IPv6 addresses (compressed forms included) that :mod:`ipaddress` accepts;
  dotted quads inside a longer dotted number (``1.2.3.4.5``) or after "version"/"build"/"v" are
  version strings, not addresses.
* ``person`` — names found by cues rather than by capitalisation alone: an honorific ("Dr.
  Okafor"), a cue phrase ("my name is", "ask for", "I'm", a "Regards," sign-off, "Hi …,"), or a
  first name from the bundled gazetteer (``names.txt``) optionally followed by surnames. A
  capitalised word at the start of a sentence is never a name on its own.

Overlapping candidates are resolved by specificity — email, then IBAN and card, then IP, phone
and person — and longer spans win within a kind; the result never overlaps and is sorted by
start.

:class:`PiiScrubber` applies a per-field action to a JSON-like record: ``drop`` removes the
field, ``mask`` replaces the value with ``[REDACTED]``, ``hash`` replaces it with a keyed
HMAC-SHA256 (``h:`` + 32 hex digits, stable for one secret so joins and group-bys still work),
``redact`` replaces each detected span in a string with ``[EMAIL]``, ``[PHONE]``… and ``keep``
leaves it. Rules address fields by dotted path; ``*`` matches any one key (or list index). When
several rules reach the same field the one with fewer wildcards wins, then the one listed first.
Each change is reported as a :class:`ScrubEvent` that carries the path, the action and how many
spans of each kind were found — never the personal data itself.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal, get_args

import phonenumbers

from learnloop.core.errors import InvalidInput, Issue

PiiKind = Literal["email", "phone", "card", "iban", "ip", "person"]
FieldAction = Literal["drop", "mask", "hash", "redact", "keep"]

PII_KINDS: tuple[str, ...] = get_args(PiiKind)
FIELD_ACTIONS: tuple[str, ...] = get_args(FieldAction)
MASK = "[REDACTED]"
PLACEHOLDERS: dict[str, str] = {kind: f"[{kind.upper()}]" for kind in PII_KINDS}

# Higher wins when two candidate spans overlap.
_PRIORITY = {"email": 5, "iban": 4, "card": 4, "ip": 3, "phone": 2, "person": 1}


@dataclass(frozen=True)
class PiiSpan:
    """One detected piece of personal data: ``text[start:end] == self.text``."""

    kind: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class ScrubEvent:
    """What the scrubber did to one field; ``kinds`` counts spans found (redact only)."""

    path: str
    action: str
    kinds: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------------- email

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![\w-])"
)


def _emails(text: str) -> Iterator[tuple[int, int]]:
    for m in _EMAIL.finditer(text):
        yield m.start(), m.end()


# ----------------------------------------------------------------------------------- card

_DIGIT_RUN = re.compile(r"(?<![\w.])(?>\d+(?:[ -]\d+)*)(?!\w|\.\d)")

# (prefix low, prefix high, allowed lengths); prefixes compared on the same number of digits.
_IIN_RANGES: tuple[tuple[str, str, frozenset[int]], ...] = (
    ("4", "4", frozenset({13, 16, 19})),  # Visa
    ("51", "55", frozenset({16})),  # Mastercard
    ("2221", "2720", frozenset({16})),  # Mastercard 2-series
    ("34", "34", frozenset({15})),  # American Express
    ("37", "37", frozenset({15})),
    ("6011", "6011", frozenset(range(16, 20))),  # Discover
    ("644", "649", frozenset(range(16, 20))),
    ("65", "65", frozenset(range(16, 20))),
    ("300", "305", frozenset(range(14, 20))),  # Diners Club
    ("36", "36", frozenset(range(14, 20))),
    ("38", "39", frozenset(range(14, 20))),
    ("3528", "3589", frozenset(range(16, 20))),  # JCB
    ("62", "62", frozenset(range(16, 20))),  # UnionPay
    ("50", "50", frozenset(range(13, 20))),  # Maestro
    ("56", "58", frozenset(range(13, 20))),
    ("63", "63", frozenset(range(13, 20))),
    ("67", "67", frozenset(range(13, 20))),
)


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn (mod-10) check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _known_issuer(digits: str) -> bool:
    n = len(digits)
    return any(
        low <= digits[: len(low)] <= high and n in lengths for low, high, lengths in _IIN_RANGES
    )


def is_card_number(digits: str) -> bool:
    """True for 13–19 digits with a known issuer prefix and a valid Luhn check digit."""
    return (
        digits.isascii()
        and digits.isdigit()
        and 13 <= len(digits) <= 19
        and _known_issuer(digits)
        and luhn_valid(digits)
    )


def _plausible_grouping(sizes: list[int]) -> bool:
    """One block, blocks of 3+ digits (4-6-5, 4-4-4-4) or blocks of 4 with a short tail."""
    if len(sizes) == 1 or min(sizes) >= 3:
        return True
    return all(n == 4 for n in sizes[:-1])


def _cards(text: str) -> Iterator[tuple[int, int]]:
    for run in _DIGIT_RUN.finditer(text):
        chunk = run.group()
        groups = [(g.start(), g.end()) for g in re.finditer(r"\d+", chunk)]
        i = 0
        while i < len(groups):
            # the groups i..j-1 that hold at most 19 digits, longest candidate first
            j, size = i, 0
            while j < len(groups) and size + groups[j][1] - groups[j][0] <= 19:
                size += groups[j][1] - groups[j][0]
                j += 1
            for k in range(j, i, -1):
                parts = groups[i:k]
                if not _plausible_grouping([e - s for s, e in parts]):
                    continue
                if is_card_number("".join(chunk[s:e] for s, e in parts)):
                    yield run.start() + parts[0][0], run.start() + parts[-1][1]
                    i = k
                    break
            else:
                i += 1


# ----------------------------------------------------------------------------------- iban

IBAN_LENGTHS: dict[str, int] = {
    # SEPA
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28,
    "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31,
    "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "VA": 22,
    # elsewhere
    "AE": 23, "AL": 28, "AZ": 28, "BA": 20, "BH": 22, "BR": 29, "BY": 28, "CR": 22, "DO": 28,
    "EG": 29, "FO": 18, "GE": 22, "GL": 18, "GT": 28, "IL": 23, "IQ": 23, "JO": 30, "KW": 30,
    "KZ": 20, "LB": 28, "LC": 32, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MU": 30, "PK": 24,
    "PS": 29, "QA": 29, "RS": 22, "SA": 24, "SC": 31, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip

_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2}|[a-z]{2})(\d{2})")


def iban_valid(compact: str) -> bool:
    """True when an IBAN without spaces has its country's length and mod-97 remainder 1."""
    compact = compact.upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _ibans(text: str) -> Iterator[tuple[int, int]]:
    for m in _IBAN_START.finditer(text):
        length = IBAN_LENGTHS.get(m.group(1).upper())
        if length is None:
            continue
        chars, pos = [m.group(1), m.group(2)], m.end()
        count = 4
        while count < length and pos < len(text):
            ch = text[pos]
            if ch == " " and pos + 1 < len(text) and text[pos + 1].isalnum():
                pos += 1
                continue
            if not (ch.isascii() and ch.isalnum()):
                break
            chars.append(ch)
            count += 1
            pos += 1
        if count != length or (pos < len(text) and text[pos].isalnum()):
            continue
        if iban_valid("".join(chars)):
            yield m.start(), pos


# ------------------------------------------------------------------------------------- ip

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4})(?![\w:]|\.\d)"
)
_VERSION_CUE = re.compile(
    r"(?:\b(?:version|ver|release|build|firmware|fw|rev|revision|upgraded? to|updated? to)"
    r"\.?\s*[:#]?\s*|\bv\.?\s*)$",
    re.IGNORECASE,
)


def _ips(text: str) -> Iterator[tuple[int, int]]:
    for m in _IPV4.finditer(text):
        if _VERSION_CUE.search(text[max(0, m.start() - 24) : m.start()]):
            continue
        try:
            ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        yield m.start(), m.end()
    for m in _IPV6.finditer(text):
        candidate = m.group()
        if not any(c.isdigit() for c in candidate) or candidate.count(":") < 2:
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        yield m.start(), m.end()


# ---------------------------------------------------------------------------------- phone

_PHONE_REGIONS = ("US", "GB", "DE", "FR")
_DATE = re.compile(
    r"(?:(?:19|20)\d{2}([-./])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])([-./])(?:0?[1-9]|[12]\d|3[01])\2(?:19|20)\d{2})(?!\d)"
)
_REFERENCE_CUE = re.compile(
    r"(?:\b(?:order|invoice|ticket|ref|reference|tracking|case|serial|sku|po|transaction|txn"
    r"|acct|account|id|iban|card)\b\.?\s*(?:no\.?|num(?:ber)?\.?|id)?\s*[:#]?\s*|#\s*)$",
    re.IGNORECASE,
)


def _in_digit_run(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 2) : start]
    after = text[end : end + 2]
    return bool(
        (before and before[-1].isalnum())
        or (len(before) == 2 and before[0].isdigit() and before[1] in " -./")
        or (after and after[0].isalnum())
        or (len(after) == 2 and after[1].isdigit() and after[0] in " -/")
    )


def _phones(text: str) -> Iterator[tuple[int, int]]:
    if sum(c.isdigit() for c in text) < 6:
        return
    found: set[tuple[int, int]] = set()
    for region in _PHONE_REGIONS:
        matcher = phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.VALID
        )
        for m in matcher:
            found.add((m.start, m.end))
    for start, end in found:
        if text[start] == "(" and ")" not in text[start:end]:
            start += 1  # an opening parenthesis around the whole number is not part of it
        if _DATE.match(text, start) or _in_digit_run(text, start, end):
            continue
        if _REFERENCE_CUE.search(text[max(0, start - 24) : start]):
            continue
        yield start, end


# --------------------------------------------------------------------------------- person

_UP = "A-ZÀ-ÖØ-ÞĀĆČĎĐĘĚŁŃŇŐŘŚŠŤŮŰŹŻŽ"
_LOW = "a-zß-öø-ÿāăąćčďđēęěğıłńňőřśşšťūůűźżž"
_TOKEN = re.compile(rf"(?:O['’]|Mc|Mac|D['’])?[{_UP}][{_LOW}]+(?:-[{_UP}][{_LOW}]+)?(?![\w@])")
_PARTICLE = re.compile(r"(?:van|von|de|da|del|della|der|den|di|du|la|le|dos|das|bin|ibn|al)[ ]+")
_HONORIFIC = re.compile(
    r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Lady|Lord|Herr|Frau|Mme|Mlle|Sr|Sra|Srta)\.?[ ]+"
)
_STRONG_CUE = re.compile(
    r"(?:\b(?:my name is|my name's|name:|signed|regards|sincerely|dear)[,:]?[ \t]*"
    r"|\b(?:thanks|thank you|cheers|best|best wishes|yours|warmly|kind regards)[,.!]?[ \t]*\n"
    r"[ \t]*|^--+[ \t]*|\n--+[ \t]*)",
    re.IGNORECASE,
)
_WEAK_CUE = re.compile(
    r"\b(?:I'm|I am|this is|contact|ask for|speak to|speak with|spoke to|spoke with"
    r"|talked to|talked with|thanks to|thank you|agent|named|called|hi|hello|hey|cc"
    r"|reported by|submitted by|requested by|assigned to)[,:]?[ ]+",
    re.IGNORECASE,
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# first names that are also common words or places: a name only when a surname follows
_AMBIGUOUS_FIRST = _words(
    "Will Mark Bill Frank Grace Hope Joy Ruby Daisy Holly Poppy Amber Jasmine Lily Rose Sakura "
    "Jordan Georgia Austin Victoria Florence Jean Can Ren Li Wei Ming Hui Xin Yan Jun Lei Hao "
    "Yang Mei Ling Zhang Chen Dong Hyun Jian Anh Duc Minh Ama Sem Sana Eugene Milan Santiago "
    "Christian Louis Roger Saga Ariel Mae Angelo Alba Jack Leo Oscar Hugo Amit Marie Sofia "
    "Maria Dewi Budi Putri Kiran Noa Omer Nguyen Andrea Paris Max Ted Sue Nico"
)
# capitalised words that never start or continue a name
_NOT_NAMES = _words(
    """The This That These Those There Then Thanks Thank Hi Hello Hey Dear Regards Best Kind Warm
    Sincerely Yours Cheers Support Team Customer Customers Service Services Sales Manager Admin
    Please Your Our My His Her Their And Or But Not Sir Madam All Everyone Everybody Monday Tuesday
    Wednesday Thursday Friday Saturday Sunday January February March April May June July August
    September October November December Paris London Berlin Madrid Rome Munich Lyon App Apps
    Android Windows Linux Mac Chrome Firefox Safari Excel Word Google Microsoft Amazon Apple
    Premium Pro Plus Dashboard Settings Account Billing Order Invoice Ticket Error Update Version
    Also Just Very Really Happy Sorry Unfortunately Again Today Tomorrow Yesterday Here Now Still
    However Overall Great Good Bad Excellent Awful Terrible Quick Fast Slow Love Hate Need Help
    Issue Problem Bug Feature Request Refund Delivery Shipping Package Product Item Staff Agent
    Operator Technician Engineer Person Someone Nobody Who What When Where Why How Yes No Okay Sent
    From Re Fwd Subject Note Tel Phone Email Mobile Fax Card Visa Mastercard Amex Bank Corp Inc Ltd
    Gmbh Llc Group Company Department Office Desk Helpdesk Center Centre Store Shop Online Portal
    Website Web Mobile Desktop Cloud Server Login Logout Password Checkout Cart Payment Payments
    Subscription Plan Trial Free Basic Enterprise Business Personal Home Work Team Manager Director
    Lead Head Chief Officer Representative Rep Assistant Bot Chatbot Live Chat Call Calls Hotline
    Street Road Avenue Lane Station Airport Hospital University School College Mr Mrs Ms Dr Prof
    Is Was Are Were Be Been Have Has Had Do Does Did Can Could Would Should Will Shall Might Must
    In On At By For With Without About After Before Since Until Into Onto Over Under Between
    It Its If So As An A Of To Up Out Off Again Any Some Each Every Both Either Neither Same Other
    New Old Next Last First Second Third Final Still Even Ever Never Always Often Sometimes Today
    Great Nice Fine Awesome Amazing Brilliant Perfect Superb Outstanding Lovely Wonderful Cool"""
)


@cache
def first_names() -> frozenset[str]:
    """The bundled gazetteer of common first names (``names.txt``)."""
    source = resources.files("learnloop.loop.privacy").joinpath("names.txt")
    lines = source.read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip() for w in lines if w.strip() and not w.startswith("#"))


def _name_at(text: str, pos: int, limit: int = 4) -> tuple[int, list[str]]:
    """Capitalised name tokens starting exactly at ``pos`` (particles allowed in between)."""
    tokens: list[str] = []
    end = pos
    while len(tokens) < limit:
        at = end
        if tokens:
            if text[at : at + 1] != " ":
                break
            at += 1
            particle = _PARTICLE.match(text, at)
            if particle:
                at = particle.end()
        m = _TOKEN.match(text, at)
        if not m or m.group() in _NOT_NAMES:
            break
        tokens.append(m.group())
        end = m.end()
    return end, tokens


def _persons(text: str) -> Iterator[tuple[int, int]]:
    names = first_names()
    for m in _HONORIFIC.finditer(text):
        end, tokens = _name_at(text, m.end(), limit=3)
        if tokens:
            yield m.end(), end
    for m in _STRONG_CUE.finditer(text):
        end, tokens = _name_at(text, m.end(), limit=3)
        if tokens:
            yield m.end(), end
    for m in _WEAK_CUE.finditer(text):
        end, tokens = _name_at(text, m.end(), limit=3)
        if tokens and (tokens[0] in names or len(tokens) >= 2):
            yield m.end(), end
    for m in _TOKEN.finditer(text):
        first = m.group()
        if first not in names and first.split("-")[0] not in names:
            continue
        if m.start() and text[m.start() - 1].isalnum():
            continue
        end, tokens = _name_at(text, m.start(), limit=3)
        if len(tokens) >= 2 or (tokens and tokens[0] not in _AMBIGUOUS_FIRST):
            yield m.start(), end


# -------------------------------------------------------------------------------- detect

_DETECTORS: dict[str, Callable[[str], Iterator[tuple[int, int]]]] = {
    "email": _emails,
    "iban": _ibans,
    "card": _cards,
    "ip": _ips,
    "phone": _phones,
    "person": _persons,
}


def detect(text: str, kinds: Collection[str] | None = None) -> list[PiiSpan]:
    """Non-overlapping spans sorted by start.

    ``kinds`` restricts the result (default: all of :data:`PII_KINDS`). Email, IBAN, card and IP
    are always looked for, so a card number is never reported as a phone number just because
    only phones were asked for. Raises :class:`InvalidInput` for an unknown kind.
    """
    wanted = set(PII_KINDS if kinds is None else kinds)
    unknown = wanted - set(PII_KINDS)
    if unknown:
        raise InvalidInput("unknown PII kind", [Issue("kinds", k) for k in sorted(unknown)])
    run = {"email", "iban", "card", "ip"} | wanted
    candidates = [
        (kind, start, end)
        for kind, find in _DETECTORS.items()
        if kind in run
        for start, end in find(text)
    ]
    candidates.sort(key=lambda c: (-_PRIORITY[c[0]], c[1] - c[2], c[1]))
    taken: list[tuple[str, int, int]] = []
    for kind, start, end in candidates:
        if all(end <= s or start >= e for _, s, e in taken):
            taken.append((kind, start, end))
    taken.sort(key=lambda c: c[1])
    return [PiiSpan(k, s, e, text[s:e]) for k, s, e in taken if k in wanted]


# -------------------------------------------------------------------------------- scrubber


def _segments(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def _walk(
    node: Any, segments: tuple[str, ...], prefix: tuple[str, ...]
) -> Iterator[tuple[str, ...]]:
    """Concrete paths (existing fields) that a dotted pattern with ``*`` reaches."""
    if not segments:
        yield prefix
        return
    head, rest = segments[0], segments[1:]
    if isinstance(node, Mapping):
        keys = (
            [k for k in node if isinstance(k, str)]
            if head == "*"
            else ([head] if head in node else [])
        )
        for key in keys:
            yield from _walk(node[key], rest, (*prefix, key))
    elif isinstance(node, list):
        if head == "*":
            indices = range(len(node))
        elif head.isdigit() and int(head) < len(node):
            indices = range(int(head), int(head) + 1)
        else:
            indices = range(0)
        for i in indices:
            yield from _walk(node[i], rest, (*prefix, str(i)))


def _parent(record: Any, path: tuple[str, ...]) -> tuple[Any, str | int]:
    node = record
    for seg in path[:-1]:
        node = node[int(seg)] if isinstance(node, list) else node[seg]
    last = path[-1]
    return node, (int(last) if isinstance(node, list) else last)


def _get(record: Any, path: tuple[str, ...]) -> Any:
    parent, key = _parent(record, path)
    return parent[key]


def _path_order(path: tuple[str, ...]) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(s)) if s.isdigit() else (1, s) for s in path)


class PiiScrubber:
    """Applies field actions to JSON-like records; see the module docstring for the rules.

    ``secret`` keys the ``hash`` action and must not be empty; keep it out of the stored data
    (a hash of a low-entropy value such as a phone number is only as private as the secret).
    The scrubber holds no mutable state and is safe to share between threads.
    """

    def __init__(
        self,
        rules: Mapping[str, FieldAction] | None = None,
        *,
        secret: bytes,
        default_text_action: FieldAction = "redact",
        text_fields: Collection[str] = ("text",),
    ) -> None:
        rules = dict(rules or {})
        issues = [
            Issue(path, f"unknown action {action!r}")
            for path, action in rules.items()
            if action not in FIELD_ACTIONS
        ]
        if default_text_action not in FIELD_ACTIONS:
            issues.append(Issue("default_text_action", f"unknown action {default_text_action!r}"))
        if not secret:
            issues.append(Issue("secret", "must not be empty"))
        if issues:
            raise InvalidInput("invalid PII scrubber configuration", issues)
        self.rules: dict[str, FieldAction] = rules
        self.secret = bytes(secret)
        self.default_text_action: FieldAction = default_text_action
        self.text_fields: tuple[str, ...] = tuple(text_fields)

    def hash_value(self, value: Any) -> str:
        """``h:`` + the first 32 hex digits of HMAC-SHA256(secret, str(value))."""
        digest = hmac.new(self.secret, str(value).encode("utf-8"), hashlib.sha256).hexdigest()
        return "h:" + digest[:32]

    def scrub_text(self, text: str) -> str:
        """``text`` with every detected span replaced by its placeholder (``[EMAIL]``…)."""
        return self._redact(text)[0]

    def _redact(self, text: str) -> tuple[str, Counter[str]]:
        spans = detect(text)
        out: list[str] = []
        pos = 0
        for span in spans:
            out.append(text[pos : span.start])
            out.append(PLACEHOLDERS[span.kind])
            pos = span.end
        out.append(text[pos:])
        return "".join(out), Counter(s.kind for s in spans)

    def _plan(self, record: Mapping[str, Any]) -> dict[tuple[str, ...], FieldAction]:
        chosen: dict[tuple[str, ...], tuple[int, int, FieldAction]] = {}
        patterns = [(p, a, True) for p, a in self.rules.items()]
        patterns += [(p, self.default_text_action, False) for p in self.text_fields]
        for order, (pattern, action, is_rule) in enumerate(patterns):
            segments = _segments(pattern)
            # text-field defaults rank below every explicit rule
            rank = (0 if is_rule else 1_000) + segments.count("*")
            for path in _walk(record, segments, ()):
                if not is_rule and not isinstance(_get(record, path), str):
                    continue
                if path not in chosen or (rank, order) < chosen[path][:2]:
                    chosen[path] = (rank, order, action)
        return {path: action for path, (_, _, action) in chosen.items()}

    def scrub(self, record: Mapping[str, Any]) -> tuple[dict[str, Any], list[ScrubEvent]]:
        """Returns a scrubbed deep copy and what was done (field path, action, kinds found counts).

        Events are emitted for ``drop``, ``mask`` and ``hash`` and for a ``redact`` that replaced
        at least one span; they name the path and count kinds but never carry the data. Fields
        are handled deepest first, so a rule on a field inside a masked or dropped parent is
        harmless.
        """
        out: dict[str, Any] = copy.deepcopy(dict(record))
        plan = self._plan(out)
        events: list[ScrubEvent] = []
        # descendants and higher list indices first: a removal never shifts a later path
        for path in sorted(plan, key=_path_order, reverse=True):
            action = plan[path]
            dotted = ".".join(path)
            parent, key = _parent(out, path)
            if action == "keep":
                continue
            if action == "drop":
                del parent[key]
                events.append(ScrubEvent(dotted, action))
            elif action == "mask":
                parent[key] = MASK
                events.append(ScrubEvent(dotted, action))
            elif action == "hash":
                parent[key] = self.hash_value(parent[key])
                events.append(ScrubEvent(dotted, action))
            elif isinstance(parent[key], str):
                parent[key], found = self._redact(parent[key])
                if found:
                    events.append(ScrubEvent(dotted, action, dict(sorted(found.items()))))
        events.reverse()
        return out, events
