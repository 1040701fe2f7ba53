"""What every console page starts from: the signed-in user, their tenant, their rights.

:func:`tenant_page` is the one dependency a tenant's page declares; it signs the user in
from the cookie, checks the tenant in the URL with :func:`quanyu.tenancy.service.authorize`
(a tenant out of reach is "not found", exactly as in the API) and hands the page a
:class:`Ctx`. :func:`csrf_guard` runs on every console route: a POST, PUT, PATCH or DELETE
without the session's CSRF token is refused before the page sees it.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import Depends, Request

from quanyu.api.deps import DbDep, get_engine
from quanyu.console import i18n
from quanyu.console.session import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    LANG_COOKIE,
    ConsoleSession,
    Signer,
    csrf_ok,
)
from quanyu.engine import Engine, Session
from quanyu.errors import Forbidden, NotFound, QuanyuError
from quanyu.tenancy import service as tenancy
from quanyu.tenancy import users
from quanyu.tenancy.models import Principal, Tenant

#: The cookie of the sign-in form's CSRF token (there is no session yet to hold it).
PRE_SESSION_COOKIE = "quanyu_pre"
SIGN_IN_PATH = "/console/sign-in"


class SignInRequired(QuanyuError):
    """No valid session: the console sends the browser to the sign-in page."""

    status = 401
    code = "sign_in_required"


@dataclass
class Ctx:
    """One console request: who, which tenant, in which language, with which database."""

    request: Request
    db: Session
    engine: Engine
    user: users.ConsoleUser
    principal: Principal
    session: ConsoleSession
    lang: str
    tenants: list[Tenant]
    tenant: Tenant | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def t(self) -> Callable[..., str]:
        return i18n.translator(self.lang)

    @property
    def tenant_id(self) -> str:
        if self.tenant is None:
            raise NotFound("This page belongs to a tenant: open it under /console/t/<tenant>/.")
        return self.tenant.id

    @property
    def actor(self) -> str:
        return self.principal.actor

    def allows(self, capability: str, access: Literal["read", "write"] = "read") -> bool:
        """Whether the user's role may do this (to show or hide a button)."""
        return self.principal.allows(capability, access)

    def require(self, capability: str, access: Literal["read", "write"]) -> None:
        """Refuse the request unless the role may ``access`` ``capability`` on this tenant."""
        tenancy.authorize(
            self.db, self.principal, tenant=self.tenant_id, capability=capability, access=access
        )

    def url(self, path: str = "") -> str:
        """A URL of this tenant's console: ``ctx.url("profiles")``."""
        return f"/console/t/{self.tenant_id}/{path.lstrip('/')}"


def signer(request: Request) -> Signer:
    found: Signer | None = getattr(request.app.state, "console_signer", None)
    if found is None:
        found = Signer(request.app.state.master_key)
        request.app.state.console_signer = found
    return found


def language(request: Request) -> str:
    return i18n.pick_language(
        request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")
    )


def tenants_of(db: Session, user: users.ConsoleUser) -> list[Tenant]:
    """The tenants a user may open: their own, or every tenant of their ISV."""
    if user.tenant_id is not None:
        return [tenancy.get_tenant(db, tenant=user.tenant_id)]
    return tenancy.list_tenants(db, isv=user.isv_id)


def signed_in(request: Request, db: DbDep, engine: Annotated[Engine, Depends(get_engine)]) -> Ctx:
    """The signed-in user's context (no tenant yet), or :class:`SignInRequired`."""
    session = signer(request).read(request.cookies.get(COOKIE))
    if session is None:
        raise SignInRequired("Sign in to use the console.")
    try:
        user = users.get_user(db, session.user_id)
    except NotFound:
        raise SignInRequired("Your user no longer exists; sign in again.") from None
    if user.disabled_at is not None:
        raise SignInRequired("Your user is disabled; ask your admin.")
    return Ctx(
        request=request,
        db=db,
        engine=engine,
        user=user,
        principal=users.principal_of(user),
        session=session,
        lang=language(request),
        tenants=tenants_of(db, user),
    )


SignedIn = Annotated[Ctx, Depends(signed_in)]


def tenant_page(capability: str, access: Literal["read", "write"] = "read") -> Any:
    """A dependency for a page of the tenant in the path that needs ``capability``."""

    def check(tenant_id: str, ctx: SignedIn) -> Ctx:
        tenancy.authorize(
            ctx.db, ctx.principal, tenant=tenant_id, capability=capability, access=access
        )
        ctx.tenant = tenancy.get_tenant(ctx.db, tenant=tenant_id)
        return ctx

    return Depends(check)


async def csrf_guard(request: Request) -> None:
    """Refuse any state-changing console request that does not carry the CSRF token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if request.url.path == SIGN_IN_PATH:
        expected = request.cookies.get(PRE_SESSION_COOKIE)
        if expected and sent and hmac.compare_digest(expected, sent):
            return
        raise Forbidden("The sign-in form expired or lacks its CSRF token; reload the page.")
    session = signer(request).read(request.cookies.get(COOKIE))
    if session is None:
        raise SignInRequired("Sign in to use the console.")
    if not csrf_ok(session, sent):
        raise Forbidden(
            "This form lacks a valid CSRF token (or it belongs to another session);"
            " reload the page and submit it again."
        )
