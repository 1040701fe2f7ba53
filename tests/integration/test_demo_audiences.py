"""The demo through the CLI against a real server: it loads, resolves, tags, and its
audience counts equal independent DuckDB counts over the same database file."""

from __future__ import annotations

import json

import duckdb
import pytest

from .harness import Server
from .test_cli import cli

# (rule, independent SQL counting the same people over the stored tables)
CASES = [
    (
        'tag("cross_brand_buyer")',
        "SELECT count(*) FROM (SELECT profile_id FROM event_facts WHERE tenant_id = $t"
        " AND event = 'Order Completed' AND brand_id IS NOT NULL GROUP BY profile_id"
        " HAVING count(DISTINCT brand_id) >= 2)",
    ),
    (
        'count(event = "Order Completed") >= 2 and not tag("cross_brand_buyer")',
        "SELECT count(*) FROM (SELECT profile_id FROM event_facts WHERE tenant_id = $t"
        " AND event = 'Order Completed' GROUP BY profile_id HAVING count(*) >= 2"
        " AND count(DISTINCT brand_id) < 2)",
    ),
    (
        'tag("rfm_segment") = "important_value" or tag("lifecycle") = "churned"',
        "SELECT count(DISTINCT profile_id) FROM tag_history WHERE tenant_id = $t"
        " AND valid_to IS NULL AND ((tag_key = 'rfm_segment' AND value = 'important_value')"
        " OR (tag_key = 'lifecycle' AND value = 'churned'))",
    ),
]


@pytest.mark.slow
def test_demo_audience_counts_equal_independent_counts(fresh_server: Server) -> None:
    s = fresh_server
    loaded = cli(s, "demo", "--consumers", "400", timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert "Tags:" in loaded.stdout
    tenant = json.loads((s.data_dir / "demo-keys.json").read_text())["tenant_id"]
    counts = []
    for rule, _ in CASES:
        found = cli(s, "audiences", "count", rule, "--purpose", "analysis", "--channel", "none",
                    "--tenant", tenant, "--json")  # fmt: skip
        assert found.returncode == 0, found.stderr
        counts.append(json.loads(found.stdout)["matched"])
    snaps = cli(s, "audiences", "list", "--tenant", tenant, "--json")
    assert "repeat_buyers" in snaps.stdout
    s.stop()  # the server owns the file; read it directly once it is gone
    con = duckdb.connect(str(s.data_dir / "quanyu.duckdb"), read_only=True)
    try:
        for (rule, sql), got in zip(CASES, counts, strict=True):
            want = con.execute(sql, {"t": tenant}).fetchone()[0]  # type: ignore[index]
            assert got == want, rule
        assert min(counts) > 0
    finally:
        con.close()
