"""Diagnostics for programs rather than people: ``check --format json`` and ``sarif``.

Editors and CI services read these instead of scraping the text, so the fields are
the diagnostic's own (1-based line and column, end exclusive, as in the text) and
SARIF is the 2.1.0 profile GitHub code scanning takes: one run, a rule for every
code that occurs, described by the parser's and checker's code tables.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from vastbuild.api import VERSION, Diagnostic, Span, diagnostic_codes, reference_link

#: the OASIS schema of SARIF 2.1.0 (with its errata), which the log says it follows
SARIF_SCHEMA = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
                "sarif-schema-2.1.0.json")
#: the base the relative artifact URIs are relative to: the working folder
SOURCE_ROOT = "%SRCROOT%"


def _location(span: Span | None) -> dict[str, object]:
    if span is None:
        return {"file": None, "line": None, "col": None, "end_line": None, "end_col": None}
    return {"file": span.path, "line": span.line, "col": span.col,
            "end_line": span.end_line, "end_col": span.end_col}


def diagnostics_json(diagnostics: Sequence[Diagnostic]) -> str:
    """A JSON list with one object per diagnostic, its notes as located messages."""
    return json.dumps([
        {**_location(d.span), "severity": d.severity.value, "code": d.code,
         "message": d.message, "help": d.help,
         "notes": [{**_location(n.span), "message": n.message} for n in d.notes]}
        for d in diagnostics], indent=2)


def _uri(path: str) -> tuple[str, str | None]:
    """A path as a SARIF artifact URI: relative to the working folder (so that a run
    at the root of a repository gives the repository paths code scanning matches),
    absolute ``file:`` when the file is outside it; and the base it is relative to."""
    relative = os.path.relpath(path)
    if relative.startswith(".."):
        return Path(path).resolve().as_uri(), None
    return quote(Path(relative).as_posix()), SOURCE_ROOT


def _physical(span: Span) -> dict[str, object]:
    uri, base = _uri(span.path)
    artifact: dict[str, object] = {"uri": uri}
    if base is not None:
        artifact["uriBaseId"] = base
    return {"artifactLocation": artifact,
            "region": {"startLine": span.line, "startColumn": span.col,
                       "endLine": span.end_line, "endColumn": span.end_col}}


def diagnostics_sarif(diagnostics: Sequence[Diagnostic]) -> str:
    """A SARIF 2.1.0 log of one run of ``vastbuild check``."""
    described = diagnostic_codes()
    codes = sorted({d.code for d in diagnostics})
    rules = [{"id": code,
              "shortDescription": {"text": described.get(code, code)},
              "helpUri": reference_link(code)} for code in codes]
    results = []
    for d in diagnostics:
        text = d.message + (f"\nhelp: {d.help}" if d.help else "")
        result: dict[str, object] = {
            "ruleId": d.code, "ruleIndex": codes.index(d.code),
            "level": d.severity.value, "message": {"text": text}}
        if d.span is not None:
            result["locations"] = [{"physicalLocation": _physical(d.span)}]
        if d.notes:
            result["relatedLocations"] = [
                {"id": number, "message": {"text": note.message},
                 "physicalLocation": _physical(note.span)}
                for number, note in enumerate(d.notes)]
        results.append(result)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "vastbuild", "version": VERSION, "rules": rules}},
            # columns count characters, as the text output's do, not UTF-16 units
            "columnKind": "unicodeCodePoints",
            "originalUriBaseIds": {SOURCE_ROOT: {"uri": Path.cwd().as_uri().rstrip("/") + "/"}},
            "results": results,
        }],
    }
    return json.dumps(log, indent=2)
