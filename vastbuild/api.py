"""The library API: every vastbuild command is a call here.

The command line (:mod:`vastbuild.cli`) is a thin layer over this module and
imports nothing else of vastbuild; Python users call the same functions.
Results are dataclasses; failures are exceptions:

- :class:`~vastbuild.diagnostics.DiagnosticError` -- a Vastfile has errors
  (every diagnostic of every file is attached);
- :class:`~vastbuild.errors.InvalidArgument` -- a value passed in cannot be
  used (a path that names no Vastfile, a URL, a size, an output folder);
- :class:`~vastbuild.errors.VastbuildError` -- anything else a user can fix (a
  server that refused, a file that cannot be read).

Messages never name a command line flag; an error's ``setting`` says which
setting it is about. Functions that take ``targets`` accept Vastfiles, folders
holding one, or already loaded :class:`~vastbuild.model.Deployment` models.
Heavy modules (the parser, networkx, the HTTP client) are imported only by the
functions that need them, so ``import vastbuild.api`` is cheap and a warm
:func:`hash_targets` never imports them (see :mod:`vastbuild.uptodate`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeAlias, TypeVar

from vastbuild import __version__ as VERSION
from vastbuild.canonical import JsonValue
from vastbuild.diagnostics import (
    Diagnostic,
    DiagnosticError,
    Severity,
    Span,
    error,
    has_errors,
    printable,
    reference_link,
    render,
    sort_key,
    warning,
)
from vastbuild.errors import InvalidArgument, VastbuildError
from vastbuild.formats import FORMATS, SUFFIXES
from vastbuild.results import BuildResult, HashResult
from vastbuild.settings import (
    Setting,
    Settings,
    check_setting,
    default_cache_dir,
    load_settings,
)
from vastbuild.targets import VASTFILE, NoVastfile, find_vastfile
from vastbuild.units import format_bytes, parse_bytes
from vastbuild.urls import DEFAULT_API_URL, DEFAULT_AUTOSCALER_URL, check_url

if TYPE_CHECKING:  # types of results, re-exported for annotations
    from vastbuild.cache import BuildCache as BuildCache
    from vastbuild.cache import CacheStats as CacheStats
    from vastbuild.cache import VerifyReport as VerifyReport
    from vastbuild.deploy import DeployOutcome as DeployOutcome
    from vastbuild.deploy import DeployPlan as DeployPlan
    from vastbuild.devserver import DevServer as DevServer
    from vastbuild.market import MarketCheck as MarketCheck
    from vastbuild.market import MarketNote as MarketNote
    from vastbuild.market import OfferSearch
    from vastbuild.model import Deployment as Deployment
    from vastbuild.nodes import Vastfile
    from vastbuild.operate import DownResult as DownResult
    from vastbuild.operate import TargetStatus as TargetStatus
    from vastbuild.operate import WaitResult as WaitResult
    from vastbuild.plan import BuildPlan as BuildPlan
    from vastbuild.progress import TransferMeter
    from vastbuild.scaffold import Scaffold
    from vastbuild.secret_values import Secrets
    from vastbuild.secret_values import SecretSources as SecretSources
    from vastbuild.vast.client import VastClient as VastClient
    from vastbuild.vast.last_deploy import Deployed as Deployed

__all__ = [
    "deployment_status", "endpoint_logs", "new_log_lines", "wait_for_rollout", "set_running",
    "take_down", "deploy_history", "rollback", "LOG_LEVELS",
    "ARTIFACT_FORMATS", "ARTIFACT_SUFFIXES", "GRAPH_STYLES", "parse_arg", "DEFAULT_API_URL",
    "DEFAULT_AUTOSCALER_URL",
    "DEFAULT_DEV_SERVER_PORT", "VERSION", "BuildResult", "CheckReport", "Diagnostic",
    "DiagnosticError", "HashResult", "InvalidArgument", "LoadedTargets", "NoVastfile",
    "AffectedInfo", "Setting", "Settings", "check_setting", "load_settings", "TargetInfo",
    "affected_targets", "list_targets", "resolve_targets", "target_labels",
    "Severity", "Span", "Target", "VastbuildError", "build", "build_graph", "cache_clear",
    "cache_gc", "cache_stats", "check", "check_source", "check_url", "compressors", "connect",
    "default_cache_dir", "default_dev_server_data_dir", "deploy", "dev_server",
    "diagnostic_codes", "find_vastfile", "format_bytes", "format_file", "format_source",
    "formatted_file", "has_errors",
    "hash_targets", "is_content_hash", "keep_alive", "load", "load_all", "parse_bytes",
    "plan_build", "plan_deploy", "printable", "read_api_key", "render", "sort_key",
    "check_depfile", "write_depfiles", "secret_sources", "parse_secret_option",
    "cache_verify", "import_sdk", "SdkImport", "VastfileExists",
    "init", "init_templates", "market_check", "offer_types", "reference_link",
    "serve_language_server", "VASTFILE", "offer_search_defaults",
]

ARTIFACT_FORMATS: tuple[str, ...] = FORMATS
ARTIFACT_SUFFIXES = SUFFIXES
DEFAULT_DEV_SERVER_PORT = 8765
#: checker codes that a fragment checked on its own may raise for what its includers hold
_INCLUDER_PROVIDES = frozenset({"E020", "E055"})
#: checker codes that a directive lost to a syntax error could cause
_DEPENDS_ON_ABSENCE = frozenset({"E020", "E030"})

Target: TypeAlias = "str | os.PathLike[str] | Deployment"
Report = Callable[[str], None]
R = TypeVar("R", bound=HashResult)


def resolve_targets(targets: Sequence[Target], *,
                    cwd: Path | None = None) -> list[Path | Deployment]:
    """The targets ``targets`` name, in order, each once: a :class:`Deployment` as it is;
    a string or path as :mod:`vastbuild.targets` reads it (a path, a label such as
    ``//services/llm``, a pattern such as ``//services/...`` or ``./...``, a deployment
    name or ``name:tag``). Default: ``./Vastfile``. :class:`NoVastfile` for a name that
    names none."""
    from vastbuild.model import Deployment
    from vastbuild.targets import resolve

    found: list[Path | Deployment] = []
    for target in targets or (VASTFILE,):
        if isinstance(target, Deployment):
            found.append(target)
        else:
            found.extend(v for v in resolve([target], _registered, cwd=cwd) if v not in found)
    return found


def _registered(vastfile: Path) -> tuple[str, str] | None:
    """The (name, tag) a Vastfile registers, None when it does not check."""
    model = check(vastfile).model
    return None if model is None else (model.name, model.tag)


@dataclass(frozen=True)
class TargetInfo:
    """A target of the workspace: its label, its Vastfile, and what it registers (None
    when the Vastfile has errors)."""

    label: str
    vastfile: Path
    name: str | None
    tag: str | None


def list_targets(patterns: Sequence[str] = ("//...",), *,
                 cwd: Path | None = None) -> list[TargetInfo]:
    """The targets ``patterns`` name (default: the whole workspace), each checked for
    the name and tag it registers."""
    from vastbuild.targets import names_of

    vastfiles = [t for t in resolve_targets(list(patterns) or ["//..."], cwd=cwd)
                 if isinstance(t, Path)]
    infos = []
    for named in names_of(vastfiles, cwd):
        registered = _registered(named.vastfile)
        infos.append(TargetInfo(named.label, named.vastfile,
                                registered[0] if registered else None,
                                registered[1] if registered else None))
    return infos


def target_labels(*, cwd: Path | None = None) -> list[str]:
    """The label of every Vastfile of the workspace (``//services/llm``), found by walking
    its folders without reading a file: cheap enough for a shell to ask on each TAB,
    unlike :func:`list_targets`, which checks every file for the name it registers."""
    from vastbuild.targets import names_of

    try:
        vastfiles = [t for t in resolve_targets(["//..."], cwd=cwd) if isinstance(t, Path)]
    except NoVastfile:  # a workspace without Vastfiles
        return []
    return [named.label for named in names_of(vastfiles, cwd)]


def parse_arg(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` (as ``--arg`` takes it) as (name, value); :class:`InvalidArgument`
    when NAME is not what an ARG may be called."""
    from vastbuild.expand import ARG_NAME

    name, equals, value = text.partition("=")
    if not equals or not ARG_NAME.fullmatch(name):
        raise InvalidArgument(f"{text!r} is not NAME=VALUE", "NAME is letters, digits and "
                              "`_`, not starting with a digit, as in ARG NAME", setting="args")
    return name, value


@dataclass(frozen=True)
class AffectedInfo:
    """A target that a change since a git commit touches, with the changed inputs."""

    label: str
    vastfile: Path
    name: str
    tag: str
    changed: tuple[Path, ...]


def affected_targets(targets: Sequence[Target], since: str, *,
                     cache_dir: str | os.PathLike[str],
                     cwd: Path | None = None) -> list[AffectedInfo]:
    """Those of ``targets`` whose inputs differ between the git commit ``since`` and the
    work tree (see :mod:`vastbuild.affected`), in order."""
    from vastbuild.affected import affected, changed_files
    from vastbuild.workspace import label_of, root_from

    root = root_from(cwd or Path.cwd())
    the_plan = plan_build(targets, cache_dir=cache_dir)
    touched = affected(the_plan, changed_files(root, since))
    by_vastfile = {t.deployment.vastfile: t.deployment for t in the_plan.targets}
    return [AffectedInfo(label_of(a.vastfile, root), a.vastfile,
                         by_vastfile[a.vastfile].name, by_vastfile[a.vastfile].tag,
                         tuple(Path(p) for p in a.changed))
            for a in touched]




@dataclass(frozen=True)
class CheckReport:
    """What checking one Vastfile found: the model (None when there is an error, and for
    a fragment checked on its own) and every diagnostic, errors and warnings."""

    vastfile: Path
    model: Deployment | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def check(path: str | os.PathLike[str], *, tag: str | None = None,
          args: Mapping[str, str] | None = None) -> CheckReport:
    """Find, read, parse and check a Vastfile (or the folder holding one). Problems in
    the file come back as diagnostics; a path naming no Vastfile is :class:`NoVastfile`.
    ``tag``: the tag of a Vastfile without TAG (default: ``default``); ``args``: values
    of its ARGs, over their defaults."""
    vastfile = find_vastfile(path)
    try:
        source = vastfile.read_bytes()
    except OSError as exc:
        return CheckReport(vastfile, None, (error(
            "E033", f"cannot read {vastfile.as_posix()}: {exc.strerror or exc}",
            Span.point(vastfile.as_posix(), 1, 1), "check the file's permissions"),))
    return check_source(source, vastfile, tag=tag, args=args)


def check_source(source: bytes, vastfile: str | os.PathLike[str], *, tag: str | None = None,
                 args: Mapping[str, str] | None = None) -> CheckReport:
    """Parse and check the text of a Vastfile that is not (or not yet) on disk -- an
    editor's unsaved buffer, a pipe -- as if it were read from ``vastfile``: positions
    name that path and CODE, COPY and INCLUDE resolve relative to its folder, so the
    report is the one :func:`check` would give for the same bytes in that file."""
    from vastbuild.check import check as check_tree
    from vastbuild.expand import FRAGMENT_SUFFIX
    from vastbuild.syntax import parse

    vastfile = Path(vastfile)
    tree, diagnostics = parse(source, vastfile.as_posix())
    if tree is None:
        return CheckReport(vastfile, None, tuple(diagnostics))
    model, problems = (check_tree(tree, vastfile, args=args) if tag is None else
                       check_tree(tree, vastfile, default_tag=tag, args=args))
    if vastfile.name.endswith(FRAGMENT_SUFFIX):
        return CheckReport(vastfile, None, tuple(diagnostics + _as_fragment(tree, problems)))
    if has_errors(diagnostics):
        # The lines that parsed are still checked, so one run shows every mistake;
        # but a line with a syntax error is missing from the tree, so what depends
        # on its absence (no FROM, no DEPLOYMENT to match CODE) is not reported.
        kept = [d for d in problems if d.code not in _DEPENDS_ON_ABSENCE]
        return CheckReport(vastfile, None, tuple(diagnostics + kept))
    return CheckReport(vastfile, model, tuple(diagnostics + problems))


def _as_fragment(tree: Vastfile, problems: list[Diagnostic]) -> list[Diagnostic]:
    """What checking a fragment on its own finds: each line's own checks, E054 (alone)
    at a line only a Vastfile may hold, but not what its includers provide (the FROM
    and CODE a Vastfile needs, the ARGs its ``${NAME}``s may name)."""
    from vastbuild.expand import FRAGMENT_NODES, not_in_a_fragment

    misplaced = [d for d in tree.directives if not isinstance(d, FRAGMENT_NODES)]
    lines = {line for d in misplaced for line in range(d.span.line, d.span.end_line + 1)}
    kept = [d for d in problems if d.code not in _INCLUDER_PROVIDES
            and not (d.span is not None and d.span.path == tree.path and d.span.line in lines)]
    return kept + [not_in_a_fragment(directive) for directive in misplaced]


def diagnostic_codes() -> dict[str, str]:
    """Every diagnostic code (parser's and checker's) with a one-line description, in
    code order: what a report that names rules by code (SARIF) describes them with."""
    from vastbuild.check import CHECK_CODES
    from vastbuild.syntax import SYNTAX_CODES

    return dict(sorted({**SYNTAX_CODES, **CHECK_CODES}.items()))


def serve_language_server(*, tag: str | None = None, args: Mapping[str, str] | None = None,
                          tracebacks: bool = False) -> None:
    """Answer an editor's Language Server Protocol requests on stdin and stdout until it
    exits (docs/lsp.md), with the diagnostics :func:`check_source` gives (``tag`` and
    ``args`` as it takes them). The server lives below this module, so it is handed
    that function rather than importing it. Problems of the server (a malformed
    message) go to stderr, the editor's log, in one line each, or with their
    traceback when ``tracebacks``. :class:`VastbuildError` when pygls (the ``lsp``
    extra) is not installed."""
    try:
        from vastbuild.lsp.server import serve
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in ("pygls", "lsprotocol"):
            raise
        raise VastbuildError(f"the language server needs {missing}, which is not installed",
                             "install vastbuild[lsp]: pip install 'vastbuild[lsp]'") from None
    serve(lambda source, vastfile: check_source(source, vastfile, tag=tag, args=args)
          .diagnostics, tracebacks=tracebacks)


def load(path: str | os.PathLike[str]) -> Deployment:
    """The checked deployment of a Vastfile (or of the folder holding one). Raises
    :class:`DiagnosticError` carrying every diagnostic when the file has errors."""
    report = check(path)
    if report.model is None or not report.ok:
        raise DiagnosticError(report.diagnostics)
    return report.model


@dataclass(frozen=True)
class LoadedTargets:
    """Checked models, and the warnings each one's Vastfile has (in the same order)."""

    models: tuple[Deployment, ...]
    diagnostics: tuple[tuple[Diagnostic, ...], ...]

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for found in self.diagnostics for d in found)


def load_all(targets: Sequence[Target], *, tag: str | None = None,
             args: Mapping[str, str] | None = None) -> LoadedTargets:
    """Every target's checked model (default ``./Vastfile``; ``tag``: the tag of a
    Vastfile without TAG; ``args``: ARG values, each of which some target must
    declare). Every file is checked before failing: :class:`DiagnosticError` carries
    the diagnostics of all of them."""
    from vastbuild.model import Deployment

    resolved = resolve_targets(targets)  # a name that names nothing stops the run first
    models: list[Deployment] = []
    found: list[tuple[Diagnostic, ...]] = []
    for target in resolved:
        if isinstance(target, Deployment):
            models.append(target)
            found.append(())
            continue
        report = check(target, tag=tag, args=args)
        found.append(report.diagnostics)
        if report.model is not None and report.ok:
            models.append(report.model)
    problems = [d for diagnostics in found for d in diagnostics]
    if has_errors(problems):
        raise DiagnosticError(problems)
    declared = {name for model in models for name, _ in model.args}
    unused = sorted(set(args or {}) - declared)
    if unused and len(models) == len(resolved):
        raise InvalidArgument(f"no target declares ARG {', '.join(unused)}",
                              "declare it with ARG NAME=default in the Vastfile, or drop it",
                              setting="args")
    return LoadedTargets(tuple(models), tuple(found))


# -- formatting -------------------------------------------------------------------------

def format_source(source: str | bytes, path: str) -> str:
    """The canonical text of a Vastfile; :class:`DiagnosticError` when it does not parse
    (bytes that are not UTF-8 included: the parser says where)."""
    from vastbuild.fmt import format_source as layout
    from vastbuild.syntax import parse

    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError:
            raise DiagnosticError(parse(source, path)[1]) from None
    return layout(source, path)


def formatted_file(path: str | os.PathLike[str]) -> tuple[Path, str, str]:
    """The Vastfile ``path`` names, its text and its canonical text, writing nothing (what
    a diff of the formatting shows). :class:`DiagnosticError` when it does not parse;
    :class:`VastbuildError` when it cannot be read."""
    vastfile = find_vastfile(path)
    shown = vastfile.as_posix()
    try:
        data = vastfile.read_bytes()
    except OSError as exc:
        raise VastbuildError(f"cannot read {shown}: {exc.strerror or exc}",
                             "check the file's permissions") from None
    formatted = format_source(data, shown)
    return vastfile, data.decode("utf-8"), formatted


def format_file(path: str | os.PathLike[str], *, write: bool = True) -> bool:
    """Lay a Vastfile out canonically; whether its bytes change. With ``write``, a file
    that changes is replaced atomically, keeping its permissions (a crash leaves the
    old or the new file). :class:`DiagnosticError` when it does not parse (or is not
    UTF-8: the parser says where); :class:`VastbuildError` when it cannot be read or
    written."""
    from vastbuild.files import atomic_write

    vastfile, text, formatted = formatted_file(path)
    if formatted == text:
        return False
    if write:
        try:
            atomic_write(vastfile.resolve(), formatted.encode("utf-8"), mode=None,
                         durable=True)
        except OSError as exc:
            raise VastbuildError(
                f"cannot rewrite {vastfile.as_posix()}: {exc.strerror or exc}",
                "the file is unchanged; make its folder writable or free some space, "
                "then format it again") from None
    return True


# -- starting a deployment --------------------------------------------------------------

def init_templates() -> tuple[str, ...]:
    """The templates :func:`init` writes, the default first."""
    from vastbuild.scaffold import TEMPLATES

    return TEMPLATES


def init(folder: str | os.PathLike[str] = ".", *, template: str | None = None,
         name: str | None = None) -> Scaffold:
    """Write a new deployment into ``folder`` (made when missing) from one of
    :func:`init_templates` (default: the first): a Vastfile and its code, which check
    clean, build and deploy as written (docs/init.md). ``name`` is DEPLOYMENT and the
    code's ``Deployment(name=...)``; by default the folder's name, made valid.
    ``vastbuild.scaffold.FilesExist`` (an :class:`InvalidArgument`) when either file
    exists, and then nothing is written; :class:`InvalidArgument` for an unknown
    template or a name that cannot be used. The module is imported only here, off
    the start-up path of every other command."""
    from vastbuild.scaffold import DEFAULT_TEMPLATE, scaffold

    return scaffold(Path(folder), template or DEFAULT_TEMPLATE, name)


# -- importing from the vastai SDK -------------------------------------------------------

class VastfileExists(InvalidArgument):
    """The Vastfile :func:`import_sdk` would write exists, and replacing it was not allowed."""


@dataclass(frozen=True)
class SdkImport:
    """A vastai SDK program translated: the Vastfile (written, or where it would go),
    its text, and the warnings, which say where the Vastfile deliberately differs."""

    vastfile: Path
    text: str
    warnings: tuple[Diagnostic, ...]
    written: bool


def import_sdk(sdk_file: str | os.PathLike[str],
               vastfile: str | os.PathLike[str] | None = None, *, write: bool = True,
               force: bool = False) -> SdkImport:
    """Translate a Python file that uses the vastai SDK into the equivalent Vastfile
    (docs/import.md), reading it with ``ast``: the program is never imported or run.

    ``vastfile`` defaults to ``Vastfile`` beside the file (beside the package for a
    package's ``__init__.py``); a folder means its ``Vastfile``. With ``write`` the
    text is written atomically, never over an existing file unless ``force``
    (:class:`VastfileExists`). :class:`InvalidArgument` when ``sdk_file`` is not a
    file; :class:`DiagnosticError` (every diagnostic, warnings too) when the program
    cannot be translated or its translation does not check, and then nothing is
    written."""
    from vastbuild.files import atomic_write
    from vastbuild.sdk_import import check_translation, default_vastfile, translate

    sdk = Path(sdk_file)
    if not sdk.is_file():  # a folder, a pipe or nothing: there is no program to read
        raise InvalidArgument(f"{sdk.as_posix()} is not a file",
                              "name the Python file that creates the vastai Deployment")
    target = default_vastfile(sdk) if vastfile is None else Path(vastfile)
    if target.is_dir():
        target = target / VASTFILE
    if write and not force and (target.exists() or target.is_symlink()):
        raise VastfileExists(f"{target.as_posix()} already exists",
                             "choose another output, or allow replacing it")
    try:
        source = sdk.read_bytes()
    except OSError as exc:
        raise VastbuildError(f"cannot read {sdk.as_posix()}: {exc.strerror or exc}",
                             "check the file's permissions") from None
    translation = translate(source, sdk, target, shown=sdk.as_posix(),
                            vastfile_shown=target.as_posix())
    diagnostics = list(translation.diagnostics)
    if translation.text is not None:
        diagnostics += check_translation(translation, target)
    if translation.text is None or has_errors(diagnostics):
        raise DiagnosticError(diagnostics)
    if write:
        try:
            atomic_write(target, translation.text.encode("utf-8"), mode=None, durable=True)
        except OSError as exc:
            raise VastbuildError(f"cannot write {target.as_posix()}: {exc.strerror or exc}",
                                 "make its folder writable or free some space") from None
    return SdkImport(target, translation.text, tuple(diagnostics), write)


# -- building and hashing ----------------------------------------------------------------

def is_content_hash(text: str) -> bool:
    """Whether ``text`` is spelled as a content hash: 64 hexadecimal digits."""
    return len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)


def _urls(api_url: str, autoscaler_url: str) -> tuple[str, str]:
    return check_url(api_url, "api_url"), check_url(autoscaler_url, "autoscaler_url")


def _paths_only(targets: Sequence[Target]) -> list[Path] | None:
    """The Vastfiles of ``targets`` (absolute, links resolved) when all are named by
    paths, labels, patterns or names (a :class:`Deployment` is the other kind, told
    apart without importing the model)."""
    named = [t for t in targets if isinstance(t, (str, os.PathLike))]
    if len(named) != len(targets):
        return None
    from vastbuild.targets import resolve

    return [Path(os.path.realpath(v)) for v in resolve(named, _registered)]


def hash_targets(targets: Sequence[Target], *, cache_dir: str | os.PathLike[str],
                 api_url: str = DEFAULT_API_URL, autoscaler_url: str = DEFAULT_AUTOSCALER_URL,
                 jobs: int | None = None, remote_cache: str | None = None, tag: str | None = None,
                 args: Mapping[str, str] | None = None,
                 remote_cache_read_only: bool = False) -> list[HashResult]:
    """The content hash, component hashes and manifest of each target, without
    compressing or writing anything but the cache. When nothing changed since the
    last hash or build, the answer comes from a stat of every input
    (:mod:`vastbuild.uptodate`); the manifest is then left empty."""
    from vastbuild import fastpath

    api_url, autoscaler_url = _urls(api_url, autoscaler_url)
    settings = fastpath.hash_settings(cache_dir, api_url, autoscaler_url, tag, args)
    vastfiles = _paths_only(targets)
    if vastfiles is not None:
        recorded = fastpath.recorded_hashes(cache_dir, vastfiles, settings)
        if recorded is not None:
            return recorded
    started = time.time_ns()
    loaded = load_all(targets, tag=tag, args=args)
    from vastbuild.archive import source_date_epoch
    from vastbuild.builder import hash_targets as run

    with _open_cache(cache_dir, remote_cache, remote_cache_read_only) as cache:
        finished = run(loaded.models, cache=cache, mtime=source_date_epoch(),
                       api_url=api_url, autoscaler_url=autoscaler_url, jobs=jobs)
    results = _with_warnings(finished.results, loaded, cache)
    if vastfiles is not None:
        fastpath.remember(cache_dir, [(fastpath.HASH, settings)], started, finished, results)
    return results


def build(targets: Sequence[Target], *, cache_dir: str | os.PathLike[str],
          outdir: str | os.PathLike[str] | None,
          formats: Sequence[str] = ARTIFACT_FORMATS, api_url: str = DEFAULT_API_URL,
          autoscaler_url: str = DEFAULT_AUTOSCALER_URL, progress: bool = False,
          jobs: int | None = None, remote_cache: str | None = None, tag: str | None = None,
          args: Mapping[str, str] | None = None,
          remote_cache_read_only: bool = False, explain: bool = False) -> list[BuildResult]:
    """Build each target's artifacts in ``formats`` into ``outdir`` (or, when None, a
    folder of the cache), with ``<name>.deployment.json`` (the registration body)
    beside them in ``outdir``. A file whose bytes would not change is left alone,
    mtime included; when no input and no output changed since the last build,
    nothing is planned or written at all. ``progress`` shows a progress bar on a
    terminal. ``explain``: plan the build in full, whatever the last one's record
    says, and give each step that ran its reasons (:mod:`vastbuild.explain`)."""
    from vastbuild import fastpath, uptodate

    api_url, autoscaler_url = _urls(api_url, autoscaler_url)
    out = None if outdir is None else Path(outdir)
    formats = tuple(dict.fromkeys(formats))
    hash_settings = fastpath.hash_settings(cache_dir, api_url, autoscaler_url, tag, args)
    vastfiles = _paths_only(targets) if out is not None else None
    purpose = None if out is None else fastpath.build_purpose(out, formats)
    settings = (purpose or "", *hash_settings[1:])
    if purpose is not None and vastfiles is not None and not explain:
        recorded = fastpath.recorded_builds(cache_dir, vastfiles, purpose, settings,
                                            hash_settings)
        if recorded is not None:
            return recorded
    started = time.time_ns()
    loaded = load_all(targets, tag=tag, args=args)
    before = None
    if explain:
        from vastbuild.explain import previous

        env = uptodate.environment(settings)
        before = [None if purpose is None else previous(cache_dir, m.vastfile, purpose, env)
                  for m in loaded.models]
    from vastbuild.archive import source_date_epoch
    from vastbuild.builder import build_targets
    from vastbuild.progress import reporter

    shown = reporter(progress)
    try:
        with _open_cache(cache_dir, remote_cache, remote_cache_read_only) as cache:
            finished = build_targets(
                loaded.models, cache=cache, outdir=out, formats=formats,
                mtime=source_date_epoch(), reporter=shown, api_url=api_url,
                autoscaler_url=autoscaler_url, jobs=jobs)
    finally:
        shown.close()
    built = _with_warnings(finished.results, loaded, cache)
    if purpose is not None and vastfiles is not None:
        fastpath.remember(cache_dir, [(purpose, settings), (fastpath.HASH, hash_settings)],
                          started, finished, built)
    if before is not None:
        from vastbuild.explain import explained

        built = explained(replace(finished, results=built), before)
    return built


def _with_warnings(results: Sequence[R], loaded: LoadedTargets,
                   cache: BuildCache | None = None) -> list[R]:
    """Each result with the warnings of its own Vastfile (and the first with what went
    wrong with the remote cache, which the build did without)."""
    remote = [warning("remote-cache", problem, None,
                      "check the remote cache's URL, credentials and health; builds go on "
                      "locally meanwhile")
              for problem in (cache.remote.problems if cache and cache.remote else [])]
    return [replace(result, warnings=found + (tuple(remote) if i == 0 else ()))
            for i, (result, found) in enumerate(zip(results, loaded.diagnostics,
                                                    strict=True))]


@contextmanager
def _open_cache(cache_dir: str | os.PathLike[str], remote_cache: str | None = None,
                remote_cache_read_only: bool = False) -> Iterator[BuildCache]:
    """The build cache of ``cache_dir`` (sharing with the remote cache at
    ``remote_cache``, when given), closed on leaving the ``with`` block."""
    from vastbuild.cache import BuildCache

    remote = None
    if remote_cache:
        from vastbuild.remote import RemoteCache

        remote = RemoteCache(check_url(remote_cache, "remote_cache"),
                             read_only=remote_cache_read_only)
    cache = BuildCache(Path(cache_dir), remote)
    try:
        yield cache
    finally:
        cache.close()


def plan_build(targets: Sequence[Target], *, cache_dir: str | os.PathLike[str],
               outdir: str | os.PathLike[str] | None = None,
               formats: Sequence[str] = ()) -> BuildPlan:
    """The build graph of ``targets`` (planning stats every source file, reads none)."""
    from vastbuild.archive import source_date_epoch
    from vastbuild.plan import plan

    models = load_all(targets).models
    return plan(models, cache_dir=Path(cache_dir),
                outdir=None if outdir is None else Path(outdir), formats=formats,
                compress=("gz",) if formats else (), mtime=source_date_epoch())


#: what :func:`build_graph` draws: text, DOT and JSON as text, SVG and PNG as bytes
GRAPH_STYLES = ("text", "dot", "json", "svg", "png")


def build_graph(targets: Sequence[Target], *, cache_dir: str | os.PathLike[str],
                style: str = "text", marks: bool = True, tag: str | None = None,
                args: Mapping[str, str] | None = None,
                output: str | os.PathLike[str] | None = None,
                outdir: str | os.PathLike[str] | None = None) -> str | bytes:
    """The merged build graph of ``targets`` drawn as ``text``, ``dot`` (Graphviz),
    ``json``, or (with Graphviz installed) ``svg`` or ``png`` bytes; also written to
    ``output`` when given; ``outdir``: the folder the artifacts would be built into
    (None: the cache's). With ``marks``, each step says how many targets share it
    and whether the step cache holds its result (the cache is read, nothing runs)."""
    from vastbuild import drawing
    from vastbuild.archive import source_date_epoch
    from vastbuild.builder import graph_marks

    if style not in GRAPH_STYLES:
        raise InvalidArgument(f"{style!r} is not a graph style",
                              "use " + ", ".join(GRAPH_STYLES))
    the_plan = plan_build(load_all(targets, tag=tag, args=args).models, cache_dir=cache_dir,
                          outdir=outdir, formats=FORMATS)
    found = None
    if marks:
        with _open_cache(cache_dir) as cache:
            found = graph_marks(the_plan, cache, source_date_epoch(), FORMATS)
    drawn: str | bytes
    if style in drawing.IMAGE_FORMATS:
        drawn = drawing.render_image(drawing.as_dot(the_plan, found), style)
    else:
        draw = {"text": drawing.as_text, "dot": drawing.as_dot, "json": drawing.as_json}[style]
        drawn = draw(the_plan, found)
    if output is not None:
        from vastbuild.files import write_if_changed

        data = drawn.encode("utf-8") + b"\n" if isinstance(drawn, str) else drawn
        try:
            write_if_changed(output, data)
        except OSError as exc:
            raise VastbuildError(f"cannot write {output}: {exc.strerror or exc}",
                                 "choose another output file") from None
    return drawn


def check_depfile(targets: Sequence[Target], output: str, make_target: str) -> None:
    """Raise :class:`InvalidArgument` unless :func:`write_depfiles` can write a depfile
    per target at ``output`` for ``make_target`` (before a build, not after it)."""
    _check_depfile(len(resolve_targets(targets)), output, make_target)


def _check_depfile(count: int, output: str, make_target: str) -> None:
    if not make_target.strip():
        raise InvalidArgument("the make target is empty",
                              "name the file make builds, e.g. dist/app.tar.gz",
                              setting="make_target")
    if count > 1 and not ("{name}" in output and "{name}" in make_target):
        raise InvalidArgument(f"{count} targets would write one depfile {output}",
                              "write one per target: put {name} in the depfile's path and "
                              "in the make target (dist/{name}.d)", setting="depfile")


def write_depfiles(targets: Sequence[Target], *, cache_dir: str | os.PathLike[str],
                   output: str, make_target: str) -> list[Path]:
    """Write a make depfile per target at ``output``: ``make_target`` depends on every
    input file and folder of the target. With several targets, both must hold
    ``{name}`` (the deployment's name), which each target's name replaces. The
    depfiles whose bytes changed (the others are left alone, mtime included)."""
    from vastbuild.depfile import render as render_depfile
    from vastbuild.files import write_if_changed

    planned = plan_build(targets, cache_dir=cache_dir).targets
    _check_depfile(len(planned), output, make_target)
    written = []
    for target in planned:
        path = Path(output.replace("{name}", target.deployment.name))
        rule = make_target.replace("{name}", target.deployment.name)
        # file names that are not UTF-8 go back to the bytes they are on disk, which make reads
        data = os.fsencode(render_depfile(rule, target.inputs))
        try:
            if path.parent != Path():
                path.parent.mkdir(parents=True, exist_ok=True)
            if write_if_changed(path, data):
                written.append(path)
        except OSError as exc:
            raise VastbuildError(f"cannot write {path}: {exc.strerror or exc}",
                                 "choose another depfile path", setting="depfile") from None
    return written


def compressors(formats: Sequence[str]) -> dict[str, dict[str, JsonValue]]:
    """The level and library (with its version) each artifact format is written with."""
    from vastbuild.archive import LEVELS, compressor_version

    return {fmt: {"level": LEVELS[fmt], "compressor": compressor_version(fmt)}
            for fmt in formats}


# -- the cache ---------------------------------------------------------------------------

def cache_stats(cache_dir: str | os.PathLike[str]) -> CacheStats:
    """What the cache holds and how big it is."""
    with _open_cache(cache_dir) as cache:
        return cache.stats()


def cache_gc(cache_dir: str | os.PathLike[str], max_size: int | None = None) -> tuple[int, int]:
    """Evict least recently used entries (down to ``max_size`` bytes, when given) and
    delete cached artifacts unused for a week: (entries evicted, artifacts deleted)."""
    with _open_cache(cache_dir) as cache:
        return cache.gc(max_size)


def cache_clear(cache_dir: str | os.PathLike[str]) -> int:
    """Delete everything the cache holds; the number of entries deleted."""
    with _open_cache(cache_dir) as cache:
        return cache.clear()


def cache_verify(cache_dir: str | os.PathLike[str]) -> VerifyReport:
    """Re-check every entry of the cache against its digest (or, for a compressed file,
    its recorded stat and its format's checksums) and drop the damaged ones, so the
    next build makes them again: what was checked and what was dropped."""
    with _open_cache(cache_dir) as cache:
        return cache.verify()


# -- deploying ---------------------------------------------------------------------------

def read_api_key(key_file: str | os.PathLike[str] | None = None) -> str:
    """The API key: the first line of ``key_file`` (trimmed; an editor's byte order
    mark ignored), else ``$VAST_API_KEY``. :class:`InvalidArgument` when there is none."""
    if key_file is not None:
        try:
            text = Path(key_file).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
            raise InvalidArgument(f"the API key file {key_file}: {reason}",
                                  "give a readable file holding the key",
                                  setting="api_key") from None
        key = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not key:
            raise InvalidArgument(f"the API key file {key_file} is empty",
                                  "put the key on its first line", setting="api_key")
        return key
    key = os.environ.get("VAST_API_KEY", "").strip()
    if not key:
        raise InvalidArgument("no API key: $VAST_API_KEY is not set", "give an API key",
                              setting="api_key")
    return key


def connect(api_key: str, *, api_url: str = DEFAULT_API_URL,
            autoscaler_url: str = DEFAULT_AUTOSCALER_URL, trace: Report | None = None,
            trace_bodies: bool = False) -> VastClient:
    """A client of the Vast API for ``api_key`` (use it in a ``with`` block). ``trace``
    receives a line per request and answer, the key always cut out."""
    from vastbuild.vast.client import VastClient

    api_url, autoscaler_url = _urls(api_url, autoscaler_url)
    return VastClient(api_key, api_url=api_url, autoscaler_url=autoscaler_url, trace=trace,
                      trace_bodies=trace_bodies)


def secret_sources(files: Mapping[str, Path] | None = None,
                   secrets_file: str | os.PathLike[str] | None = None) -> SecretSources:
    """Where ``deploy``, ``plan`` and ``rollback`` read secret values: ``files`` (name ->
    a file holding the value), then ``secrets_file`` (dotenv), then the environment.
    (Made here so that the module is imported only by the commands that need it.)"""
    from vastbuild.secret_values import SecretSources

    return SecretSources(files=dict(files or {}),
                         secrets_file=None if secrets_file is None else Path(secrets_file))


def _secrets(models: Sequence[Deployment], client: VastClient,
             sources: SecretSources | None, required: bool = True) -> Secrets:
    """The secrets ``models`` name, read from ``sources`` (default: the environment);
    the client hides their values from every trace and message from now on."""
    from vastbuild.secret_values import load_secrets

    given = load_secrets(models, sources or secret_sources(), required=required)
    client.hide(given.values.values())
    return given


def parse_secret_option(option: str) -> tuple[str, Path]:
    """``NAME=@FILE`` -> (NAME, FILE); :class:`InvalidArgument` for anything else,
    a value given in place (it would stay in the shell's history) above all."""
    from vastbuild.secret_values import parse_secret_option as parse

    return parse(option)


def plan_deploy(targets: Sequence[Target], *, client: VastClient,
                cache_dir: str | os.PathLike[str], remote_cache: str | None = None,
                remote_cache_read_only: bool = False,
                secrets: SecretSources | None = None, market: bool = True,
                require_offers: bool = False, refresh_market: bool = False
                ) -> list[DeployPlan]:
    """What deploying would do to each target: its update tier and every reason. Reads
    the server and the local record of the last deploy; changes nothing. A secret
    without a value (``secrets``: where values come from, the environment by
    default) is compared as unknown. ``market``: also say what the market holds for
    each target (see :func:`market_check`; ``refresh_market``: ask again rather than
    reuse an answer of the last minutes); a failed search or no match is a warning,
    an error with ``require_offers``."""
    from vastbuild.archive import source_date_epoch
    from vastbuild.deploy import plan_targets

    models = load_all(targets).models
    given = _secrets(models, client, secrets, required=False)
    with _open_cache(cache_dir, remote_cache, remote_cache_read_only) as cache:
        return plan_targets(models, client=client, cache=cache, mtime=source_date_epoch(),
                            api_url=client.api_url, autoscaler_url=client.autoscaler_url,
                            secrets=given, require_offers=require_offers,
                            market=_offer_search(client, cache_dir, market or require_offers,
                                                 refresh_market))


def deploy(targets: Sequence[Target], *, client: VastClient,
           cache_dir: str | os.PathLike[str], dry_run: bool = False,
           keep_alive: bool = False, report: Report | None = None,
           remote_cache: str | None = None,
           remote_cache_read_only: bool = False,
           secrets: SecretSources | None = None,
           show_uploads: bool = False, market: bool = True,
           require_offers: bool = False, refresh_market: bool = False) -> list[DeployOutcome]:
    """Build, plan, register, upload what the server lacks, and roll the workers, one
    target after another; the first failure stops the run. With ``dry_run`` nothing
    is registered, uploaded or recorded. ``keep_alive`` only checks, before anything
    is deployed, that some target has a TTL to keep alive (see :func:`keep_alive`).
    Every SECRET (and LOGIN's password) needs a value from ``secrets`` (the
    environment by default) before anything is built; values go into the
    registration request alone. ``show_uploads`` draws a bar (bytes, rate) for each
    upload when stderr is a terminal. ``market``: first check each target against the
    market (see :func:`plan_deploy`); with ``require_offers`` a target without offers
    stops the deploy before anything is built or registered."""
    from vastbuild.archive import source_date_epoch
    from vastbuild.deploy import deploy_targets, require_ttl

    if keep_alive and dry_run:
        raise InvalidArgument("keeping deployments alive and a dry run exclude each other",
                              "a dry run deploys nothing to keep alive")
    models = load_all(targets).models
    if keep_alive:
        require_ttl(model.ttl for model in models)
    given = _secrets(models, client, secrets)
    with _open_cache(cache_dir, remote_cache, remote_cache_read_only) as cache:
        return deploy_targets(models, client=client, cache=cache, mtime=source_date_epoch(),
                              api_url=client.api_url, autoscaler_url=client.autoscaler_url,
                              secrets=given, dry_run=dry_run, report=report,
                              meter=_meter(show_uploads), require_offers=require_offers,
                              market=_offer_search(client, cache_dir,
                                                   market or require_offers, refresh_market))


def _offer_search(client: VastClient, cache_dir: str | os.PathLike[str], wanted: bool,
                  refresh: bool) -> OfferSearch | None:
    """The market search plan and deploy check targets with (None: not ``wanted``)."""
    from vastbuild.market import OfferSearch

    return OfferSearch(client, Path(cache_dir), refresh=refresh) if wanted else None


def offer_types() -> tuple[str, ...]:
    """The rental types the offer search prices: on-demand, bid (interruptible), reserved."""
    from vastbuild.market import OFFER_TYPES

    return OFFER_TYPES


def offer_search_defaults() -> tuple[str, str]:
    """The order and the rental type a market check uses unless told: cheapest first,
    on-demand."""
    from vastbuild.market import DEFAULT_OFFER_TYPE, DEFAULT_ORDER

    return DEFAULT_ORDER, DEFAULT_OFFER_TYPE


def market_check(targets: Sequence[Target], *, client: VastClient,
                 cache_dir: str | os.PathLike[str], order: str | None = None,
                 offer_type: str | None = None, refresh: bool = False) -> list[MarketCheck]:
    """What Vast's market holds for each target: the offers its own search matches
    (``order``: a comma list of offer fields, ``-`` for descending), their prices for
    ``offer_type`` rentals with the target's STORAGE, a cost estimate from AUTOSCALE,
    and, when nothing matches, the REQUIRE terms that empty the market. Answers are
    reused for a few minutes unless ``refresh``."""
    from vastbuild.market import (
        DEFAULT_OFFER_TYPE,
        DEFAULT_ORDER,
        OFFER_TYPES,
        OfferSearch,
        check_market,
    )

    offer_type = offer_type or DEFAULT_OFFER_TYPE
    kind = next((t for t in OFFER_TYPES if t == offer_type), None)
    if kind is None:
        raise InvalidArgument(f"unknown offer type {offer_type!r}",
                              f"use one of {', '.join(OFFER_TYPES)}")
    models = load_all(targets).models
    search = OfferSearch(client, Path(cache_dir), refresh=refresh)
    return [check_market(model, search, order=order or DEFAULT_ORDER, offer_type=kind)
            for model in models]


def keep_alive(client: VastClient, outcomes: Sequence[DeployOutcome], stop: threading.Event,
               report: Report | None = None) -> None:
    """Send heartbeats for every deployed target with a TTL until ``stop`` is set."""
    from vastbuild.deploy import keep_alive as heartbeats

    heartbeats(client, outcomes, stop, report)


# -- operating what was deployed ---------------------------------------------------------

#: the log levels of the run host, tersest first
LOG_LEVELS = ("info0", "info1", "trace", "debug")


def deployment_status(targets: Sequence[Target] | None, *, client: VastClient,
                      cache_dir: str | os.PathLike[str]) -> list[TargetStatus]:
    """Each target's deployment as the server has it, with the local content hash to
    compare; with None, every deployment of the account."""
    from vastbuild.operate import status

    if targets is None:
        return status(client, None)
    models = load_all(targets).models
    hashes = hash_targets(models, cache_dir=cache_dir, api_url=client.api_url,
                          autoscaler_url=client.autoscaler_url)
    return status(client, [(m, h.hash) for m, h in zip(models, hashes, strict=True)])


def endpoint_logs(target: Target, *, client: VastClient, level: str = "info1",
                  tail: int | None = None, workergroup: bool = False) -> list[str]:
    """The lines of one level of the target's endpoint log (or its workergroup's)."""
    from vastbuild.operate import logs

    return logs(client, _one(target), level=level, tail=tail, workergroup=workergroup)


def new_log_lines(seen: list[str], lines: list[str]) -> list[str]:
    """What ``lines`` adds to the lines already ``seen`` (for following a log)."""
    from vastbuild.operate import new_lines

    return new_lines(seen, lines)


def wait_for_rollout(target: Target, file_hash: str, *, client: VastClient,
                     timeout: float = 600.0, interval: float = 1.0,
                     report: Report | None = None) -> WaitResult:
    """Poll the target's workers until they serve ``file_hash``, one fails, or
    ``timeout`` seconds pass."""
    from vastbuild.operate import wait

    return wait(client, _one(target), file_hash, timeout=timeout, interval=interval,
                report=report)


def set_running(target: Target, running: bool, *, client: VastClient) -> str:
    """Start (``running``) or stop the target's endpoint; the state it is in after."""
    from vastbuild.operate import set_running as start_or_stop

    return start_or_stop(client, _one(target), running)


def take_down(target: Target, *, client: VastClient, cache_dir: str | os.PathLike[str],
              all_tags: bool = False) -> DownResult:
    """Delete the target's deployment (every tag of its name with ``all_tags``)."""
    from vastbuild.operate import down

    return down(client, _one(target), all_tags=all_tags, cache_dir=Path(cache_dir))


def deploy_history(target: Target, *, client: VastClient, cache_dir: str | os.PathLike[str]
                   ) -> tuple[list[Deployed], list[dict[str, JsonValue]]]:
    """The versions deployed from here, oldest first, and the server's version list."""
    from vastbuild.operate import history

    return history(client, _one(target), Path(cache_dir))


def rollback(target: Target, *, client: VastClient, cache_dir: str | os.PathLike[str],
             to_hash: str | None = None, dry_run: bool = False,
             secrets: SecretSources | None = None,
             report: Report | None = None, show_uploads: bool = False) -> DeployOutcome:
    """Register an earlier version deployed from here again (``to_hash``, or the one
    before the version the server serves), planned like a deploy."""
    from vastbuild.operate import rollback_target

    model = _one(target)
    given = _secrets([model], client, secrets)
    return rollback_target(client, model, Path(cache_dir), to_hash=to_hash, secrets=given,
                           dry_run=dry_run, report=report, meter=_meter(show_uploads))


def _meter(enabled: bool) -> Callable[[str], TransferMeter]:
    """What shows an upload's progress: a bar on a terminal when ``enabled``."""
    from vastbuild.progress import transfer_meter

    return lambda label: transfer_meter(enabled, label)


def _one(target: Target) -> Deployment:
    models = load_all([target]).models
    if len(models) != 1:
        raise InvalidArgument(f"{target} names {len(models)} targets, not one",
                              "name one target")
    return models[0]


# -- the dev server ----------------------------------------------------------------------

def default_dev_server_data_dir() -> Path:
    """Server state is state, not cache: ``$XDG_STATE_HOME/vastbuild/dev-server``."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "vastbuild" / "dev-server"


def dev_server(data_dir: str | os.PathLike[str] | None = None, *, host: str = "127.0.0.1",
               port: int = 0, api_keys: Sequence[str] = (), upload_ttl: float = 300.0,
               download_ttl: float = 600.0, admin_token: str | None = None,
               omit_workergroup_id: bool = False, worker_step: float = 0.5,
               fail_workers: int = 0, access_log: TextIO | None = None,
               offers_file: str | os.PathLike[str] | None = None) -> DevServer:
    """A local Vast-compatible API server, bound and ready: ``serve_forever()`` in
    this thread, or ``start()`` it in the background (and ``stop()`` it). See
    docs/dev-server.md for what each option does."""
    from vastbuild.devserver import DevServer, DevServerOptions

    options = DevServerOptions(upload_ttl=upload_ttl, download_ttl=download_ttl,
                               admin_token=admin_token, omit_workergroup_id=omit_workergroup_id,
                               worker_step=worker_step, fail_workers=fail_workers,
                               offers_file=Path(offers_file) if offers_file is not None else None)
    return DevServer(Path(data_dir) if data_dir is not None else default_dev_server_data_dir(),
                     host=host, port=port, api_keys=api_keys, options=options,
                     access_log=access_log)
