"""Console users: people who sign in to the web console, with a role in an ISV or a tenant.

A user is the console's counterpart of a secret key: :func:`principal_of` turns a user into
the same :class:`Principal` a key yields, so the console is authorised by the very checks
the API uses (:func:`quanyu.tenancy.service.authorize`). Passwords are stored as argon2id
hashes; a wrong login and a wrong password look the same to the caller.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, Field

from quanyu.engine import Session
from quanyu.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from quanyu.ids import new_id, utcnow
from quanyu.tenancy import service
from quanyu.tenancy import users_sql as q
from quanyu.tenancy.models import CAPABILITIES, Principal

Role = Literal["admin", "marketer", "analyst", "operator", "auditor"]

_READ_ALL = frozenset(f"{c}:read" for c in CAPABILITIES)

#: What each role may do, as the scopes of a secret key would say it.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "admin": frozenset({"admin"}),
    # builds tags and audiences and pushes them; reads what they are built from
    "marketer": _READ_ALL - {"tenancy:read"} | {"tags:write", "audiences:write"},
    # reads everything a tenant holds, changes nothing
    "analyst": _READ_ALL - {"tenancy:read"},
    # runs the touchpoints: sources and keys, identities, consent requests, codes
    "operator": _READ_ALL
    | {"tenancy:write", "ingest:write", "identity:write", "consent:write", "codes:write"},
    # reads everything, the audit log included
    "auditor": _READ_ALL,
}

_hasher = PasswordHasher()


class ConsoleUserCreate(BaseModel):
    login: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9._@+-]+$")
    name: str = Field(default="", max_length=200)
    password: str = Field(min_length=10, max_length=200, description="At least 10 characters.")
    role: Role


class ConsoleUser(BaseModel):
    id: str
    login: str
    name: str
    role: Role
    isv_id: str | None
    tenant_id: str | None
    created_at: datetime
    disabled_at: datetime | None
    last_sign_in_at: datetime | None


def _user(row: tuple[Any, ...]) -> ConsoleUser:
    keys = ConsoleUser.model_fields
    return ConsoleUser.model_validate(dict(zip(keys, row[: len(keys)], strict=True)))


def create_user(
    db: Session,
    body: ConsoleUserCreate,
    *,
    actor: str,
    tenant: str | None = None,
    isv: str | None = None,
) -> ConsoleUser:
    """Create a console user in exactly one ISV or one tenant (which must exist)."""
    if (tenant is None) == (isv is None):
        raise InvalidRequest("A console user belongs to exactly one ISV or one tenant; name one.")
    if tenant is not None:
        service.get_tenant(db, tenant=tenant)
    if isv is not None:
        service.get_isv(db, isv=isv)
    with db.transaction():
        if db.execute(q.USER_BY_LOGIN, [body.login]):
            raise Conflict(f"A console user with login {body.login!r} exists; choose another.")
        uid = new_id("usr")
        db.execute(
            q.INSERT_USER,
            [
                uid,
                body.login,
                body.name or body.login,
                _hasher.hash(body.password),
                body.role,
                isv,
                tenant,
                utcnow(),
            ],
        )
        user = get_user(db, uid)
        service.audit(
            db,
            actor=actor,
            action="console_user.create",
            target=user,
            target_type="console_user",
            target_id=uid,
            tenant=tenant,
            isv=isv,
        )
    return user


def get_user(db: Session, user_id: str) -> ConsoleUser:
    rows = db.execute(q.GET_USER, [user_id])
    if not rows:
        raise NotFound(f"No console user has id {user_id!r}.")
    return _user(rows[0])


def list_users(
    db: Session, *, tenant: str | None = None, isv: str | None = None
) -> list[ConsoleUser]:
    return [_user(r) for r in db.execute(q.LIST_USERS, [tenant, tenant, isv, isv])]


def authenticate_user(db: Session, login: str, password: str) -> ConsoleUser:
    """The user with this login and password, if enabled.

    Raises:
        Unauthorized: unknown login, wrong password or a disabled user (one message for all).
    """
    rows = db.execute(q.USER_BY_LOGIN, [login])
    wrong = Unauthorized("Wrong login or password, or the user is disabled; ask your admin.")
    if not rows:
        _hasher.hash(password)  # the same work as a real check, so timing tells nothing
        raise wrong
    user, stored = _user(rows[0]), str(rows[0][-1])
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        raise wrong from None
    if user.disabled_at is not None:
        raise wrong
    with db.transaction():
        if _hasher.check_needs_rehash(stored):
            db.execute(q.SET_PASSWORD, [_hasher.hash(password), user.id])
        db.execute(q.SIGNED_IN, [utcnow(), user.id])
    return user


def disable_user(db: Session, user_id: str, *, actor: str) -> ConsoleUser:
    """Disable a user: their sessions end at their next request."""
    with db.transaction():
        before = get_user(db, user_id)
        db.execute(q.DISABLE_USER, [utcnow(), user_id])
        after = get_user(db, user_id)
        service.audit(
            db,
            actor=actor,
            action="console_user.disable",
            target=after,
            before=before,
            target_type="console_user",
            target_id=user_id,
            tenant=after.tenant_id,
            isv=after.isv_id,
        )
    return after


def principal_of(user: ConsoleUser) -> Principal:
    """The principal a signed-in user acts as: their home and their role's scopes."""
    return Principal(
        key_id=user.login,
        kind="user",
        level="isv" if user.isv_id is not None else "tenant",
        isv_id=user.isv_id,
        tenant_id=user.tenant_id,
        scopes=ROLE_SCOPES[user.role],
    )
