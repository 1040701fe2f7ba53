"""The consent gate: the one place an audience loses the people who may not be reached.

Every path that hands members to anyone — a live count, a snapshot, a download, a push,
and each webhook the delivery worker sends — takes them from :func:`admit`, and
:func:`admit` is the only code that turns a rule's matches into members. It needs a
purpose and a channel, so there is no way to ask for members without saying what they
are for. It asks the consent capability (:func:`quanyu.consent.enforce.admit`), which
fails closed: for a consent-based purpose, only people with a current grant for that
purpose and channel pass.

The purpose is a purpose key of the legal entity that runs the audience's brands
(``marketing``, ``ads_targeting`` ...), or a purpose id (``<entity>.<key>``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyroaring import BitMap

from quanyu.consent import enforce
from quanyu.consent.models import Purpose
from quanyu.engine import Session
from quanyu.errors import NotFound, ValidationFailed

#: Channels an audience may be for (``none``: never sent anywhere, e.g. analysis).
CHANNELS = ("sms", "wechat", "email", "phone", "ads", "push", "pos", "none")


@dataclass(frozen=True)
class Admitted:
    """The members an audience may reach, and who the gate kept out (counts by reason)."""

    members: BitMap
    matched: int
    excluded: int
    purpose: str
    channel: str
    blocked: dict[str, int] = field(default_factory=dict)


def purpose_of(
    db: Session, *, tenant: str, purpose: str, channel: str, brands: list[str] | None,
    ctx: enforce.Context | None = None,
) -> Purpose:  # fmt: skip
    """The declared purpose an audience is for; refuses an unknown purpose or channel."""
    if channel not in CHANNELS:
        raise ValidationFailed(f"channel {channel!r} is unknown: use one of {', '.join(CHANNELS)}")
    try:
        return (ctx or enforce.context(db, tenant=tenant)).purpose(tenant, purpose, brands)
    except NotFound as e:  # said as a fault of the audience being checked
        raise ValidationFailed(f"purpose {purpose!r} is unknown: {e.message}") from e


def admit(
    db: Session,
    matched: BitMap,
    *,
    tenant: str,
    purpose: str | Purpose,
    channel: str,
    brands: list[str] | None = None,
    destination: str | None = None,
    act: str | None = None,
    act_id: str | None = None,
    ctx: enforce.Context | None = None,
) -> Admitted:
    """The members of an audience: its matches less everyone consent keeps out, decided
    now. ``purpose`` is its name, or the purpose :func:`purpose_of` found; ``ctx`` the
    consent context the caller read a moment ago. With ``act`` every allow and block is
    written to the decision log."""
    p = (
        purpose
        if isinstance(purpose, Purpose)
        else purpose_of(
            db, tenant=tenant, purpose=purpose, channel=channel, brands=brands, ctx=ctx
        )  # fmt: skip
    )
    got = enforce.admit(db, matched, tenant=tenant, purpose=p, channel=channel,
                        destination=destination, act=act, act_id=act_id, ctx=ctx)  # fmt: skip
    return Admitted(got.members, got.matched, got.excluded, p.id, channel, got.blocked)
