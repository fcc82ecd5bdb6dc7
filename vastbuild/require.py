"""REQUIRE: typing the offer search against the query catalog.

Every REQUIRE line adds ``column OP value`` terms to one query. This module
checks each term against :mod:`vastbuild.catalog` (column known, operator fits
the column's type, value of that type, units only where the server has them)
and then looks at the terms of each column together: the SDK refuses the same
operator twice on a column, and a pair of terms no machine can satisfy would
make an endpoint that never gets a worker. The result is the full search:
the SDK's defaults first, then the terms in source order.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import TypeVar

from vastbuild import nodes
from vastbuild.catalog import Catalog, ColumnType, catalog
from vastbuild.diagnostics import Diagnostic, Note, error, warning
from vastbuild.model import Scalar, SearchTerm
from vastbuild.units import SIZE_UNITS_GB, UnitError, convert, parse_number, split_unit

#: operators each column type takes; ordering needs numbers (or dotted versions)
ALLOWED_OPS: dict[ColumnType, tuple[str, ...]] = {
    "number": ("eq", "neq", "lt", "lte", "gt", "gte", "in", "notin"),
    "version": ("eq", "neq", "lt", "lte", "gt", "gte", "in", "notin"),
    "text": ("eq", "neq", "in", "notin"),
    "bool": ("eq", "neq"),
}
SPELLING = {"eq": "==", "neq": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">=",
            "in": "IN", "notin": "NOTIN"}
LIST_OPS = ("in", "notin")
LOWER_BOUNDS = ("gt", "gte")
UPPER_BOUNDS = ("lt", "lte")
#: days are the search_params unit of ``duration``; hours are the only finer unit
#: that makes sense for how long a machine stays rentable
DURATION_UNITS_DAYS: dict[str, Decimal] = {"d": Decimal(1), "h": Decimal(1) / 24}
_VERSION = re.compile(r"\d+(?:\.\d+)*")


#: how a bool column's values are written (read in any case)
BOOLEAN_WORDS = ("true", "false")


def check_require(requires: Iterable[nodes.Require]
                  ) -> tuple[tuple[SearchTerm, ...], list[Diagnostic]]:
    """The full offer search of a Vastfile and the problems found in its REQUIRE lines."""
    cat = catalog()
    diagnostics: list[Diagnostic] = []
    terms: list[tuple[SearchTerm, str]] = []
    columns_set: set[str] = set()
    for directive in requires:
        for comparison in directive.terms:
            if comparison.column.text in cat.columns:
                columns_set.add(cat.canonical(comparison.column.text))
            term = _check_comparison(comparison, cat, diagnostics)
            if term is not None:
                terms.append((term, _written(comparison)))
    diagnostics.extend(_conflicts(terms, cat))
    defaults = tuple(SearchTerm(column, "eq", value) for column, value in cat.search_defaults
                     if column not in columns_set)
    return defaults + tuple(term for term, _ in terms), diagnostics


def _written(comparison: nodes.Comparison) -> str:
    value = comparison.value
    shown = ("[" + ", ".join(item.raw for item in value.items) + "]"
             if isinstance(value, nodes.ListValue) else value.raw)
    return f"{comparison.column.text} {comparison.op.text} {shown}"


def _check_comparison(comparison: nodes.Comparison, cat: Catalog,
                      diagnostics: list[Diagnostic]) -> SearchTerm | None:
    column = comparison.column
    if column.text not in cat.columns:
        diagnostics.append(_unknown_column(column, cat))
        return None
    canonical = cat.canonical(column.text)
    ctype = cat.column_type(column.text)
    op = cat.operators.get(" ".join(comparison.op.text.lower().split()).replace("not in",
                                                                               "notin"))
    if op is None:
        diagnostics.append(error("E043", f"`{comparison.op.text}` is not an operator",
                                 comparison.op.span,
                                 "use ==, !=, <, <=, >, >=, IN or NOTIN"))
        return None
    if op not in ALLOWED_OPS[ctype]:
        allowed = ", ".join(_spell(o) for o in ALLOWED_OPS[ctype])
        diagnostics.append(error(
            "E043", f"`{comparison.op.text}` does not apply to `{column.text}`, a {ctype} column",
            comparison.op.span, f"`{column.text}` takes {allowed}"))
        return None
    value = comparison.value
    if op in LIST_OPS:
        if not isinstance(value, nodes.ListValue):
            diagnostics.append(error(
                "E045", f"`{comparison.op.text}` needs a list", value.span,
                f"write `{column.text} {comparison.op.text} [{value.raw}]`"))
            return None
        if not value.items:
            diagnostics.append(error("E045", "the list is empty", value.span,
                                     "name at least one value between the brackets"))
            return None
        typed = [_typed_value(item, canonical, ctype, cat, diagnostics) for item in value.items]
        scalars = tuple(item for item in typed if item is not None)
        if len(scalars) != len(typed):
            return None
        return SearchTerm(canonical, op, scalars, comparison.span)
    if isinstance(value, nodes.ListValue):
        diagnostics.append(error(
            "E045", f"a list needs IN or NOTIN, not `{comparison.op.text}`", value.span,
            f"write `{column.text} IN [...]`, or compare with one value"))
        return None
    scalar = _typed_value(value, canonical, ctype, cat, diagnostics)
    return None if scalar is None else SearchTerm(canonical, op, scalar, comparison.span)


def _spell(op: str) -> str:
    """How the language reference writes a canonical operator."""
    return SPELLING[op]


def _unknown_column(column: nodes.Word, cat: Catalog) -> Diagnostic:
    by_lower = {name.lower(): name for name in cat.columns}
    nearest = ([by_lower[column.text.lower()]] if column.text.lower() in by_lower
               else difflib.get_close_matches(column.text, sorted(cat.columns), n=1))
    hint = (f"did you mean `{nearest[0]}`?" if nearest
            else "the columns are listed in the language reference (REQUIRE)")
    return error("E042", f"unknown column `{column.text}`", column.span, hint,
                 suggestion=nearest[0] if nearest else None)


def _typed_value(word: nodes.Word, column: str, ctype: ColumnType, cat: Catalog,
                 diagnostics: list[Diagnostic]) -> Scalar | None:
    """The value of ``word`` for ``column``, in search_params units, or ``None``
    after reporting why it is not one."""
    text = word.text
    if ctype == "bool":
        if text.lower() in BOOLEAN_WORDS:
            return text.lower() == "true"
        diagnostics.append(error("E044", f"`{column}` is true or false, not `{text}`",
                                 word.span, f"write `{column} == true` or `{column} == false`"))
        return None
    if ctype == "version":
        if _VERSION.fullmatch(text):
            return text
        diagnostics.append(error("E044", f"`{text}` is not a version", word.span,
                                 f"`{column}` compares dotted versions such as 535.86.05"))
        return None
    if ctype == "text":
        return _gpu_name(word, diagnostics) if column == "gpu_name" else text
    return _number(word, column, cat, diagnostics)


def _number(word: nodes.Word, column: str, cat: Catalog,
            diagnostics: list[Diagnostic]) -> Scalar | None:
    text = word.text
    plain = parse_number(text)
    if plain is not None:
        return plain
    unit = cat.search_unit(column)
    if split_unit(text) is None:
        diagnostics.append(error("E044", f"`{text}` is not a number", word.span,
                                 f"`{column}` compares numbers"))
        return None
    if unit is None:
        unit_columns = ", ".join(sorted(cat.unit_multipliers))
        diagnostics.append(error(
            "E046", f"`{column}` takes a plain number, without a unit", word.span,
            f"write the number alone; only {unit_columns} take units"))
        return None
    units = SIZE_UNITS_GB if unit == "GB" else DURATION_UNITS_DAYS
    try:
        return convert(text, units, "GB" if unit == "GB" else "d")
    except UnitError as exc:
        diagnostics.append(error("E046", str(exc), word.span, f"`{column}` is in {unit}"))
        return None


def _gpu_name(word: nodes.Word, diagnostics: list[Diagnostic]) -> str:
    """A GPU constant (bare ``RTX_4090``) becomes its name; anything else stays as
    written, with a warning when no known GPU has that name."""
    cat = catalog()
    if not word.quote and word.text in cat.gpu_constants:
        return cat.gpu_constants[word.text]
    if word.text in cat.gpu_names:
        return word.text
    choices = sorted(cat.gpu_constants) if not word.quote else sorted(cat.gpu_names)
    nearest = difflib.get_close_matches(word.text, choices, n=1, cutoff=0.6)
    hint = (f"did you mean `{nearest[0]}`?" if nearest else
            "GPU constants are listed in the language reference; a GPU newer than the "
            "table may still match")
    diagnostics.append(warning("W001", f"`{word.text}` is not a known GPU name", word.span,
                               hint, suggestion=(f"{word.quote}{nearest[0]}{word.quote}"
                                                 if nearest else None)))
    return word.text


def _conflicts(terms: list[tuple[SearchTerm, str]], cat: Catalog) -> list[Diagnostic]:
    """Same operator twice on a column (E047) and pairs of terms no offer can satisfy
    (E048), each reported at the later term with a note at the earlier one."""
    diagnostics: list[Diagnostic] = []
    seen: dict[str, list[tuple[SearchTerm, str]]] = {}
    for term, written in terms:
        earlier = seen.setdefault(term.column, [])
        ctype = cat.column_type(term.column)
        for other, other_written in earlier:
            assert other.span is not None and term.span is not None
            if other.op == term.op:
                diagnostics.append(error(
                    "E047", f"`{term.column}` has the operator `{_spell(term.op)}` twice",
                    term.span, "keep one of the two; every REQUIRE line adds to the same query",
                    [Note(other.span, f"first set here: `{other_written}`")]))
                break
            if _unsatisfiable(other, term, ctype):
                diagnostics.append(error(
                    "E048", f"`{written}` contradicts `{other_written}`: no offer matches both",
                    term.span, "change or remove one of the two",
                    [Note(other.span, f"`{other_written}` is set here")]))
                break
        earlier.append((term, written))
    return diagnostics


#: a value as the server compares it: a dotted version becomes the tuple of its numbers
_Key = Scalar | tuple[int, ...]
#: the keys an ordering operator applies to (``int`` and ``bool`` count as ``float`` here)
_Ordered = TypeVar("_Ordered", float, tuple[int, ...])


def _key(value: Scalar, ctype: ColumnType) -> _Key:
    """A value in a form that compares as the server compares it."""
    if ctype == "version":
        return tuple(int(part) for part in str(value).split("."))
    return value


def _compare(op: str, value: _Key, bound: _Key) -> bool:
    """``value OP bound`` for an ordering operator (lt, lte, gt, gte). REQUIRE allows
    those only on number and version columns, so both sides are numbers or both
    version tuples; anything else cannot be ordered, as in Python."""
    if isinstance(value, tuple) and isinstance(bound, tuple):
        return _ordered(op, value, bound)
    if isinstance(value, (int, float)) and isinstance(bound, (int, float)):
        return _ordered(op, value, bound)
    raise TypeError(f"cannot order {value!r} and {bound!r}")


def _ordered(op: str, value: _Ordered, bound: _Ordered) -> bool:
    """The ordering itself, once both sides are known to be of one kind."""
    if op == "lt":
        return value < bound
    if op == "lte":
        return value <= bound
    if op == "gt":
        return value > bound
    if op == "gte":
        return value >= bound
    raise KeyError(op)


def _holds(term: SearchTerm, value: _Key, ctype: ColumnType) -> bool:
    """Whether ``column == value`` satisfies ``term``."""
    if term.op in LIST_OPS:
        assert isinstance(term.value, tuple)
        inside = value in {_key(v, ctype) for v in term.value}
        return inside if term.op == "in" else not inside
    assert not isinstance(term.value, tuple)
    bound = _key(term.value, ctype)
    if term.op == "eq":
        return value == bound
    if term.op == "neq":
        return value != bound
    return _compare(term.op, value, bound)


def _unsatisfiable(a: SearchTerm, b: SearchTerm, ctype: ColumnType) -> bool:
    """True when no value satisfies both terms. Decided where one term pins the
    value down (``==``, ``IN``) or the two are opposite bounds; other pairs
    (``!=`` with ``>``) always leave room."""
    for pin, other in ((a, b), (b, a)):
        if pin.op == "eq":
            assert not isinstance(pin.value, tuple)
            return not _holds(other, _key(pin.value, ctype), ctype)
    for pin, other in ((a, b), (b, a)):
        if pin.op == "in":
            assert isinstance(pin.value, tuple)
            return not any(_holds(other, _key(v, ctype), ctype) for v in pin.value)
    if {a.op, b.op} & set(LOWER_BOUNDS) and {a.op, b.op} & set(UPPER_BOUNDS):
        low, high = (a, b) if a.op in LOWER_BOUNDS else (b, a)
        assert not isinstance(low.value, tuple) and not isinstance(high.value, tuple)
        low_value = _key(low.value, ctype)
        high_value = _key(high.value, ctype)
        if _compare("gt", low_value, high_value):
            return True
        return low_value == high_value and (low.op == "gt" or high.op == "lt")
    return False
