"""Person names found by cues (honorifics, "my name is", sign-offs) and the first-name gazetteer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from importlib import resources

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
    source = resources.files("learnloop.loop.privacy.pii").joinpath("names.txt")
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
