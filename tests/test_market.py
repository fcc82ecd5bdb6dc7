"""The market check: ``vastbuild offers``, the market in ``plan``/``deploy`` and
``check --online``, end to end: the CLI in its own process against a real dev-server
process and its built-in market. Each returned offer is checked against the
Vastfile's terms here, independently of the search body; the body itself is
compared with what the vastai package's own query parser makes of the
registration's ``search_params``."""

from __future__ import annotations

import json
import operator
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from build_helpers import vastbuild
from conftest import RunningDevServer
from vastai.api.query import offers_alias, offers_fields, offers_mult, parse_query

from vastbuild.api import connect, load, market_check
from vastbuild.catalog import catalog
from vastbuild.market import search_body
from vastbuild.model import Deployment, SearchTerm
from vastbuild.wire import search_params

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TARGETS = ("llm", "embed", "imagegen", "whisper")
#: a Vastfile using every kind of REQUIRE value the query parser types differently
EVERY_KIND = """\
CODE app.py
FROM vastai/base:1 STORAGE 0.2TB
REQUIRE gpu_name == RTX_4090 AND cpu_ram >= 32GB AND gpu_total_ram <= 96000MB
REQUIRE duration >= 36h AND compute_cap >= 800 AND cuda_max_good >= 12.1
REQUIRE geolocation NOTIN [CN, RU] AND datacenter == true AND disk_space >= 100
REQUIRE driver_version >= 535.86.05 AND cpu_name == "AMD EPYC 7B13" AND verified == false
"""
#: the term no GPU satisfies: 1000 GB of VRAM
IMPOSSIBLE = "REQUIRE gpu_ram >= 1000"


def vastfile(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text("print('hi')\n")
    (folder / "Vastfile").write_text(text)
    return folder


@pytest.mark.parametrize("target", [*(EXAMPLES / t for t in TARGETS), ROOT / "Vastfile.example",
                                    "every-kind"])
def test_the_body_is_what_vast_parses_from_the_registrations_search(
        target: Path | str, tmp_path: Path) -> None:
    if target == "every-kind":
        target = vastfile(tmp_path / "svc", EVERY_KIND)
    model = load(target)
    body = search_body(model, order="dph_total,reliability-", offer_type="bid", limit=7)
    sent = search_params(model)
    assert {k: v for k, v in body.items()
            if k not in ("order", "type", "limit", "allocated_storage")} \
        == parse_query(sent, {}, offers_fields, offers_alias, offers_mult)
    assert (body["order"], body["type"], body["limit"], body["allocated_storage"]) == (
        [["dph_total", "asc"], ["reliability", "desc"]], "bid", 7, float(model.storage))


def test_the_sdks_unit_pitfall_is_not_ours(tmp_path: Path) -> None:
    """``gpu_ram >= 48`` means 48 GB: 48000 MB on the wire, not the SDK's 48 MB."""
    model = load(vastfile(tmp_path / "svc", "CODE app.py\nFROM vastai/base:1\n"
                                            "REQUIRE gpu_ram >= 48\n"))
    assert "gpu_ram>=48" in search_params(model).split()
    assert search_body(model)["gpu_ram"] == {"gte": 48000.0}


# -- against the dev server -------------------------------------------------------------

@pytest.fixture(scope="module")
def server(dev_server_module: RunningDevServer) -> RunningDevServer:
    answer = requests.post(f"{dev_server_module.url}/api/v0/bundles/", json={"limit": 1},
                           headers=dev_server_module.auth(), timeout=10)
    if answer.status_code == 404:
        pytest.fail("the dev server has no POST /api/v0/bundles/")
    return dev_server_module


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example monorepo, plus a target no machine can serve."""
    root = tmp_path_factory.mktemp("market") / "examples"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns(
        "__pycache__", "*.pyc", "out", ".vastbuild*", "plugins"))
    vastfile(root / "huge", "DEPLOYMENT huge\nCODE app.py\nFROM vastai/base:1\n"
                            f"REQUIRE num_gpus == 1\n{IMPOSSIBLE}\n")
    return root


def run(server: RunningDevServer, root: Path, cache: Path, *args: str,
        key: int = 0) -> subprocess.CompletedProcess[str]:
    """``vastbuild --cache-dir CACHE ARGS --api-url URL`` with the server's key."""
    return vastbuild("--cache-dir", str(cache), *args, "--api-url", server.url, cwd=root,
                     env={"VAST_API_KEY": server.keys[key], "VAST_API_URL": None})


def as_json(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return {t["label"].removeprefix("//"): t for t in json.loads(result.stdout)["targets"]}


def searches(server: RunningDevServer) -> int:
    """The offer searches the server has answered (its access log)."""
    return server.output().count("POST /api/v0/bundles/")


def satisfies(offer: dict[str, Any], term: SearchTerm) -> bool:
    """Whether an offer meets one REQUIRE term, read from the offer's own fields: a
    virtual column from the field it stands for, GB and days in the offer's MB and
    seconds."""
    if term.column == "verified":
        value: Any = offer["verification"] == "verified"
    elif term.column == "geolocation":
        value = offer["geolocation"].rsplit(",", 1)[-1].strip()
    else:
        value = offer[term.column]
    factor = catalog().unit_multipliers.get(term.column, 1)
    wanted = term.value if isinstance(term.value, tuple) else (term.value,)
    wanted = tuple(w * factor if isinstance(w, int | float) and not isinstance(w, bool)
                   else w for w in wanted)
    if term.op in ("in", "notin"):
        return (value in wanted) == (term.op == "in")
    compare = {"eq": operator.eq, "neq": operator.ne, "gt": operator.gt, "gte": operator.ge,
               "lt": operator.lt, "lte": operator.le}[term.op]
    return bool(compare(value, wanted[0]))


def test_offers_lists_only_offers_meeting_every_term_cheapest_first(
        server: RunningDevServer, workspace: Path, tmp_path: Path) -> None:
    found = as_json(run(server, workspace, tmp_path, "offers", *TARGETS, "--json",
                        "--limit", "1000"))
    for target in TARGETS:
        model: Deployment = load(workspace / target)
        offers = found[target]["offers"]
        assert offers and len(offers) == found[target]["matches"], target
        for offer in offers:
            failing = [t for t in model.search if not satisfies(offer, t)]
            assert not failing, f"{target}: offer {offer['id']} fails {failing}"
            assert offer["disk_space"] >= model.storage
        prices = [offer["dph_total"] for offer in offers]
        assert prices == sorted(prices), target
        summary = found[target]["prices"]
        assert (summary["min"], summary["max"]) == (prices[0], prices[-1])


def test_offers_follows_the_order_and_type_asked_and_prints_a_table(
        server: RunningDevServer, workspace: Path, tmp_path: Path) -> None:
    [reserved] = as_json(run(server, workspace, tmp_path, "offers", "whisper", "--json",
                             "--order", "reliability-", "--type", "reserved",
                             "--limit", "1000")).values()
    reliabilities = [offer["reliability"] for offer in reserved["offers"]]
    assert len(reliabilities) > 3 and reliabilities == sorted(reliabilities, reverse=True)
    assert reserved["price_field"] == "discounted_dph_total"
    cheapest = min(offer["discounted_dph_total"] for offer in reserved["offers"])
    assert reserved["prices"]["min"] == cheapest
    table = run(server, workspace, tmp_path, "offers", "whisper", "--limit", "3")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert re.match(r"//whisper  \d+ offers match", lines[0])
    assert lines[1].split() == ["GPU", "N", "VRAM", "GB", "vCPUs", "RAM", "GB", "$/h",
                                "reliab.", "location", "verification"]
    assert lines[5].startswith("  prices    $") and len(lines[2].split()) >= 10
    assert any(line.startswith("  prices    $") for line in lines)
    assert any(line.startswith("  estimate  $") and "idle" in line for line in lines)
    assert any("from the current market" in line for line in lines)


def test_no_match_names_the_term_that_empties_the_market(
        server: RunningDevServer, workspace: Path, tmp_path: Path) -> None:
    where = "huge/Vastfile:5:9"
    shown = run(server, workspace, tmp_path, "offers", "huge")
    assert shown.returncode == 0, shown.stderr
    assert "//huge  0 offers match" in shown.stdout
    assert re.search(rf"{where}: without `gpu_ram>=1000`, \d+ offers would match",
                     shown.stdout), shown.stdout
    assert "num_gpus" not in shown.stdout  # removing that one alone still finds nothing
    planned = run(server, workspace, tmp_path, "plan", "huge")
    assert planned.returncode == 0, planned.stderr
    assert re.search(rf"warning: //huge: no offer .*{where}: without `gpu_ram>=1000`",
                     planned.stderr), planned.stderr
    online = run(server, workspace, tmp_path, "check", "--online", "huge", "llm")
    assert online.returncode == 1
    assert re.search(rf"{where}: error\[E058\]: no offer on Vast's market matches this "
                     r"target's search; without `gpu_ram>=1000`, \d+ offers would match",
                     online.stderr), online.stderr
    assert "5 | REQUIRE gpu_ram >= 1000" in online.stderr  # with its excerpt, as any error
    assert "huge/Vastfile: 1 error" in online.stdout  # never "ok" first
    assert re.search(r"llm/Vastfile: ok \(qwen-chat\)\n  market  \d+ offers? match",
                     online.stdout), online.stdout
    # the same error where code scanning and CI reports read it
    sarif = json.loads(run(server, workspace, tmp_path, "check", "--online", "--format",
                           "sarif", "huge").stdout)
    [result] = [r for r in sarif["runs"][0]["results"] if r["level"] == "error"]
    region = result["locations"][0]["physicalLocation"]["region"]
    assert (result["ruleId"], region["startLine"], region["startColumn"]) == ("E058", 5, 9)
    listed = json.loads(run(server, workspace, tmp_path, "check", "--online", "--format",
                            "json", "huge").stdout)
    assert [d["code"] for d in listed if d["severity"] == "error"] == ["E058"]


def test_plan_json_carries_matches_prices_and_the_cost_estimate(
        server: RunningDevServer, workspace: Path, tmp_path: Path) -> None:
    planned = as_json(run(server, workspace, tmp_path, "plan", "whisper", "huge", "--json"))
    offers = as_json(run(server, workspace, tmp_path, "offers", "whisper", "--json",
                         "--limit", "1000"))["whisper"]
    market = planned["whisper"]["market"]
    assert market["matches"] == offers["matches"] > 0 and market["warning"] is None
    assert set(market["prices"]) == {"min", "median", "p90", "max"}
    cheapest = sorted(offer["dph_total"] for offer in offers["offers"])
    estimate = market["estimate"]
    # whisper: AUTOSCALE cold_workers=0 max_workers=8
    assert (estimate["cold_workers"], estimate["max_workers"]) == (0, 8)
    assert estimate["idle_per_hour"] == 0
    assert estimate["full_per_hour"] == pytest.approx(sum(cheapest[:8]), abs=1e-3)
    assert estimate["basis"] == "estimate from the current market"
    huge = planned["huge"]["market"]
    assert huge["matches"] == 0 and huge["blockers"][0]["term"] == "gpu_ram>=1000"
    assert "gpu_ram>=1000" in huge["warning"]


def test_deploy_require_offers_refuses_before_registering_anything(
        server: RunningDevServer, workspace: Path, tmp_path: Path) -> None:
    refused = run(server, workspace, tmp_path, "deploy", "huge", "--require-offers", key=1)
    assert refused.returncode == 1
    assert "offers are required" in refused.stderr and "gpu_ram>=1000" in refused.stderr
    assert "Traceback" not in refused.stderr
    listing = requests.get(f"{server.url}/api/v0/deployments/", headers=server.auth(1),
                           timeout=10).json()
    assert listing["deployments"] == []


def test_answers_are_cached_for_minutes_and_refresh_asks_again(
        server: RunningDevServer, workspace: Path, tmp_path: Path) -> None:
    before = searches(server)
    first = run(server, workspace, tmp_path, "offers", "embed")
    assert searches(server) == before + 1
    again = run(server, workspace, tmp_path, "offers", "embed")
    assert searches(server) == before + 1, "the second call was answered from the cache"
    assert "answer of the last minutes" in again.stdout
    assert again.stdout.splitlines()[1:] == first.stdout.splitlines()[1:]
    run(server, workspace, tmp_path, "offers", "embed", "--refresh")
    assert searches(server) == before + 2
    run(server, workspace, tmp_path, "plan", "embed")  # the same search: the cache answers
    assert searches(server) == before + 2
    run(server, workspace, tmp_path, "plan", "embed", "--refresh-market")
    assert searches(server) == before + 3
    run(server, workspace, tmp_path, "check", "--online", "embed", "--refresh-market")
    assert searches(server) == before + 4


def test_a_used_up_search_quota_is_said_with_its_reset_time_and_never_retried(
        server: RunningDevServer, workspace: Path, tmp_path: Path) -> None:
    server.inject_fault("POST /api/v0/bundles/", "search_quota", count=3)
    try:
        before = searches(server)
        refused = run(server, workspace, tmp_path, "offers", "llm")
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert re.search(r"daily offer-search quota is used up; it resets at "
                         r"\d{4}-\d\d-\d\d 00:00:00 UTC", refused.stderr), refused.stderr
        assert searches(server) == before + 1, "a used-up quota is not asked again"
        planned = run(server, workspace, tmp_path, "plan", "llm", "--json")
        assert planned.returncode == 0, planned.stderr  # only a warning for a plan
        assert "warning: //llm: the market check failed" in planned.stderr
        assert as_json(planned)["llm"]["market"]["matches"] is None
    finally:
        requests.delete(f"{server.url}/_dev/faults",
                        headers={"X-Dev-Admin-Token": server.admin_token}, timeout=10)


def test_the_sdks_spelling_of_48_gb_matches_every_gpu_and_ours_does_not(
        server: RunningDevServer, tmp_path: Path) -> None:
    """The pitfall docs/market.md shows: ``gpu_ram>=0.048`` (what the SDK sends for
    ``gpu_ram >= 48``) is 48 MB, which leaves the market as it is."""
    base = "CODE app.py\nFROM vastai/base:1\nREQUIRE num_gpus == 1\n"
    targets = [vastfile(tmp_path / name, base + extra) for name, extra in
               (("any", ""), ("sdk", "REQUIRE gpu_ram >= 0.048\n"),
                ("ours", "REQUIRE gpu_ram >= 48\n"))]
    with connect(server.keys[0], api_url=server.url) as client:
        counts = [check.count for check in market_check(targets, client=client,
                                                        cache_dir=tmp_path / "cache")]
    assert counts[0] == counts[1] > counts[2] > 0
