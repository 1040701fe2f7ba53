"""The demo's one-item-one-code data: a product per brand, printed and activated codes,
shipments to dealers, stores receiving them, consumer scans across cities, a dealer whose
cases turn up outside its region, and the alerts that follow.

Everything goes through the REST API, as a brand's systems would send it.
"""

from __future__ import annotations

import io
import random
import zipfile
from typing import Any

from quanyu.client import Client

#: (brand key, GTIN without its check digit, product name)
PRODUCTS = (
    ("lumi", "690123456001", "Lumi 焕采精华 30ml"),
    ("petal", "690123456002", "Petal 婴儿润肤乳 200ml"),
    ("pure", "690123456003", "Pure 浓缩洗衣液 2kg"),
)
#: (id, name, authorised region)
DEALERS = (
    ("east-dealer", "华东经销商", "上海,江苏,浙江"),
    ("south-dealer", "华南经销商", "广东,福建"),
    ("west-dealer", "西南经销商", "四川,重庆"),
)
#: (id, name, dealer, city) — the last store sells the east dealer's goods in 成都
STORES = (
    ("sh-store", "上海南京路店", "east-dealer", "上海"),
    ("hz-store", "杭州湖滨店", "east-dealer", "杭州"),
    ("gz-store", "广州天河店", "south-dealer", "广州"),
    ("cd-store", "成都春熙路店", "west-dealer", "成都"),
)
CITIES = ("上海", "杭州", "苏州", "南京", "广州", "深圳", "成都", "重庆", "北京", "武汉")
CODES_PER_PRODUCT = 300
#: within the public endpoint's burst for one IP (the demo sends from one machine)
CONSUMER_SCANS = 25


def gtin13(body: str) -> str:
    """``body`` (12 digits) with its GS1 check digit."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def _serials(client: Client, base: str, order_id: str) -> list[str]:
    package = client.download(f"{base}/orders/{order_id}/package")
    with zipfile.ZipFile(io.BytesIO(package)) as z:
        names = [n for n in z.namelist() if n.endswith(".csv")]
        lines = z.read(names[0]).decode().splitlines()[1:]
    return [line.split(",")[1] for line in lines]


def load_codes(client: Client, *, tenant: str, brands: dict[str, str], seed: int) -> dict[str, Any]:
    """Create the demo's codes, move them through their lifecycle and scan them."""
    rng = random.Random(seed)
    base = f"/v1/tenants/{tenant}/codes"
    for key, brand_id in brands.items():
        client.put(f"{base}/brands/{brand_id}", {"short_domain": f"t.{key}.example.cn"})
    for dealer_id, name, region in DEALERS:
        client.post(f"{base}/dealers", {"id": dealer_id, "name": name, "region": region})
    for store_id, name, dealer_id, city in STORES:
        client.post(
            f"{base}/stores", {"id": store_id, "name": name, "dealer_id": dealer_id, "city": city}
        )
    serials: list[str] = []
    for key, body, name in PRODUCTS:
        product = client.post(
            f"{base}/products", {"gtin": gtin13(body), "brand_id": brands[key], "name": name}
        )
        order = client.post(
            f"{base}/orders",
            {"product_id": product["id"], "quantity": CODES_PER_PRODUCT, "line": "L1", "lot": "D1"},
        )["order"]["id"]
        client.post(f"{base}/print", {"order_id": order})
        client.post(f"{base}/activate", {"order_id": order})
        made = _serials(client, base, order)
        third = len(made) // 3
        for i, (dealer_id, *_rest) in enumerate(DEALERS):  # a third to each dealer, 10% kept
            part = made[i * third : (i + 1) * third - third // 10]
            client.post(f"{base}/ship", {"codes": part, "dealer_id": dealer_id})
            stores = [s for s in STORES if s[2] == dealer_id]
            client.post(
                f"{base}/receive", {"codes": part[: len(part) // 2], "store_id": stores[0][0]}
            )
        serials.extend(made)
    # the east dealer's goods sold by a store in 成都: scans outside its region
    east = serials[: CODES_PER_PRODUCT // 3 // 2]
    client.post(
        f"/v1/tenants/{tenant}/scans",
        {"codes": east[:40], "role": "store", "party_id": "cd-store", "city": "成都"},
    )
    scanned = 0
    for _ in range(CONSUMER_SCANS):
        code = rng.choice(serials)
        client.post(
            f"/v1/public/tenants/{tenant}/scans",
            {
                "code": code,
                "city": rng.choice(CITIES),
                "device_id": f"demo-device-{rng.randrange(400)}",
                "openid": f"o_demo_scan_{rng.randrange(200)}",
                "app_id": "wx_demo_scan",
            },
        )
        scanned += 1
    alerts = client.post(f"/v1/tenants/{tenant}/scans/anomalies/detect", {})
    return {"codes": len(serials), "scans": scanned, "alerts": alerts}
