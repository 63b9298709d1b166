"""Test kits for learnloop and for third-party families and backends.

* :func:`check_family` — the family contract, run over every registered family.
* :mod:`learnloop.testing.stores` — contract tests every SQL backend must pass.
* :mod:`learnloop.testing.databases` — throwaway SQLite and PostgreSQL databases.
"""

from learnloop.testing.family_checks import check_family

__all__ = ["check_family"]
