"""The dev server's market: ``POST /api/v0/bundles/`` over the built-in offers or ``--offers``.

The route is tested against a real server process; the filter's agreement with
Vast's query language on many generated text queries runs in-process (each
query turned into a body by the vastai package's own ``parse_query``, as its
CLI does) against an oracle written here from the language's meaning, with a
handful of the same queries sent over HTTP as well.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import operator
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from build_helpers import vastbuild
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vastai.api.query import offers_alias, offers_fields, offers_mult, parse_query

from vastbuild.catalog import catalog
from vastbuild.devserver.market import (
    BID,
    ON_DEMAND,
    RESERVED,
    InvalidQuery,
    Market,
    built_in_offers,
    price,
)
from vastbuild.errors import VastbuildError

if TYPE_CHECKING:
    from conftest import RunningDevServer, StartDevServer

TIMEOUT = 10
MARKET = Market(built_in_offers())
#: The defaults the vastai CLI puts under every text query.
CLI_DEFAULTS = {"verified": {"eq": True}, "external": {"eq": False}, "rentable": {"eq": True}}


def search(server: RunningDevServer, body: object) -> requests.Response:
    return requests.post(f"{server.url}/api/v0/bundles/", json=body, headers=server.auth(),
                         timeout=TIMEOUT)


def offers_of(server: RunningDevServer, body: object) -> list[dict[str, Any]]:
    answer = search(server, body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    offers: list[dict[str, Any]] = answer.json()["offers"]
    return offers


def text_body(query: str, defaults: Mapping[str, Any] | None = None,
              **settings_: Any) -> dict[str, Any]:
    """The body the vastai CLI sends for a text query (its warnings silenced)."""
    with contextlib.redirect_stderr(io.StringIO()):
        body: dict[str, Any] = parse_query(query, copy.deepcopy(dict(defaults or {})),
                                           offers_fields, offers_alias, offers_mult)
    return {**body, **settings_}


# the market itself


def test_the_built_in_market_is_fixed_and_plausible() -> None:
    offers = built_in_offers()
    assert len(offers) >= 300 and len({offer["id"] for offer in offers}) == len(offers)
    names = {offer["gpu_name"] for offer in offers}
    assert len(names) >= 30 and names <= catalog().gpu_names
    assert {offer["num_gpus"] for offer in offers} == {1, 2, 4, 8}
    for offer in offers:
        assert offer["gpu_total_ram"] == offer["gpu_ram"] * offer["num_gpus"]
        assert 0 < offer["min_bid"] < offer["dph_base"] and 0 < offer["reliability"] <= 1
    for field in ("rented", "external", "gpu_display_active"):
        assert {offer[field] for offer in offers} == {True, False}, field
    assert {offer["verification"] for offer in offers} == {"verified", "unverified",
                                                             "deverified"}
    assert {offer["hosting_type"] for offer in offers} == {0, 1}
    assert len({offer["geolocation"][-2:] for offer in offers}) >= 10
    assert built_in_offers.__wrapped__() == offers  # a pure function: the same every time


def test_the_docs_state_the_built_in_market() -> None:
    docs = (Path(__file__).parent.parent / "docs" / "dev-server.md").read_text("utf-8")
    offers = built_in_offers()
    assert f"holds {len(offers)} offers" in docs
    defaults = MARKET.search({**CLI_DEFAULTS, "rented": {"eq": False}, "allocated_storage": 5})
    assert f"{len(defaults)} offers match" in docs


def test_sdk_keys_bare_values_and_missing_values() -> None:
    """A bare ``target_reliability`` is a minimum, a bare value an ``eq``, the SDK's
    shaping keys are ignored; offers without a value (AMD's compute_cap) sort last."""
    offers = MARKET.search({"target_reliability": 0.9, "external": False, "extra_ids": [1],
                            "select_cols": ["*"], "allocated_storage": 0,
                            "order": [["compute_cap", "asc"]]})
    assert offers and all(offer["expected_reliability"] >= 0.9 and not offer["external"]
                          for offer in offers)
    caps = [offer["compute_cap"] for offer in offers]
    assert None in caps and caps.index(None) > 0
    assert all(cap is None for cap in caps[caps.index(None):])
    assert caps[:caps.index(None)] == sorted(caps[:caps.index(None)])
    assert all(offer["compute_cap"] is None
               for offer in MARKET.search({"compute_cap": {"eq": None}}))


def test_an_empty_offers_file_is_an_empty_market(tmp_path: Path) -> None:
    path = tmp_path / "offers.json"
    path.write_text("[]")
    assert Market.load(path).search({}) == []


# the route, on a real server


@pytest.fixture(scope="module")
def server(start_dev_server: StartDevServer) -> RunningDevServer:
    return start_dev_server()


def test_the_route_answers_the_cli_search(server: RunningDevServer) -> None:
    body = text_body("gpu_ram>=48 num_gpus=1", CLI_DEFAULTS, order=[["score", "desc"]],
                     type="on-demand", allocated_storage=5.0)
    assert body["num_gpus"] == {"eq": "1"}  # a string the server coerces
    offers = offers_of(server, body)
    assert offers, "the default search of the spec matches something"
    for offer in offers:
        assert (offer["gpu_ram"] >= 48000 and offer["num_gpus"] == 1 and offer["rentable"]
                and offer["verification"] == "verified" and not offer["external"]
                and offer["disk_space"] >= 5)
    scores = [offer["score"] for offer in offers]
    assert scores == sorted(scores, reverse=True)
    assert [offer["id"] for offer in offers] == [offer["id"] for offer in MARKET.search(body)]
    assert requests.post(f"{server.url}/api/v0/bundles", json={},
                         timeout=TIMEOUT).status_code == 401


def test_filters_order_and_limit(server: RunningDevServer) -> None:
    body = text_body("gpu_name in [RTX_4090,RTX_5090,H100_SXM] dph_total<4 reliability>0.9",
                     order=[["num_gpus", "desc"], ["dph_total", "asc"]], limit=7)
    assert body["gpu_name"] == {"in": ["RTX 4090", "RTX 5090", "H100 SXM"]}
    offers = offers_of(server, body)
    everything = offers_of(server, {**body, "limit": None})
    assert len(offers) == 7 < len(everything) and offers == everything[:7]
    for offer in everything:
        assert offer["gpu_name"] in ("RTX 4090", "RTX 5090", "H100 SXM")
        assert offer["dph_total"] < 4 and offer["reliability"] > 0.9
    keys = [(-offer["num_gpus"], offer["dph_total"]) for offer in everything]
    assert keys == sorted(keys)
    assert offers_of(server, {**body, "limit": 0}) == []


def test_virtual_columns_and_aliases(server: RunningDevServer) -> None:
    offers = offers_of(server, {"geolocation": {"in": ["US", "DE"]}, "datacenter": {"eq": "FALSE"},
                                "verified": {"eq": False}, "cuda_vers": {"gte": "12.6"},
                                "driver_version": {"gte": 550000000}, "dph": {"lt": 30},
                                "allocated_storage": 0})
    assert offers
    for offer in offers:
        assert offer["geolocation"].endswith((", US", ", DE")) and offer["hosting_type"] == 0
        assert offer["verification"] != "verified" and offer["cuda_max_good"] >= 12.6
        assert offer["driver_vers"] >= 550000000 and offer["dph_total"] < 30
    days = offers_of(server, text_body("duration>=30 gpu_ram_GB>=80", allocated_storage=0))
    assert days and all(offer["duration"] >= 30 * 86400 and offer["gpu_ram"] >= 80000
                        for offer in days)


def test_storage_and_type_price_the_offers(server: RunningDevServer) -> None:
    query = {"gpu_name": {"eq": "RTX_4090"}, "order": [["id", "asc"]]}
    small = offers_of(server, {**query, "allocated_storage": 0})
    large = offers_of(server, {**query, "allocated_storage": 720})
    assert large and {offer["id"] for offer in large} < {offer["id"] for offer in small}
    for offer in large:
        assert offer["disk_space"] >= 720
        assert offer["storage_total_cost"] == pytest.approx(offer["storage_cost"])  # 720 GB x h
        assert offer["dph_total"] == pytest.approx(offer["dph_base"] + offer["storage_cost"])
        assert offer["search"]["diskHour"] == offer["storage_total_cost"]
    bids = offers_of(server, {**query, "type": BID, "allocated_storage": 0})
    assert [offer["dph_total"] for offer in bids] == [offer["min_bid"] for offer in small]
    reserved = offers_of(server, {**query, "type": RESERVED, "allocated_storage": 0})
    for offer in reserved:
        assert offer["discounted_dph_total"] == pytest.approx(
            offer["dph_base"] * (1 - offer["discount_rate"]))
        assert offer["dph_total"] == offer["dph_base"]
    cheap = offers_of(server, {**query, "dph_total": {"lt": "0.5"}, "type": BID,
                               "allocated_storage": 0})
    assert len(cheap) > len([o for o in small if o["dph_total"] < 0.5])  # bids are cheaper


@pytest.mark.parametrize(("body", "message"), [
    ([{"gpu_name": {"eq": "RTX 4090"}}], "Invalid query: must be dict of conditions"),
    ("gpu_ram>=48", "Invalid query: must be dict of conditions"),
    ({"gpu_rma": {"gte": 48000}}, "unknown column 'gpu_rma'"),
    ({"num_gpus": {"ge": 1}}, "unknown operator 'ge'"),
    ({"num_gpus": {"gt": "two"}}, "num_gpus takes a number"),
    ({"gpu_name": {"gt": "RTX 4090"}}, "gt needs a number"),
    ({"rented": {"eq": "maybe"}}, "rented takes true or false"),
    ({"order": [["dph_total", "up"]]}, "order takes"),
    ({"order": [["nope", "asc"]]}, "unknown column 'nope'"),
    ({"limit": -1}, "limit must be"),
    ({"type": "spot"}, "type must be one of"),
    ({"allocated_storage": "lots"}, "allocated_storage takes a number"),
])
def test_a_bad_search_is_a_400_that_says_why(server: RunningDevServer, body: object,
                                            message: str) -> None:
    answer = search(server, body)
    assert answer.status_code == 400
    assert message in answer.json()["msg"] and answer.json()["msg"].startswith("Invalid query")


def test_the_search_quota_fault(server: RunningDevServer) -> None:
    server.inject_fault("POST /api/v0/bundles/", "search_quota", count=2)
    for _ in range(2):
        answer = search(server, {})
        assert answer.status_code == 429 and answer.json()["error"] == "search_quota_exceeded"
        reset = int(answer.headers["X-RateLimit-Reset"])
        assert reset % 86400 == 0 and 0 < reset - time.time() <= 86400
    assert search(server, {}).status_code == 200


def test_offers_from_a_file(start_dev_server: StartDevServer, tmp_path: Path) -> None:
    offers = [{"id": 7, "gpu_name": "RTX 4090", "num_gpus": 1, "gpu_ram": 24564,
               "dph_base": 0.5, "storage_cost": 0.1, "disk_space": 100, "reliability": 0.99},
              {"id": 8, "gpu_name": "A100 SXM4", "num_gpus": 8, "gpu_ram": 81920,
               "dph_base": 9.0, "min_bid": 4.0, "disk_space": 1000}]
    path = tmp_path / "offers.json"
    path.write_text(json.dumps(offers))
    own = start_dev_server(args=("--offers", str(path)))
    found = offers_of(own, {"order": [["dph_total", "desc"]], "allocated_storage": 72})
    assert [offer["id"] for offer in found] == [8, 7]
    assert found[1]["dph_total"] == pytest.approx(0.51)
    reliable = offers_of(own, {"reliability": {"gt": 0.5}, "allocated_storage": 0})
    assert [offer["id"] for offer in reliable] == [7]  # offer 8 has no reliability
    assert offers_of(own, {"gpu_ram": {"gte": 48000}})[0]["id"] == 8


@pytest.mark.parametrize(("content", "expected"), [
    ('{"offers": []}', "must be a list of offers, not a dict"),
    ('[{"id": 1, "dph_base": 1}, {"id": 1, "dph_base": 2}]', "offer #2 repeats the id 1"),
    ('[{"id": "x", "dph_base": 1}]', 'offer #1 has no whole-number "id"'),
    ('[{"id": 3}]', "offer #1 (id 3): 'dph_base' must be a number"),
    ('[{"id": 3, "dph_base": 1, "min_bid": "0.5"}]', "'min_bid' must be a number"),
    (b"\xff[]", "the offers file is not UTF-8"),
])
def test_a_bad_offers_file_says_what_is_wrong(tmp_path: Path, content: str | bytes,
                                              expected: str) -> None:
    path = tmp_path / "offers.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(VastbuildError) as raised:
        Market.load(path)
    assert str(raised.value).startswith(str(path)) and expected in str(raised.value)


@pytest.mark.parametrize(("content", "expected", "code"), [
    ('[{"id": 1, "dph_base": 1}\n  {"id": 2}]', "offers.json:2:3: the offers file is not JSON", 1),
    (None, "does not exist", 2),
])
def test_a_bad_offers_file_stops_the_server(tmp_path: Path, content: str | None, expected: str,
                                           code: int) -> None:
    """Before it listens: a file that is not JSON is an input error (1), a missing one a
    usage error (2); neither shows a traceback."""
    path = tmp_path / "offers.json"
    if content is not None:
        path.write_text(content)
    result = vastbuild("dev-server", "--port", "0", "--data", str(tmp_path / "data"),
                       "--offers", str(path), env={"VASTBUILD_DEV_SERVER_API_KEYS": "k"},
                       timeout=60)
    assert result.returncode == code and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "listening" not in result.stderr


# agreement with the vastai package's parse_query


@dataclass(frozen=True)
class Field:
    """A text-query field as the language means it, read straight off an offer."""

    read: Callable[[Mapping[str, Any]], Any]
    kind: str  # number, text, bool, version
    #: text-query unit -> offer unit (GB -> MB, days -> seconds)
    unit: float = 1.0


def _on(column: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda offer: offer.get(column)


FIELDS = {
    "gpu_name": Field(_on("gpu_name"), "text"),
    "num_gpus": Field(_on("num_gpus"), "number"),
    "gpu_ram": Field(_on("gpu_ram"), "number", 1000),
    "gpu_total_ram": Field(_on("gpu_total_ram"), "number", 1000),
    "cpu_ram": Field(_on("cpu_ram"), "number", 1000),
    "cpu_cores_effective": Field(_on("cpu_cores_effective"), "number"),
    "disk_space": Field(_on("disk_space"), "number"),
    "dph_total": Field(_on("dph_total"), "number"),
    "dph": Field(_on("dph_total"), "number"),
    "min_bid": Field(_on("min_bid"), "number"),
    "storage_cost": Field(_on("storage_cost"), "number"),
    "reliability": Field(_on("reliability"), "number"),
    "reliability2": Field(_on("reliability"), "number"),
    "inet_down": Field(_on("inet_down"), "number"),
    "compute_cap": Field(_on("compute_cap"), "number"),
    "cuda_vers": Field(_on("cuda_max_good"), "number"),
    "duration": Field(_on("duration"), "number", 86400),
    "driver_version": Field(_on("driver_version"), "version"),
    "geolocation": Field(lambda offer: offer["geolocation"].rsplit(", ", 1)[1], "text"),
    "verification": Field(_on("verification"), "text"),
    "gpu_arch": Field(_on("gpu_arch"), "text"),
    "cpu_arch": Field(_on("cpu_arch"), "text"),
    "ubuntu_version": Field(_on("os_version"), "text"),
    "verified": Field(lambda offer: offer["verification"] == "verified", "bool"),
    "datacenter": Field(lambda offer: offer["hosting_type"] == 1, "bool"),
    "rentable": Field(_on("rentable"), "bool"),
    "rented": Field(_on("rented"), "bool"),
    "external": Field(_on("external"), "bool"),
    "static_ip": Field(_on("static_ip"), "bool"),
}
SPELLINGS = {"eq": ("=", "==", " eq "), "neq": ("!=", " neq ", " noteq ", " not eq "),
             "gt": (">", " gt "), "gte": (">=", " gte "), "lt": ("<", " lt "),
             "lte": ("<=", " lte "), "in": (" in ",), "notin": (" notin ", " not in ", " nin ")}
OPS_OF_KIND = {"number": ("eq", "neq", "gt", "gte", "lt", "lte", "in", "notin"),
               "text": ("eq", "neq", "in", "notin"), "bool": ("eq", "neq"),
               "version": ("eq", "neq", "gt", "gte", "lt", "lte")}


@dataclass(frozen=True)
class Term:
    """``field op value`` of a text query: ``values`` holds one value, or a list's values."""

    field: str
    op: str
    values: tuple[str, ...]
    #: how it is written: bit 0 spaces around the operator and brackets around a list,
    #: the other bits choose among the operator's spellings
    written: int = 0

    def matcher(self) -> Callable[[Mapping[str, Any]], bool]:
        """Whether an offer satisfies the term (an offer without the field never does)."""
        spec = FIELDS[self.field]
        wanted = [_meaning(spec, value) for value in self.values]
        if self.op in ("in", "notin"):
            inside = self.op == "in"
            return lambda offer: (actual := _actual(spec, offer)) is not None and (
                actual in wanted) == inside
        compare, bound = COMPARISONS[self.op], wanted[0]
        return lambda offer: (actual := _actual(spec, offer)) is not None and bool(
            compare(actual, bound))


COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "neq": operator.ne, "gt": operator.gt, "gte": operator.ge,
    "lt": operator.lt, "lte": operator.le}


def _actual(spec: Field, offer: Mapping[str, Any]) -> Any:
    actual = spec.read(offer)
    if spec.kind == "version" and actual is not None:
        return tuple(int(part) for part in actual.split("."))
    return actual


def _meaning(spec: Field, value: str) -> Any:
    """What a value written in a text query means for its field."""
    if spec.kind == "number":
        return float(value) * spec.unit
    if spec.kind == "version":
        return tuple(int(part) for part in value.split("."))
    if spec.kind == "bool":
        return value in ("true", "True", "1")
    return value.strip('"').replace("_", " ")


def _body_field(field: str) -> str:
    return str(offers_alias.get(field, field))


def _number_texts(values: Iterable[float], unit: float) -> list[str]:
    return sorted({f"{value / unit:g}" for value in values if value is not None})


@functools.cache
def priced_market(price_type: str, storage: float) -> tuple[dict[str, Any], ...]:
    return tuple(price(offer, price_type, storage) for offer in built_in_offers())


@functools.cache
def _values(field: str) -> tuple[str, ...]:
    """Values the field's offers have (so that queries match some), and others."""
    spec = FIELDS[field]
    offers = priced_market(ON_DEMAND, 5.0)
    if spec.kind == "bool":
        return ("true", "True", "false", "False", "1", "0")
    if spec.kind == "version":
        return tuple(sorted({offer["driver_version"] for offer in offers}
                            | {"545.29.06", "999.0.0", "470.1.2"}))
    if spec.kind == "text":
        seen = sorted({str(spec.read(offer)) for offer in offers if spec.read(offer) is not None})
        written = [text.replace(" ", "_") for text in seen + ["RTX 3080 Ti", "ZZ", "arm64"]]
        return tuple(written + [f'"{text}"' for text in seen if " " in text])
    seen_numbers = _number_texts((spec.read(offer) for offer in offers), spec.unit)
    round_numbers = [str(n) for n in range(-1, 201, 3)] + [
        f"{hundredths / 100:g}" for hundredths in range(0, 1000, 7)]
    return tuple(seen_numbers + round_numbers)


def terms_of(field: str) -> st.SearchStrategy[Term]:
    """Terms on ``field``: every operator its kind takes, every spelling of it."""
    spec = FIELDS[field]
    ops = OPS_OF_KIND[spec.kind]
    if spec.unit != 1:  # the client multiplies a list as one number: it has no lists
        ops = tuple(op for op in ops if op not in ("in", "notin"))
    return st.builds(lambda op, values, written: Term(
        field, op, tuple(values) if op in ("in", "notin") else (values[0],), written),
        st.sampled_from(ops), st.lists(st.sampled_from(_values(field)), min_size=1, max_size=3),
        st.integers(0, 7))


@dataclass(frozen=True)
class TextQuery:
    terms: tuple[Term, ...]
    wildcards: tuple[str, ...]
    defaults: bool

    def text(self) -> str:
        words = []
        for item in self.terms:
            spaced, choice = item.written % 2 == 1, item.written // 2
            spelling = SPELLINGS[item.op][choice % len(SPELLINGS[item.op])]
            if spelling.strip() == spelling and spaced:
                spelling = f" {spelling} "
            if item.op in ("in", "notin"):
                bracketed = spaced or any(" " in value for value in item.values)
                value = ",".join(item.values)
                value = f"[{value}]" if bracketed else value
            else:
                value = item.values[0]
            words.append(f"{item.field}{spelling}{value}")
        words += [f"{field}=any" for field in self.wildcards]
        return " ".join(words)

    def oracle(self, offers: Iterable[Mapping[str, Any]], storage: float) -> set[int]:
        """The ids of the offers the query means: its terms, the defaults it did not
        override (a term replaces a default of the same field and operator; ``=any``
        drops the field), and the disk the search asks for."""
        conditions = {(_body_field(field), "eq"): Term(field, "eq", (str(value["eq"]),))
                      for field, value in CLI_DEFAULTS.items()} if self.defaults else {}
        for item in self.terms:
            conditions[(_body_field(item.field), item.op)] = item
        for field in self.wildcards:
            conditions = {key: item for key, item in conditions.items() if key[0] != field}
        matchers = [item.matcher() for item in conditions.values()]
        return {offer["id"] for offer in offers if offer["disk_space"] >= storage
                and all(holds(offer) for holds in matchers)}


ANY_TERM = st.one_of([terms_of(field) for field in sorted(FIELDS)])
WILDCARDS = ((), (), ("verified",), ("rentable", "external"), ("gpu_name",),
             ("num_gpus", "verified"))


@st.composite
def text_queries(draw: st.DrawFn) -> TextQuery:
    terms: dict[tuple[str, str], Term] = {}
    for drawn in draw(st.lists(ANY_TERM, max_size=5)):
        if drawn.field in CLI_DEFAULTS and drawn.op != "eq":
            continue  # a default's other operators would stay in force beside it
        terms.setdefault((_body_field(drawn.field), drawn.op), drawn)
    used = {field for field, _ in terms}
    wildcards = tuple(field for field in draw(st.sampled_from(WILDCARDS)) if field not in used)
    return TextQuery(tuple(terms.values()), wildcards, draw(st.booleans()))


SETTINGS = st.tuples(st.sampled_from((ON_DEMAND, BID, RESERVED)),
                     st.sampled_from((0.0, 5.0, 80.0, 500.0)),
                     st.sampled_from(([["score", "desc"]], [["dph_total", "asc"]], None)))


def agrees(query: TextQuery, settings_: tuple[str, float, Any],
           send: Callable[[dict[str, Any]], list[dict[str, Any]]]) -> int:
    """Check that the server's filter matches the oracle's offers; the number matched."""
    price_type, storage, order = settings_
    text = query.text()
    body = text_body(text, CLI_DEFAULTS if query.defaults else None, type=price_type,
                     allocated_storage=storage)
    if order is not None:
        body["order"] = order
    matched = {offer["id"] for offer in send(body)}
    assert matched == query.oracle(priced_market(price_type, storage), storage), (text, body)
    return len(matched)


def test_the_filter_agrees_with_parse_query_on_generated_queries() -> None:
    matches: list[int] = []

    @settings(max_examples=1000, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(text_queries(), SETTINGS)
    def check(query: TextQuery, settings_: tuple[str, float, Any]) -> None:
        matches.append(agrees(query, settings_, MARKET.search))

    check()
    assert len(matches) >= 1000
    everything = len(built_in_offers())
    assert sum(0 < count < everything for count in matches) >= 300, "too few useful queries"
    assert sum(count == 0 for count in matches) >= 50


#: Queries of the spec's examples and a few more, each term in another spelling
#: (``written``: see :class:`Term`).
HTTP_QUERIES = [
    TextQuery((Term("gpu_ram", "gte", ("48",)), Term("num_gpus", "eq", ("1",), 3)), (), True),
    TextQuery((Term("gpu_name", "in", ("RTX_4090", "RTX_5090")),
               Term("dph_total", "lt", ("2",), 1)), (), True),
    TextQuery((Term("reliability", "gt", ("0.98",), 2), Term("verified", "eq", ("True",)),
               Term("rentable", "eq", ("True",), 5)), (), True),
    TextQuery((Term("gpu_name", "eq", ("RTX_4090",)), Term("cuda_vers", "gte", ("12.1",)),
               Term("driver_version", "gte", ("535.86.05",), 2),
               Term("duration", "gt", ("7",)), Term("cpu_ram", "gte", ("64",))),
              ("verified",), True),
    TextQuery((Term("geolocation", "notin", ("US", "CA"), 3),
               Term("datacenter", "eq", ("true",), 4), Term("gpu_ram", "lte", ("80",), 1),
               Term("gpu_ram", "gt", ("16",))), (), False),
    TextQuery((Term("ubuntu_version", "neq", ("22.04",), 6),
               Term("num_gpus", "notin", ("1", "2"), 4)), (), False),
]


@pytest.mark.parametrize("query", HTTP_QUERIES, ids=TextQuery.text)
def test_the_filter_agrees_over_http(server: RunningDevServer, query: TextQuery) -> None:
    count = agrees(query, (ON_DEMAND, 5.0, None), lambda body: offers_of(server, body))
    assert count > 0, query.text()


def test_an_invalid_query_is_refused_in_process_too() -> None:
    with pytest.raises(InvalidQuery, match="must be dict of conditions"):
        MARKET.search(None)
