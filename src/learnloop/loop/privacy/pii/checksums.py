"""Check-digit and format checks for card numbers (issuer prefix + Luhn) and IBANs (mod 97)."""

from __future__ import annotations

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


def iban_valid(compact: str) -> bool:
    """True when an IBAN without spaces has its country's length and mod-97 remainder 1."""
    compact = compact.upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1
