"""API keys: created once, stored only as a SHA-256 hash, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.models import ApiKey
from hub.domain.errors import InvalidInputError
from hub.services import audit

KEY_PREFIX = "ih_"
ADMIN_TOKEN_ACTOR = "admin-token"  # noqa: S105 - a name in the audit log, not a secret


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"


# Which roles may do what a role may do: an admin may do all an operator may.
ROLE_GRANTS: dict[Role, frozenset[Role]] = {
    Role.ADMIN: frozenset({Role.ADMIN, Role.OPERATOR}),
    Role.OPERATOR: frozenset({Role.OPERATOR}),
}


@dataclass(frozen=True)
class Principal:
    actor: str
    role: Role

    def may(self, needed: Role) -> bool:
        return needed in ROLE_GRANTS[self.role]


def hash_key(key: str) -> str:
    # Keys are 256 random bits, so an unsalted fast hash cannot be brute-forced.
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, role: str, actor: str, label: str | None = None) -> str:
    """Store a new key's hash and return the key, which is never shown again."""
    try:
        parsed = Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise InvalidInputError(f"unknown role {role!r} (roles: {roles})") from None
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(prefix=key[:10], key_hash=hash_key(key), role=parsed.value, label=label)
    session.add(row)
    session.flush()
    audit.record(session, actor, "key.create", f"key:{row.id}", role=parsed.value, label=label)
    return key


def authenticate(session: Session, presented: str, admin_token: str | None) -> Principal | None:
    """The principal a bearer token stands for, or None when it is unknown or revoked."""
    if admin_token and hmac.compare_digest(presented.encode(), admin_token.encode()):
        return Principal(ADMIN_TOKEN_ACTOR, Role.ADMIN)
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(presented)))
    if row is None or row.revoked_at is not None:
        return None
    return Principal(f"key:{row.id}", Role(row.role))
