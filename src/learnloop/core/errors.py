"""The one exception tree of learnloop.

Every error raised on purpose by learnloop code derives from :class:`LearnloopError`.
Adapters (REST, gRPC, CLI) map these classes to their own error shapes in one table each
(``api/errors.py`` for HTTP); ``core`` never mentions status codes.

::

    LearnloopError
    ├── NotFound            a named thing (model, version, alias, dataset, job, key) does not exist
    ├── Conflict            the request clashes with current state (already exists, wrong job state)
    ├── InvalidInput        input failed validation; ``issues`` lists (field path, message) pairs
    │   └── SchemaMismatch  training data does not fit a family's schema (per-column issues)
    ├── Unauthorized        no credentials, or credentials that match no key
    ├── Forbidden           a valid key whose role may not do this
    ├── StorageError        a store failed or refused (corrupt / foreign / too new database)
    ├── TrainingError       fitting a model failed
    ├── JobInterrupted      raised inside a job at a safe point when pause/cancel was requested
    │   ├── JobPaused
    │   └── JobCancelled
    └── MissingDependency   an optional extra is not installed

Foreign errors (SQLAlchemy, MLflow, …) are translated at the storage boundary with
``raise … from e`` so callers only ever catch learnloop errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Issue:
    """One validation problem: where (a dotted/indexed field path) and what."""

    loc: str
    message: str


class LearnloopError(Exception):
    """Root of every deliberate learnloop error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(LearnloopError):
    """A named thing does not exist."""

    def __init__(self, kind: str, name: str, message: str | None = None) -> None:
        super().__init__(message or f"{kind} {name!r} not found")
        self.kind = kind
        self.name = name


class Conflict(LearnloopError):
    """The request clashes with the current state."""


class InvalidInput(LearnloopError):
    """Input failed validation. ``issues`` carries one entry per offending field."""

    def __init__(self, message: str, issues: Sequence[Issue] = ()) -> None:
        detail = "; ".join(f"{i.loc}: {i.message}" for i in issues)
        super().__init__(f"{message}: {detail}" if detail else message)
        self.summary = message
        self.issues = tuple(issues)


class SchemaMismatch(InvalidInput):
    """Training data does not fit the family's schema; ``issues`` are per column."""


class Unauthorized(LearnloopError):
    """Missing or unknown credentials."""


class Forbidden(LearnloopError):
    """Valid credentials whose role does not allow the action."""


class StorageError(LearnloopError):
    """A store failed, or refused to open a database it does not recognise."""


class TrainingError(LearnloopError):
    """Fitting a model failed."""


class JobInterrupted(LearnloopError):
    """Raised by a job at a safe point when its control flag asks it to stop."""


class JobPaused(JobInterrupted):
    """The job stopped at a checkpoint because a pause was requested."""


class JobCancelled(JobInterrupted):
    """The job stopped because a cancel was requested."""


class MissingDependency(LearnloopError):
    """An optional extra is needed for this feature."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package!r} is not installed; install it with: pip install 'learnloop[{extra}]'"
        )
        self.package = package
        self.extra = extra
