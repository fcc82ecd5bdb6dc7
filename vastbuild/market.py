"""The market check: which offers on Vast's market a deployment's search matches,
what they cost, and which REQUIRE term leaves none.

A registration carries ``search_params`` as text and Vast parses it on its side;
nothing there tells a user that no machine matches. This pass sends the very
same search to the offer search (``POST /api/v0/bundles/``) before anything is
registered. The body is built from the spelling :func:`vastbuild.wire.search_term`
puts on the wire, read back the way Vast's query parser reads it, so the filters
are the ones the server derives from the registration (units, underscores and
all), never a second translation of the Vastfile. Answers are kept a few
minutes in the cache folder: repeated plans stay fast and within Vast's search
rate limit. docs/market.md explains the output and its assumptions.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from vastbuild.canonical import JsonValue
from vastbuild.catalog import catalog
from vastbuild.diagnostics import Diagnostic, Span, error
from vastbuild.errors import VastbuildError
from vastbuild.model import AUTOSCALE_BY_NAME, Deployment, SearchTerm
from vastbuild.wire import search_term

if TYPE_CHECKING:
    from vastbuild.vast.client import VastClient

OfferType = Literal["on-demand", "bid", "reserved"]
OFFER_TYPES: tuple[OfferType, ...] = ("on-demand", "bid", "reserved")
#: the sort the market check asks for unless told otherwise: cheapest first
DEFAULT_ORDER = "dph_total"
#: the rental the market check prices unless told otherwise
DEFAULT_OFFER_TYPE: OfferType = "on-demand"
#: offers asked for in one search: enough to count a market and price it in one request
SEARCH_LIMIT = 1000
#: how long an answer is reused, in seconds: a market moves, but not within a plan or two
CACHE_SECONDS = 300
#: the searches a zero-match diagnosis may send (one per REQUIRE term, one after another)
MAX_PROBES = 8
#: values Vast's query parser takes as "any value": ``field=any`` drops the field
_WILDCARDS = ("?", "*", "any")
_CACHE_FOLDER = "market"


def price_field(offer_type: OfferType) -> str:
    """The offer field that holds the hourly price of a rental of this type: a reserved
    rental pays the discounted price, the others the total (GPU plus storage)."""
    return "discounted_dph_total" if offer_type == "reserved" else "dph_total"


def search_filters(terms: Sequence[SearchTerm]) -> dict[str, dict[str, JsonValue]]:
    """The filters Vast's query parser makes of the ``search_params`` these terms are
    spelled as: each term's wire spelling read back with the parser's rules (list
    items split on commas, ``_`` read as a space, ``true``/``false``/``null`` typed,
    GB and day columns multiplied to MB and seconds as floats, every other value left
    a string for the server to coerce, ``== any`` dropping the column)."""
    facts = catalog()
    filters: dict[str, dict[str, JsonValue]] = {}
    for term in terms:
        spelled = search_term(term)[len(term.column) + len(facts.operator_spelling[term.op]):]
        if term.op == "eq" and spelled in _WILDCARDS:
            filters.pop(term.column, None)
            continue
        multiplier = facts.unit_multipliers.get(term.column)
        if term.op in ("in", "notin"):
            items = [item.strip() for item in spelled.split(",") if item.strip()]
            value: JsonValue = [_parsed(item, multiplier) for item in items]
        else:
            value = _parsed(spelled, multiplier)
        filters.setdefault(term.column, {})[term.op] = value
    return filters


def _parsed(text: str, multiplier: int | None) -> JsonValue:
    """One value as the query parser types it."""
    text = text.replace("_", " ").strip('"')
    if multiplier is not None:
        return float(text) * multiplier
    return {"true": True, "True": True, "false": False, "False": False,
            "None": None, "null": None}.get(text, text)


def parse_order(order: str) -> list[list[str]]:
    """``dph_total`` -> ``[["dph_total", "asc"]]``; a comma list, where a ``-`` before or
    after a column sorts it descending (the vastai CLI's spelling of ``--order``)."""
    keys: list[list[str]] = []
    for part in order.split(","):
        column = part.strip()
        descending = column.startswith("-") or column.endswith("-")
        column = column.strip("-+")
        if column:
            keys.append([column, "desc" if descending else "asc"])
    return keys


def search_body(d: Deployment, *, order: str = DEFAULT_ORDER,
                offer_type: OfferType = DEFAULT_OFFER_TYPE, limit: int = SEARCH_LIMIT,
                terms: Sequence[SearchTerm] | None = None) -> dict[str, JsonValue]:
    """The offer-search body for a deployment: the filters of its own search (``terms``:
    a part of it, for a diagnosis), sorted by ``order``, priced for ``offer_type``
    rentals with its STORAGE as ``allocated_storage`` (which the server also takes as
    the disk an offer must have)."""
    filters = search_filters(d.search if terms is None else terms)
    # the body's allocated_storage is the disk priced (and required); a REQUIRE term on
    # it asks for disk, which the server reads as disk_space: the term stays a filter
    for op, value in filters.pop("allocated_storage", {}).items():
        filters.setdefault("disk_space", {}).setdefault(op, value)
    body: dict[str, JsonValue] = dict(filters)
    order_keys: list[JsonValue] = [list(key) for key in parse_order(order)]
    body.update({"order": order_keys, "type": offer_type, "limit": limit,
                 "allocated_storage": float(d.storage)})
    return body


class OfferSearch:
    """Searches through one client, each answer kept ``CACHE_SECONDS`` in the cache
    folder, keyed by the API URL and the body (never the key: offers are the
    market's, not an account's). ``refresh`` asks the server again and keeps the
    new answer."""

    def __init__(self, client: VastClient, cache_dir: Path, *, refresh: bool = False):
        self.client = client
        self.cache_dir = cache_dir
        self.refresh = refresh

    def offers(self, body: dict[str, JsonValue]) -> tuple[list[dict[str, Any]], bool]:
        """The offers matching ``body``, and whether they came from the cache."""
        import diskcache  # imported here: only the market check needs this store

        key = hashlib.sha256(json.dumps({"api_url": self.client.api_url, "body": body},
                                        sort_keys=True).encode("utf-8")).hexdigest()
        with diskcache.Cache(str(self.cache_dir / _CACHE_FOLDER)) as store:
            if not self.refresh:
                kept = store.get(key)
                if isinstance(kept, list):
                    return kept, True
            answer = self.client.search_offers(body)
            store.set(key, answer, expire=CACHE_SECONDS)
        return answer, False


@dataclass(frozen=True)
class PriceSummary:
    """The hourly prices of the matching offers, in $/h."""

    minimum: float
    median: float
    #: the nearest-rank 90th percentile: nine in ten matches cost this or less
    p90: float
    maximum: float

    def to_json(self) -> dict[str, JsonValue]:
        return {"min": self.minimum, "median": self.median, "p90": self.p90,
                "max": self.maximum}

    def range_text(self) -> str:
        """``$0.061-$5.866/h (median $0.289)``: how plan, deploy and check say it."""
        return (f"${self.minimum:.3f}-${self.maximum:.3f}/h (median ${self.median:.3f})")


@dataclass(frozen=True)
class CostEstimate:
    """The endpoint's hourly cost, estimated from the current market: each worker rents
    one offer, the cheapest first, so ``n`` workers cost the ``n`` cheapest prices."""

    cold_workers: int
    max_workers: int
    #: $/h with only the cold workers (the endpoint idle)
    idle: float
    #: $/h with ``max_workers`` workers (the endpoint at full scale)
    full: float
    #: workers that found no offer of their own (more workers than matching offers)
    unplaced: int

    def summary(self) -> str:
        """``$0.53/h idle (1 cold worker), $2.07/h at full scale (4 workers, 3 of them
        without an offer)``."""
        short = f", {self.unplaced} of them without an offer" if self.unplaced else ""
        return (f"${self.idle:.2f}/h idle ({_workers(self.cold_workers, 'cold worker')}), "
                f"${self.full:.2f}/h at full scale ({_workers(self.max_workers, 'worker')}"
                f"{short})")

    def to_json(self) -> dict[str, JsonValue]:
        return {"cold_workers": self.cold_workers, "max_workers": self.max_workers,
                "idle_per_hour": self.idle, "full_per_hour": self.full,
                "unplaced_workers": self.unplaced, "basis": "estimate from the current market"}


def _workers(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


@dataclass(frozen=True)
class Blocker:
    """A REQUIRE term without which the search finds offers: where it is, how it reads
    on the wire, and how many offers its removal lets in (at least)."""

    term: str
    span: Span
    offers: int

    @property
    def where(self) -> str:
        """``huge/Vastfile:5:9``."""
        return str(self.span)

    def to_json(self) -> dict[str, JsonValue]:
        return {"term": self.term, "where": self.where, "offers": self.offers}

    def text(self) -> str:
        """``without `gpu_ram>=1000`, 54 offers would match`` (``1000+`` when the search
        that counted them was capped)."""
        count = f"{self.offers}{'+' if self.offers >= SEARCH_LIMIT else ''}"
        return f"without `{self.term}`, {count} offer{'s' * (self.offers != 1)} would match"


@dataclass(frozen=True)
class MarketCheck:
    """What the market holds for one deployment."""

    label: str
    body: dict[str, JsonValue]
    #: the matching offers, in the order asked (at most ``SEARCH_LIMIT``)
    offers: tuple[dict[str, Any], ...]
    price_field: str
    prices: PriceSummary | None
    estimate: CostEstimate | None
    #: when nothing matches: the REQUIRE terms whose removal alone gives matches
    blockers: tuple[Blocker, ...] = ()
    #: when nothing matches: the REQUIRE terms that were not tried (past ``MAX_PROBES``)
    untried: int = 0
    #: the answer came from the cache
    cached: bool = False
    #: where the target's first REQUIRE term is (what an empty market is reported at
    #: when no single term empties it)
    first_term: Span | None = None

    @property
    def count(self) -> int:
        return len(self.offers)

    @property
    def capped(self) -> bool:
        """The search hit its limit: more offers may match than were counted."""
        limit = self.body.get("limit")
        return isinstance(limit, int) and self.count >= limit

    def count_text(self) -> str:
        """``37 offers match`` / ``1 offer matches`` / ``at least 1000 offers match``."""
        many = self.count != 1
        return (f"{'at least ' if self.capped else ''}{self.count} offer{'s' * many} "
                f"match{'es' * (not many)}")

    def emptied_by(self) -> str:
        """Why nothing matches, in words: the terms that empty the market, with where."""
        untried = (f" ({self.untried} more REQUIRE term{'s' * (self.untried != 1)} not tried)"
                   if self.untried else "")
        if self.blockers:
            return "; ".join(f"{b.where}: {b.text()}" for b in self.blockers) + untried
        return ("no single REQUIRE term empties it: removing any one still leaves no match "
                "(loosen several, or check the defaults verified/rentable)" + untried)

    def diagnostics(self) -> list[Diagnostic]:
        """An empty market as compiler diagnostics (``check --online``): E058 at each
        REQUIRE term whose removal alone lets offers in, or at the first term when no
        single one does; nothing when offers match."""
        if self.offers:
            return []
        if self.blockers:
            return [error("E058", f"no offer on Vast's market matches this target's search; "
                          f"{blocker.text()}", blocker.span,
                          "loosen or remove this term (docs/market.md)")
                    for blocker in self.blockers]
        untried = (f" ({self.untried} more REQUIRE term{'s' * (self.untried != 1)} not tried)"
                   if self.untried else "")
        return [error("E058", "no offer on Vast's market matches this target's search, and "
                      f"removing any one REQUIRE term still leaves none{untried}",
                      self.first_term, "loosen several terms, or check the defaults "
                      "verified/rentable (docs/market.md)")]

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "label": self.label, "matches": self.count, "capped": self.capped,
            "price_field": self.price_field,
            "prices": None if self.prices is None else self.prices.to_json(),
            "estimate": None if self.estimate is None else self.estimate.to_json(),
            "blockers": [b.to_json() for b in self.blockers], "untried": self.untried,
            "cached": self.cached,
        }


def offer_price(offer: dict[str, Any], field: str) -> float | None:
    """An offer's hourly price, None when the offer carries no number there."""
    value = offer.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def summarize(prices: Sequence[float]) -> PriceSummary | None:
    """Min, median, nearest-rank 90th percentile and max; None for no prices."""
    if not prices:
        return None
    ordered = sorted(prices)
    return PriceSummary(minimum=ordered[0], median=statistics.median(ordered),
                        p90=ordered[math.ceil(0.9 * len(ordered)) - 1], maximum=ordered[-1])


def estimate_cost(d: Deployment, prices: Sequence[float]) -> CostEstimate | None:
    """The idle and full-scale hourly cost from AUTOSCALE (Vast's defaults where the
    Vastfile sets none): each worker on its own offer, the cheapest offers first."""
    if not prices:
        return None
    settings = dict(d.autoscale)
    cold = int(settings.get("cold_workers", AUTOSCALE_BY_NAME["cold_workers"].default or 0))
    most = int(settings.get("max_workers", AUTOSCALE_BY_NAME["max_workers"].default or 0))
    cheapest = sorted(prices)
    return CostEstimate(cold_workers=cold, max_workers=most, idle=round(sum(cheapest[:cold]), 4),
                        full=round(sum(cheapest[:most]), 4),
                        unplaced=max(0, most - len(cheapest)))


def check_market(d: Deployment, search: OfferSearch, *, order: str = DEFAULT_ORDER,
                 offer_type: OfferType = DEFAULT_OFFER_TYPE,
                 limit: int = SEARCH_LIMIT) -> MarketCheck:
    """Search the market with the deployment's own search; when nothing matches, ask
    again without each REQUIRE term in turn (one search at a time, at most
    ``MAX_PROBES``) to name the terms that empty it."""
    body = search_body(d, order=order, offer_type=offer_type, limit=limit)
    offers, cached = search.offers(body)
    field = price_field(offer_type)
    prices = [p for p in (offer_price(o, field) for o in offers) if p is not None]
    blockers: list[Blocker] = []
    required = [i for i, term in enumerate(d.search) if term.span is not None]
    if not offers:
        for index in required[:MAX_PROBES]:
            rest = d.search[:index] + d.search[index + 1:]
            found, _ = search.offers(search_body(d, order=order, offer_type=offer_type,
                                                 limit=SEARCH_LIMIT, terms=rest))
            if found:
                term = d.search[index]
                assert term.span is not None  # ``required`` holds the terms with one
                blockers.append(Blocker(term=search_term(term), span=term.span,
                                        offers=len(found)))
    return MarketCheck(label=d.label, body=body, offers=tuple(offers), price_field=field,
                       prices=summarize(prices), estimate=estimate_cost(d, prices),
                       blockers=tuple(blockers),
                       untried=max(0, len(required) - MAX_PROBES) if not offers else 0,
                       cached=cached,
                       first_term=d.search[required[0]].span if required else None)


@dataclass(frozen=True)
class MarketNote:
    """The market check of one target as plan and deploy show it: the check (None when
    the search failed) and a warning to print (nothing matches, or the search failed)."""

    check: MarketCheck | None
    warning: str | None

    def to_json(self) -> dict[str, JsonValue]:
        """The check's figures (``matches`` null when the search failed) and the warning."""
        figures = self.check.to_json() if self.check else {"matches": None}
        return {**figures, "warning": self.warning}


def survey(models: Sequence[Deployment], search: OfferSearch, *,
           require_offers: bool = False) -> list[MarketNote]:
    """The market check of every target, before anything is built or registered. A
    search that fails or finds nothing is a warning; with ``require_offers`` it is a
    :class:`VastbuildError` naming every such target, so nothing gets registered."""
    from vastbuild.vast.client import SearchQuotaExceeded

    notes: list[MarketNote] = []
    used_up: SearchQuotaExceeded | None = None
    for model in models:
        try:
            if used_up is not None:  # asking again before the reset only fails again
                raise used_up
            check = check_market(model, search)
        except SearchQuotaExceeded as failure:
            used_up = failure
            notes.append(MarketNote(None, f"the market check failed: {failure.message}"))
            continue
        except VastbuildError as failure:
            notes.append(MarketNote(None, f"the market check failed: {failure.message}"))
            continue
        empty = (f"no offer on the market matches its search: {check.emptied_by()}"
                 if not check.offers else None)
        notes.append(MarketNote(check, empty))
    problems = [f"{model.label}: {note.warning}" for model, note in
                zip(models, notes, strict=True) if note.warning]
    if require_offers and problems:
        raise VastbuildError("offers are required, and " + "; ".join(problems),
                             "loosen the REQUIRE term named (or wait for the market), then "
                             "deploy again; nothing was registered")
    return notes
