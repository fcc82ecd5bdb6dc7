"""Numbers with units, as Vastfiles write them: sizes (``80GB``) and durations (``15m``).

Conversions go through :class:`decimal.Decimal` so that ``0.1TB`` is exactly 100
GB rather than ``100.00000000000001``: the value ends up in a content hash and
on the wire, where a float artefact would read as a change.
"""

from __future__ import annotations

import re
from decimal import Decimal

Number = int | float

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_WITH_UNIT = re.compile(r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?P<unit>[A-Za-z]+)")

#: size units in GB, decimal as Vast's query parser counts them
SIZE_UNITS_GB: dict[str, Decimal] = {"MB": Decimal("0.001"), "GB": Decimal(1),
                                     "TB": Decimal(1000)}
#: duration units in seconds
DURATION_UNITS_S: dict[str, Decimal] = {"s": Decimal(1), "m": Decimal(60),
                                        "h": Decimal(3600), "d": Decimal(86400)}


class UnitError(ValueError):
    """The text is not a number in an accepted unit; the message says which units are."""


def parse_number(text: str) -> Number | None:
    """A plain decimal number: ``int`` when written without a point, else ``float``;
    ``None`` when ``text`` is not one."""
    if not _NUMBER.fullmatch(text):
        return None
    return float(text) if "." in text else int(text)


def split_unit(text: str) -> tuple[Decimal, str] | None:
    """``"48GB"`` -> ``(Decimal(48), "GB")``; ``None`` when ``text`` is not a number
    followed by letters."""
    match = _WITH_UNIT.fullmatch(text)
    if not match:
        return None
    return Decimal(match["number"]), match["unit"]


def exact(value: Decimal) -> Number:
    """A Decimal as the plain number a user would write: ``int`` when whole."""
    return int(value) if value == value.to_integral_value() else float(value)


def convert(text: str, units: dict[str, Decimal], default_unit: str) -> Number:
    """Read ``text`` as a number with an optional unit from ``units`` (any case) and
    return it in ``default_unit``. A plain number keeps the int/float it was written as."""
    plain = parse_number(text)
    if plain is not None:
        return plain
    split = split_unit(text)
    if split is None:
        raise UnitError(f"`{text}` is not a number")
    number, unit = split
    by_lower = {name.lower(): factor for name, factor in units.items()}
    if unit.lower() not in by_lower:
        raise UnitError(f"`{unit}` is not a unit here (use {', '.join(units)})")
    return exact(number * by_lower[unit.lower()] / units[default_unit])


def size_gb(text: str) -> Number:
    """A size in GB: ``80``, ``80GB``, ``500MB``, ``0.5TB`` (units in any case)."""
    return convert(text, SIZE_UNITS_GB, "GB")


def duration_seconds(text: str) -> Number:
    """A duration in seconds: ``90``, ``90s``, ``15m``, ``2h``, ``1d``."""
    return convert(text, DURATION_UNITS_S, "s")
