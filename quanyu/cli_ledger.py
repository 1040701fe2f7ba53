"""CLI commands for the ledger (``quanyu ledger …``): the log's status, signing a
checkpoint, writing a proof bundle, and verifying a bundle offline.

``verify`` needs neither a server nor the database: a bundle, a checkpoint file and the
log's published verifier key are all it reads, so anyone can run it on their own copy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from quanyu.cli_common import JsonOpt, TenantOpt, client, out, resolve_tenant, show
from quanyu.errors import ValidationFailed
from quanyu.ledger.verify import BundleError, verify

ledger_app = typer.Typer(
    help="The tamper-evident ledger: checkpoints, proofs, offline verification.",
    no_args_is_help=True,
)


@ledger_app.command("status")
def status(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The log's size, root, verifier key and latest checkpoint."""
    with client() as c:
        found = c.get(f"/v1/tenants/{resolve_tenant(c, tenant)}/ledger")
        latest = found.get("latest_checkpoint") or {}
        row = {**found, "checkpoint_size": latest.get("tree_size")}
        show(row, ["origin", "size", "root", "checkpoint_size", "verifier_key"], as_json=as_json)


@ledger_app.command("checkpoint")
def checkpoint(
    tenant: TenantOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="also write the checkpoint text here")
    ] = None,
) -> None:
    """Sign a checkpoint of the log now and print its text."""
    with client() as c:
        made = c.post(f"/v1/tenants/{resolve_tenant(c, tenant)}/ledger/checkpoints")
    if output is not None:
        output.write_text(made["note"], encoding="utf-8")
    out.print(made["note"], end="", highlight=False, markup=False, soft_wrap=True)


@ledger_app.command("prove")
def prove(
    index: Annotated[int, typer.Argument(help="the leaf's index in the log")],
    size: Annotated[
        int | None, typer.Option(help="tree size to prove against (default: latest checkpoint)")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="bundle file (default: stdout)")
    ] = None,
    tenant: TenantOpt = None,
) -> None:
    """Write the inclusion proof of one leaf as a JSON bundle (with its checkpoint when
    one is signed at that size)."""
    with client() as c:
        bundle = c.get(
            f"/v1/tenants/{resolve_tenant(c, tenant)}/ledger/proofs/inclusion",
            index=index,
            size=size,
        )
    text = json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        out.print(text, end="", highlight=False, markup=False, soft_wrap=True)
    else:
        output.write_text(text, encoding="utf-8")


def _load(bundle: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(bundle.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValidationFailed(f"cannot read proof bundle {bundle}: {e}") from e
    if not isinstance(loaded, dict):
        raise ValidationFailed(f"{bundle} is not a proof bundle (a JSON object)")
    return loaded


@ledger_app.command("verify")
def verify_bundle(
    bundle: Annotated[Path, typer.Argument(help="proof bundle (JSON) from `ledger prove`")],
    checkpoint_file: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="signed checkpoint text (default: the bundle's)"),
    ] = None,
    key: Annotated[
        str, typer.Option("--key", help="the log's verifier key, name+hash+base64")
    ] = "",
    as_json: JsonOpt = False,
) -> None:
    """Check a proof bundle offline against a signed checkpoint and the log's verifier
    key; exits 1 with the reason when it fails. Needs no server and no database."""
    if not key:
        raise ValidationFailed("give the log's verifier key with --key (from `ledger status`)")
    found = _load(bundle)
    if checkpoint_file is not None:
        try:
            note = checkpoint_file.read_text(encoding="utf-8")
        except OSError as e:
            raise ValidationFailed(f"cannot read checkpoint {checkpoint_file}: {e}") from e
    elif isinstance(found.get("checkpoint"), str):
        note = found["checkpoint"]
    else:
        raise ValidationFailed(
            f"{bundle} carries no checkpoint: pass one with --checkpoint FILE"
            " (`quanyu ledger checkpoint -o FILE`)"
        )
    try:
        done = verify(found, note, key)
    except BundleError as e:
        raise ValidationFailed(f"verification failed: {e}") from e
    result = {"ok": True, "origin": done.origin, "tree_size": done.tree_size,
              "root": done.root, "statement": done.statement}  # fmt: skip
    if as_json:
        show(result, [], as_json=True)
    else:
        out.print(f"OK: {done.statement} ({done.origin}, root {done.root})", highlight=False)
