"""``vastbuild offers``: what Vast's market holds for a Vastfile, before deploying it.

Sends each target's own search (the terms its registration carries, with its
STORAGE priced in) to the offer search and prints how many offers match, the
cheapest as a table, a price summary and an estimate of the endpoint's hourly
cost. docs/market.md explains each figure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vastbuild.api import market_check, offer_search_defaults, offer_types
from vastbuild.cli import options
from vastbuild.cli.context import GlobalOptions
from vastbuild.cli.deploy import _client
from vastbuild.cli.report import load

if TYPE_CHECKING:
    from vastbuild.api import MarketCheck

#: the table's columns: heading, offer field, how a value is shown
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("GPU", "gpu_name", "{}"),
    ("N", "num_gpus", "{}"),
    ("VRAM GB", "gpu_ram", "mb"),
    ("vCPUs", "cpu_cores_effective", "{:.0f}"),
    ("RAM GB", "cpu_ram", "mb"),
    ("$/h", "", "price"),
    ("reliab.", "reliability", "{:.3f}"),
    ("location", "geolocation", "{}"),
    ("verification", "verification", "{}"),
)


_ORDER, _OFFER_TYPE = offer_search_defaults()


@click.command()
@options.paths
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True,
              metavar="N", help="Show the first N matching offers.")
@click.option("--order", default=_ORDER, show_default=True, metavar="FIELDS",
              help="Sort by these offer fields (comma list; FIELD- sorts descending).")
@click.option("--type", "offer_type", type=click.Choice(offer_types()), default=_OFFER_TYPE,
              show_default=True, help="The rental type to price (bid: interruptible).")
@click.option("--refresh", is_flag=True,
              help="Ask the market again rather than reuse an answer of the last minutes.")
@options.server
@click.pass_obj
def offers(settings: GlobalOptions, paths: tuple[str, ...], limit: int, order: str,
           offer_type: str, refresh: bool, as_json: bool, api_url: str | None,
           autoscaler_url: str | None, api_key_file: Path | None) -> None:
    """Show the offers on Vast's market that each target's REQUIRE lines match.

    The search is the one the target registers (its REQUIRE terms, Vast's
    defaults verified/rentable/unrented), priced with its STORAGE. Prints the
    number of matches, the first N as a table, the price summary and the
    estimated hourly cost idle and at full scale. When nothing matches, names
    the REQUIRE term that empties the market.
    """
    models = load(paths, settings)
    with _client(settings, api_url, autoscaler_url, api_key_file) as client:
        checks = market_check(models, client=client, cache_dir=settings.cache_dir,
                              order=order, offer_type=offer_type, refresh=refresh)
    if as_json:
        click.echo(json.dumps({"targets": [
            {**check.to_json(), "offers": list(check.offers[:limit])} for check in checks
        ]}, indent=2))
        return
    for check in checks:
        _show(check, limit)


def _show(check: MarketCheck, limit: int) -> None:
    """One target: the count, the table, the prices and the estimate."""
    click.echo(f"{check.label}  {check.count_text()}"
               + (" (answer of the last minutes; --refresh asks again)" if check.cached else ""))
    if not check.offers:
        click.echo(f"  empty     {check.emptied_by()}")
        return
    rows = [[_cell(offer, field, style, check.price_field) for _, field, style in _COLUMNS]
            for offer in check.offers[:limit]]
    headings = [heading for heading, _, _ in _COLUMNS]
    widths = [max(len(cell) for cell in column) for column in zip(headings, *rows, strict=True)]
    for row in (headings, *rows):
        click.echo("  " + "  ".join(cell.ljust(width) for cell, width in
                                    zip(row, widths, strict=True)).rstrip())
    prices = check.prices
    if prices is not None:
        click.echo(f"  prices    ${prices.minimum:.3f}/h min, ${prices.median:.3f} median, "
                   f"${prices.p90:.3f} p90, ${prices.maximum:.3f} max ({check.price_field})")
    if check.estimate is not None:
        click.echo(f"  estimate  {check.estimate.summary()}")
        click.echo("            from the current market: each worker rents one offer, the "
                   "cheapest first")


def _cell(offer: dict[str, Any], field: str, style: str, price_field: str) -> str:
    """One table cell: MB shown as GB, the price from the type's price field, '-' for none."""
    value = offer.get(price_field if style == "price" else field)
    if value is None or value == "":
        return "-"
    try:
        if style == "mb":
            return f"{float(value) / 1000:.0f}"
        if style == "price":
            return f"{float(value):.3f}"
        return style.format(value)
    except (TypeError, ValueError):
        return str(value)
