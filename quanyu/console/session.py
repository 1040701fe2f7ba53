"""Signed session cookies and CSRF tokens for the console.

The cookie holds the user's id, a CSRF token and the time it was issued, signed with a key
derived from the data dir's master key (so restarting the server keeps people signed in,
and another data dir's cookies are worthless). Sessions last :data:`MAX_AGE` seconds; a
disabled user's cookie stops working at the next request because every request reloads the
user.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "quanyu_session"
LANG_COOKIE = "quanyu_lang"
MAX_AGE = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class ConsoleSession:
    user_id: str
    csrf: str


class Signer:
    """Signs and reads session cookies with a key derived from the master key."""

    def __init__(self, master_key: bytes) -> None:
        secret = hmac.new(master_key, b"quanyu console session v1", hashlib.sha256).digest()
        self._s = URLSafeTimedSerializer(secret, salt="quanyu.console")

    def issue(self, user_id: str) -> tuple[str, ConsoleSession]:
        session = ConsoleSession(user_id=user_id, csrf=secrets.token_urlsafe(24))
        return self._s.dumps({"u": session.user_id, "c": session.csrf}), session

    def read(self, cookie: str | None) -> ConsoleSession | None:
        """The session in a cookie, or None if absent, forged or expired."""
        if not cookie:
            return None
        try:
            data = self._s.loads(cookie, max_age=MAX_AGE)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not {"u", "c"} <= data.keys():
            return None
        return ConsoleSession(user_id=str(data["u"]), csrf=str(data["c"]))


def csrf_ok(session: ConsoleSession, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf, str(sent))
