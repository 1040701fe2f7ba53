"""Console users on a real database file: hashed passwords, roles, homes, disabling."""

from __future__ import annotations

import pytest

from quanyu.engine import Statement
from quanyu.engine.duckdb import DuckDBEngine
from quanyu.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized
from quanyu.tenancy import service, users
from quanyu.tenancy.models import IsvCreate, TenantCreate
from quanyu.tenancy.users import ConsoleUserCreate

ACTOR = "key:test"
PASSWORD = "a long enough password"


def _user(login: str, role: str = "admin") -> ConsoleUserCreate:
    return ConsoleUserCreate.model_validate({"login": login, "password": PASSWORD, "role": role})


def test_passwords_are_argon2_hashes_and_checked(engine: DuckDBEngine) -> None:
    with engine.connect() as db:
        t = service.create_tenant(db, TenantCreate(name="Kao-like"), actor=ACTOR)
        made = users.create_user(db, _user("mei"), actor=ACTOR, tenant=t.id)
        (stored,) = db.one(
            Statement(
                "t.user_hash",
                "SELECT password_hash FROM console_users WHERE id = ?",
                tenant_scoped=False,
            ),
            [made.id],
        )
        assert stored.startswith("$argon2id$") and PASSWORD not in stored
        assert users.authenticate_user(db, "mei", PASSWORD).id == made.id
        assert users.get_user(db, made.id).last_sign_in_at is not None
        for login, password in (("mei", "wrong password!"), ("nobody", PASSWORD)):
            with pytest.raises(Unauthorized, match="Wrong login or password"):
                users.authenticate_user(db, login, password)
        with pytest.raises(Conflict, match="mei"):
            users.create_user(db, _user("mei"), actor=ACTOR, tenant=t.id)
        users.disable_user(db, made.id, actor=ACTOR)
        with pytest.raises(Unauthorized):
            users.authenticate_user(db, "mei", PASSWORD)
        actions = [e.action for e in service.list_audit(db, tenant=t.id)]
        assert actions[:2] == ["console_user.disable", "console_user.create"]


def test_a_user_has_exactly_one_home_that_exists(engine: DuckDBEngine) -> None:
    with engine.connect() as db:
        isv = service.create_isv(db, IsvCreate(name="ISV"), actor=ACTOR)
        t = service.create_tenant(db, TenantCreate(name="T", isv_id=isv.id), actor=ACTOR)
        with pytest.raises(InvalidRequest):
            users.create_user(db, _user("both"), actor=ACTOR, tenant=t.id, isv=isv.id)
        with pytest.raises(InvalidRequest):
            users.create_user(db, _user("none"), actor=ACTOR)
        with pytest.raises(NotFound):
            users.create_user(db, _user("ghost"), actor=ACTOR, tenant="ten_missing")
        with pytest.raises(ValueError, match="at least 10"):
            ConsoleUserCreate.model_validate({"login": "x1", "password": "short", "role": "admin"})


def test_roles_are_checked_by_the_same_authorize_as_keys(engine: DuckDBEngine) -> None:
    with engine.connect() as db:
        isv = service.create_isv(db, IsvCreate(name="ISV"), actor=ACTOR)
        mine = service.create_tenant(db, TenantCreate(name="A", isv_id=isv.id), actor=ACTOR)
        other = service.create_tenant(db, TenantCreate(name="B"), actor=ACTOR)
        marketer = users.principal_of(
            users.create_user(db, _user("mkt", "marketer"), actor=ACTOR, tenant=mine.id)
        )
        assert marketer.actor == "user:mkt"
        service.authorize(db, marketer, tenant=mine.id, capability="audiences", access="write")
        with pytest.raises(Forbidden, match="role lacks 'tenancy:write'"):
            service.authorize(db, marketer, tenant=mine.id, capability="tenancy", access="write")
        with pytest.raises(NotFound):
            service.authorize(db, marketer, tenant=other.id, capability="tags", access="read")
        analyst = users.principal_of(
            users.create_user(db, _user("isv-a", "analyst"), actor=ACTOR, isv=isv.id)
        )
        service.authorize(db, analyst, tenant=mine.id, capability="profiles", access="read")
        with pytest.raises(Forbidden):
            service.authorize(db, analyst, tenant=mine.id, capability="profiles", access="write")
        with pytest.raises(NotFound):  # not delivered by this ISV
            service.authorize(db, analyst, tenant=other.id, capability="profiles", access="read")
        auditor = users.principal_of(
            users.create_user(db, _user("aud", "auditor"), actor=ACTOR, tenant=mine.id)
        )
        assert auditor.allows("tenancy", "read") and not auditor.allows("consent", "write")
