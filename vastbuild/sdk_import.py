"""``vastbuild import``: a vastai SDK program translated into the Vastfile that says the same.

A user moving from the SDK describes the deployment in Python -- ``Deployment(...)``,
``app.image(...)`` and its builder calls, ``configure_autoscaling`` -- in the same file
that holds the code the workers serve. This module reads that file with :mod:`ast` and
writes the equivalent Vastfile. It never imports or runs the file: running an SDK
program may deploy it (``ensure_ready``), and its module-level code may download
models or need packages this machine lacks; the same reason :mod:`vastbuild.codescan`
reads CODE statically.

So only what is known without running the program is translated: literals, and
names assigned a literal exactly once at module level. Anything else (a variable, a
function call, an f-string, configuration inside a function or a loop, a method the
SDK does not have) is an error at its line and column and nothing is written: a
Vastfile that silently differs from the program would be worse than none. What the
Vastfile deliberately says differently (RAM in GB, secrets read at deploy time,
settings that live outside the Vastfile) is a warning. docs/import.md is the user's
description; the codes are in :data:`IMPORT_CODES`.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from vastbuild import nodes
from vastbuild.catalog import catalog
from vastbuild.check import check, looks_secret
from vastbuild.diagnostics import Diagnostic, Note, Span, error, has_errors, warning
from vastbuild.fmt import format_vastfile
from vastbuild.syntax import parse

IMPORT_CODES: dict[str, str] = {
    "I001": "the SDK file is not Python that can be read",
    "I002": "no Deployment, or a Deployment without an image",
    "I003": "a second Deployment in one file",
    "I004": "a value that is not a literal",
    "I005": "a literal of the wrong type",
    "I006": "an unknown method, argument or keyword",
    "I007": "configuration in a place the import does not follow",
    "I008": "something a Vastfile cannot say",
    "I009": "the program does not do what it seems to",
    "I101": "an argument left out of the Vastfile",
    "I102": "an ENV value that looks like a secret became a SECRET",
    "I103": "the registry password became a secret",
    "I104": "a REQUIRE term replaces a default search term",
    "I105": "a script became RUN's exec form",
    "I106": "a number in the SDK's MB or seconds became GB or days",
}

#: where the SDK defines what the import recognises (see the package's __init__ files)
_DEPLOYMENT_CLASSES = frozenset({"vastai.Deployment", "vastai.serverless.remote.Deployment",
                                 "vastai.serverless.remote.deploy.Deployment"})
_IMAGE_CLASSES = frozenset({"vastai.serverless.remote.Image",
                            "vastai.serverless.remote.base.Image"})
_QUERY_CLASSES = frozenset({"vastai.data.Query", "vastai.data.query.Query"})
_COLUMN_CLASSES = frozenset({"vastai.data.Column", "vastai.data.query.Column"})
_QUERY_MODULE = "vastai.data.query"
_GETENV = frozenset({"os.getenv", "os.environ.get"})

#: Deployment arguments that are settings of vastbuild, not of the Vastfile
_SETTINGS_ARGUMENTS = {
    "api_key": "the API key is never written into a Vastfile: vastbuild reads it at deploy "
               "time ($VAST_API_KEY or --api-key-file)",
    "webserver_url": "the API URL is a vastbuild setting (api_url in vastbuild.toml, "
                     "$VAST_API_URL or --api-url)",
    "autoscaler_url": "the autoscaler URL is a vastbuild setting (autoscaler_url in "
                      "vastbuild.toml, $VAST_AUTOSCALER_URL or --autoscaler-url)",
    "autoscaler_instance": "vastbuild names the autoscaler by its URL (autoscaler_url in "
                           "vastbuild.toml, $VAST_AUTOSCALER_URL or --autoscaler-url)",
}
_DEPLOYMENT_ARGUMENTS = ("name", "tag", "version_label", "ttl", *_SETTINGS_ARGUMENTS)
_LOGIN_ARGUMENTS = ("docker_login_user", "docker_login_pass", "docker_login_repo")
#: Deployment methods that do not configure it: they serve or deploy it at run time
_RUNTIME_METHODS = frozenset({"remote", "context", "get_context", "ensure_ready",
                              "async_ensure_ready"})
_IMAGE_METHODS = ("pip_install", "apt_get", "env", "run_script", "run_cmd", "copy", "venv",
                  "use_system_python", "publish_port", "require")
#: calls that configure a deployment; found anywhere else than where the import looks,
#: they are an error rather than something silently left out
_CONFIG_METHODS = frozenset({"image", "configure_autoscaling", *_IMAGE_METHODS})
#: Python operator -> (Vastfile spelling, the SDK's name for it)
_COMPARISONS: dict[type[ast.cmpop], tuple[str, str]] = {
    ast.Eq: ("==", "eq"), ast.NotEq: ("!=", "neq"), ast.Lt: ("<", "lt"),
    ast.LtE: ("<=", "lte"), ast.Gt: (">", "gt"), ast.GtE: (">=", "gte"),
}
_REFLECTED: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.Eq, ast.NotEq: ast.NotEq, ast.Lt: ast.Gt, ast.LtE: ast.GtE,
    ast.Gt: ast.Lt, ast.GtE: ast.LtE,
}
_SECRET_HELP = "the environment, --secret NAME=@FILE or --secrets-file FILE"
_FALLBACK_PASSWORD = "REGISTRY_PASSWORD"
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: a word a Vastfile reads as written without quotes
_BARE_WORD = re.compile(r"[^\s\"'#\\]+")
#: a REQUIRE value read as written without quotes (no `,` `[` `]`, which end one)
_BARE_ITEM = re.compile(r"[A-Za-z0-9_.:/+@-]+")
#: a word the grammar reads as an option when bare (PIP -r): quoted when it is data
_OPTION_WORDS = frozenset({"-r"})
#: REQUIRE's own words: quoted when they are a value
_REQUIRE_WORDS = frozenset({"and", "in", "notin", "not"})
#: characters no Vastfile word can hold, even quoted (\n and \t have escapes)
_UNSAYABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff\ufeff]")
#: the longest piece of Python a message quotes
_SHOWN = 60


@dataclass(frozen=True)
class Translation:
    """What :func:`translate` made of an SDK program.

    ``text`` is the Vastfile in canonical layout, None when there is an error.
    ``origins`` holds, for each directive of ``text`` in order, the SDK code it was
    translated from, so that a problem the checker finds in the Vastfile is reported
    where the user can fix it (:func:`check_translation`). ``deployment`` is where
    the program creates its Deployment (for a problem with no better place).
    """

    text: str | None
    diagnostics: tuple[Diagnostic, ...]
    vastfile: str
    origins: tuple[Span, ...] = ()
    deployment: Span | None = None


def default_vastfile(sdk_file: Path) -> Path:
    """Where the Vastfile goes by default: beside the SDK file, or beside the package
    when the file is a package's ``__init__.py`` (CODE is then the package)."""
    if sdk_file.name == "__init__.py":
        return sdk_file.parent.parent / "Vastfile"
    return sdk_file.parent / "Vastfile"


def translate(source: bytes, sdk_file: Path, vastfile: Path, *, shown: str,
              vastfile_shown: str) -> Translation:
    """Translate the SDK program ``source`` (read from ``sdk_file``) into the Vastfile
    that would live at ``vastfile``; pure: nothing is read or written.

    Relative paths in the program (``.copy(src, ...)``) are taken as relative to the
    SDK file's folder, where its user runs it, and written relative to the
    Vastfile's folder. ``shown`` and ``vastfile_shown`` are how diagnostics name the
    two files.
    """
    try:
        tree = ast.parse(source, filename=shown)
    except (SyntaxError, ValueError) as exc:  # ValueError: a NUL byte, before Python 3.11.4
        line = getattr(exc, "lineno", None) or 1
        col = getattr(exc, "offset", None) or 1
        message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        return Translation(None, (error("I001", f"Python syntax error in {shown}: {message}",
                                        Span.point(shown, line, col),
                                        "fix the program first: its workers import it"),),
                           vastfile_shown)
    except (RecursionError, MemoryError):
        return Translation(None, (error("I001", f"{shown} is nested too deeply to read",
                                        Span.point(shown, 1, 1)),), vastfile_shown)
    reader = _Reader(tree, source, shown, sdk_file.absolute(), vastfile.absolute())
    for statement in tree.body:
        reader.statement(statement)
    lines = reader.finish()
    if lines is None or has_errors(reader.diagnostics):
        return Translation(None, tuple(reader.diagnostics), vastfile_shown)
    assert reader.app is not None  # finish() returned lines
    header = f"# Translated from {reader.relative(reader.sdk_file)} by `vastbuild import`."
    text, origin_at = _render(header, lines)
    parsed, problems = parse(text, vastfile_shown)
    if parsed is None or has_errors(problems):  # a quoting slip of this module: say where
        return Translation(None, (*reader.diagnostics, *_remap(
            problems, text, vastfile_shown, origin_at, reader.app.origin)), vastfile_shown)
    return Translation(format_vastfile(parsed), tuple(reader.diagnostics), vastfile_shown,
                       tuple(line.origin for line in lines), reader.app.origin)


def check_translation(translation: Translation, vastfile: Path) -> list[Diagnostic]:
    """Check the translated Vastfile as if it were at ``vastfile`` (it need not exist):
    its paths, its name against the code, its REQUIRE and AUTOSCALE values. A problem
    in a translated line is reported at the SDK code it came from."""
    assert translation.text is not None and translation.deployment is not None
    tree, problems = parse(translation.text, translation.vastfile)
    assert tree is not None  # translate() parsed this very text
    _, found = check(tree, vastfile)
    origin_at = {directive.span.line: origin
                 for directive, origin in zip(tree.directives, translation.origins, strict=True)}
    return _remap([*problems, *found], translation.text, translation.vastfile, origin_at,
                  translation.deployment)


def _remap(diagnostics: Sequence[Diagnostic], text: str, vastfile: str,
           origin_at: dict[int, Span], fallback: Span) -> list[Diagnostic]:
    """Diagnostics of the translated Vastfile, moved to the SDK code each line came
    from (the Vastfile may not exist yet); the message quotes the translated line."""
    lines = text.split("\n")

    def moved(span: Span) -> tuple[Span, str]:
        line = lines[span.line - 1] if 0 < span.line <= len(lines) else ""
        return origin_at.get(span.line, fallback), line

    out = []
    for d in diagnostics:
        if d.span is None or d.span.path != vastfile:
            out.append(d)
            continue
        span, line = moved(d.span)
        notes = tuple(Note(moved(n.span)[0], n.message) if n.span.path == vastfile else n
                      for n in d.notes)
        out.append(Diagnostic(d.severity, d.code, f"{d.message} (translated as `{line}`)",
                              span, d.help, notes))
    return out


@dataclass
class _Line:
    """One directive of the Vastfile being written, the comments above it, and the SDK
    code it translates."""

    text: str
    origin: Span
    comments: tuple[str, ...] = ()


@dataclass
class _Image:
    """What an SDK ``Image`` holds, as Vastfile lines, per kind in call order; and the
    shape of its search query, to say what the SDK would refuse."""

    source: _Line
    login: _Line | None = None
    lines: dict[str, list[_Line]] = field(default_factory=dict)
    venv: _Line | None = None
    #: (column, SDK operator name) of every term: the SDK raises on a second one
    terms: dict[tuple[str, str], Span] = field(default_factory=dict)
    #: the SDK's default search terms still in place, column -> value
    defaults: dict[str, bool] = field(default_factory=lambda: dict(catalog().search_defaults))
    #: defaults the program dropped (``search_defaults(verified=None)``): column -> where
    dropped: dict[str, Span] = field(default_factory=dict)

    def add(self, kind: str, line: _Line) -> None:
        self.lines.setdefault(kind, []).append(line)


@dataclass
class _App:
    """What the SDK ``Deployment`` holds: its header lines by keyword, its image (the
    last one given, as in the SDK), and each ``configure_autoscaling`` call."""

    origin: Span
    header: dict[str, _Line] = field(default_factory=dict)
    image: _Image | None = None
    autoscale: list[tuple[dict[str, str], Span]] = field(default_factory=list)


_Tracked = _App | _Image


class _NotLiteral(Exception):
    """A value that cannot be known without running the program, and why."""

    def __init__(self, node: ast.expr, why: str):
        super().__init__(why)
        self.node = node
        self.why = why


class _Reader:
    """Follows the module's top-level statements in order, as the SDK would run them,
    keeping the Deployment and Image objects the program builds (``env`` maps the
    names bound to them) and the literals it assigns once (``constants``)."""

    def __init__(self, tree: ast.Module, source: bytes, shown: str, sdk_file: Path,
                 vastfile: Path):
        self.shown = shown
        self.source_lines = source.splitlines()
        self.sdk_file = sdk_file
        self.vastfile = vastfile
        self.diagnostics: list[Diagnostic] = []
        self.app: _App | None = None
        self.env: dict[str, _Tracked] = {}
        self.constants: dict[str, object] = {}
        self.assignments = _assignment_counts(tree)
        self.imported, self.star_modules = _imports(tree)

    # -- diagnostics and positions --------------------------------------------------------

    def span(self, node: ast.AST) -> Span:
        """A node's span in characters (ast counts columns in UTF-8 bytes)."""
        line: int = getattr(node, "lineno", 1)
        offset: int = getattr(node, "col_offset", 0)
        end_line: int = getattr(node, "end_lineno", None) or line
        end_offset: int = getattr(node, "end_col_offset", None) or offset + 1
        return Span(self.shown, line, self._column(line, offset), end_line,
                    self._column(end_line, end_offset))

    def method_span(self, call: ast.Call) -> Span:
        """From a method's name to the end of its call: in a chain of builder calls, the
        call itself rather than the whole chain before it."""
        func = call.func
        assert isinstance(func, ast.Attribute)
        whole = self.span(call)
        line = func.end_lineno or func.lineno
        end = func.end_col_offset if func.end_col_offset is not None else func.col_offset
        return Span(self.shown, line, self._column(line, end - len(func.attr.encode())),
                    whole.end_line, whole.end_col)

    def _column(self, line: int, offset: int) -> int:
        text = self.source_lines[line - 1] if 0 < line <= len(self.source_lines) else b""
        return len(text[:offset].decode("utf-8", "replace")) + 1

    def error(self, code: str, message: str, at: ast.AST | Span, help: str | None = None,
              notes: Sequence[Note] = ()) -> None:
        span = at if isinstance(at, Span) else self.span(at)
        self.diagnostics.append(error(code, message, span, help, notes))

    def warn(self, code: str, message: str, at: ast.AST | Span, help: str | None = None,
             *, holds_secret: bool = False) -> None:
        """A warning; one about a line that ``holds_secret`` names its place in the
        message but has no span, so that no excerpt prints the secret on a terminal."""
        span = at if isinstance(at, Span) else self.span(at)
        if holds_secret:
            self.diagnostics.append(warning(code, f"{span}: {message}", None, help))
        else:
            self.diagnostics.append(warning(code, message, span, help))

    def relative(self, path: Path | str) -> str:
        """``path`` (absolute, or relative to the SDK file's folder) relative to the
        Vastfile's folder, as a Vastfile writes paths."""
        absolute = os.path.normpath(os.path.join(self.sdk_file.parent, path))
        return Path(os.path.relpath(absolute, self.vastfile.parent)).as_posix()

    # -- names ------------------------------------------------------------------------------

    def qualname(self, node: ast.expr) -> str | None:
        """The dotted name an expression refers to through the imports
        (``q.gpu_ram`` -> ``vastai.data.query.gpu_ram``), None for anything else."""
        if isinstance(node, ast.Attribute):
            base = self.qualname(node.value)
            return f"{base}.{node.attr}" if base else None
        if not isinstance(node, ast.Name) or node.id in self.env or node.id in self.constants:
            return None
        if node.id in self.imported:
            return self.imported[node.id]
        for module in self.star_modules:
            candidate = f"{module}.{node.id}"
            if _sdk_name(candidate):
                return candidate
        return None

    def kind(self, node: ast.expr) -> str | None:
        """``deployment``, ``image``, ``query`` or ``column`` for the SDK's classes."""
        qualname = self.qualname(node)
        for kind, names in (("deployment", _DEPLOYMENT_CLASSES), ("image", _IMAGE_CLASSES),
                            ("query", _QUERY_CLASSES), ("column", _COLUMN_CLASSES)):
            if qualname in names:
                return kind
        return None

    # -- statements -------------------------------------------------------------------------

    def statement(self, node: ast.stmt) -> None:
        """Follow one top-level statement; an SDK call anywhere the import does not look
        (a function, a loop, a condition) is an error rather than left out."""
        if isinstance(node, ast.Expr):
            self.expression(node.value)
        elif isinstance(node, ast.Assign):
            self.assign(node.targets, node.value)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self.assign([node.target], node.value)
        elif isinstance(node, ast.If) and _is_main_guard(node.test):
            for inner in node.body:  # runs when the user deploys with `python app.py`
                self.statement(inner)
            self.refuse(node.orelse, "the `else` of `if __name__ == \"__main__\"`")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.refuse([node], f"the function {node.name}", _local_names(node))
        elif isinstance(node, ast.ClassDef):
            self.refuse([node], f"the class {node.name}")
        elif not isinstance(node, (ast.Import, ast.ImportFrom, ast.Pass)):
            self.refuse([node], _describe(node))

    def assign(self, targets: Sequence[ast.expr], value: ast.expr) -> None:
        tracked = self.expression(value)
        for target in targets:
            if isinstance(target, ast.Name):
                self.env.pop(target.id, None)
                self.constants.pop(target.id, None)
                if tracked is not None:
                    self.env[target.id] = tracked
                elif self.assignments[target.id] == 1:
                    try:
                        self.constants[target.id] = self.literal(value)
                    except _NotLiteral:
                        pass  # not a constant: an error only where it is used
            elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                    and target.value.id in self.env:
                self.set_attribute(self.env[target.value.id], target, value, tracked)
            else:
                self.refuse([target], "an assignment target")
                if tracked is not None:
                    self.error("I007", f"cannot follow the SDK object through `{_show(target)}`",
                               target, "assign it to a plain name")

    def set_attribute(self, owner: _Tracked, target: ast.Attribute, value: ast.expr,
                      tracked: _Tracked | None) -> None:
        """``app._image = image`` attaches an Image built on its own (the SDK has no public
        way to); ``image._requires = Query.search_defaults(...)`` resets its search."""
        if isinstance(owner, _App) and target.attr == "_image" and isinstance(tracked, _Image):
            owner.image = tracked
        elif isinstance(owner, _Image) and target.attr == "_requires":
            self.reset_search(owner, value)
        else:
            self.error("I006", f"cannot translate the assignment to `{_show(target)}`", target,
                       "configure the deployment through the SDK's methods")

    def refuse(self, where: Sequence[ast.AST], what: str,
               local: frozenset[str] = frozenset()) -> None:
        """An error for each SDK configuration call inside ``where`` (outermost only)."""
        for call in self.config_calls(where, local):
            self.error("I007", f"`{_show(call)}` is inside {what}: vastbuild import follows "
                       "only the statements at the top level of the file (and under "
                       "`if __name__ == \"__main__\":`)", call,
                       "move the configuration to the top level, with literal values")

    def config_calls(self, where: Sequence[ast.AST], local: frozenset[str]
                     ) -> Iterator[ast.Call]:
        for node in where:
            if isinstance(node, ast.Call) and self.is_config_call(node, local):
                yield node
                continue
            yield from self.config_calls(list(ast.iter_child_nodes(node)), local)

    def is_config_call(self, call: ast.Call, local: frozenset[str]) -> bool:
        if self.kind(call.func) in ("deployment", "image"):
            return True
        if not isinstance(call.func, ast.Attribute) or call.func.attr not in _CONFIG_METHODS:
            return False
        root: ast.expr = call.func.value
        while isinstance(root, (ast.Attribute, ast.Call, ast.Subscript)):
            root = root.func if isinstance(root, ast.Call) else root.value
        return isinstance(root, ast.Name) and root.id in self.env and root.id not in local

    # -- expressions ------------------------------------------------------------------------

    def expression(self, node: ast.expr) -> _Tracked | None:
        """Follow an expression for the SDK objects it makes or configures; what it
        evaluates to when that is one of them."""
        if isinstance(node, ast.Name):
            return self.env.get(node.id)
        if isinstance(node, ast.Call):
            kind = self.kind(node.func)
            if kind == "deployment":
                return self.deployment(node)
            if kind == "image":
                return self.image(node, ("from_image", "storage", "worker_port"))
            if isinstance(node.func, ast.Attribute):
                receiver = self.expression(node.func.value)
                if isinstance(receiver, _App):
                    return self.app_method(receiver, node)
                if isinstance(receiver, _Image):
                    return self.image_method(receiver, node)
            else:
                self.refuse([node.func], "a call the import does not know")
            self.refuse([*node.args, *(k.value for k in node.keywords)],
                        "the argument of a call the import does not know")
            return None
        self.refuse([node], "an expression")
        return None

    def deployment(self, call: ast.Call) -> _App | None:
        span = self.span(call)
        if self.app is not None:
            self.error("I003", "a second Deployment: vastbuild import translates one "
                       "deployment per file", call,
                       notes=(Note(self.app.origin, "the first one is here"),))
            return None
        app = _App(span)
        if call.args:
            self.error("I006", "Deployment(...) is given a positional argument", call.args[0],
                       "the SDK client takes its first positional argument as the API key; "
                       "pass name=... by keyword")
        for name, value in self.keywords(call, "Deployment", _DEPLOYMENT_ARGUMENTS):
            if name in _SETTINGS_ARGUMENTS:
                self.warn("I101", f"{name} is left out of the Vastfile", value,
                          _SETTINGS_ARGUMENTS[name],
                          holds_secret=name == "api_key" and _is_string(value))
            elif _is_none(value):
                continue  # the SDK's default: no name, no TTL, no label
            elif name == "ttl":
                number = self.number(value, "ttl")
                if number is not None:
                    app.header["TTL"] = _Line(f"TTL {_number(number)}", self.span(value))
            else:
                text = self.string(value, name)
                keyword = {"name": "DEPLOYMENT", "tag": "TAG", "version_label": "VERSION"}[name]
                if text is not None:
                    app.header[keyword] = _Line(f"{keyword} {self.word(text, value)}",
                                                self.span(value))
        self.app = app
        return app

    def keywords(self, call: ast.Call, what: str, known: Sequence[str]
                 ) -> Iterator[tuple[str, ast.expr]]:
        """The call's keyword arguments; an error for ``**mapping`` and unknown names."""
        for keyword in call.keywords:
            if keyword.arg is None:
                self.error("I004", f"cannot translate `**{_show(keyword.value)}`: the "
                           "arguments it holds are not literals", keyword.value,
                           "pass each argument by name, with a literal value")
            elif keyword.arg not in known:
                self.error("I006", f"{what} has no argument {keyword.arg}", keyword,
                           _did_you_mean(keyword.arg, known))
            else:
                yield keyword.arg, keyword.value

    def bind(self, call: ast.Call, what: str, params: Sequence[str],
             extra: Sequence[str] = ()) -> dict[str, ast.expr]:
        """The call's arguments by parameter name, as Python would bind them."""
        bound: dict[str, ast.expr] = {}
        for index, arg in enumerate(call.args):
            if isinstance(arg, ast.Starred):
                self.error("I004", f"cannot translate `{_show(arg)}`: a starred argument",
                           arg, "pass each argument on its own")
            elif index >= len(params):
                self.error("I006", f"{what} takes at most {len(params)} positional "
                           f"argument{'s' * (len(params) != 1)}", arg)
            else:
                bound[params[index]] = arg
        bound.update(self.keywords(call, what, [*params, *extra]))
        return bound

    # -- literals ---------------------------------------------------------------------------

    def literal(self, node: ast.expr) -> object:
        """The value of a literal (a constant, a negative number, a list or tuple of
        literals, or a name assigned one once at module level); :class:`_NotLiteral`
        for anything that would need the program to run."""
        if isinstance(node, ast.Constant):
            if node.value is None or isinstance(node.value, (str, int, float)):
                return node.value
            raise _NotLiteral(node, f"it is a {type(node.value).__name__} constant")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
                and isinstance(node.operand, ast.Constant) \
                and type(node.operand.value) in (int, float):
            number = node.operand.value
            assert isinstance(number, (int, float))
            return -number if isinstance(node.op, ast.USub) else number
        if isinstance(node, ast.Name):
            if node.id in self.constants:
                return self.constants[node.id]
            raise _NotLiteral(node, f"`{node.id}` is a variable")
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.literal(item) for item in node.elts]
        if isinstance(node, ast.JoinedStr):
            raise _NotLiteral(node, "it is an f-string")
        if isinstance(node, ast.Call):
            raise _NotLiteral(node, "it is a function call")
        raise _NotLiteral(node, "it is an expression")

    def value(self, node: ast.expr, what: str) -> tuple[bool, object]:
        """(True, the literal) or (False, None) with the error reported."""
        try:
            return True, self.literal(node)
        except _NotLiteral as exc:
            self.error("I004", f"cannot translate {what} `{_show(exc.node)}`: {exc.why}, "
                       "not a literal", exc.node,
                       "vastbuild import reads the program without running it: write the "
                       "value itself, or assign it once to a module-level name "
                       "(NAME = \"...\")")
            return False, None

    def string(self, node: ast.expr, what: str) -> str | None:
        known, value = self.value(node, what)
        if known and not isinstance(value, str):
            self.error("I005", f"{what} is {value!r}, not a string", node)
        return value if isinstance(value, str) else None

    def number(self, node: ast.expr, what: str) -> int | float | None:
        known, value = self.value(node, what)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if known:
            self.error("I005", f"{what} is {value!r}, not a number", node)
        return None

    def strings(self, call: ast.Call, what: str) -> list[tuple[str, ast.expr]]:
        """The string arguments of ``f(*args)``; ``*NAME`` spreads a literal list."""
        if call.keywords:
            self.error("I006", f"{what} takes no keyword arguments", call.keywords[0])
        found: list[tuple[str, ast.expr]] = []
        for arg in call.args:
            if isinstance(arg, ast.Starred):
                known, value = self.value(arg.value, f"the arguments of {what}")
                if known and not (isinstance(value, list)
                                  and all(isinstance(item, str) for item in value)):
                    self.error("I005", f"`{_show(arg.value)}` is not a list of strings", arg)
                elif isinstance(value, list):
                    found.extend((item, arg) for item in value)
            else:
                text = self.string(arg, f"the argument of {what}")
                if text is not None:
                    found.append((text, arg))
        return found

    def word(self, text: str, node: ast.AST | Span) -> str:
        """``text`` as one Vastfile word: bare when the Vastfile reads it back the same,
        else double-quoted. An error when no spelling can say it."""
        self.sayable(text, node)
        if _BARE_WORD.fullmatch(text) and text not in _OPTION_WORDS:
            return text
        return _quote(text)

    def sayable(self, text: str, node: ast.AST | Span) -> None:
        shown = _clip(repr(text))
        if "${" in text:
            self.error("I008", f"{shown} holds `${{`, which a Vastfile reads as an ARG "
                       "reference (and cannot escape)", node,
                       "write the value without `${` (in a RUN script it stays as written)")
        elif _UNSAYABLE.search(text):
            self.error("I008", f"{shown} holds a control character, which a Vastfile "
                       "cannot hold", node)

    # -- the Deployment ---------------------------------------------------------------------

    def app_method(self, app: _App, call: ast.Call) -> _Tracked | None:
        assert isinstance(call.func, ast.Attribute)
        method = call.func.attr
        if method == "image":
            app.image = self.image(call, ("from_image", "storage"))
            return app.image
        if method == "configure_autoscaling":
            self.autoscaling(app, call)
        elif method not in _RUNTIME_METHODS:
            self.error("I006", f"Deployment has no method {method}", self.method_span(call),
                       _did_you_mean(method, ["image", "configure_autoscaling",
                                              *sorted(_RUNTIME_METHODS)]))
        return None

    def autoscaling(self, app: _App, call: ast.Call) -> None:
        if call.args:
            self.error("I006", "configure_autoscaling takes keyword arguments only",
                       call.args[0])
        values: dict[str, str] = {}
        for keyword in call.keywords:
            if keyword.arg is None:
                self.error("I004", f"cannot translate `**{_show(keyword.value)}`: the "
                           "settings it holds are not literals", keyword.value,
                           "pass each setting by name, with a literal value")
            elif keyword.arg == "autoscaler_instance":
                self.warn("I101", "autoscaler_instance is left out of the Vastfile", keyword,
                          _SETTINGS_ARGUMENTS["autoscaler_instance"])
            else:
                number = self.number(keyword.value, keyword.arg)
                if number is not None:
                    values[keyword.arg] = _number(number)
        app.autoscale.append((values, self.method_span(call)))

    # -- the Image --------------------------------------------------------------------------

    def image(self, call: ast.Call, params: Sequence[str]) -> _Image:
        """``app.image(...)`` or ``Image(...)``: FROM, and LOGIN for a private registry."""
        span = self.span(call) if isinstance(call.func, ast.Name) else self.method_span(call)
        bound = self.bind(call, "image" if len(params) == 2 else "Image", params,
                          _LOGIN_ARGUMENTS)
        words = ["FROM"]
        if "from_image" not in bound:
            self.error("I006", "the image is missing", call, "name the image: "
                       "app.image(\"vastai/pytorch:@vastai-automatic-tag\", 50)")
        else:
            text = self.string(bound["from_image"], "the image")
            words.append(self.word(text or "", bound["from_image"]))
        if "storage" in bound:
            number = self.number(bound["storage"], "the storage")
            if number is not None:
                words += ["STORAGE", _number(number)]
        if "worker_port" in bound:
            known, port = self.value(bound["worker_port"], "the worker port")
            if known and port != [3000, "tcp"]:
                self.error("I008", "a Vastfile's workers always listen on 3000/tcp",
                           bound["worker_port"], "leave worker_port out; PORT publishes more")
        image = _Image(_Line(" ".join(words), span))
        self.login(image, call, bound)
        return image

    def login(self, image: _Image, call: ast.Call, bound: dict[str, ast.expr]) -> None:
        """LOGIN user PASSWORD NAME [REGISTRY repo]: the password itself is never
        written; NAME is the variable the program reads it from, else a made-up name."""
        if not any(name in bound for name in _LOGIN_ARGUMENTS):
            return
        user_node = bound.get("docker_login_user")
        if user_node is None:
            self.error("I008", "a registry login without docker_login_user", call,
                       "a LOGIN line needs the user")
            return
        user = self.string(user_node, "docker_login_user") or ""
        words = ["LOGIN", self.word(user, user_node), "PASSWORD"]
        password = bound.get("docker_login_pass")
        name = self.environment_name(password) if password is not None else None
        if name is None:
            name = _FALLBACK_PASSWORD
            literal = _is_string(password)
            self.warn("I103", f"the registry password is the secret {name} in the Vastfile",
                      password if password is not None else call,
                      f"give its value at deploy time ({_SECRET_HELP}); the password "
                      "itself is not copied" + (", and belongs out of the program too"
                                                if literal else ""), holds_secret=literal)
        words.append(name)
        if "docker_login_repo" in bound:
            repo = self.string(bound["docker_login_repo"], "docker_login_repo") or ""
            words += ["REGISTRY", self.word(repo, bound["docker_login_repo"])]
        comment = (f"# The registry password is the secret {name}: give it at deploy time "
                   f"({_SECRET_HELP}).")
        image.login = _Line(" ".join(words), self.span(user_node), (comment,))

    def environment_name(self, node: ast.expr) -> str | None:
        """X for ``os.environ["X"]``, ``os.environ.get("X")`` or ``os.getenv("X")``."""
        if isinstance(node, ast.Subscript) and self.qualname(node.value) == "os.environ":
            key: ast.expr | None = node.slice
        elif isinstance(node, ast.Call) and self.qualname(node.func) in _GETENV and node.args:
            key = node.args[0]
        else:
            return None
        if isinstance(key, ast.Constant) and isinstance(key.value, str) \
                and _VARIABLE.fullmatch(key.value):
            return key.value
        return None

    def image_method(self, image: _Image, call: ast.Call) -> _Image:
        """One builder call; each returns the image, as the SDK's do."""
        assert isinstance(call.func, ast.Attribute)
        method = call.func.attr
        span = self.method_span(call)
        if method in ("pip_install", "apt_get"):
            words = [self.word(text, node) for text, node in self.strings(call, method)]
            if words:
                kind = "PIP" if method == "pip_install" else "APT"
                image.add(kind, _Line(" ".join([kind, *words]), span))
        elif method == "env":
            self.env_vars(image, call, span)
        elif method == "run_script":
            script = self.argument(call, method, "script")
            if script is not None:
                image.add("RUN", self.run_shell(script, span))
        elif method == "run_cmd":  # RUN is never ARG-expanded, and JSON escapes the rest
            argv = [text for text, _ in self.strings(call, method)]
            if not call.args:
                self.error("I008", "run_cmd() names no program", span)
            image.add("RUN", _Line(_run_exec(argv), span))
        elif method == "copy":
            bound = self.bind(call, method, ("src", "dst"))
            if "src" not in bound or "dst" not in bound:
                self.error("I006", "copy takes a source and a destination", span)
                return image
            src = self.string(bound["src"], "the source")
            dst = self.string(bound["dst"], "the destination")
            if src is not None and dst is not None:
                image.add("COPY", _Line(f"COPY {self.word(self.relative(src), bound['src'])} "
                                        f"{self.word(dst, bound['dst'])}", span))
        elif method == "venv":
            path = self.argument(call, method, "path")
            if path is not None:
                image.venv = _Line(f"VENV {self.word(path, call)}", span)
        elif method == "use_system_python":
            self.bind(call, method, ())
            image.venv = _Line("SYSTEM_PYTHON", span)
        elif method == "publish_port":
            self.port(image, call, span)
        elif method == "require":
            self.require(image, call, span)
        else:
            self.error("I006", f"Image has no method {method}", span,
                       _did_you_mean(method, _IMAGE_METHODS))
        return image

    def argument(self, call: ast.Call, method: str, param: str) -> str | None:
        """The one string argument of a method such as ``venv(path)``."""
        bound = self.bind(call, method, (param,))
        if param not in bound:
            self.error("I006", f"{method} needs its {param}", self.method_span(call))
            return None
        return self.string(bound[param], f"the {param}")

    def env_vars(self, image: _Image, call: ast.Call, span: Span) -> None:
        """ENV for the values; SECRET, read at deploy time, for a key that names a secret
        (the value is never written: it would land in the tarball, cache and hash)."""
        if call.args:
            self.error("I006", "env takes keyword arguments only", call.args[0])
        assignments: list[str] = []
        secrets: list[str] = []
        for keyword in call.keywords:
            if keyword.arg is None:
                self.error("I004", f"cannot translate `**{_show(keyword.value)}`: the "
                           "variables it holds are not literals", keyword.value,
                           "pass each variable by name, with a literal value")
            elif looks_secret(keyword.arg):
                secrets.append(keyword.arg)
                literal = _is_string(keyword.value)
                self.warn("I102", f"{keyword.arg} looks like a secret: the Vastfile says "
                          f"`SECRET {keyword.arg}`, read at deploy time", keyword,
                          f"give its value at deploy time ({_SECRET_HELP}); the value in the "
                          "program is not copied" + (", and belongs out of it too: the "
                                                     "program travels to the workers"
                                                     if literal else ""), holds_secret=literal)
            else:
                text = self.string(keyword.value, f"the value of {keyword.arg}")
                if text is not None:
                    assignments.append(f"{keyword.arg}={self.word(text, keyword.value)}")
        if assignments:
            image.add("ENV", _Line(" ".join(["ENV", *assignments]), span))
        if secrets:
            comment = () if "SECRET" in image.lines else (
                "# Secrets: each value is given at deploy time, never written here.",)
            image.add("SECRET", _Line(" ".join(["SECRET", *secrets]), span, comment))

    def run_shell(self, script: str, span: Span) -> _Line:
        """``RUN script`` when a Vastfile reads that line back as exactly ``script``; else
        the exec form ``["sh", "-c", script]``, which the worker runs the same way
        (it runs a shell-form RUN with ``sh -c``)."""
        line = f"RUN {script}"
        tree, problems = parse(line + "\n", "<RUN>")
        if tree is not None and not has_errors(problems) and len(tree.directives) == 1:
            [directive] = tree.directives
            if isinstance(directive, nodes.RunShell) and directive.text == script:
                return _Line(line, span)
        self.warn("I105", "this script is written as RUN [\"sh\", \"-c\", ...]: as a "
                  "shell-form line a Vastfile would read it differently (a line break, "
                  "a comment, a leading `[\"` or a trailing `\\`)", span,
                  "the worker runs both forms with sh -c")
        return _Line(_run_exec(["sh", "-c", script]), span)

    def port(self, image: _Image, call: ast.Call, span: Span) -> None:
        bound = self.bind(call, "publish_port", ("number", "type_"))
        number = self.number(bound["number"], "the port") if "number" in bound else None
        if "number" not in bound:
            self.error("I006", "publish_port needs the port's number", span)
        protocol = self.string(bound["type_"], "the protocol") if "type_" in bound else "tcp"
        if protocol is not None and protocol not in ("tcp", "udp"):
            self.error("I008", f"a Vastfile publishes tcp or udp ports, not {protocol!r}",
                       bound["type_"])
        elif number is not None and protocol is not None:
            image.add("PORT", _Line(f"PORT {_number(number)}/{protocol}", span))

    # -- the search -------------------------------------------------------------------------

    def require(self, image: _Image, call: ast.Call, span: Span) -> None:
        if call.keywords:
            self.error("I006", "require takes query terms, not keyword arguments",
                       call.keywords[0])
        terms = [term for term in (self.term(image, arg) for arg in call.args) if term]
        if terms:
            image.add("REQUIRE", _Line("REQUIRE " + " AND ".join(terms), span))

    def term(self, image: _Image, node: ast.expr) -> str | None:
        """One query term, ``column OP value``, with the value the user wrote: RAM in
        GB, as they meant it (the SDK sends gpu_ram >= 24 as 0.024, see docs/wire.md)."""
        if isinstance(node, ast.Compare):
            if len(node.ops) != 1:
                self.error("I009", f"`{_show(node)}` is a chained comparison: Python keeps "
                           "only its last part", node,
                           "write one term per comparison: gpu_ram >= 8, gpu_ram <= 48")
                return None
            operator = _COMPARISONS.get(type(node.ops[0]))
            left, right = node.left, node.comparators[0]
            column = self.column(left)
            if column is None and operator is not None and \
                    (column := self.column(right)) is not None:
                # 24 <= gpu_ram: Python asks the column, reflected (gpu_ram >= 24)
                left, right, operator = right, left, _COMPARISONS[_REFLECTED[type(node.ops[0])]]
            if operator is None or column is None:
                self.not_a_term(node, [left, right])
                return None
            spelling, name = operator
            value = self.search_value(column, right)
            if value is None:
                return None
            self.record(image, column, name, node)
            return f"{column} {spelling} {value}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("in_", "notin_"):
            return self.membership(image, node, node.func)
        if isinstance(node, ast.BoolOp):
            self.error("I009", f"`{_show(node)}`: `and`/`or` between two queries keeps only "
                       "one of them", node, "pass each term as its own argument")
            return None
        self.error("I008", f"`{_show(node)}` is not a search term vastbuild import can read",
                   node, "write `column OP value` or `column.in_([...])`")
        return None

    def membership(self, image: _Image, call: ast.Call, func: ast.Attribute) -> str | None:
        column = self.column(func.value)
        if column is None:
            self.not_a_term(call, [func.value])
            return None
        values = self.bind(call, func.attr, ("values",)).get("values")
        if values is None:
            self.error("I006", f"{func.attr} needs a list of values", call)
            return None
        if isinstance(values, (ast.List, ast.Tuple)):
            items = [self.search_value(column, item) for item in values.elts]
        else:
            known, value = self.value(values, "the list")
            if not known:
                return None
            if not isinstance(value, list):
                self.error("I005", f"{func.attr} takes a list, not {value!r}", values)
                return None
            items = [self.spell(column, item, values) for item in value]
        if None in items:
            return None
        operator = "IN" if func.attr == "in_" else "NOTIN"
        self.record(image, column, operator.lower(), call)
        return f"{column} {operator} [{', '.join(item for item in items if item)}]"

    def not_a_term(self, node: ast.expr, sides: Sequence[ast.expr]) -> None:
        """The error for a query that names no column, with the nearest column when a
        side is a misspelt name of vastai.data.query."""
        for side in sides:
            qualname = self.qualname(side) or ""
            if qualname.startswith(_QUERY_MODULE + "."):
                name = qualname.rpartition(".")[2]
                self.error("I008", f"vastai.data.query has no column {name}", side,
                           _did_you_mean(name, sorted(catalog().columns)))
                return
        self.error("I008", f"`{_show(node)}` is not a search term vastbuild import can read",
                   node, "write `column OP value` or `column.in_([...])` with a column of "
                   "vastai.data.query")

    def column(self, node: ast.expr) -> str | None:
        """The column a query expression names: ``gpu_ram``, ``q.gpu_ram``, ``Column("x")``."""
        if isinstance(node, ast.Call) and self.kind(node.func) == "column" \
                and len(node.args) == 1 and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            return node.args[0].value
        symbol = _sdk_name(self.qualname(node) or "")
        return symbol[1] if symbol and symbol[0] == "column" else None

    def search_value(self, column: str, node: ast.expr) -> str | None:
        symbol = _sdk_name(self.qualname(node) or "")
        if symbol and symbol[0] == "gpu":  # RTX_4090 stays a constant in gpu_name
            name = symbol[1]
            if catalog().canonical(column) == "gpu_name":
                return name
            return _quote(catalog().gpu_constants[name])
        known, value = self.value(node, f"the value for {column}")
        if not known:
            return None
        return self.spell(column, self.in_require_units(column, value, node), node)

    def in_require_units(self, column: str, value: object, node: ast.AST) -> object:
        """A number of the SDK's query in REQUIRE's units (GB, days). Programs write RAM
        two ways: in GB, as Vast's own example does (``gpu_ram >= 24``, which the SDK
        sends as 0.024 GB; the import keeps the 24 the author meant), or in the MB the
        SDK's query holds (``gpu_ram >= 24000``, sent as 24 GB). A number no machine on
        the market reaches in GB (:data:`_WIRE_UNITS_FROM`) was written in the SDK's
        units, and is divided as the SDK divides it."""
        canonical = catalog().canonical(column)
        factor = catalog().unit_multipliers.get(canonical)
        least = _WIRE_UNITS_FROM.get(canonical)
        if factor is None or least is None or isinstance(value, bool) \
                or not isinstance(value, (int, float)) or value < least:
            return value
        scaled = value / factor
        if scaled == int(scaled):
            scaled = int(scaled)
        unit = catalog().search_unit(canonical)
        self.warn("I106", f"{column} {_number(value)} is read as "
                  f"{'MB' if unit == 'GB' else 'seconds'}, as the SDK sends it: "
                  f"{_number(scaled)} {unit} in the Vastfile",
                  node, "check that the REQUIRE line says what you meant")
        return scaled

    def spell(self, column: str, value: object, node: ast.AST) -> str | None:
        """A search value as REQUIRE writes it."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return _number(value)
        if not isinstance(value, str):
            self.error("I005", f"a search value is a number, a string or True/False, not "
                       f"{value!r}", node)
            return None
        self.sayable(value, node)
        if catalog().canonical(column) == "gpu_name":
            constant = _GPU_CONSTANT_OF.get(value, value)
            if constant in catalog().gpu_constants:
                return constant  # "RTX 4090" and RTX_4090 both read best as RTX_4090
            return _quote(value)
        if _BARE_ITEM.fullmatch(value) and value.lower() not in _REQUIRE_WORDS:
            return value
        return _quote(value)

    def record(self, image: _Image, column: str, op: str, node: ast.AST) -> None:
        """Note a term as the SDK's query would hold it: a REQUIRE on a column with a
        default search term replaces that default in a Vastfile, where the SDK keeps
        it (and raises for a second ``==``); a second term with the same column and
        operator makes the SDK raise."""
        span = self.span(node)
        if column in image.defaults:
            default = "true" if image.defaults.pop(column) else "false"
            self.warn("I104", f"a REQUIRE on {column} replaces the default search term "
                      f"`{column} == {default}`", span,
                      f"the SDK keeps its default `{column} == {default}` in every search "
                      f"(and raises ValueError for another `{column} ==`); the Vastfile "
                      "searches what this line says")
        elif (column, op) in image.terms:
            first = image.terms[(column, op)]
            self.error("I009", f"the search already has a `{op}` term on {column}: the SDK "
                       "raises ValueError (Cannot redefine op(s))", span,
                       "keep one of the two terms",
                       (Note(first, "the first term is here"),))
        image.terms[(column, op)] = span

    def reset_search(self, image: _Image, value: ast.expr) -> None:
        """``image._requires = Query.search_defaults(verified=None, ...)``: the search
        starts again from defaults the program chose."""
        func = value.func if isinstance(value, ast.Call) else None
        if not (isinstance(value, ast.Call) and isinstance(func, ast.Attribute)
                and func.attr == "search_defaults" and self.kind(func.value) == "query"):
            self.error("I007", f"cannot follow `{_show(value)}`", value,
                       "set the search with image.require(...)")
            return
        bound = self.bind(value, "search_defaults", [c for c, _ in catalog().search_defaults])
        image.lines.pop("REQUIRE", None)
        image.terms.clear()
        image.defaults.clear()
        image.dropped.clear()
        for column, default in catalog().search_defaults:
            known, chosen = self.value(bound[column], column) if column in bound else \
                (True, default)
            if not known:
                continue
            if chosen is None:
                image.dropped[column] = self.span(bound[column])
            elif chosen == default and isinstance(chosen, bool):
                image.defaults[column] = default
            elif isinstance(chosen, bool):
                spelled = "true" if chosen else "false"
                image.add("REQUIRE", _Line(f"REQUIRE {column} == {spelled}",
                                           self.span(bound[column])))
                image.terms[(column, "eq")] = self.span(bound[column])
            else:
                self.error("I005", f"{column} is {chosen!r}, not True, False or None",
                           bound[column])

    # -- the Vastfile -----------------------------------------------------------------------

    def finish(self) -> list[_Line] | None:
        """The Vastfile's directives in the usual order, or None when there is none."""
        app = self.app
        if app is None:
            self.error("I002", f"{self.shown} creates no vastai Deployment at its top level",
                       Span.point(self.shown, 1, 1),
                       "vastbuild import reads `app = Deployment(name=...)` from "
                       "vastai.serverless.remote (or vastai)")
            return None
        image = app.image
        if image is None:
            self.error("I002", "the Deployment never gets an image", app.origin,
                       "call app.image(\"vastai/pytorch:@vastai-automatic-tag\", 50)")
            return None
        for column, where in image.dropped.items():
            if not any(term_column == column for term_column, _ in image.terms):
                self.error("I008", f"a Vastfile cannot drop the default search term on "
                           f"{column} without a REQUIRE on {column}", where,
                           f"require {column} == True or {column} == False")
        code = self.sdk_file.parent if self.sdk_file.name == "__init__.py" else self.sdk_file
        lines = [app.header[k] for k in ("DEPLOYMENT", "TAG", "VERSION", "TTL")
                 if k in app.header]
        lines.append(image.source)
        if image.login is not None:
            lines.append(image.login)
        lines.append(_Line(f"CODE {self.word(self.relative(code), app.origin)}", app.origin))
        for kind in ("PIP", "APT", "ENV", "SECRET", "RUN", "COPY"):
            lines += image.lines.get(kind, [])
        if image.venv is not None:
            lines.append(image.venv)
        for kind in ("PORT", "REQUIRE"):
            lines += image.lines.get(kind, [])
        lines += _autoscale_lines(app.autoscale)
        return lines


def _autoscale_lines(calls: Sequence[tuple[dict[str, str], Span]]) -> list[_Line]:
    """One AUTOSCALE line per call, each key on the line of its last call: later values
    win, as in the SDK, and every key is written once."""
    last = {key: index for index, (values, _) in enumerate(calls) for key in values}
    lines = []
    for index, (values, span) in enumerate(calls):
        kept = [f"{key}={value}" for key, value in values.items() if last[key] == index]
        if kept:
            lines.append(_Line(" ".join(["AUTOSCALE", *kept]), span))
    return lines


def _render(header: str, lines: Sequence[_Line]) -> tuple[str, dict[int, Span]]:
    """The Vastfile's text, and for each line number of a directive where it came from."""
    out = [header]
    origin_at: dict[int, Span] = {}
    for line in lines:
        out.extend(line.comments)
        out.append(line.text)
        origin_at[len(out)] = line.origin
    return "\n".join(out) + "\n", origin_at


def _run_exec(argv: Sequence[str]) -> str:
    """RUN's exec form: JSON, with non-ASCII kept readable unless a character would be
    one a Vastfile cannot hold (then escaped, as JSON allows)."""
    readable = json.dumps(list(argv), ensure_ascii=False)
    return "RUN " + (json.dumps(list(argv)) if _UNSAYABLE.search(readable) or
                     re.search(r"[\x80-\x9f\u2028\u2029]", readable) else readable)


def _quote(text: str) -> str:
    """A double-quoted Vastfile word (its escapes are \\" \\\\ \\n \\t)."""
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\t", "\\t"))
    return f'"{escaped}"'


#: column -> the least number taken as written in the SDK's query's own units (MB,
#: seconds) rather than REQUIRE's (GB, days): no GPU has 1,000 GB, no machine 10,000 GB
#: of RAM, no offer lasts 86,400 days
_WIRE_UNITS_FROM = {"gpu_ram": 1000, "gpu_total_ram": 10_000, "cpu_ram": 10_000,
                    "duration": 86_400}


def _number(value: int | float) -> str:
    """A number as Python wrote it, without an exponent (a Vastfile has none); a float
    keeps its point, since AUTOSCALE keeps the type a number is written in."""
    text = repr(value)
    if isinstance(value, float) and ("e" in text or "E" in text):
        text = format(Decimal(text), "f")
        if "." not in text:
            text += ".0"
    return text


#: "RTX 4090" -> RTX_4090
_GPU_CONSTANT_OF = {name: constant for constant, name in catalog().gpu_constants.items()}


def _sdk_name(qualname: str) -> tuple[str, str] | None:
    """What a dotted name of the SDK is: a class, a query column (``("column",
    "gpu_ram")``) or a GPU constant (``("gpu", "RTX_4090")``)."""
    if qualname in _DEPLOYMENT_CLASSES | _IMAGE_CLASSES | _QUERY_CLASSES | _COLUMN_CLASSES:
        return ("class", qualname)
    module, _, name = qualname.rpartition(".")
    if module != _QUERY_MODULE:
        return None
    if name in catalog().gpu_constants:
        return ("gpu", name)
    column = "id" if name == "id_" else name  # `id` is a Python builtin
    return ("column", column) if column in catalog().columns else None


def _imports(tree: ast.Module) -> tuple[dict[str, str], list[str]]:
    """Each local name an import binds -> the dotted name it stands for, and the modules
    imported with ``*``."""
    bound: dict[str, str] = {}
    stars: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    bound[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if alias.name == "*":
                    stars.append(node.module)
                else:
                    bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound, stars


def _assignment_counts(tree: ast.Module) -> Counter[str]:
    """How often each name is bound anywhere in the file: only a name bound once can be
    read as the literal it was given (counting a function's locals too is cautious)."""
    counts: Counter[str] = Counter()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            counts[node.id] += 1
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            counts.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            counts[node.name] += 1
        elif isinstance(node, ast.ExceptHandler) and node.name:
            counts[node.name] += 1
    return counts


def _local_names(function: ast.FunctionDef | ast.AsyncFunctionDef) -> frozenset[str]:
    """Names a function binds for itself: a local ``image`` is not the module's."""
    arguments = function.args
    names = {a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
                             *filter(None, [arguments.vararg, arguments.kwarg])]}
    declared_global: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Global):
            declared_global.update(node.names)
    return frozenset(names - declared_global)


def _is_main_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"``, either way round."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides) and \
        any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)


def _describe(node: ast.stmt) -> str:
    what = {ast.For: "a for loop", ast.AsyncFor: "a for loop", ast.While: "a while loop",
            ast.If: "an if block", ast.With: "a with block", ast.AsyncWith: "a with block",
            ast.Try: "a try block", ast.Match: "a match block"}
    return what.get(type(node), "a statement the import does not follow")


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _is_string(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _show(node: ast.AST) -> str:
    """A piece of the program, as a message quotes it."""
    return _clip(" ".join(ast.unparse(node).split()))


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN - 1] + "…"


def _did_you_mean(word: str, choices: Sequence[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"did you mean `{close[0]}`?" if close else None
