"""The Vast offer-search catalog: which REQUIRE columns exist, their types and units.

The facts live in ``data/query-catalog.json`` (a copy of Vast's query language as
the vastai SDK defines it) so that a new column or GPU is a data change, not a
code change. The file is read once per process, on first use, because most
commands (``hash`` of a cached build) never look at a REQUIRE line.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Literal, TypeGuard, TypeVar, get_args

ColumnType = Literal["number", "text", "bool", "version"]

_Fact = TypeVar("_Fact")


@dataclass(frozen=True)
class Catalog:
    """The query language, as data. Column names are case-sensitive, as on the server."""

    #: every name REQUIRE accepts: queryable columns, virtual columns and aliases
    columns: frozenset[str]
    #: alias -> the real column the server remaps it to (``dphtotal`` -> ``dph_total``)
    aliases: Mapping[str, str]
    #: virtual columns the server rewrites (``verified`` -> ``vericode``), with what they mean
    virtual: Mapping[str, str]
    types: Mapping[str, ColumnType]
    #: column -> the heading Vast's search documentation lists it under (``GPU``, ``Pricing``)
    groups: Mapping[str, str]
    #: columns whose search_params value is in GB (1000) or days (86400), not the stored unit
    unit_multipliers: Mapping[str, int]
    #: ``RTX_4090`` -> ``RTX 4090``
    gpu_constants: Mapping[str, str]
    gpu_names: frozenset[str]
    #: (column, value) in the order the SDK adds them
    search_defaults: tuple[tuple[str, bool], ...]
    #: operator as written (``==``, ``in``) -> canonical name (``eq``, ``in``)
    operators: Mapping[str, str]
    #: canonical name -> spelling inside search_params (``eq`` -> ``=``)
    operator_spelling: Mapping[str, str]

    def canonical(self, column: str) -> str:
        """The column an alias stands for; other names are returned unchanged."""
        return self.aliases.get(column, column)

    def search_unit(self, column: str) -> str | None:
        """The unit a column's number is written in inside search_params (and REQUIRE):
        ``GB`` for the sizes the server multiplies by 1000, ``days`` for ``duration``
        (by 86400); None for a column taken as written."""
        multiplier = self.unit_multipliers.get(self.canonical(column))
        if multiplier is None:
            return None
        return "GB" if multiplier == 1000 else "days"

    def column_type(self, column: str) -> ColumnType:
        """How values of ``column`` are typed; the catalog says unlisted columns are numbers."""
        return self.types.get(column, self.types.get(self.canonical(column), "number"))


def _public(section: object, kind: type[_Fact]) -> dict[str, _Fact]:
    """Drop the ``_about`` commentary keys the data file carries next to the facts,
    and check that every fact left is a ``kind`` (JSON gives no types to trust)."""
    if not isinstance(section, dict):
        raise ValueError(f"query-catalog.json: expected an object, not {section!r}")
    facts: dict[str, _Fact] = {}
    for key, value in section.items():
        if key.startswith("_"):
            continue
        if not isinstance(value, kind):
            raise ValueError(f"query-catalog.json: {key!r} is not a {kind.__name__}: {value!r}")
        facts[key] = value
    return facts


def _is_column_type(name: str) -> TypeGuard[ColumnType]:
    return name in get_args(ColumnType)


def _column_types(section: object) -> dict[str, ColumnType]:
    """The ``column_types`` section, each type checked to be one :data:`ColumnType` names."""
    types: dict[str, ColumnType] = {}
    for column, name in _public(section, str).items():
        if not _is_column_type(name):
            raise ValueError(f"query-catalog.json: {column!r} has an unknown type {name!r}")
        types[column] = name
    return types


@functools.cache
def catalog() -> Catalog:
    """The catalog shipped with vastbuild, parsed once."""
    text = resources.files("vastbuild").joinpath("data/query-catalog.json").read_text("utf-8")
    raw = json.loads(text)
    aliases = _public(raw["column_aliases"], str)
    virtual = _public(raw["virtual_columns"], str)
    constants = _public(raw["gpu_name_constants"], str)
    return Catalog(
        columns=frozenset(raw["all_columns"]) | frozenset(virtual) | frozenset(aliases),
        aliases=MappingProxyType(aliases),
        virtual=MappingProxyType(virtual),
        types=MappingProxyType(_column_types(raw["column_types"])),
        groups=MappingProxyType({column: group for group, columns
                                 in _public(raw["documented_columns"], list).items()
                                 for column in columns}),
        unit_multipliers=MappingProxyType(
            _public(raw["unit_multipliers_in_search_params"], int)),
        gpu_constants=MappingProxyType(constants),
        gpu_names=frozenset(constants.values()),
        search_defaults=tuple(_public(raw["search_defaults"], bool).items()),
        operators=MappingProxyType(_public(raw["operators"], str)),
        operator_spelling=MappingProxyType(_public(raw["search_params_operator_spelling"], str)),
    )
