"""What hashing and building a target give back, and the record form of each.

These types live apart from the passes that compute them so that a warm
``vastbuild hash`` can hand back a result from :mod:`vastbuild.uptodate`
without importing the parser, the planner or networkx.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vastbuild.canonical import JsonValue
from vastbuild.diagnostics import Diagnostic, Note, Severity, Span


@dataclass(frozen=True)
class Reason:
    """Why a step ran (``build --explain``): a ``kind`` (see :data:`REASON_KINDS`), the
    file or Vastfile line it concerns, and a detail (a Vastfile line's text, a
    compressor's versions, a field of the registration)."""

    kind: str
    path: str | None = None
    line: int | None = None
    detail: str = ""

    def describe(self, shown: Callable[[str], str] = str) -> str:
        """The reason as a sentence, with paths as ``shown`` writes them."""
        where = "" if self.path is None else shown(self.path)
        if self.line is not None:
            where = f"{where}:{self.line}"
        return REASON_KINDS[self.kind].format(path=where, detail=self.detail)

    def to_json(self, shown: Callable[[str], str] = str) -> dict[str, object]:
        return {"kind": self.kind, "path": self.path, "line": self.line,
                "detail": self.detail, "text": self.describe(shown)}


#: every kind of :class:`Reason`, with the sentence it reads as
REASON_KINDS = {
    "changed": "{path} changed",
    "added": "{path} is new",
    "removed": "{path} was removed",
    "touched": "{path} was touched (its content is the same; its stat is not)",
    "mode": "{path}: its mode or link target changed",
    "line": "{path} changed: {detail}",
    "line-removed": "{path}: lines were removed here",
    "registration": "the registration's `{detail}` changed",
    "compressor": "a new compressor: {detail}",
    "output": "{path} was missing or modified",
    "settings": "the last build ran under other settings (output folder or formats, "
                "API URLs, --tag/--arg, SOURCE_DATE_EPOCH, or another vastbuild or "
                "installed package)",
    "no-record": "no earlier build of this target is recorded in this cache to compare "
                 "with (the first build here, or its files had changed moments before)",
    "cache-miss": "nothing it depends on changed, but the cache had no result for it "
                  "(cleared, evicted, or built elsewhere)",
}


@dataclass(frozen=True)
class StepReport:
    """One step a target needed: its id, kind and label, whether it ran (rather than
    came from the cache), and how many of the run's targets needed it (more than
    one: a step they share, run once for all); how long it ran, and why (filled in
    for ``build --explain``)."""

    id: str
    kind: str
    label: str
    ran: bool
    targets: int
    seconds: float = 0.0
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True)
class StepMark:
    """What a drawing of the graph says of a step: how many targets need it, and
    whether the cache holds its result (False: a build would run it)."""

    targets: int
    cached: bool


@dataclass(frozen=True)
class HashResult:
    """A target's content hash, its component hashes (for tier planning), its manifest
    (archive name -> what the member is), how many steps ran, and the warnings its
    Vastfile has."""

    label: str
    vastfile: Path
    name: str
    tag: str
    hash: str
    components: dict[str, str]
    manifest: dict[str, str]
    cached_steps: int
    built_steps: int
    warnings: tuple[Diagnostic, ...] = field(default=(), kw_only=True)
    #: the steps this target needed (none when answered from a record or a patch)
    steps: tuple[StepReport, ...] = field(default=(), kw_only=True)


@dataclass(frozen=True, kw_only=True)
class BuildResult(HashResult):
    """A built target: its hash, and the artifacts, their sizes and the registration body."""

    artifacts: dict[str, Path]
    sizes: dict[str, int]
    #: the registration body, when the .tar.gz it describes was built
    deployment_config: dict[str, JsonValue] | None
    #: where the registration body was written (None: built into the cache only)
    deployment_json: Path | None = None
    #: with ``build --explain``, why the registration body differs from the last build's
    #: (it is written by no step: a change to AUTOSCALE or REQUIRE runs nothing)
    registration_reasons: tuple[Reason, ...] = ()


Record = dict[str, object]


def registration_file(config: dict[str, JsonValue]) -> bytes:
    """The bytes of ``<name>.deployment.json``: the registration body (see
    :func:`vastbuild.wire.deployment_config`), indented."""
    return (json.dumps(config, indent=2) + "\n").encode()


def hash_record(result: HashResult) -> Record:
    """``result`` as plain data (what :mod:`marshal` writes), for the up-to-date record."""
    return {"label": result.label, "vastfile": str(result.vastfile), "name": result.name,
            "tag": result.tag, "hash": result.hash, "components": dict(result.components),
            "steps": result.cached_steps + result.built_steps,
            "warnings": [_diagnostic_record(d) for d in result.warnings]}


def build_record(result: BuildResult) -> Record:
    record = hash_record(result)
    record.update({"artifacts": {fmt: str(path) for fmt, path in result.artifacts.items()},
                   "sizes": dict(result.sizes), "deployment_config": result.deployment_config,
                   "deployment_json": None if result.deployment_json is None
                   else str(result.deployment_json)})
    return record


def hash_from_record(record: Record) -> HashResult:
    """The result a record describes, every step now counted as cached: nothing ran."""
    steps = record["steps"]
    components, warnings = record["components"], record["warnings"]
    assert isinstance(steps, int) and isinstance(components, dict)
    assert isinstance(warnings, list)
    return HashResult(str(record["label"]), Path(str(record["vastfile"])),
                      str(record["name"]), str(record["tag"]), str(record["hash"]),
                      {str(k): str(v) for k, v in components.items()}, {}, steps, 0,
                      warnings=tuple(_diagnostic_from(w) for w in warnings))


def build_from_record(record: Record) -> BuildResult:
    base = hash_from_record(record)
    artifacts, sizes, config = record["artifacts"], record["sizes"], record["deployment_config"]
    assert isinstance(artifacts, dict) and isinstance(sizes, dict)
    assert config is None or isinstance(config, dict)
    written = record["deployment_json"]
    return BuildResult(
        label=base.label, vastfile=base.vastfile, name=base.name, tag=base.tag,
        hash=base.hash, components=base.components, manifest={},
        cached_steps=base.cached_steps, built_steps=0, warnings=base.warnings,
        artifacts={str(k): Path(str(v)) for k, v in artifacts.items()},
        sizes={str(k): int(v) for k, v in sizes.items()}, deployment_config=config,
        deployment_json=None if written is None else Path(str(written)))


def _span_record(span: Span | None) -> object:
    return None if span is None else (span.path, span.line, span.col, span.end_line,
                                      span.end_col)


def _span_from(value: object) -> Span | None:
    if value is None:
        return None
    assert isinstance(value, tuple)
    path, line, col, end_line, end_col = value
    return Span(str(path), int(line), int(col), int(end_line), int(end_col))


def _diagnostic_record(d: Diagnostic) -> object:
    return (d.severity.value, d.code, d.message, _span_record(d.span), d.help,
            tuple((_span_record(n.span), n.message) for n in d.notes))


def _diagnostic_from(value: object) -> Diagnostic:
    assert isinstance(value, tuple)
    severity, code, message, span, help_, notes = value
    note_spans = [(_span_from(s), str(m)) for s, m in notes]
    return Diagnostic(Severity(severity), str(code), str(message), _span_from(span),
                      None if help_ is None else str(help_),
                      tuple(Note(s, m) for s, m in note_spans if s is not None))
