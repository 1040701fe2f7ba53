"""The codes REST API and the ``quanyu codes`` CLI, end to end on a real database: set
up a brand and product, generate, print, activate, pack, ship, package, QR; scopes and
errors as JSON."""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from quanyu.api import codes as codes_api
from quanyu.api import local
from quanyu.api.app import create_app
from quanyu.codes import packages
from quanyu.config import Settings
from quanyu.errors import QuanyuError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ADMIN = {"Authorization": "Bearer t"}


def _with_codes(app: Any) -> Any:
    paths = {getattr(r, "path", "") for r in app.routes}
    if not {getattr(r, "path", "") for r in codes_api.router.routes} <= paths:
        app.include_router(codes_api.router)
    return app


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    app = _with_codes(create_app(Settings(data_dir=tmp_path / "data"), local_token="t"))
    with TestClient(app) as c:
        yield c


def test_codes_over_http(api: TestClient) -> None:
    def call(method: str, path: str, status: int = 200, **kw: Any) -> Any:
        r = api.request(method, path, headers=ADMIN, **kw)
        assert r.status_code == status, r.text
        return r.json() if r.headers["content-type"].startswith("application/json") else r

    tenant = call("POST", "/v1/tenants", 201, json={"name": "Gui"})["id"]
    brand = call("POST", f"/v1/tenants/{tenant}/brands", 201, json={"name": "G"})["id"]
    base = f"/v1/tenants/{tenant}/codes"
    call("PUT", f"{base}/brands/{brand}", json={"short_domain": "t.brand.cn"})
    bad = call(
        "POST",
        f"{base}/products",
        400,
        json={"gtin": "6901234567891", "brand_id": brand, "name": "x"},
    )
    assert bad["code"] == "validation_failed" and "check digit" in bad["message"]
    product = call(
        "POST",
        f"{base}/products",
        201,
        json={"gtin": "6901234567892", "brand_id": brand, "name": "x"},
    )["id"]
    made = call(
        "POST",
        f"{base}/orders",
        201,
        json={"product_id": product, "quantity": 5, "line": "L1", "lot": "B1"},
    )
    order = made["order"]["id"]
    assert made["added"] == 5
    case = call(
        "POST",
        f"{base}/orders",
        201,
        json={"product_id": product, "quantity": 1, "line": "L1", "lot": "B1", "level": "case"},
    )["order"]["id"]
    for o in (order, case):
        assert call("POST", f"{base}/print", json={"order_id": o})["action"] == "print"
        call("POST", f"{base}/activate", json={"order_id": o})

    pkg = call("GET", f"{base}/orders/{order}/package")
    with zipfile.ZipFile(io.BytesIO(pkg.content)) as z:
        manifest = json.loads(z.read("manifest.json"))
        body = z.read(manifest["file"])
    key = call("GET", f"{base}/package-key")
    packages.verify_package(manifest, body, key["public_key"])
    serials = [line.split(",")[1] for line in body.decode().splitlines()[1:]]
    not_a_code = call("GET", f"{base}/lookup", params={"code": f"{case}"}, status=422)
    assert not_a_code["code"] == "forged_code"

    case_pkg = call("GET", f"{base}/orders/{case}/package")
    with zipfile.ZipFile(io.BytesIO(case_pkg.content)) as z:
        m = json.loads(z.read("manifest.json"))
    call("POST", f"{base}/dealers", 201, json={"id": "d1", "name": "D", "region": "CN-GZ"})
    refused = call("POST", f"{base}/ship", 409, json={"codes": [m["first"]], "dealer_id": "d1"})
    assert refused["code"] == "illegal_transition" and "empty" in refused["message"]
    call("POST", f"{base}/aggregate", json={"parent": m["first"], "children": serials[:3]})
    shipped = call("POST", f"{base}/ship", json={"codes": [m["first"]], "dealer_id": "d1"})
    assert shipped["count"] == 4
    info = call("GET", f"{base}/lookup", params={"code": serials[0]})
    assert (info["state"], info["region"], info["parent_code"]) == (
        "shipped",
        "CN-GZ",
        m["first"][:16],
    )
    assert call("GET", f"{base}/orders/{order}/states") == {"activated": 2, "shipped": 3}
    forged = serials[0][:19] + ("0" if serials[0][19] != "0" else "1")
    assert call("GET", f"{base}/lookup", 422, params={"code": forged})["code"] == "forged_code"
    png = call("GET", f"{base}/qr", params={"code": serials[0]})
    assert png.content.startswith(b"\x89PNG")
    evs = call("GET", f"{base}/events")
    assert [e["action"] for e in evs][-3:] == ["activate", "aggregate", "ship"]
    assert api.get(f"{base}/events").status_code == 401
    reader = call(
        "POST", f"/v1/tenants/{tenant}/keys", 201, json={"name": "r", "scopes": ["codes:read"]}
    )["secret"]
    auth = {"Authorization": f"Bearer {reader}"}
    assert api.get(f"{base}/orders", headers=auth).status_code == 200
    assert api.post(f"{base}/print", json={"order_id": order}, headers=auth).status_code == 403


def test_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from quanyu.cli_codes import codes_app

    monkeypatch.setenv("QUANYU_DATA_DIR", str(tmp_path / "data"))
    real = local.create_app
    monkeypatch.setattr(local, "create_app", lambda *a, **k: _with_codes(real(*a, **k)))
    from quanyu.cli import app as main_app

    runner = CliRunner()

    def run(*args: str, app: Any = codes_app) -> str:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    tenant = json.loads(run("tenants", "create", "Gui", "--json", app=main_app))["id"]
    brand = json.loads(run("brands", "create", "G", "--tenant", tenant, "--json", app=main_app))
    t = ["--tenant", tenant]
    run("brand", brand["id"], "--domain", "t.brand.cn", *t)
    product = json.loads(
        run("product", "6901234567892", "--brand", brand["id"], "--name", "x", "--json", *t)
    )["id"]
    order = json.loads(
        run("order", product, "-n", "2500", "--line", "L1", "--lot", "B", "--json", *t)
    )
    assert order["generated"] == 2500
    run("print", "--order", order["id"], "--to", "10", *t)
    out = run("states", order["id"], "--json", *t)
    assert json.loads(out) == [
        {"state": "issued", "codes": 2490},
        {"state": "printed", "codes": 10},
    ]
    run("package", order["id"], "--out", str(tmp_path / "pkg"), "--to", "10", *t)
    (zip_path,) = (tmp_path / "pkg").glob("*.zip")
    assert "OK, 10 codes" in run("verify-package", str(zip_path), *t)
    with zipfile.ZipFile(zip_path) as z:
        manifest = json.loads(z.read("manifest.json"))
    codes_file = tmp_path / "codes.txt"
    codes_file.write_text(manifest["first"] + "\n" + manifest["last"] + "\n")
    made = json.loads(run("activate", "--file", str(codes_file), "--json", *t))
    assert made["action"] == "activate" and made["count"] == 2
    result = runner.invoke(codes_app, ["print", manifest["first"], *t])
    assert result.exit_code == 1 and isinstance(result.exception, QuanyuError)
    assert f"cannot print item {manifest['first'][:16]}: it is activated" in str(result.exception)
    run("qr", manifest["first"], "--out", str(tmp_path / "qr"), "--format", "svg", *t)
    assert (tmp_path / "qr" / f"{manifest['first']}.svg").read_text().count("<svg") == 1
