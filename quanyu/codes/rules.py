"""The code lifecycle as a table: which action may move a code from which state.

issued → printed → activated → aggregated → shipped → received, plus voided, recalled
and destroyed; scans and redemptions (the scans work) never change a code's state.
Pure: :func:`refusal` explains in one sentence why an action is refused for a code, and
``lifecycle.py`` asks the database for the codes that break these same rules.
"""

from __future__ import annotations

from typing import Literal

from quanyu.errors import Conflict

State = Literal[
    "issued", "printed", "activated", "aggregated", "shipped", "received",
    "voided", "recalled", "destroyed",
]  # fmt: skip
STATES: tuple[State, ...] = (
    "issued", "printed", "activated", "aggregated", "shipped", "received",
    "voided", "recalled", "destroyed",
)  # fmt: skip
Action = Literal["print", "activate", "reject", "pack", "ship", "receive", "void", "recall",
                 "destroy"]  # fmt: skip
ACTIONS: tuple[Action, ...] = (
    "print", "activate", "reject", "pack", "ship", "receive", "void", "recall", "destroy"
)  # fmt: skip

#: The states an action accepts (``pack`` is the child side of aggregation).
ALLOWED: dict[Action, tuple[State, ...]] = {
    "print": ("issued",),
    "activate": ("printed",),
    "reject": ("printed", "activated"),
    "pack": ("activated", "aggregated"),
    "ship": ("activated", "aggregated"),
    "receive": ("shipped",),
    "void": ("issued", "printed", "activated"),
    "recall": ("activated", "aggregated", "shipped", "received"),
    "destroy": ("issued", "printed", "voided", "recalled"),
}
#: The state an action leaves a code in.
TARGET: dict[Action, State] = {
    "print": "printed",
    "activate": "activated",
    "reject": "voided",
    "pack": "aggregated",
    "ship": "shipped",
    "receive": "received",
    "void": "voided",
    "recall": "recalled",
    "destroy": "destroyed",
}
#: Actions whose effect reaches every code packed inside the named units.
CASCADES: frozenset[Action] = frozenset({"ship", "receive", "recall"})

_HINT: dict[State, str] = {
    "issued": "mark it printed first",
    "printed": "activate it on the line first",
    "activated": "",
    "aggregated": "",
    "shipped": "",
    "received": "",
    "voided": "a voided code never comes back; use another code",
    "recalled": "a recalled code can only be destroyed",
    "destroyed": "a destroyed code is final",
}


class IllegalTransition(Conflict):
    """An action the lifecycle does not allow from the code's current state."""

    code = "illegal_transition"


def refusal(
    action: Action, code: str, state: str, level: str, parent: str | None = None
) -> str | None:
    """Why ``action`` may not touch this code, or None when it may.

    Besides the state table: only top-level units ship (a packed bottle ships with its
    case), a box, case or pallet ships or is packed only once something is in it, and a
    code already packed cannot be packed again.
    """
    allowed = ALLOWED[action]
    what = f"{level} {code}"
    if state not in allowed:
        hint = _HINT.get(state, "")  # type: ignore[call-overload]
        return (
            f"cannot {action} {what}: it is {state}; {action} accepts codes that are"
            f" {' or '.join(allowed)}" + (f" ({hint})" if hint else "")
        )
    if action in ("ship", "pack") and parent is not None:
        return (
            f"cannot {action} {what}: it is packed in {parent};"
            f" {'ship ' + parent + ' instead' if action == 'ship' else 'unpack it first'}"
        )
    if action in ("ship", "pack") and level != "item" and state == "activated":
        return (
            f"cannot {action} {what}: the {level} is empty (activated, not aggregated);"
            f" aggregate its contents into it first"
        )
    if action in ("ship", "pack") and level == "item" and state == "aggregated":
        return f"cannot {action} {what}: it is already packed"
    return None


def sql_allowed(action: Action) -> str:
    """The SQL predicate over ``state``, ``level`` and ``parent_code`` equivalent to
    :func:`refusal` returning None. Built from the constants above, never user input."""
    states = ", ".join(f"'{s}'" for s in ALLOWED[action])
    pred = f"state IN ({states})"
    if action in ("ship", "pack"):
        pred += (
            " AND parent_code IS NULL"
            " AND ((level = 'item' AND state = 'activated')"
            " OR (level <> 'item' AND state = 'aggregated'))"
        )
    return pred


def refuse(action: Action, offenders: list[tuple[str, str, str, str | None]], total: int) -> None:
    """Raise :class:`IllegalTransition` naming up to five offending codes.

    Args:
        offenders: ``(code, state, level, parent_code)`` rows that break the rules.
        total: how many codes break them in all.
    """
    reasons = [refusal(action, c, s, lv, p) or f"{lv} {c} is {s}" for c, s, lv, p in offenders]
    more = f" (and {total - 5} more)" if total > 5 else ""
    raise IllegalTransition(
        f"{total} code(s) refused, nothing changed: " + "; ".join(reasons[:5]) + more,
        details=[{"code": c, "state": s, "level": lv} for c, s, lv, _ in offenders],
    )
