"""What the words of a Vastfile mean, as hover text and completion candidates.

Every fact comes from the table that defines it for the parser and the checker:
directives from :data:`vastbuild.directives.DIRECTIVES` and the plugin registry,
REQUIRE columns, operators and GPU constants from the query catalog, AUTOSCALE keys
from :data:`vastbuild.model.AUTOSCALE_SETTINGS` and the checker's description of
their values. Text is markdown, as editors show hovers.
"""

from __future__ import annotations

from dataclasses import dataclass

from vastbuild.catalog import catalog
from vastbuild.check import AUTOSCALE_VALUES
from vastbuild.directives import BY_KEYWORD
from vastbuild.model import AUTOSCALE_BY_NAME, AUTOSCALE_SETTINGS, AutoscaleSetting
from vastbuild.plugins import registry
from vastbuild.require import BOOLEAN_WORDS

#: how a REQUIRE column's values are written, by the catalog's type
_TYPE_TEXT = {"number": "a number", "text": "text (a word or a quoted string)",
              "bool": "`true` or `false`", "version": "a dotted version such as 535.86.05"}


@dataclass(frozen=True)
class Candidate:
    """A word that may be written somewhere: the text, a one-line detail, its doc."""

    text: str
    detail: str
    doc: str


def directive_doc(keyword: str) -> str | None:
    """A directive's usage, meaning and how often it may appear; None for a keyword that
    neither the language nor an installed plugin defines."""
    spec = BY_KEYWORD.get(keyword.upper())
    if spec is None:
        if keyword.upper() in registry().plugin_keywords():
            return f"**{keyword.upper()}**: a directive an installed plugin adds"
        return None
    usage = "\n".join(spec.usage.split(" | "))
    often = "exactly once" if spec.count == "once" else spec.count
    return (f"**{spec.keyword}**: {spec.meaning}\n\n```\n{usage}\n```\n\n"
            f"May appear {often}" + (f" ({spec.note})" if spec.note else "") + ".")


def directives() -> list[Candidate]:
    """Every directive a line may start with here: the language's, then plugins'."""
    return [Candidate(keyword, BY_KEYWORD[keyword].usage if keyword in BY_KEYWORD else "plugin",
                 directive_doc(keyword) or "") for keyword in registry().known_keywords()]


def column_doc(column: str) -> str | None:
    """A REQUIRE column's meaning (the heading Vast lists it under, or what a virtual
    column or an alias stands for), its type and its unit; None when there is no such
    column."""
    cat = catalog()
    if column not in cat.columns:
        return None
    canonical = cat.canonical(column)
    lines = [f"**{column}**: REQUIRE column"]
    if canonical != column:
        lines.append(f"An alias of `{canonical}`.")
    if canonical in cat.groups:
        lines.append(f"Listed under {cat.groups[canonical]} in Vast's search columns.")
    if canonical in cat.virtual:
        lines.append(f"The server rewrites it: {cat.virtual[canonical]}.")
    lines.append(f"Values: {_TYPE_TEXT[cat.column_type(column)]}.")
    unit = cat.search_unit(canonical)
    if unit is not None:
        lines.append(f"Unit: {unit} (a number alone is in {unit}; a unit may be written).")
    return "\n\n".join(lines)


def columns() -> list[Candidate]:
    """Every column REQUIRE accepts."""
    cat = catalog()
    return [Candidate(name, cat.column_type(name), column_doc(name) or "")
            for name in sorted(cat.columns)]


def operators() -> list[Candidate]:
    """The comparison operators, words in capitals as the formatter writes them."""
    return [Candidate(op.upper() if op.isalpha() else op, name, f"`{op}`: {name}")
            for op, name in catalog().operators.items()]


def gpu_doc(constant: str) -> str | None:
    """The name Vast uses for a bare GPU constant (``RTX_4090`` -> ``RTX 4090``)."""
    name = catalog().gpu_constants.get(constant)
    return None if name is None else f"**{constant}**: the GPU Vast calls `{name}`"


def values(column: str) -> list[Candidate]:
    """The values a REQUIRE column may be compared with, when they are few enough to
    list: the GPU constants (each with the name Vast uses) for ``gpu_name``, true and
    false for a true-or-false column."""
    cat = catalog()
    if cat.canonical(column) == "gpu_name":
        return [Candidate(constant, name, gpu_doc(constant) or "")
                for constant, name in sorted(cat.gpu_constants.items())]
    if column in cat.columns and cat.column_type(column) == "bool":
        return [Candidate(value, "bool", f"`{value}`") for value in BOOLEAN_WORDS]
    return []


def _autoscale_text(setting: AutoscaleSetting) -> str:
    values = AUTOSCALE_VALUES[setting.kind]
    values += "" if setting.kind == "fraction" else ", at least 0"
    default = ("none: Vast sets no value" if setting.default is None
               else f"{setting.default}")
    return f"{values}; default {default}"


def autoscale_doc(key: str) -> str | None:
    """An AUTOSCALE key's range and the value Vast gives an endpoint without it."""
    setting = AUTOSCALE_BY_NAME.get(key)
    return None if setting is None else f"**{key}**: {_autoscale_text(setting)}"


def autoscale_keys() -> list[Candidate]:
    """The AUTOSCALE keys, in the order Vast lays them out."""
    return [Candidate(setting.name, _autoscale_text(setting), autoscale_doc(setting.name) or "")
            for setting in AUTOSCALE_SETTINGS]
