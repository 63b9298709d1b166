"""API keys and roles.

A key looks like ``ll_<id>_<secret>``; only its SHA-256 is stored (keys are 256-bit random, so
a fast hash is enough — there is nothing to brute-force). Roles grant permissions:

=========  ====  =======  ======  =====  =====
role       read  predict  ingest  write  admin
=========  ====  =======  ======  =====  =====
admin       ✓      ✓        ✓       ✓      ✓
operator    ✓      ✓        ✓       ✓
ingest             ✓        ✓
reader      ✓
=========  ====  =======  ======  =====  =====

``write`` covers training, datasets, aliases and job control; ``admin`` covers keys and the
audit log. Verified keys are cached for ``cache_ttl_s`` seconds, so a revocation takes effect
within that time in other processes (at once in the revoking one).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from enum import StrEnum

from learnloop.core.errors import Forbidden, InvalidInput, Issue, NotFound, Unauthorized
from learnloop.core.records import ApiKeyRecord
from learnloop.core.stores import AuditLog, KeyStore


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    INGEST = "ingest"
    READER = "reader"


class Permission(StrEnum):
    READ = "read"
    PREDICT = "predict"
    INGEST = "ingest"
    WRITE = "write"
    ADMIN = "admin"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset(
        {Permission.READ, Permission.PREDICT, Permission.INGEST, Permission.WRITE}
    ),
    Role.INGEST: frozenset({Permission.PREDICT, Permission.INGEST}),
    Role.READER: frozenset({Permission.READ}),
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key (or the local operator using the CLI)."""

    name: str
    role: Role
    key_id: str | None = None

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise Forbidden(
                f"role {self.role.value!r} may not {permission.value}; "
                f"roles that may: {', '.join(r.value for r in roles_with(permission))}"
            )


LOCAL_OPERATOR = Principal(name="local", role=Role.ADMIN)


def roles_with(permission: Permission) -> list[Role]:
    return [r for r, perms in ROLE_PERMISSIONS.items() if permission in perms]


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        issue = Issue("role", f"{value!r}; use one of {allowed}")
        raise InvalidInput("unknown role", [issue]) from None


class KeyService:
    """Create, verify, list and revoke API keys."""

    def __init__(self, keys: KeyStore, audit: AuditLog, cache_ttl_s: float = 5.0) -> None:
        self.keys = keys
        self.audit = audit
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def create(self, role: Role | str, name: str = "", *, actor: str) -> tuple[ApiKeyRecord, str]:
        """Return the new key record and the plaintext token (shown once, never stored)."""
        role = parse_role(role) if isinstance(role, str) else role
        key_id = secrets.token_hex(4)
        token = f"ll_{key_id}_{secrets.token_urlsafe(32)}"
        record = self.keys.add(
            key_id, name or f"{role.value}-{key_id}", role.value, hash_key(token), actor
        )
        self.audit.append(actor, "key.create", f"key:{key_id}", {"role": role.value, "name": name})
        return record, token

    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key'")
        digest = hash_key(token)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit and now - hit[0] < self.cache_ttl_s:
            return hit[1]
        record = self.keys.find(digest)
        if record is None:
            raise Unauthorized("unknown or revoked API key")
        principal = Principal(name=record.name, role=Role(record.role), key_id=record.id)
        with self._lock:
            self._cache[digest] = (now, principal)
        return principal

    def list(self) -> list[ApiKeyRecord]:
        return self.keys.list()

    def revoke(self, key_id: str, *, actor: str) -> ApiKeyRecord:
        record = self.keys.revoke(key_id)
        if record is None:
            raise NotFound("key", key_id)
        with self._lock:
            self._cache = {d: (t, p) for d, (t, p) in self._cache.items() if p.key_id != key_id}
        self.audit.append(actor, "key.revoke", f"key:{key_id}", {})
        return record
