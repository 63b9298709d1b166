"""The store contracts on SQLite and on the real PostgreSQL (``db`` is parametrized)."""

from learnloop.testing.stores import (
    AliasHistoryContract,
    AuditLogContract,
    DatasetCatalogContract,
    JobStoreContract,
    KeyStoreContract,
)


class TestJobStore(JobStoreContract):
    pass


class TestAuditLog(AuditLogContract):
    pass


class TestKeyStore(KeyStoreContract):
    pass


class TestAliasHistory(AliasHistoryContract):
    pass


class TestDatasetCatalog(DatasetCatalogContract):
    pass
