"""The dev server's market: a fixed set of offers and Vast's offer search over them.

A market check (how many machines match a deployment's REQUIRE, at what price)
can only be tested offline if the market holds still: the built-in offers are
the same on every run (each one a pure function of its index), spread over GPU
models, counts, prices, reliabilities, locations and states so that every
kind of filter has something to keep and something to drop. ``--offers FILE``
replaces them with offers a user captured or wrote.

:func:`parse_search` reads the body of ``POST /api/v0/bundles/`` the way the
wire spec (vast-offers.md) describes Vast's server: filters
``{"column": {"op": value}}`` whose values may be strings the server coerces,
the virtual columns and aliases, ``order``, ``limit``, ``type`` and
``allocated_storage``. Everything the spec leaves open is decided strictly (an
unknown column or operator is an error, not a filter that quietly keeps
everything) and documented in docs/dev-server.md.
"""

from __future__ import annotations

import functools
import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vastbuild.catalog import ColumnType, catalog
from vastbuild.errors import VastbuildError

#: An offer: a JSON object in Vast's offer shape.
Offer = dict[str, Any]
ColumnReader = Callable[[Mapping[str, Any]], Any]

#: Storage is priced per GB and month; a month of 30 days prices it per hour. [guess]
HOURS_PER_MONTH = 720
#: The disk the server prices and requires when a search sends no
#: ``allocated_storage`` (Vast's docs say 8 GB; the CLI always sends 5).
DEFAULT_ALLOCATED_STORAGE = 8.0
#: The order of a search that sends none (the CLI's default; the server's is unknown).
DEFAULT_ORDER = (("score", True),)

ON_DEMAND, BID, RESERVED = "on-demand", "bid", "reserved"
#: ``type`` as clients spell it -> the pricing it selects (the docs spell ``ondemand``,
#: the CLI's ``--type interruptible`` is a bid).
PRICE_TYPES = {ON_DEMAND: ON_DEMAND, "ondemand": ON_DEMAND, BID: BID, "interruptible": BID,
               RESERVED: RESERVED}

#: Aliases the vastai client applies before sending (``offers_alias``); the server
#: takes them too, so that a body written by hand means what the text query would.
CLIENT_ALIASES = {"cuda_vers": "cuda_max_good", "display_active": "gpu_display_active",
                  "dlperf_usd": "dlperf_per_dphtotal", "dph": "dph_total",
                  "flops_usd": "flops_per_dphtotal"}
#: Body keys the SDK's clients send that select or shape results rather than
#: filter them; the dev server accepts and ignores them (``api_key`` is a credential).
IGNORED_KEYS = frozenset({"extra_ids", "gpu_option", "show_incompatible", "sort_option",
                          "template_id", "disable_bundling", "select_cols", "api_key"})
LIST_OPERATORS = ("in", "notin")
ORDERING_OPERATORS = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__,
                      "lte": float.__le__}
OPERATORS = ("eq", "neq", *ORDERING_OPERATORS, *LIST_OPERATORS)
#: The alias suffix of columns queried in GB and stored in MB (``gpu_ram_GB``).
_GB_SUFFIX, _MB_PER_GB = "_GB", 1000
#: Vast's message for a body that is not a JSON object.
NOT_A_DICT = "Invalid query: must be dict of conditions"


class InvalidQuery(ValueError):
    """A search the server refuses (400); the message names the part of the body at fault."""


def country_code(geolocation: object) -> str | None:
    """The 2-letter code a ``geolocation`` such as ``"Texas, US"`` ends with."""
    if not isinstance(geolocation, str) or not geolocation.strip():
        return None
    return geolocation.rsplit(",", 1)[-1].strip()


#: The virtual columns: computed from an offer's fields, as the server rewrites them.
VIRTUAL_READERS: dict[str, ColumnReader] = {
    "verified": lambda offer: (None if offer.get("verification") is None
                               else offer["verification"] == "verified"),
    "datacenter": lambda offer: (None if offer.get("hosting_type") is None
                                 else offer["hosting_type"] == 1),
    "geolocation": lambda offer: country_code(offer.get("geolocation")),
    "target_reliability": lambda offer: offer.get("expected_reliability"),
}


def storage_per_hour(storage_cost: float, allocated_gib: float) -> float:
    """What ``allocated_gib`` of disk adds to an hour's price. [guess: $/GB/month over 720 h]"""
    return storage_cost * allocated_gib / HOURS_PER_MONTH


def price(offer: Mapping[str, Any], price_type: str, allocated_gib: float) -> Offer:
    """``offer`` with the price fields of a search: ``dph_total`` is the hour of GPU
    (``dph_base``, or ``min_bid`` for a bid) plus the storage; ``discounted_dph_total``
    the reserved price (``discount_rate`` off the base) plus the storage."""
    base = float(offer["dph_base"])
    bid = offer.get("min_bid")
    gpu_hour = (base if bid is None else float(bid)) if price_type == BID else base
    storage = storage_per_hour(float(offer.get("storage_cost") or 0.0), allocated_gib)
    total = gpu_hour + storage
    discounted = base * (1.0 - float(offer.get("discount_rate") or 0.0)) + storage
    priced = dict(offer)
    priced.update(
        dph_total=total, storage_total_cost=storage, discounted_dph_total=discounted,
        discounted_hourly=discounted, is_bid=price_type == BID,
        search={"gpuCostPerHour": gpu_hour, "diskHour": storage, "totalHour": total,
                "discountTotalHour": total - discounted, "discountedTotalPerHour": discounted})
    for metric, per_dollar in (("dlperf", "dlperf_per_dphtotal"),
                               ("total_flops", "flops_per_dphtotal")):
        if isinstance(offer.get(metric), int | float) and total > 0:
            priced[per_dollar] = offer[metric] / total
    return priced


@dataclass(frozen=True)
class QueryColumn:
    """A column of the search as the server resolves a body key."""

    name: str
    read: ColumnReader
    kind: ColumnType
    #: what the query's numbers are multiplied by to get the stored unit
    factor: int = 1

    @classmethod
    def resolve(cls, name: str) -> QueryColumn:
        """The column a body key names: a real column, a virtual one or an alias."""
        known = catalog()
        canonical = CLIENT_ALIASES.get(name) or known.canonical(name)
        factor = _MB_PER_GB if name.endswith(_GB_SUFFIX) and canonical != name else 1
        if name in VIRTUAL_READERS:
            return cls(name, VIRTUAL_READERS[name], known.column_type(name), factor)
        if canonical not in known.columns:
            raise InvalidQuery(f"Invalid query: unknown column {name!r}")
        return cls(name, lambda offer: offer.get(canonical), known.column_type(canonical),
                   factor)

    def value_of(self, offer: Mapping[str, Any]) -> Any:
        """The offer's value in the column, in the form its kind compares (None: no value)."""
        value = self.read(offer)
        stored = type(value)
        # the common cases first: a search reads every offer's value of every column
        if stored is float or stored is int:
            if self.kind in ("number", "version"):
                return value
        elif stored is bool:
            if self.kind == "bool":
                return value
        elif stored is str and self.kind == "text" and "_" not in value:
            return value
        if value is None:
            return None
        try:
            return self._typed(value)
        except InvalidQuery:
            return None  # an offer file's odd value matches nothing, as SQL's NULL would

    def coerce(self, value: object) -> Any:
        """A query value as the server coerces it: strings to numbers or booleans,
        underscores in text to spaces, dotted versions to Vast's padded integers,
        GB to MB for the ``_GB`` aliases."""
        typed = self._typed(value)
        return typed * self.factor if isinstance(typed, float) else typed

    def _typed(self, value: object) -> Any:
        """A value, the query's or the offer's, in the form the column's kind compares."""
        if value is None:
            return None
        if self.kind == "bool":
            return _boolean(self.name, value)
        if isinstance(value, bool):
            wanted = "text" if self.kind == "text" else "a number"
            raise InvalidQuery(f"Invalid query: {self.name} takes {wanted}, not {value}")
        if self.kind == "text":
            return str(value).replace("_", " ")
        if self.kind == "version" and isinstance(value, str) and "." in value:
            return float(_padded_version(self.name, value))
        return _number(self.name, value)


def _boolean(column: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    spelled = str(value).strip().lower()
    if spelled in ("true", "1"):
        return True
    if spelled in ("false", "0"):
        return False
    raise InvalidQuery(f"Invalid query: {column} takes true or false, not {value!r}")


def _number(column: str, value: object) -> float:
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise InvalidQuery(f"Invalid query: {column} takes a number, not {value!r}") from None
    else:
        raise InvalidQuery(f"Invalid query: {column} takes a number, not {value!r}")
    if not math.isfinite(number):
        raise InvalidQuery(f"Invalid query: {column} takes a finite number, not {value!r}")
    return number


def _padded_version(column: str, value: str) -> int:
    """``535.86.05`` -> ``535086005``, as Vast stores driver versions."""
    parts = value.strip().split(".")
    if len(parts) != 3 or not all(part.isdigit() and len(part) <= 3 for part in parts):
        raise InvalidQuery(f"Invalid query: {column} takes a version like 535.86.05, "
                           f"not {value!r}")
    major, minor, patch = (int(part) for part in parts)
    return (major * 1000 + minor) * 1000 + patch


@dataclass(frozen=True)
class QueryCondition:
    """One ``{"op": value}`` of one column."""

    column: QueryColumn
    op: str
    #: the coerced value; a frozenset for ``in``/``notin``
    value: Any

    def holds(self, offer: Mapping[str, Any]) -> bool:
        """Whether the offer satisfies the condition. An offer without a value for the
        column satisfies only ``eq null`` (SQL's comparisons with NULL are never true)."""
        actual = self.column.value_of(offer)
        if self.op == "eq":
            return bool(actual == self.value)
        if actual is None:
            return False
        if self.op == "neq":
            return bool(actual != self.value)
        if self.op in LIST_OPERATORS:
            return (actual in self.value) == (self.op == "in")
        return ORDERING_OPERATORS[self.op](float(actual), float(self.value))


def _conditions(column: QueryColumn, spec: object) -> list[QueryCondition]:
    """The conditions of one body key: an object of operators, or a bare value (``eq``)."""
    operators = spec if isinstance(spec, dict) else {"eq": spec}
    conditions = []
    for op, value in operators.items():
        if op not in OPERATORS:
            raise InvalidQuery(f"Invalid query: unknown operator {op!r} for {column.name} "
                               f"(operators: {', '.join(OPERATORS)})")
        if op in LIST_OPERATORS:
            values = value if isinstance(value, list) else [value]
            coerced: Any = frozenset(column.coerce(item) for item in values)
        else:
            coerced = column.coerce(value)
            if op in ORDERING_OPERATORS and (column.kind in ("text", "bool") or coerced is None):
                raise InvalidQuery(f"Invalid query: {op} needs a number; {column.name} "
                                   f"{'is ' + column.kind if coerced is not None else 'got null'}")
        conditions.append(QueryCondition(column, op, coerced))
    return conditions


@dataclass(frozen=True)
class OfferQuery:
    """A search body, read: the filters and how to price, order and cut the answer."""

    conditions: tuple[QueryCondition, ...]
    #: (column, descending) pairs, first key first
    order: tuple[tuple[QueryColumn, bool], ...]
    limit: int | None
    price_type: str
    allocated_storage: float


def parse_search(body: object) -> OfferQuery:
    """Read a ``POST /api/v0/bundles/`` body; :class:`InvalidQuery` says what is wrong."""
    if not isinstance(body, dict):
        raise InvalidQuery(NOT_A_DICT)
    storage = _allocated_storage(body.get("allocated_storage", DEFAULT_ALLOCATED_STORAGE))
    conditions = [QueryCondition(QueryColumn.resolve("disk_space"), "gte", storage)]
    for key, spec in body.items():
        if key in IGNORED_KEYS or key in ("order", "limit", "type", "allocated_storage"):
            continue
        column = QueryColumn.resolve(key)
        if key == "target_reliability" and not isinstance(spec, dict):
            spec = {"gte": spec}  # the SDK sends a bare minimum
        conditions.extend(_conditions(column, spec))
    return OfferQuery(conditions=tuple(conditions), order=_order(body.get("order")),
                  limit=_limit(body.get("limit")), price_type=_price_type(body.get("type")),
                  allocated_storage=storage)


def _allocated_storage(value: object) -> float:
    storage = _number("allocated_storage", value)
    if storage < 0:
        raise InvalidQuery(f"Invalid query: allocated_storage must be >= 0, not {value!r}")
    return storage


def _order(value: object) -> tuple[tuple[QueryColumn, bool], ...]:
    if value is None:
        return tuple((QueryColumn.resolve(name), descending)
                     for name, descending in DEFAULT_ORDER)
    if not isinstance(value, list):
        raise InvalidQuery('Invalid query: order must be a list of [column, "asc" or "desc"]')
    keys = []
    for pair in value:
        if (not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str)
                or pair[1] not in ("asc", "desc")):
            raise InvalidQuery(f'Invalid query: order takes [column, "asc" or "desc"] pairs, '
                               f"not {pair!r}")
        keys.append((QueryColumn.resolve(pair[0]), pair[1] == "desc"))
    return tuple(keys)


def _limit(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidQuery(f"Invalid query: limit must be a whole number >= 0, not {value!r}")
    return value


def _price_type(value: object) -> str:
    if value is None:
        return ON_DEMAND
    if not isinstance(value, str) or value not in PRICE_TYPES:
        raise InvalidQuery(f"Invalid query: type must be one of {', '.join(PRICE_TYPES)}, "
                           f"not {value!r}")
    return PRICE_TYPES[value]


def _ordered(offers: list[Offer], order: Sequence[tuple[QueryColumn, bool]]) -> list[Offer]:
    """Sorted by each key in turn (stable sorts, last key first), offers without a
    value for a key after those with one, ties by id."""
    result = sorted(offers, key=lambda offer: offer["id"])
    for column, descending in reversed(order):
        keyed = [(column.value_of(offer), offer) for offer in result]
        present = [pair for pair in keyed if pair[0] is not None]
        present.sort(key=lambda pair: pair[0], reverse=descending)
        result = [offer for _, offer in present] + [offer for key, offer in keyed if key is None]
    return result


#: How many pricings (type, storage) a market keeps; clients repeat a few of them.
_PRICINGS_KEPT = 16


@dataclass(frozen=True)
class Market:
    """The offers the dev server sells, and the search over them."""

    offers: tuple[Offer, ...]
    #: (type, allocated storage) -> the offers priced so (pricing is most of a search's work)
    _pricings: dict[tuple[str, float], tuple[Offer, ...]] = field(
        default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, offers_file: Path | None) -> Market:
        """The offers of ``offers_file`` (see :func:`read_offers`), or the built-in ones."""
        return cls(read_offers(offers_file) if offers_file is not None else built_in_offers())

    def search(self, body: object) -> list[Offer]:
        """The offers a search body matches, priced, ordered and cut to its limit.
        The offers are shared with later searches of the same pricing: read them only."""
        query = parse_search(body)
        matching = [offer for offer in self.priced(query.price_type, query.allocated_storage)
                    if all(condition.holds(offer) for condition in query.conditions)]
        ordered = _ordered(matching, query.order)
        return ordered if query.limit is None else ordered[:query.limit]

    def priced(self, price_type: str, allocated_gib: float) -> tuple[Offer, ...]:
        """Every offer, priced for ``price_type`` and ``allocated_gib`` (see :func:`price`)."""
        key = (price_type, allocated_gib)
        offers = self._pricings.get(key)
        if offers is None:
            if len(self._pricings) >= _PRICINGS_KEPT:
                self._pricings.clear()
            offers = self._pricings[key] = tuple(price(offer, price_type, allocated_gib)
                                                 for offer in self.offers)
        return offers


def read_offers(path: Path) -> tuple[Offer, ...]:
    """A JSON list of offers in Vast's shape. Each needs a whole-number ``id`` (unique)
    and a ``dph_base``; the price fields it may carry are recomputed per search."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise VastbuildError(f"cannot read the offers file {path}: {exc.strerror or exc}",
                             hint="give a readable JSON file") from exc
    except UnicodeDecodeError as exc:
        raise VastbuildError(f"{path}: the offers file is not UTF-8 text ({exc.reason})",
                             hint="save the offers as UTF-8 JSON") from exc
    except json.JSONDecodeError as exc:
        raise VastbuildError(f"{path}:{exc.lineno}:{exc.colno}: the offers file is not JSON: "
                             f"{exc.msg}", hint="fix the JSON at that place") from exc
    shape = 'a JSON list of offers, each an object with "id" and "dph_base"'
    if not isinstance(document, list):
        raise VastbuildError(f"{path}: the offers file must be a list of offers, not a "
                             f"{type(document).__name__}", hint=f"write {shape}")
    seen: set[int] = set()
    for position, offer in enumerate(document, start=1):
        where = f"{path}: offer #{position}"
        if not isinstance(offer, dict):
            raise VastbuildError(f"{where} is not an object", hint=f"write {shape}")
        offer_id = offer.get("id")
        if isinstance(offer_id, bool) or not isinstance(offer_id, int):
            raise VastbuildError(f"{where} has no whole-number \"id\"", hint=f"write {shape}")
        if offer_id in seen:
            raise VastbuildError(f"{where} repeats the id {offer_id}",
                                 hint="give each offer its own id")
        seen.add(offer_id)
        for price_field in ("dph_base", "min_bid", "storage_cost", "discount_rate"):
            value = offer.get(price_field)
            if value is None and price_field != "dph_base":
                continue  # left out or null: the defaults of :func:`price`
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or not 0 <= value < math.inf):
                raise VastbuildError(f"{where} (id {offer_id}): {price_field!r} must be a number "
                                     f">= 0, not {value!r}", hint=f"write {shape}")
    return tuple(document)


# The built-in market.

@dataclass(frozen=True)
class GpuModel:
    """What the built-in market knows of a GPU model to make plausible offers of it."""

    name: str
    vram_gb: int
    #: a typical on-demand $/hour for one GPU
    hourly: float
    #: CUDA compute capability x100; None for AMD
    compute_cap: int | None
    #: dense FP16 TFLOPS, for ``total_flops`` and ``dlperf``
    tflops: float
    datacenter_class: bool = False


GPU_MODELS = (
    # name, VRAM GB, $/h per GPU, compute_cap, TFLOPS, datacenter class
    GpuModel("B200", 180, 4.50, 1000, 2250, True),
    GpuModel("H200", 141, 3.20, 900, 990, True),
    GpuModel("H200 NVL", 141, 2.90, 900, 835, True),
    GpuModel("H100 SXM", 80, 2.40, 900, 990, True),
    GpuModel("H100 NVL", 94, 2.30, 900, 835, True),
    GpuModel("H100 PCIE", 80, 2.00, 900, 756, True),
    GpuModel("GH200 SXM", 96, 2.90, 900, 990, True),
    GpuModel("A100 SXM4", 80, 1.10, 800, 312, True),
    GpuModel("A100 PCIE", 40, 0.80, 800, 312, True),
    GpuModel("A800 PCIE", 80, 0.90, 800, 312, True),
    GpuModel("A40", 48, 0.45, 860, 150, True),
    GpuModel("A10", 24, 0.25, 860, 125, True),
    GpuModel("L40S", 48, 0.75, 890, 362, True),
    GpuModel("L40", 48, 0.65, 890, 181, True),
    GpuModel("L4", 24, 0.30, 890, 121, True),
    GpuModel("Tesla T4", 16, 0.12, 750, 65, True),
    GpuModel("Tesla V100", 16, 0.20, 700, 125, True),
    GpuModel("Tesla P40", 24, 0.12, 610, 12),
    GpuModel("RTX PRO 6000 WS", 96, 1.20, 1200, 500, True),
    GpuModel("RTX 6000Ada", 48, 0.80, 890, 365, True),
    GpuModel("RTX A6000", 48, 0.45, 860, 155),
    GpuModel("RTX A5000", 24, 0.22, 860, 111),
    GpuModel("RTX A4000", 16, 0.14, 860, 77),
    GpuModel("RTX 4000Ada", 20, 0.18, 890, 107),
    GpuModel("RTX 5090", 32, 0.65, 1200, 419),
    GpuModel("RTX 5080", 16, 0.35, 1200, 225),
    GpuModel("RTX 4090", 24, 0.40, 890, 330),
    GpuModel("RTX 4080S", 16, 0.25, 890, 209),
    GpuModel("RTX 4070 Ti", 12, 0.16, 890, 160),
    GpuModel("RTX 4060 Ti", 16, 0.12, 890, 88),
    GpuModel("RTX 3090", 24, 0.22, 860, 142),
    GpuModel("RTX 3080", 10, 0.13, 860, 119),
    GpuModel("RTX 3070", 8, 0.09, 860, 81),
    GpuModel("RTX 3060", 12, 0.07, 860, 51),
    GpuModel("RTX 2080 Ti", 11, 0.09, 750, 54),
    GpuModel("GTX 1080 Ti", 11, 0.06, 610, 11),
    GpuModel("Titan RTX", 24, 0.15, 750, 65),
    GpuModel("InstinctMI250X", 128, 1.60, None, 383, True),
    GpuModel("InstinctMI100", 32, 0.40, None, 184, True),
    GpuModel("RX 7900 XTX", 24, 0.20, None, 123),
)
#: Offers of each model in the built-in market.
OFFERS_PER_MODEL = 9
#: More offers of the models most rented on Vast, after the first
#: ``OFFERS_PER_MODEL * len(GPU_MODELS)``: a search for a popular card finds a market,
#: not a handful
MORE_OFFERS = {"RTX 4090": 27, "RTX 3090": 18, "RTX 5090": 18, "L40S": 9, "H100 SXM": 9,
               "A100 SXM4": 9}
_FIRST_OFFER_ID, _FIRST_MACHINE_ID, _FIRST_HOST_ID = 4_200_001, 31_001, 180_001
#: The start date of every built-in offer (2026-01-01 UTC), so that offers do not age.
_LISTED_AT = 1_767_225_600
PLACES = ("California, US", "Texas, US", "Virginia, US", "Oregon, US", "Quebec, CA",
          "Ontario, CA", "Bavaria, DE", "Hesse, DE", "North Holland, NL", "Stockholm, SE",
          "Mazovia, PL", "Ile-de-France, FR", "England, GB", "Tokyo, JP", "Seoul, KR",
          "Singapore, SG", "New South Wales, AU", "Sao Paulo, BR", "Maharashtra, IN")
DRIVERS = ("535.183.01", "550.127.05", "560.35.03", "570.124.06", "575.57.08")
CPUS = ("AMD EPYC 7763 64-Core Processor", "AMD EPYC 9654 96-Core Processor",
        "Intel Xeon Gold 6338", "Intel Xeon Platinum 8480+", "AMD Ryzen 9 7950X 16-Core",
        "Intel Core i9-13900K", "AMD Ryzen Threadripper PRO 5975WX")


@functools.cache
def built_in_offers() -> tuple[Offer, ...]:
    """The built-in market: :data:`OFFERS_PER_MODEL` offers of each of :data:`GPU_MODELS`,
    then :data:`MORE_OFFERS` of the most rented ones."""
    unknown = {model.name for model in GPU_MODELS} - catalog().gpu_names
    assert not unknown, f"GPU models missing from the query catalog: {unknown}"
    models = [GPU_MODELS[index % len(GPU_MODELS)]
              for index in range(OFFERS_PER_MODEL * len(GPU_MODELS))]
    by_name = {model.name: model for model in GPU_MODELS}
    models += [by_name[name] for name, count in MORE_OFFERS.items() for _ in range(count)]
    return tuple(_built_in_offer(index, model) for index, model in enumerate(models))


def _built_in_offer(index: int, model: GpuModel) -> Offer:
    """Offer number ``index``: a pure function of the index (a PRNG seeded with it)."""
    rng = random.Random(f"vastbuild-market-{index}")
    amd = model.compute_cap is None
    datacenter = rng.random() < (0.45 if model.datacenter_class else 0.12)
    num_gpus = rng.choice((1, 2, 4, 8) if model.datacenter_class else (1, 1, 1, 2, 2, 4, 8))
    verification = ("verified" if datacenter or rng.random() < 0.65
                    else rng.choice(("unverified", "unverified", "deverified")))
    reliability = round(rng.uniform(0.97, 0.9995) if verification == "verified"
                        else rng.uniform(0.80, 0.99), 4)
    dph_base = round(model.hourly * num_gpus * rng.uniform(0.8, 1.5), 4)
    gpu_ram = model.vram_gb * 1024
    cpu_cores = rng.choice((16, 32, 64, 128, 192))
    cpu_cores_effective = min(cpu_cores, num_gpus * rng.choice((4, 8, 12, 16, 24)))
    driver = rng.choice(DRIVERS)
    duration = rng.randrange(1, 180) * 86_400 + rng.randrange(86_400)
    dlperf = round(model.tflops * num_gpus * rng.uniform(0.8, 1.05) / 10, 3)
    place = rng.choice(PLACES)
    code = country_code(place) or ""
    return {
        "id": _FIRST_OFFER_ID + index,
        "ask_contract_id": _FIRST_OFFER_ID + index,
        "bundle_id": _FIRST_OFFER_ID + index,
        "machine_id": _FIRST_MACHINE_ID + index,
        "host_id": _FIRST_HOST_ID + index // 3,
        "cluster_id": None,
        "gpu_name": model.name,
        "gpu_arch": "amd" if amd else "nvidia",
        "num_gpus": num_gpus,
        "gpu_frac": 1.0,
        "gpu_ram": gpu_ram,
        "gpu_total_ram": gpu_ram * num_gpus,
        "gpu_mem_bw": round(rng.uniform(300, 4000 if model.datacenter_class else 1800), 1),
        "gpu_max_power": rng.choice((250, 300, 350, 450, 700)),
        "gpu_max_temp": rng.choice((83, 85, 87, 90)),
        "gpu_lanes": rng.choice((8, 16)),
        "gpu_display_active": not datacenter and rng.random() < 0.2,
        "bw_nvlink": round(rng.uniform(100, 900), 1) if "SXM" in model.name else 0.0,
        "compute_cap": model.compute_cap,
        "cuda_max_good": None if amd else rng.choice((12.2, 12.4, 12.6, 12.8, 13.0)),
        "driver_version": driver,
        "driver_vers": _padded_version("driver_version", driver),
        "total_flops": round(model.tflops * num_gpus, 1),
        "dlperf": dlperf,
        "cpu_name": rng.choice(CPUS),
        "cpu_arch": "arm64" if model.name.startswith("GH200") else "amd64",
        "cpu_cores": cpu_cores,
        "cpu_cores_effective": cpu_cores_effective,
        "cpu_ghz": round(rng.uniform(2.0, 5.5), 1),
        "cpu_ram": rng.choice((16, 32, 64, 128)) * 1024 * num_gpus,
        "has_avx": True,
        "disk_space": round(rng.choice((20, 40, 80, 160, 500, 1000, 2000)) * rng.uniform(0.9, 1.1),
                            1),
        "disk_bw": round(rng.uniform(500, 7000), 1),
        "disk_name": rng.choice(("Samsung SSD 980 PRO", "WD_BLACK SN850X", "Micron 7450")),
        "inet_up": round(rng.choice((100, 500, 1000, 2500, 10000)) * rng.uniform(0.6, 1.0), 1),
        "inet_down": round(rng.choice((100, 500, 1000, 2500, 10000)) * rng.uniform(0.6, 1.0), 1),
        "inet_up_cost": rng.choice((0.0, 0.002, 0.005, 0.01)),
        "inet_down_cost": rng.choice((0.0, 0.002, 0.005, 0.01)),
        "direct_port_count": rng.choice((0, 20, 100, 500)),
        "static_ip": datacenter or rng.random() < 0.3,
        "pci_gen": rng.choice((3, 4, 5)),
        "pcie_bw": round(rng.uniform(6, 55), 1),
        "mobo_name": rng.choice(("ROMED8-2T", "H12SSL-i", "PRO WS WRX80E-SAGE SE", "X13DEG-OAD")),
        "os_version": rng.choice(("20.04", "22.04", "24.04")),
        "vms_enabled": rng.random() < 0.3,
        "dph_base": dph_base,
        "storage_cost": rng.choice((0.05, 0.1, 0.15, 0.2, 0.3)),
        "min_bid": round(dph_base * rng.uniform(0.35, 0.7), 4),
        "discount_rate": rng.choice((0.0, 0.2, 0.3, 0.4)),
        "credit_discount_max": 0.4,
        "vram_costperhour": round(dph_base / (model.vram_gb * num_gpus), 6),
        "score": round(dlperf / dph_base * reliability, 3),
        "reliability": reliability,
        "reliability2": reliability,
        "reliability_mult": round(reliability ** 4, 4),
        "expected_reliability": round(reliability * rng.uniform(0.97, 1.0), 4),
        "verification": verification,
        "vericode": 1 if verification == "verified" else 0,
        "is_vm_deverified": False,
        "geolocation": place,
        "geolocode": int.from_bytes(code.encode(), "big"),
        "rentable": rng.random() < 0.95,
        "rented": rng.random() < 0.12,
        "external": rng.random() < 0.1,
        "hosting_type": 1 if datacenter else 0,
        "resource_type": "gpu",
        "start_date": _LISTED_AT,
        "end_date": _LISTED_AT + duration,
        "duration": duration,
    }
