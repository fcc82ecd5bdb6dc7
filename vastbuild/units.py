"""Numbers with units: Vastfile sizes (``80GB``) and durations (``15m``), byte
counts for people (``204.0 MB``), and whole numbers read from a server's answer.

Conversions go through :class:`decimal.Decimal` so that ``0.1TB`` is exactly 100
GB rather than ``100.00000000000001``: the value ends up in a content hash and
on the wire, where a float artefact would read as a change.

Every size vastbuild prints or reads is decimal, as Vast counts GB (1 GB =
1000 MB): ``format_bytes`` writes kB, MB, GB, TB; ``parse_bytes`` reads those
(``K``/``M``/``G``/``T`` for short) and, for users who think in powers of two,
the explicit binary units KiB, MiB, GiB, TiB.
"""

from __future__ import annotations

import re
from decimal import Decimal

Number = int | float

#: a decimal number as a Vastfile writes one (ASCII digits), also the pattern the editor
#: grammars colour numbers with
NUMBER_PATTERN = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_NUMBER = re.compile(NUMBER_PATTERN)
_WITH_UNIT = re.compile(f"(?P<number>{NUMBER_PATTERN})(?P<unit>[A-Za-z]+)")

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


def exact(value: Decimal | Number) -> Number:
    """A number as a user would write it: ``int`` when whole (``80.0`` -> ``80``), so
    that one value has one spelling on the wire and in every hash."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return int(value) if float(value).is_integer() else value


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


#: byte units for people: decimal, and the explicit binary ones
_BYTE_UNITS: dict[str, int] = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "t": 10**12, "tb": 10**12,
    "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}
_BYTES = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*")
#: the largest byte count accepted (what a 64-bit signed integer holds)
MAX_BYTES = (1 << 63) - 1


def parse_bytes(text: str) -> int:
    """A byte count: ``500M`` / ``500MB`` (decimal), ``2GiB`` (binary), ``1024``.
    Raises :class:`UnitError` for anything else, or a count past :data:`MAX_BYTES`."""
    match = _BYTES.fullmatch(text)
    if not match or match[2].lower() not in _BYTE_UNITS:
        raise UnitError(f"`{text}` is not a size (write e.g. 500MB, 2GB or 2GiB)")
    count = int(Decimal(match[1]) * _BYTE_UNITS[match[2].lower()])
    if count > MAX_BYTES:
        raise UnitError(f"`{text}` is too large")
    return count


def format_bytes(count: int) -> str:
    """Bytes for people, decimal: ``812 B``, ``1.3 kB``, ``204.8 MB``."""
    if count < 1000:
        return f"{count} B"
    value = float(count)
    unit = "B"
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 999.95 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


def optional_int(value: object) -> int | None:
    """A whole number from a JSON answer: ``None`` when absent (``None`` or ``""``).
    A whole float or a numeral string counts; anything else (a bool, ``1.5``,
    ``"x"``) raises :class:`ValueError`, so a caller decides what garbage means."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise ValueError(f"{value!r} is not a whole number")


def int_or_none(value: object) -> int | None:
    """:func:`optional_int`, with garbage read as absent: for comparing what a server
    reports, where a plan says what it cannot compare rather than fail."""
    try:
        return optional_int(value)
    except ValueError:
        return None
