"""The semantic checker: from a syntax tree to the immutable deployment model.

The parser accepts any well-formed line; this pass decides what the lines
mean and whether they make sense together: how often each directive may
appear, units and durations, paths that must exist inside the workspace, the
REQUIRE query (:mod:`vastbuild.require`), AUTOSCALE settings, plugin
directives (:mod:`vastbuild.directives`), and whether CODE names its
Deployment the way DEPLOYMENT does (:mod:`vastbuild.codescan`). It reports
every problem of a file in one run; a model comes out only when there is no
error, so later passes never see a half-valid deployment.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from vastbuild import nodes
from vastbuild.codescan import scan_code
from vastbuild.diagnostics import Diagnostic, Note, Span, error, has_errors, warning
from vastbuild.directives import DIRECTIVES, CheckContext, spec_of
from vastbuild.expand import Expanded, expand, with_include_notes
from vastbuild.model import (
    AUTOSCALE_BY_NAME,
    AUTOSCALE_SETTINGS,
    DEFAULT_PORT,
    DEFAULT_STORAGE_GB,
    DEFAULT_TAG,
    AutoscaleKind,
    CodeSource,
    CopySpec,
    Deployment,
    PluginDirective,
    RegistryLogin,
    RequirementsFile,
    RunStep,
    SecretName,
)
from vastbuild.plugins import LOAD_FAILED, PluginError, registry
from vastbuild.require import check_require
from vastbuild.syntax import parse
from vastbuild.units import Number, UnitError, duration_seconds, exact, parse_number, size_gb
from vastbuild.wire import BOOTSTRAP_VARIABLES
from vastbuild.workspace import find_root

#: Every code the checker (and the modules it drives) reports, with what it means.
#: The parser's codes (E001-E019) are in :data:`vastbuild.syntax.SYNTAX_CODES`.
CHECK_CODES: dict[str, str] = {
    "E020": "a required directive (FROM, CODE) is missing",
    "E021": "a directive that may appear once appears again",
    "E022": "unknown directive",
    "E023": "a plugin failed to load, is not what its entry point group needs, or failed",
    "E024": "TTL is not a duration",
    "E025": "STORAGE is not a size",
    "E026": "a path leaves the workspace",
    "E027": "a path does not exist",
    "E028": "CODE is neither a .py module nor a package folder",
    "E029": "CODE has a Python syntax error",
    "E030": "CODE and DEPLOYMENT disagree on the deployment's name",
    "E031": "CODE passes Deployment's name positionally",
    "E032": "a requirements file has a line PIP cannot pass on",
    "E033": "a path is the wrong kind (file or folder) or cannot be read",
    "E034": "an ENV, SECRET or PASSWORD name is not a valid variable name",
    "E035": "PORT is not n, n/tcp or n/udp with 1 <= n <= 65535",
    "E036": "COPY destination is not allowed",
    "E037": "two COPYs onto the same destination",
    "E038": "VENV and SYSTEM_PYTHON together",
    "E039": "unknown AUTOSCALE key",
    "E040": "AUTOSCALE value of the wrong type or out of range",
    "E041": "AUTOSCALE cold_workers greater than max_workers",
    "E042": "unknown REQUIRE column",
    "E043": "REQUIRE operator does not apply to the column",
    "E044": "REQUIRE value of the wrong type",
    "E045": "REQUIRE list without IN/NOTIN, or IN/NOTIN without a list",
    "E046": "REQUIRE unit where the column has none, or an unknown unit",
    "E047": "REQUIRE sets the same operator on a column twice",
    "E048": "REQUIRE terms contradict each other",
    "E049": "RUN has nothing to run",
    "E050": "a directive's value is empty",
    "E051": "VENV path holds white space",
    "E052": "a plugin takes a name that vastbuild or another plugin holds",
    "E053": "INCLUDE makes a cycle, or nests too deep",
    "E054": "an included fragment holds a directive only a Vastfile may hold",
    "E055": "${NAME} names no ARG, or an ARG without a value",
    "E056": "a `${` that starts no ${NAME} reference",
    "E057": "a SECRET is also set by ENV, or is a variable the worker bootstrap sets",
    "E058": "check --online: no offer on Vast's market matches the target's search",
    "W001": "REQUIRE names a GPU the catalog does not know",
    "W002": "CODE creates no Deployment the checker can find",
    "W003": "CODE names its Deployment with an expression the checker cannot read",
    "W004": "an ENV key looks like it holds a secret",
}

ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PORT = re.compile(r"(?P<number>\d+)(?:/(?P<protocol>[A-Za-z]+))?")
#: files the build writes at the top of the tarball; a relative COPY onto them
#: would overwrite what the worker bootstrap reads
RESERVED_DESTINATIONS = ("config.json", "deployment.py", "deployment")
#: the words that make an ENV key look like a secret's (W004) when its last ``_``-part
#: ends with one: HF_TOKEN, APIKEY, DB_PASSWORD -- not TOKENIZERS_PARALLELISM, not
#: HF_TOKEN_FILE (a path to one)
SECRET_WORDS = ("TOKEN", "KEY", "PASSWORD", "PASSWD", "SECRET")

D = TypeVar("D", bound=nodes.Directive)


def check(tree: nodes.Vastfile, vastfile: Path, *, default_tag: str = DEFAULT_TAG,
          args: Mapping[str, str] | None = None
          ) -> tuple[Deployment | None, list[Diagnostic]]:
    """Check a parsed Vastfile read from ``vastfile``: the model (only when there is
    no error) and every diagnostic, errors and warnings, in no particular order.
    INCLUDE and ARG are expanded first (:mod:`vastbuild.expand`; ``args``: the
    ``--arg`` values). ``default_tag`` is the tag of a file without TAG (the ``tag``
    setting)."""
    vastfile = vastfile.resolve()
    registry()  # a plugin that takes a built-in's name stops every check, not only some
    context = CheckContext(vastfile=vastfile, root=find_root(vastfile), display=tree.path)
    expanded = expand(tree, context, _read_fragment, overrides=args)
    model, diagnostics = _check(expanded, context, default_tag)
    return model, with_include_notes(diagnostics, expanded.included_from)


def _read_fragment(path: Path, display: str) -> tuple[nodes.Vastfile | None, list[Diagnostic]]:
    """An included fragment, parsed; diagnostics name it by ``display``."""
    try:
        source = path.read_bytes()
    except OSError as exc:
        return None, [error("E033", f"cannot read {display}: {exc.strerror or exc}",
                            Span.point(display, 1, 1), "check the file's permissions")]
    return parse(source, display)


def _check(expanded: Expanded, context: CheckContext, default_tag: str
           ) -> tuple[Deployment | None, list[Diagnostic]]:
    tree = expanded.tree
    directives = tree.directives
    diagnostics: list[Diagnostic] = list(expanded.diagnostics)
    diagnostics.extend(_cardinality(tree))

    def first(kind: type[D]) -> D | None:
        return next((d for d in directives if isinstance(d, kind)), None)

    def every(*kinds: type[nodes.Directive]) -> list[nodes.Directive]:
        return [d for d in directives if isinstance(d, kinds)]

    deployment = first(nodes.DeploymentName)
    name = None
    if deployment is not None and _nonempty(deployment.name, "DEPLOYMENT", diagnostics):
        name = deployment.name.text
    tag = first(nodes.Tag)
    tag_text = default_tag
    if tag is not None and _nonempty(tag.tag, "TAG", diagnostics):
        tag_text = tag.tag.text
    version = first(nodes.Version)
    version_label = None
    if version is not None and _nonempty(version.label, "VERSION", diagnostics):
        version_label = version.label.text
    ttl = first(nodes.Ttl)
    image = first(nodes.From)
    storage: Number = DEFAULT_STORAGE_GB
    if image is not None:
        _nonempty(image.image, "FROM", diagnostics)
        if image.storage is not None:
            storage = _storage(image.storage, diagnostics)
    code_node = first(nodes.Code)
    code = None if code_node is None else _code(code_node, context, diagnostics)

    installs, requirements = _pip(every(nodes.Pip, nodes.PipRequirements), context, diagnostics)
    search, problems = check_require(d for d in directives if isinstance(d, nodes.Require))
    diagnostics.extend(problems)
    envs = _envs(every(nodes.Env), diagnostics)
    secrets = _secrets(every(nodes.Secret), every(nodes.Env), diagnostics)
    login_node = first(nodes.Login)
    login = None if login_node is None or image is None else _login(login_node, image,
                                                                      diagnostics)
    runs = _runs(every(nodes.RunShell, nodes.RunExec), diagnostics)
    copies = _copies(every(nodes.Copy), context, diagnostics)
    venv = _venv(every(nodes.Venv, nodes.SystemPython), diagnostics)
    ports = _ports(every(nodes.Port), diagnostics)
    autoscale = _autoscale(every(nodes.Autoscale), diagnostics)
    plugins = _plugins(every(nodes.Extension), context, diagnostics)
    ttl_seconds = None if ttl is None else _ttl(ttl.duration, diagnostics)

    if code is not None and code_node is not None and (deployment is None or name is not None):
        declared = deployment.name if deployment is not None else None
        diagnostics.extend(_name_rule(code, code_node, declared, context))
    if has_errors(diagnostics) or code is None or image is None:
        return None, diagnostics
    model = Deployment(
        vastfile=context.vastfile, root=context.root,
        name=name if name is not None else _stem(code.path),
        config_name=name if name is not None else "",
        image=image.image.text, code=code, tag=tag_text, version_label=version_label,
        ttl=ttl_seconds, storage=storage, pip_installs=installs,
        requirements_files=requirements, apt_gets=_apt(every(nodes.Apt)), envs=envs,
        runs=runs, copies=copies, venv=venv, ports=ports, search=search,
        autoscale=autoscale, plugins=plugins, fragments=expanded.fragments,
        args=expanded.args, secrets=secrets, login=login)
    return model, diagnostics


def _stem(code: Path) -> str:
    """The default deployment name: ``app.py`` gives ``app``, package ``svc/`` gives ``svc``."""
    return code.stem if code.suffix == ".py" else code.name


def _cardinality(tree: nodes.Vastfile) -> list[Diagnostic]:
    """How often each directive may appear (:data:`vastbuild.directives.DIRECTIVES`):
    FROM and CODE exactly once, DEPLOYMENT, TAG, VERSION, TTL, VENV and SYSTEM_PYTHON
    at most once. A repeat is reported at itself, noting the first."""
    diagnostics: list[Diagnostic] = []
    for spec in DIRECTIVES:
        if spec.count == "any":
            continue
        found = [d for d in tree.directives if isinstance(d, spec.nodes)]
        if not found and spec.count == "once":
            diagnostics.append(error(
                "E020", f"the Vastfile has no {spec.keyword}", Span.point(tree.path, 1, 1),
                f"add a line such as `{spec.example}`"))
        for repeat in found[1:]:
            diagnostics.append(error(
                "E021", f"{spec.keyword} is given more than once", repeat.keyword_span,
                f"a Vastfile has {'one' if spec.count == 'once' else 'at most one'} "
                f"{spec.keyword}; remove one of them",
                [Note(found[0].keyword_span, f"first {spec.keyword} here")]))
    return diagnostics


def _nonempty(word: nodes.Word, keyword: str, diagnostics: list[Diagnostic]) -> bool:
    if word.text.strip():
        return True
    diagnostics.append(error("E050", f"{keyword} has an empty value", word.span,
                             f"give {keyword} a value"))
    return False


def _ttl(word: nodes.Word, diagnostics: list[Diagnostic]) -> Number | None:
    try:
        seconds = duration_seconds(word.text)
    except UnitError as exc:
        diagnostics.append(error("E024", f"TTL is not a duration: {exc}", word.span,
                                 "write seconds (`900`) or `90s`, `15m`, `2h`, `1d`"))
        return None
    if seconds <= 0:
        diagnostics.append(error("E024", "TTL must be longer than zero", word.span,
                                 "leave TTL out to keep the deployment until it is deleted"))
        return None
    return seconds


def _storage(word: nodes.Word, diagnostics: list[Diagnostic]) -> Number:
    try:
        gb = size_gb(word.text)
    except UnitError as exc:
        diagnostics.append(error("E025", f"STORAGE is not a size: {exc}", word.span,
                                 "write GB (`80`, `80GB`), or `500MB`, `0.5TB`"))
        return DEFAULT_STORAGE_GB
    if gb <= 0:
        diagnostics.append(error("E025", "STORAGE must be more than zero", word.span,
                                 f"leave STORAGE out for the default {DEFAULT_STORAGE_GB} GB"))
        return DEFAULT_STORAGE_GB
    return exact(gb)


def _code(node: nodes.Code, context: CheckContext,
          diagnostics: list[Diagnostic]) -> CodeSource | None:
    path, problems = context.resolve(node.path)
    diagnostics.extend(problems)
    if path is None:
        return None
    if path.is_dir():
        if (path / "__init__.py").is_file():
            return CodeSource(path, "package", node.path.span)
        diagnostics.append(error(
            "E028", f"`{node.path.text}` is a folder without `__init__.py`", node.path.span,
            "add an `__init__.py` to make it a package, or name the module's .py file"))
        return None
    if path.suffix != ".py":
        diagnostics.append(error(
            "E028", f"`{node.path.text}` is not a Python module", node.path.span,
            "CODE names a `.py` file or a package folder holding `__init__.py`"))
        return None
    return CodeSource(path, "module", node.path.span)


def _pip(directives: Sequence[nodes.Directive], context: CheckContext,
         diagnostics: list[Diagnostic]
         ) -> tuple[tuple[str, ...], tuple[RequirementsFile, ...]]:
    """PIP specs and the lines of PIP -r files, in source order."""
    installs: list[str] = []
    files: list[RequirementsFile] = []
    for node in directives:
        if isinstance(node, nodes.Pip):
            installs.extend(spec.text for spec in node.specs)
            continue
        assert isinstance(node, nodes.PipRequirements)
        path, problems = context.resolve(node.file, "file")
        diagnostics.extend(problems)
        if path is not None:
            installs.extend(_requirement_lines(path, node.file, context, diagnostics))
            files.append(RequirementsFile(path, node.span))
    return tuple(installs), tuple(files)


def _requirement_lines(path: Path, word: nodes.Word, context: CheckContext,
                       diagnostics: list[Diagnostic]) -> list[str]:
    """The requirements of a PIP -r file: comments, blank lines and inline `` #``
    comments dropped. The worker passes each entry to ``uv pip install`` as one
    argument, so option lines (``-e``, ``--index-url``, nested ``-r``) cannot work
    there and are errors in the file, at their line."""
    shown = context.display_path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        diagnostics.append(error("E033", f"cannot read `{word.text}`: {exc.strerror or exc}",
                                 word.span, "check the file's permissions"))
        return []
    not_text = _not_text(data, shown)
    if not_text is not None:
        message, span = not_text
        diagnostics.append(error("E033", message, span, "a requirements file is UTF-8 text",
                                 [Note(word.span, "read by this PIP -r")]))
        return []
    # pip reads a file that starts with a byte order mark without it: so does this
    text = data.decode("utf-8-sig")
    lines: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        content = re.split(r"(?:^|\s)#", raw, maxsplit=1)[0]
        line = content.strip()
        if not line:
            continue
        option = re.search(r"(?:^|\s)(-\S*)", line)
        if option:
            col = len(content) - len(content.lstrip()) + option.start(1) + 1
            diagnostics.append(error(
                "E032", f"`{option.group(1)}`: options in a requirements file are not passed on",
                Span(shown, number, col, number, col + len(option.group(1))),
                "the worker installs each line as one argument; put options on a PIP line "
                "(`PIP --extra-index-url URL package`)",
                [Note(word.span, "read by this PIP -r")]))
            continue
        lines.append(line)
    return lines


#: characters no requirement holds: C0 controls but tab and line ends, and DEL
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _not_text(data: bytes, shown: str) -> tuple[str, Span] | None:
    """Where a requirements file stops being text: an invalid UTF-8 byte or a control
    character (a NUL cannot even be passed to the installer as an argument)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[:exc.start]
        line_start = before.rfind(b"\n") + 1
        col = len(before[line_start:].decode("utf-8", "replace")) + 1
        return (f"invalid UTF-8 byte 0x{data[exc.start]:02X} in {shown}",
                Span.point(shown, before.count(b"\n") + 1, col))
    found = _CONTROL.search(text)
    if found is None:
        return None
    preceding = text[:found.start()]
    col = found.start() - (preceding.rfind("\n") + 1) + 1
    return (f"control character U+{ord(found.group()):04X} in {shown}",
            Span.point(shown, preceding.count("\n") + 1, col))


def _apt(directives: Sequence[nodes.Directive]) -> tuple[str, ...]:
    packages: list[str] = []
    for node in directives:
        assert isinstance(node, nodes.Apt)
        packages.extend(word.text for word in node.packages)
    return tuple(packages)


def _envs(directives: Sequence[nodes.Directive], diagnostics: list[Diagnostic]
          ) -> tuple[tuple[str, str], ...]:
    """ENV assignments; a later value for a key replaces the value in the key's first place."""
    envs: dict[str, str] = {}
    for node in directives:
        assert isinstance(node, nodes.Env)
        for assignment in node.assignments:
            key = assignment.key
            if not ENV_KEY.fullmatch(key.text):
                diagnostics.append(error(
                    "E034", f"`{key.text}` is not an environment variable name", key.span,
                    "a name is letters, digits and `_`, not starting with a digit"))
                continue
            envs[key.text] = assignment.value.text
    return tuple(envs.items())


def looks_secret(key: str) -> bool:
    """Whether an ENV key reads like it names a secret (see :data:`SECRET_WORDS`)."""
    return key.upper().rpartition("_")[2].endswith(SECRET_WORDS)


def _secret_name(word: nodes.Word, what: str, diagnostics: list[Diagnostic]) -> bool:
    """Whether ``word`` can name an environment variable (E034 when not)."""
    if ENV_KEY.fullmatch(word.text):
        if word.text not in BOOTSTRAP_VARIABLES:
            return True
        diagnostics.append(error(
            "E057", f"{what} {word.text} is a variable the worker bootstrap sets itself",
            word.span, "give the secret another name"))
        return False
    diagnostics.append(error(
        "E034", f"`{word.text}` is not an environment variable name", word.span,
        "a name is letters, digits and `_`, not starting with a digit"))
    return False


def _secrets(directives: Sequence[nodes.Directive], env_directives: Sequence[nodes.Directive],
             diagnostics: list[Diagnostic]) -> tuple[SecretName, ...]:
    """SECRET names, first mention first (a repeat is harmless and dropped); E057 for
    one ENV also sets, W004 for an ENV key that reads like a secret's."""
    set_by_env = {a.key.text: a.key.span for node in env_directives
                  if isinstance(node, nodes.Env) for a in node.assignments
                  if ENV_KEY.fullmatch(a.key.text)}
    secrets: dict[str, SecretName] = {}
    named = {word.text for node in directives if isinstance(node, nodes.Secret)
             for word in node.names}
    for node in directives:
        assert isinstance(node, nodes.Secret)
        for word in node.names:
            if not _secret_name(word, "SECRET", diagnostics) or word.text in secrets:
                continue
            if word.text in set_by_env:
                diagnostics.append(error(
                    "E057", f"{word.text} is both a SECRET and set by ENV", word.span,
                    f"remove {word.text} from ENV: its value belongs outside the Vastfile",
                    notes=(Note(set_by_env[word.text], "ENV sets it here"),)))
                continue
            secrets[word.text] = SecretName(word.text, word.span)
    for key, span in set_by_env.items():
        if looks_secret(key) and key not in named:  # a SECRET of that name says more
            diagnostics.append(warning(
                "W004", f"ENV {key} looks like a secret: its value is baked into the "
                "tarball, the cache and the content hash, and uploaded", span,
                f"write `SECRET {key}` and give the value at deploy time (the "
                "environment, --secret NAME=@FILE or --secrets-file)"))
    return tuple(secrets.values())


def _login(node: nodes.Login, image: nodes.From, diagnostics: list[Diagnostic]
           ) -> RegistryLogin | None:
    """LOGIN user PASSWORD NAME [REGISTRY host]; the registry defaults to the image's."""
    ok = _nonempty(node.user, "LOGIN", diagnostics)
    ok = _secret_name(node.password, "PASSWORD", diagnostics) and ok
    if node.registry is not None:
        ok = _nonempty(node.registry, "REGISTRY", diagnostics) and ok
    if not ok:
        return None
    registry = node.registry.text if node.registry is not None else \
        image_registry(image.image.text)
    return RegistryLogin(node.user.text, registry, SecretName(node.password.text,
                                                              node.password.span))


def image_registry(image: str) -> str:
    """The registry host of an image reference, as docker reads it: the first path
    part when it has a dot or a port or is ``localhost``, else Docker Hub."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def _runs(directives: Sequence[nodes.Directive], diagnostics: list[Diagnostic]
          ) -> tuple[RunStep, ...]:
    runs: list[RunStep] = []
    for node in directives:
        if isinstance(node, nodes.RunExec):
            if not node.argv[0]:
                diagnostics.append(error("E049", "RUN's exec form names no program",
                                         node.argv_span, 'write `RUN ["program", "arg"]`'))
            runs.append(tuple(node.argv))
        else:
            assert isinstance(node, nodes.RunShell)
            runs.append(node.text)
    return tuple(runs)


def _copies(directives: Sequence[nodes.Directive], context: CheckContext,
            diagnostics: list[Diagnostic]) -> tuple[CopySpec, ...]:
    """COPY src dst: src inside the workspace, dst a clean worker path used once."""
    copies: list[CopySpec] = []
    seen: dict[str, nodes.Copy] = {}
    for node in directives:
        assert isinstance(node, nodes.Copy)
        src, problems = context.resolve(node.src)
        diagnostics.extend(problems)
        dst = node.dst.text
        problem = _destination_problem(dst)
        if problem:
            diagnostics.append(error("E036", problem[0], node.dst.span, problem[1]))
            continue
        target = posixpath.normpath(dst)
        if target in seen:
            diagnostics.append(error(
                "E037", f"two COPYs onto `{dst}`", node.dst.span,
                "each COPY needs its own destination; the later one would overwrite the first",
                [Note(seen[target].dst.span, "first COPY onto it here")]))
            continue
        seen[target] = node
        if src is not None:
            copies.append(CopySpec(src, dst, node.span))
    return tuple(copies)


def _destination_problem(dst: str) -> tuple[str, str] | None:
    """Why a COPY destination cannot be used (message, help), or None."""
    if not dst.strip():
        return "COPY's destination is empty", "write where the file lands, e.g. `/app/config.json`"
    if ".." in dst.split("/"):
        return (f"COPY's destination `{dst}` has a `..` component",
                "write the destination without `..`: absolute, or relative to the worker's "
                "working folder")
    top = posixpath.normpath(dst).split("/")[0]
    if not dst.startswith("/") and top in RESERVED_DESTINATIONS:
        return (f"COPY onto `{dst}` would overwrite the `{top}` vastbuild writes for the "
                "worker", "choose another destination, e.g. under `/app/`")
    return None


def _venv(directives: Sequence[nodes.Directive], diagnostics: list[Diagnostic]) -> str | None:
    """None for the SDK's managed venv, "" for SYSTEM_PYTHON, else VENV's path."""
    if not directives:
        return None
    node = directives[0]
    later = next((d for d in directives if type(d) is not type(node)), None)
    if later is not None:
        diagnostics.append(error(
            "E038", "VENV and SYSTEM_PYTHON exclude each other", later.keyword_span,
            "keep one: VENV runs the deployment in that venv, SYSTEM_PYTHON in the image's "
            "own Python", [Note(node.keyword_span, f"{spec_of(node).keyword} here")]))
    if isinstance(node, nodes.SystemPython):
        return ""
    assert isinstance(node, nodes.Venv)
    if not _nonempty(node.path, "VENV", diagnostics):
        return None
    if any(char.isspace() for char in node.path.text):
        diagnostics.append(error(
            "E051", "VENV's path holds white space", node.path.span,
            "the path travels in the docker options string, which splits on spaces; "
            "use a path without spaces"))
    return node.path.text


def _ports(directives: Sequence[nodes.Directive], diagnostics: list[Diagnostic]
           ) -> tuple[tuple[int, str], ...]:
    ports = {DEFAULT_PORT}
    for node in directives:
        assert isinstance(node, nodes.Port)
        for word in node.ports:
            match = PORT.fullmatch(word.text)
            protocol = (match["protocol"] or "tcp").lower() if match else ""
            if not match or protocol not in ("tcp", "udp"):
                diagnostics.append(error("E035", f"`{word.text}` is not a port", word.span,
                                         "write `8080`, `8080/tcp` or `8080/udp`"))
                continue
            number = int(match["number"])
            if not 1 <= number <= 65535:
                diagnostics.append(error("E035", f"port {number} is out of range", word.span,
                                         "a port is between 1 and 65535"))
                continue
            ports.add((number, protocol))
    return tuple(sorted(ports))


#: what each kind of AUTOSCALE value is (besides never negative)
AUTOSCALE_VALUES: dict[AutoscaleKind, str] = {
    "count": "a whole number", "number": "a number",
    "fraction": "a number above 0, at most 1",
    "seconds": "a number of seconds (or `30s`, `5m`, `1h`)"}


def _autoscale(directives: Sequence[nodes.Directive], diagnostics: list[Diagnostic]
               ) -> tuple[tuple[str, Number], ...]:
    """AUTOSCALE settings in first-set order; a later line updates a key's value."""
    values: dict[str, Number] = {}
    where: dict[str, nodes.Assignment] = {}
    for node in directives:
        assert isinstance(node, nodes.Autoscale)
        for assignment in node.assignments:
            key = assignment.key.text
            if key not in AUTOSCALE_BY_NAME:
                names = [setting.name for setting in AUTOSCALE_SETTINGS]
                nearest = difflib.get_close_matches(key, names, n=1)
                diagnostics.append(error(
                    "E039", f"unknown AUTOSCALE key `{key}`", assignment.key.span,
                    f"did you mean `{nearest[0]}`?" if nearest
                    else "the keys are " + ", ".join(names),
                    suggestion=nearest[0] if nearest else None))
                continue
            value = _autoscale_value(key, assignment.value, diagnostics)
            if value is not None:
                values[key] = value
                where[key] = assignment
    cold, most = values.get("cold_workers"), values.get("max_workers")
    if cold is not None and most is not None and cold > most:
        diagnostics.append(error(
            "E041", f"cold_workers={cold} is more than max_workers={most}",
            where["cold_workers"].span, "raise max_workers or lower cold_workers",
            [Note(where["max_workers"].span, "max_workers is set here")]))
    return tuple(values.items())


def _autoscale_value(key: str, word: nodes.Word, diagnostics: list[Diagnostic]
                     ) -> Number | None:
    kind = AUTOSCALE_BY_NAME[key].kind
    expected = AUTOSCALE_VALUES[kind]
    value: Number | None
    if kind == "seconds":
        try:
            value = duration_seconds(word.text)
        except UnitError:
            value = None
    else:
        value = parse_number(word.text)
        if kind == "count" and isinstance(value, float):
            value = None
    if value is None:
        diagnostics.append(error("E040", f"{key} is {expected}, not `{word.text}`", word.span,
                                 f"write {key}=<{expected}>"))
        return None
    if value < 0:
        diagnostics.append(error("E040", f"{key} cannot be negative", word.span,
                                 f"write {key}=<{expected}>"))
        return None
    if kind == "fraction" and not 0 < value <= 1:
        diagnostics.append(error("E040", f"{key} must be above 0 and at most 1, not {value}",
                                 word.span, "0.8 keeps workers 80% busy"))
        return None
    return value


def _plugins(directives: Sequence[nodes.Directive], context: CheckContext,
             diagnostics: list[Diagnostic]) -> tuple[PluginDirective, ...]:
    plugins: list[PluginDirective] = []
    for node in directives:
        assert isinstance(node, nodes.Extension)
        value, problems = _check_extension(node, context)
        diagnostics.extend(problems)
        if value is not None and not has_errors(problems):
            plugins.append(PluginDirective(node.keyword.text.upper(), value, node.span))
    return tuple(plugins)


def _check_extension(node: nodes.Extension, context: CheckContext
                     ) -> tuple[object | None, list[Diagnostic]]:
    """Check a directive the language does not define: hand it to the plugin that
    claims its keyword, or report it with the nearest known directive."""
    keyword = node.keyword.text.upper()
    try:
        plugin = registry().directive(keyword)
    except PluginError as exc:
        return None, [error(exc.code, exc.reason, node.keyword_span, exc.hint)]
    if plugin is None:
        nearest = registry().nearest_keyword(keyword)
        hint = (f"did you mean `{nearest}`?" if nearest else
                "the directives are " + ", ".join(registry().known_keywords())
                + "; a plugin may add more")
        return None, [error("E022", f"unknown directive `{node.keyword.text}`",
                            node.keyword_span, hint, suggestion=nearest)]
    try:
        value, diagnostics = plugin.check(node, context)
        diagnostics = list(diagnostics)
        if not all(isinstance(d, Diagnostic) for d in diagnostics):
            raise TypeError("check() must return (value, [Diagnostic, ...])")
    except Exception as exc:  # a plugin bug must not become a vastbuild traceback
        return None, [error(LOAD_FAILED, f"the plugin for {keyword} failed: "
                            f"{type(exc).__name__}: {exc}", node.keyword_span,
                            "this is a bug in the plugin; report it to its authors")]
    return value, diagnostics


def _name_rule(code: CodeSource, node: nodes.Code, deployment: nodes.Word | None,
               context: CheckContext) -> list[Diagnostic]:
    """CODE's ``Deployment(name=...)`` must be the name the worker looks up:
    DEPLOYMENT when the Vastfile sets one, else ``""`` (an unnamed Deployment)."""
    calls, diagnostics = scan_code(code.path, code.kind, context.display_path)
    if diagnostics:
        return diagnostics
    shown = context.display_path(code.path if code.kind == "module"
                                 else code.path / "__init__.py")
    expected = deployment.text if deployment is not None else ""
    if not calls:
        return [warning(
            "W002", f"no `Deployment(...)` call found in {shown}", node.path.span,
            "the worker imports CODE and looks up the Deployment it creates; "
            "create it there so the name can be checked")]
    for call in calls:
        if call.positional:
            diagnostics.append(error(
                "E031", "Deployment's first positional argument is the API key, not the name",
                call.span, f'write `Deployment(name="{expected}")`' if expected
                else "drop the positional argument: the Vastfile sets no DEPLOYMENT"))
    readable = [call for call in calls if not call.positional and call.name is not None]
    unreadable = [call for call in calls if not call.positional and call.name is None]
    if any(call.name == expected for call in readable):
        return diagnostics
    if unreadable:
        diagnostics.append(warning(
            "W003", "the Deployment's name is not a string constant, so it cannot be checked",
            unreadable[0].span, f'write `name="{expected}"` so the checker can read it'
            if expected else "pass no name: the Vastfile sets no DEPLOYMENT"))
        return diagnostics
    if not readable:
        return diagnostics
    call = readable[0]
    note = [Note(call.span, "the code names it here")]
    if deployment is not None and call.name:
        diagnostics.append(error(
            "E030", f"CODE names its Deployment `{call.name}`, but DEPLOYMENT is `{expected}`",
            deployment.span,
            f'change DEPLOYMENT to `{call.name}`, or write `Deployment(name="{expected}")` '
            f"in {call.span}", note))
    elif deployment is not None:
        diagnostics.append(error(
            "E030", f"CODE's Deployment has no name, but DEPLOYMENT is `{expected}`: "
            "the worker would look up a deployment that does not exist",
            deployment.span,
            f'write `Deployment(name="{expected}")` in {call.span}, or remove DEPLOYMENT '
            f"(the name is then `{_stem(code.path)}`)", note))
    else:
        diagnostics.append(error(
            "E030", f"CODE names its Deployment `{call.name}`, but the Vastfile has no "
            "DEPLOYMENT: the worker would look up the unnamed deployment",
            node.path.span, f"add the line `DEPLOYMENT {call.name}`", note))
    return diagnostics
