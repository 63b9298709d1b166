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

from learnloop.loop.privacy.pii.checksums import (
    IBAN_LENGTHS,
    iban_valid,
    is_card_number,
    luhn_valid,
)
from learnloop.loop.privacy.pii.detect import PII_KINDS, PiiKind, PiiSpan, detect
from learnloop.loop.privacy.pii.persons import first_names
from learnloop.loop.privacy.pii.scrub import (
    FIELD_ACTIONS,
    MASK,
    PLACEHOLDERS,
    FieldAction,
    PiiScrubber,
    ScrubEvent,
)

__all__ = [
    "FIELD_ACTIONS",
    "IBAN_LENGTHS",
    "MASK",
    "PII_KINDS",
    "PLACEHOLDERS",
    "FieldAction",
    "PiiKind",
    "PiiScrubber",
    "PiiSpan",
    "ScrubEvent",
    "detect",
    "first_names",
    "iban_valid",
    "is_card_number",
    "luhn_valid",
]
