"""One webhook request: sign, POST, and classify the reply. No database access.

A 2xx reply delivers the message (status code and the first 2 KB of the reply are
kept). 5xx, 408, 429, timeouts and connection errors are worth another attempt
(a ``Retry-After`` in seconds is passed on); any other status (4xx, a redirect)
fails the message at once.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime

import httpx

from quanyu import __version__
from quanyu.delivery.models import MessageStatus
from quanyu.delivery.netguard import PrivateAddress
from quanyu.delivery.signing import signed_headers

#: Bytes of a receiver's reply kept with the message.
RESPONSE_LIMIT = 2048
USER_AGENT = {"user-agent": f"quanyu-webhooks/{__version__}"}


@dataclass(frozen=True)
class Policy:
    """How the worker sends: request timeout (s), attempts, backoff (s), parallel requests,
    and whether receivers may be on private networks (:mod:`quanyu.delivery.netguard`).

    A message fails only once it has had ``max_attempts`` attempts *and* is
    ``give_up_after`` seconds old, so a receiver that is down for hours still gets every
    message, in order, when it comes back (retries are at most ``backoff_max`` apart).
    """

    timeout: float = 10.0
    max_attempts: int = 8
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    concurrency: int = 8
    give_up_after: float = 3 * 86400.0
    allow_private: bool = False


@dataclass(frozen=True)
class Due:
    """A message ready to send, with its destination."""

    id: str
    tenant_id: str
    destination_id: str
    payload: str
    attempts: int
    url: str
    sealed: bytes
    topic: str = ""
    created_at: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: ``delivered``, ``pending`` (retry) or ``failed``."""

    status: MessageStatus
    code: int | None = None
    error: str | None = None
    response: str | None = None
    retry_after: float | None = None


def backoff(attempts: int, policy: Policy, rng: random.Random | None = None) -> float:
    """Seconds to wait after ``attempts`` failed tries: uniform in
    ``[0, min(backoff_max, backoff_base * 2 ** (attempts - 1))]`` (full jitter)."""
    ceiling = min(policy.backoff_max, policy.backoff_base * 2.0 ** max(0, attempts - 1))
    return (rng or random).uniform(0.0, ceiling)


def _read_reply(resp: httpx.Response) -> str:
    kept = b""
    for chunk in resp.iter_bytes():
        kept += chunk
        if len(kept) > RESPONSE_LIMIT:
            break
    return kept[:RESPONSE_LIMIT].decode("utf-8", errors="ignore")


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


def attempt(client: httpx.Client, msg: Due, secret: str) -> Outcome:
    """POST one message once and classify the result (no database access)."""
    body = msg.payload.encode()
    headers = signed_headers(secret, msg.id, int(time.time()), body)
    headers["content-type"] = "application/json"
    try:
        with client.stream("POST", msg.url, content=body, headers=headers) as resp:
            code = resp.status_code
            try:
                reply = _read_reply(resp)
            except httpx.HTTPError as e:  # the status is in: a broken body does not change it
                reply = f"(reply unreadable: {e!r})"
    except PrivateAddress as e:
        return Outcome(MessageStatus.failed, error=f"URL {msg.url} refused: {e}")
    except httpx.UnsupportedProtocol as e:
        return Outcome(MessageStatus.failed, error=f"URL {msg.url} cannot be posted to: {e}")
    except httpx.TimeoutException as e:
        return Outcome(MessageStatus.pending, error=f"no reply from {msg.url} in time ({e!r})")
    except httpx.TransportError as e:
        return Outcome(MessageStatus.pending, error=f"cannot reach {msg.url}: {e!r}")
    if 200 <= code < 300:
        return Outcome(MessageStatus.delivered, code=code, response=reply)
    if code >= 500 or code in (408, 429):
        return Outcome(
            MessageStatus.pending,
            code=code,
            error=f"HTTP {code} from {msg.url}",
            response=reply,
            retry_after=_retry_after(resp),
        )
    return Outcome(
        MessageStatus.failed,
        code=code,
        error=f"HTTP {code} from {msg.url}: the receiver refused the message; fix the receiver"
        " (or the destination URL), then retry the message",
        response=reply,
    )
