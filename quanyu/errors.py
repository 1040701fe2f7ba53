"""The exception tree: one root, a shallow hierarchy, a stable ``code`` per class.

Every message names the thing, the bad value and the fix. ``quanyu.api.errors``
turns these into ``{"code", "message"}`` JSON with the class's ``status``; the CLI
prints ``Error: <message>`` and exits 1.
"""

from __future__ import annotations

from typing import Any, ClassVar


class QuanyuError(Exception):
    """Root of every error Quanyu raises on purpose."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 500

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(QuanyuError):
    """Settings are missing or unsafe."""

    code = "config_error"


class StoreLocked(QuanyuError):
    """Another process holds the database file."""

    code = "store_locked"
    status = 503


class InvalidRequest(QuanyuError):
    """The request is malformed: bad JSON, wrong types, too large."""

    code = "invalid_request"
    status = 400


class InvalidJson(InvalidRequest):
    """The body is not JSON, or not the JSON shape the endpoint takes."""

    code = "invalid_json"


class PayloadTooLarge(InvalidRequest):
    """A message or request exceeds Segment's size limits."""

    code = "payload_too_large"


class ValidationFailed(InvalidRequest):
    """Every message in the request failed validation."""

    code = "validation_failed"


class Unauthorized(QuanyuError):
    """No key, or an unknown or revoked key."""

    code = "unauthorized"
    status = 401


class Forbidden(QuanyuError):
    """The key is valid but lacks the scope or tenant for this action."""

    code = "forbidden"
    status = 403


class NotFound(QuanyuError):
    """The named thing does not exist (or is invisible to this key)."""

    code = "not_found"
    status = 404


class Conflict(QuanyuError):
    """The change clashes with existing state (a duplicate name, say)."""

    code = "conflict"
    status = 409


class RateLimited(QuanyuError):
    """A source sent more events per second than its limit."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: float, reset_at: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.reset_at = reset_at


class Unavailable(QuanyuError):
    """A transient fault; the client should retry."""

    code = "unavailable"
    status = 503
