"""Find email, phone, card, IBAN, IP and person spans in free text (:func:`detect`)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Literal, get_args

import phonenumbers

from learnloop.core.errors import InvalidInput, Issue
from learnloop.loop.privacy.pii.checksums import IBAN_LENGTHS, iban_valid, is_card_number
from learnloop.loop.privacy.pii.persons import _persons

PiiKind = Literal["email", "phone", "card", "iban", "ip", "person"]

PII_KINDS: tuple[str, ...] = get_args(PiiKind)

# Higher wins when two candidate spans overlap.
_PRIORITY = {"email": 5, "iban": 4, "card": 4, "ip": 3, "phone": 2, "person": 1}


@dataclass(frozen=True)
class PiiSpan:
    """One detected piece of personal data: ``text[start:end] == self.text``."""

    kind: str
    start: int
    end: int
    text: str


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

_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2}|[a-z]{2})(\d{2})")


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
