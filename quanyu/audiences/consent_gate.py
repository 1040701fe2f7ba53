"""The consent gate: the one place an audience loses the people who may not be reached.

Every path that hands members to anyone — a snapshot, a download, a push to a
channel — takes them from :func:`admit`, and :func:`admit` is the only code that
turns a rule's matches into members. It needs a purpose and a channel, so there is
no way to ask for members without saying what they are for.

Until the consent capability lands, a person is excluded when a trait says they opted
out: ``unsubscribed``, ``marketing_opt_out`` (for marketing purposes), or
``<channel>_opt_out`` (``sms_opt_out``, ``wechat_opt_out`` ...) is true. The consent
capability replaces :func:`excluded` with its ledger's answer, failing closed.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyroaring import BitMap

from quanyu.audiences.bitmaps import ProfileIndex
from quanyu.audiences.evaluate import TRAIT
from quanyu.errors import ValidationFailed

#: Channels an audience may be for.
CHANNELS = ("sms", "wechat", "email", "phone", "ads", "push", "pos", "none")
#: Purposes an audience may be for (``analysis`` reaches nobody: no consent needed).
PURPOSES = ("marketing", "ads_targeting", "service", "analysis")


def opt_out_traits(channel: str) -> tuple[str, ...]:
    """Traits whose true value excludes a person from a channel."""
    return ("unsubscribed", "marketing_opt_out", f"{channel}_opt_out")


ALL_OPT_OUT_TRAITS = tuple(sorted({t for c in CHANNELS for t in opt_out_traits(c)}))


@dataclass(frozen=True)
class Admitted:
    """The members an audience may reach, and who the gate kept out."""

    members: BitMap
    matched: int
    excluded: int
    purpose: str
    channel: str


def check(purpose: str, channel: str) -> None:
    """Refuse an unknown purpose or channel, naming the allowed ones."""
    if purpose not in PURPOSES:
        raise ValidationFailed(f"purpose {purpose!r} is unknown: use one of {', '.join(PURPOSES)}")
    if channel not in CHANNELS:
        raise ValidationFailed(f"channel {channel!r} is unknown: use one of {', '.join(CHANNELS)}")


def excluded(index: ProfileIndex, *, purpose: str, channel: str) -> BitMap:
    """Persons who may not be reached for ``purpose`` on ``channel``."""
    if purpose == "analysis":
        return BitMap()
    out = BitMap()
    for trait in opt_out_traits(channel):
        if trait == "marketing_opt_out" and purpose not in ("marketing", "ads_targeting"):
            continue
        col = TRAIT + trait
        if index.has(col):
            out |= index.isin(col, ["true", "True", "1", "yes"])
    return out


def admit(index: ProfileIndex, matched: BitMap, *, purpose: str, channel: str) -> Admitted:
    """The members of an audience: its matches less everyone the gate excludes."""
    check(purpose, channel)
    out = excluded(index, purpose=purpose, channel=channel)
    members = matched - out
    return Admitted(members, len(matched), len(matched) - len(members), purpose, channel)
