"""Apply per-field actions (drop, mask, hash, redact, keep) to JSON-like records."""

from __future__ import annotations

import copy
import hashlib
import hmac
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from learnloop.core.errors import InvalidInput, Issue
from learnloop.loop.privacy.pii.detect import PII_KINDS, detect

FieldAction = Literal["drop", "mask", "hash", "redact", "keep"]

FIELD_ACTIONS: tuple[str, ...] = get_args(FieldAction)
MASK = "[REDACTED]"
PLACEHOLDERS: dict[str, str] = {kind: f"[{kind.upper()}]" for kind in PII_KINDS}


@dataclass(frozen=True)
class ScrubEvent:
    """What the scrubber did to one field; ``kinds`` counts spans found (redact only)."""

    path: str
    action: str
    kinds: dict[str, int] = field(default_factory=dict)


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
    """Applies field actions to JSON-like records; see the package docstring for the rules.

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
