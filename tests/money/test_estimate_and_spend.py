"""Cost before a run (the plan's estimate) and spend after it (what was charged)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from runner.layout import MANIFEST
from runner.manifest import read_state
from runner.sandbox import RunningSandbox

from .conftest import MIXED, catalog, fast, invoke, oracle_price

# One model whose price the docs state (in the shipped snapshot), one they do not.
SNAPSHOT_AND_UNKNOWN = """\
version: 1
name: prices
provider: aimlapi
params:
  prompt: A lighthouse at dusk, waves below
jobs:
  i2v:
    model: alibaba/wan-2-6-i2v
    matrix: {resolution: ["720p", "1080p"], duration: [5, 10]}
    params:
      image_url: https://example.com/first-frame.png
  t2v:
    model: alibaba/wan-2-6-t2v
    matrix: {resolution: ["720p", "1080p"], duration: [5, 10]}
output: "{{ model | replace('/', '-') }}/{{ resolution }}-{{ duration }}s.mp4"
"""


def test_plan_estimate_matches_the_sandbox_price_list(
    sandbox: RunningSandbox, write_spec: Callable[..., Path]
) -> None:
    """Two models x two resolutions x 5 and 10 s: each estimate is the catalog's price
    per second of that model at that resolution times the seconds; the total adds up."""
    spec = write_spec(MIXED)
    result = invoke("plan", "--json", "--base-url", sandbox.base_url, spec)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    body = catalog(sandbox)
    rows = plan["requests"]
    assert len(rows) == plan["submissions"] == 8
    expected = {r["id"]: oracle_price(body, r["model"], r["payload"]) for r in rows}
    assert {r["id"]: r["estimated_usd"] for r in rows} == pytest.approx(expected)
    assert len(set(expected.values())) == 8  # every model, resolution and length differs
    assert plan["estimated_usd"] == pytest.approx(sum(expected.values()))  # type: ignore[arg-type]
    assert plan["unpriced"] == 0
    assert sandbox.base_url in plan["prices"] and "fetched just now" in plan["prices"]

    text = invoke("plan", "--base-url", sandbox.base_url, spec).stdout.splitlines()
    first = next(r for r in rows if r["id"] in text[0])
    assert text[0].endswith(f"  ${first['estimated_usd']:,.2f}")  # per request...
    assert text[-1].startswith(f"estimated cost: ${plan['estimated_usd']:,.2f} — prices from")


def test_the_price_list_is_cached_and_revalidated_with_its_etag(
    sandbox: RunningSandbox, write_spec: Callable[..., Path]
) -> None:
    """The first plan downloads the catalog, the next sends If-None-Match and gets a
    304; with the server gone, the cached list still prices the plan and says so."""
    spec = write_spec(MIXED)
    first = json.loads(invoke("plan", "--json", "--base-url", sandbox.base_url, spec).stdout)
    again = json.loads(invoke("plan", "--json", "--base-url", sandbox.base_url, spec).stdout)
    stats = sandbox.stats()
    assert (stats["price_queries"], stats["price_not_modified"]) == (2, 1)
    assert again["estimated_usd"] == first["estimated_usd"]
    base = sandbox.base_url
    sandbox.stop()
    offline = json.loads(invoke("plan", "--json", "--base-url", base, spec).stdout)
    assert offline["estimated_usd"] == first["estimated_usd"]
    assert "offline" in offline["prices"] and "the cached list" in offline["prices"]


def test_without_any_list_a_price_is_unknown_never_free(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    """No server and no cache: the shipped snapshot prices what the docs state; a model
    it does not know is `unknown`, and the total says how many are unpriced."""
    spec = write_spec(SNAPSHOT_AND_UNKNOWN)
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    plan = json.loads(invoke("plan", "--json", "--base-url", dead, spec).stdout)
    priced = [r for r in plan["requests"] if r["model"] == "alibaba/wan-2-6-i2v"]
    unknown = [r for r in plan["requests"] if r["model"] == "alibaba/wan-2-6-t2v"]
    assert len(priced) == len(unknown) == 4
    # The docs' example: Wan 2.6 i2v, 5 s is about $0.79 ($0.158 a second).
    assert sorted(r["estimated_usd"] for r in priced) == pytest.approx([0.79, 0.79, 1.58, 1.58])
    assert all(r["estimated_usd"] is None for r in unknown)
    assert plan["unpriced"] == 4 and plan["estimated_usd"] == pytest.approx(4.74)
    assert "shipped snapshot" in plan["prices"] and "offline" in plan["prices"]
    text = invoke("plan", "--base-url", dead, spec).stdout
    assert "price unknown" in text and "+ 4 of unknown price (not free)" in text


def test_run_records_what_the_sandbox_charged(
    sandbox: RunningSandbox, write_spec: Callable[..., Path], workdir: Path
) -> None:
    """Each accepted submission's charge lands in the manifest, the sidecar, the lock
    file, the JSON and JUnit reports, the summary and `status`; all of it equals what the
    sandbox billed (its usage log, row by row); a failed generation costs nothing."""
    spec = write_spec(MIXED)
    sandbox.configure(faults={"failed_generation": {"first": 1}})
    result = invoke("run", spec, *fast(sandbox), "--report", "r.json", "--report", "r.xml")
    assert result.exit_code == 1, result.output  # the doomed one failed
    billed = sandbox.stats()["billed_usd"]
    logs = httpx.get(f"{sandbox.base_url}/v2/logs?period=24h&limit=100",
                     headers={"Authorization": "Bearer x"}).json()
    charged = {row["inference_id"]: row["cost"]["usd"] for row in logs["data"]}
    assert sum(charged.values()) == pytest.approx(billed) and billed > 0
    assert sorted(charged.values())[0] == 0  # the failed generation's row costs 0

    states = read_state(workdir / "outputs" / "prices")
    failed = [s for s in states.values() if s.status == "failed"]
    assert len(failed) == 1 and failed[0].stage == "generate"
    for state in states.values():
        if state.status == "done":
            assert state.cost is not None
            assert state.cost["usd"] == pytest.approx(charged[state.generation_id])
            assert state.cost["credits"] == round(state.cost["usd"] * 2_000_000)
            sidecar = json.loads((workdir / "outputs/prices" / state.output).with_suffix(
                ".json").read_text())
            assert sidecar["cost"] == state.cost
    lock = [json.loads(line) for line in Path("prices.yaml.lock").read_text().splitlines()
            if line.startswith("{")]
    done = {e["id"]: e for e in lock if e.get("state") == "done"}
    assert len(done) == 7
    assert sum(e["cost"]["usd"] for e in done.values()) == pytest.approx(billed)

    report = json.loads(Path("r.json").read_text())
    assert report["submissions"] == 8 and report["spent_usd"] == pytest.approx(billed)
    by_id = {r["id"]: r for r in report["requests"]}
    assert by_id[failed[0].id]["usd"] == 0
    xml = ET.parse("r.xml").getroot()
    usd = [float(p.get("value")) for p in xml.iter("property") if p.get("name") == "usd"]
    assert sum(usd) == pytest.approx(billed)
    estimated = sum(r.get("estimated_usd") or 0 for r in by_id.values())
    assert f"spent ${billed:,.2f} of an estimated $" in result.stdout
    assert estimated >= 0  # the report carries what was charged; the summary the estimate

    status = json.loads(invoke("status", "--json", spec).stdout)
    (mine,) = status["specs"]
    assert mine["spent_usd"] == pytest.approx(billed) == status["spent_usd"]
    assert f"${billed:,.2f} spent" in invoke("status", spec).stdout
    assert (workdir / "outputs/prices" / MANIFEST).is_file()
