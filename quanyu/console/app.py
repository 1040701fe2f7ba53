"""The console's routes: sign-in and out, language, the tenant pages, errors as pages."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from quanyu.api import errors as api_errors
from quanyu.api.deps import DbDep
from quanyu.console import i18n
from quanyu.console.deps import (
    PRE_SESSION_COOKIE,
    SIGN_IN_PATH,
    SignedIn,
    SignInRequired,
    csrf_guard,
    signer,
)
from quanyu.console.pages import PAGES
from quanyu.console.render import render_public
from quanyu.console.session import COOKIE, LANG_COOKIE, MAX_AGE
from quanyu.errors import QuanyuError, Unauthorized
from quanyu.tenancy import users

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(csrf_guard)])


def _safe_next(target: str | None) -> str:
    """Only a path inside the console (never another host) is a place to go back to."""
    if target and target.startswith("/console/") and not target.startswith("//"):
        return target
    return "/console/"


@router.get("")
@router.get("/")
def start(ctx: SignedIn) -> Response:
    """The first tenant the user may open."""
    if not ctx.tenants:
        raise SignInRequired(ctx.t("sign_in.no_tenant"))
    return RedirectResponse(f"/console/t/{ctx.tenants[0].id}/", status_code=303)


@router.get("/sign-in")
def sign_in_form(request: Request, next: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = render_public(request, "sign_in.html", csrf=token, next=_safe_next(next))
    response.set_cookie(
        PRE_SESSION_COOKIE, token, max_age=3600, httponly=True, samesite="strict", path="/console"
    )
    return response


@router.post("/sign-in")
def sign_in(
    request: Request,
    db: DbDep,
    login: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str | None, Form()] = None,
) -> Response:
    try:
        user = users.authenticate_user(db, login.strip(), password)
    except Unauthorized as exc:
        token = secrets.token_urlsafe(24)
        failed = render_public(
            request,
            "sign_in.html",
            status=401,
            csrf=token,
            next=_safe_next(next),
            error=exc.message,
            login=login,
        )
        failed.set_cookie(
            PRE_SESSION_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
            path="/console",
        )  # fmt: skip
        return failed
    cookie, _ = signer(request).issue(user.id)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/console",
    )
    response.delete_cookie(PRE_SESSION_COOKIE, path="/console")
    return response


@router.post("/sign-out")
def sign_out() -> Response:
    response = RedirectResponse(SIGN_IN_PATH, status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("/lang/{code}")
def set_language(code: str, next: str | None = None) -> Response:
    """Switch the interface language (a preference cookie, nothing else changes)."""
    if code not in i18n.LANGUAGES:
        raise StarletteHTTPException(404, f"No language {code!r}; use one of zh, en.")
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", path="/console")
    return response


for page in PAGES:
    router.include_router(page)


def _is_console(request: Request) -> bool:
    return request.url.path.startswith("/console") and not request.url.path.startswith(
        "/console/static/"
    )


def _sign_in_redirect(request: Request) -> Response:
    target = f"{SIGN_IN_PATH}?next={quote(request.url.path)}"
    if request.headers.get("HX-Request"):
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _error_page(request: Request, status: int, message: str) -> Response:
    return render_public(request, "error.html", status=status, message=message, status_code=status)


def _quanyu_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, QuanyuError)
    if not _is_console(request):
        return api_errors.quanyu_error(request, exc)
    if isinstance(exc, SignInRequired):
        return _sign_in_redirect(request)
    return _error_page(request, exc.status, exc.message)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if not _is_console(request):
        return api_errors.http_error(request, exc)
    return _error_page(request, exc.status_code, str(exc.detail))


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not _is_console(request):
        return api_errors.validation_error(request, exc)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
    )
    return _error_page(request, 422, f"Invalid form: {problems}")


def install(app: FastAPI) -> None:
    """Mount the console on ``app`` (after :func:`quanyu.api.errors.install`)."""
    static = Path(__file__).parent / "static"
    app.mount("/console/static", StaticFiles(directory=static), name="console-static")
    app.include_router(router)
    app.add_exception_handler(QuanyuError, _quanyu_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
