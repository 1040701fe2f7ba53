"""The ledger over HTTP (in-process app) and ``quanyu ledger verify`` offline."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from quanyu.api.app import create_app
from quanyu.config import Settings
from quanyu.errors import ValidationFailed
from quanyu.ledger import merkle, service
from quanyu.ledger.log import Leaf

ADMIN = {"Authorization": "Bearer t"}


def _app(tmp_path: Path):  # type: ignore[no-untyped-def]
    from quanyu.api import ledger

    app = create_app(Settings(data_dir=tmp_path / "data"), local_token="t")
    paths = {getattr(r, "path", "") for r in app.routes}
    if not {getattr(r, "path", "") for r in ledger.router.routes} <= paths:
        app.include_router(ledger.router)
    return app


def test_ledger_over_http_and_cli_verify(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    with TestClient(_app(tmp_path)) as c:
        tenant = c.post("/v1/tenants", json={"name": "Guizhou"}, headers=ADMIN).json()["id"]
        base = f"/v1/tenants/{tenant}/ledger"
        assert c.get(base).status_code == 401
        empty = c.get(base, headers=ADMIN).json()
        assert empty["size"] == 0 and empty["latest_checkpoint"] is None
        assert empty["root"] == merkle.EMPTY_ROOT.hex()
        assert c.get(f"{base}/checkpoints/latest", headers=ADMIN).status_code == 404
        data = [b'{"code":"K7Q2M9XW4T3PH8D%d","step":"activated"}' % i for i in range(20)]
        with c.app.state.engine.connect() as db:  # type: ignore[attr-defined]
            service.append_committed(
                db,
                tenant,
                [Leaf("code", f"code:{i}", merkle.leaf_hash(d), d) for i, d in enumerate(data)],
            )
        made = c.post(f"{base}/checkpoints", headers=ADMIN)
        assert made.status_code == 201, made.text
        note = made.json()["note"]
        latest = c.get(f"{base}/checkpoints/latest", headers=ADMIN)
        assert latest.text == note and latest.headers["content-type"].startswith("text/plain")
        status = c.get(base, headers=ADMIN).json()
        key = status["verifier_key"]
        assert status["size"] == 20 and status["latest_checkpoint"]["tree_size"] == 20
        assert status["root"] == merkle.mth([merkle.leaf_hash(d) for d in data]).hex()

        leaf = c.get(f"{base}/leaves/13", headers=ADMIN).json()
        assert leaf["leaf_data"] == data[13].decode() and leaf["kind"] == "code"
        assert c.get(f"{base}/leaves/20", headers=ADMIN).status_code == 404
        bundle = c.get(f"{base}/proofs/inclusion", params={"index": 13}, headers=ADMIN).json()
        assert bundle["tree_size"] == 20 and bundle["checkpoint"] == note
        bad = c.get(f"{base}/proofs/inclusion", params={"index": 3, "size": 99}, headers=ADMIN)
        assert bad.status_code == 404 and "has 20 leaves" in bad.json()["message"]
        cons = c.get(f"{base}/proofs/consistency", params={"old": 7, "new": 20}, headers=ADMIN)
        assert cons.status_code == 200 and cons.json()["old_checkpoint"] is None

        # the public verify endpoint: no key needed
        ask = {"checkpoint": note, "verifier_key": key, "index": 13,
               "leaf_hash": bundle["leaf_hash"], "proof": bundle["proof"]}  # fmt: skip
        ok = c.post("/v1/ledger/verify", json=ask).json()
        assert ok["ok"] is True and ok["tree_size"] == 20 and ok["root"] == status["root"]
        wrong = c.post("/v1/ledger/verify", json={**ask, "index": 12}).json()
        assert wrong["ok"] is False and "does not lead to the root" in wrong["reason"]
        forged = note.replace("\n20\n", "\n21\n")
        refused = c.post("/v1/ledger/verify", json={**ask, "checkpoint": forged}).json()
        assert refused["ok"] is False and "signature" in refused["reason"]
        as_cons = {"checkpoint": note, "verifier_key": key, "type": "consistency",
                   "old_size": 7, "old_root": cons.json()["old_root"],
                   "proof": cons.json()["proof"]}  # fmt: skip
        assert c.post("/v1/ledger/verify", json=as_cons).json()["ok"] is True

    # offline: a bundle, a checkpoint file and the key — no server, no database
    from quanyu.cli_ledger import ledger_app

    (tmp_path / "bundle.json").write_text(json.dumps(bundle))
    (tmp_path / "checkpoint.txt").write_text(note)
    args = ["verify", str(tmp_path / "bundle.json"), "--checkpoint",
            str(tmp_path / "checkpoint.txt"), "--key", key]  # fmt: skip
    run = CliRunner().invoke(ledger_app, args)
    assert run.exit_code == 0, run.output
    assert "OK: leaf 13" in run.output
    (tmp_path / "bundle.json").write_text(json.dumps({**bundle, "leaf_data": "forged"}))
    failed = CliRunner().invoke(ledger_app, args)
    assert failed.exit_code != 0 and isinstance(failed.exception, ValidationFailed)
    assert "leaf_hash is not SHA-256(0x00 || leaf_data)" in str(failed.exception)
    (tmp_path / "bundle.json").write_text(json.dumps(bundle))
    (tmp_path / "checkpoint.txt").write_text(note.replace("\n20\n", "\n19\n"))
    failed = CliRunner().invoke(ledger_app, args)
    assert failed.exit_code != 0 and "does not verify" in str(failed.exception)
