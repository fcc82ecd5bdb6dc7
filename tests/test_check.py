"""The semantic checker: what every directive means in the model, and every
error and warning it reports, with its position and message."""

from __future__ import annotations

import os
import re
import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vastbuild.api as api
from vastbuild import directives, plugins
from vastbuild.check import CHECK_CODES, check
from vastbuild.diagnostics import Diagnostic, has_errors
from vastbuild.model import Deployment, SearchTerm
from vastbuild.syntax import SYNTAX_CODES, parse

REPO = Path(__file__).resolve().parent.parent
BASE = "DEPLOYMENT svc\nFROM vastai/base:1\nCODE app.py\n"  # lines 1-3; tests add from line 4
APP = 'from vastai.serverless.remote import Deployment\n\napp = Deployment(name="svc")\n'
DEFAULTS = (SearchTerm("verified", "eq", True), SearchTerm("rentable", "eq", True),
            SearchTerm("rented", "eq", False))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A workspace (marked by vastbuild.toml) holding a deployment folder ``svc``."""
    (tmp_path / "vastbuild.toml").write_text("")
    folder = tmp_path / "svc"
    folder.mkdir()
    (folder / "app.py").write_text(APP)
    return folder


def run(project: Path, text: str, base: str = BASE
        ) -> tuple[Deployment | None, list[Diagnostic]]:
    source = base + textwrap.dedent(text)
    vastfile = project / "Vastfile"
    vastfile.write_text(source)
    tree, syntax = parse(source, str(vastfile))
    assert tree is not None and not syntax, syntax
    return check(tree, vastfile)


def ok(project: Path, text: str = "", base: str = BASE) -> Deployment:
    model, diagnostics = run(project, text, base)
    assert not diagnostics, diagnostics
    assert model is not None
    return model


def only(project: Path, text: str, code: str, base: str = BASE) -> list[Diagnostic]:
    """The diagnostics of a file whose only problems are ``code``, in file order."""
    model, diagnostics = run(project, text, base)
    assert {d.code for d in diagnostics} == {code}, diagnostics
    if code.startswith("E"):
        assert model is None
    return sorted(diagnostics, key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))


def at(d: Diagnostic) -> tuple[int, int]:
    assert d.span is not None
    return d.span.line, d.span.col


# --- the model ------------------------------------------------------------------------------

def test_minimal_file_defaults(project: Path) -> None:
    model = ok(project)
    assert model.name == model.config_name == "svc"
    assert model.image == "vastai/base:1"
    assert model.code.path == project / "app.py" and model.code.kind == "module"
    assert model.tag == "default" and model.version_label is None and model.ttl is None
    assert model.storage == 50 and model.ports == ((3000, "tcp"),)
    assert model.venv is None and model.search == DEFAULTS
    assert model.vastfile == project / "Vastfile" and model.root == project.parent
    assert model.label == "//svc"


def test_name_defaults_to_code_stem_and_config_name_to_empty(project: Path) -> None:
    (project / "app.py").write_text("from vastai.serverless.remote import Deployment\n"
                                    "app = Deployment()\n")
    model = ok(project, base="FROM img\nCODE app.py\n")
    assert model.name == "app" and model.config_name == ""


def test_code_package(project: Path) -> None:
    package = project / "worker"
    package.mkdir()
    (package / "__init__.py").write_text("from .model import app\n")
    (package / "model.py").write_text(APP)
    model = ok(project, base="DEPLOYMENT svc\nFROM img\nCODE worker\n")
    assert model.code.kind == "package" and model.code.path == package
    (package / "model.py").write_text("from vastai.serverless.remote import Deployment\n"
                                      "app = Deployment()\n")
    assert ok(project, base="FROM img\nCODE worker/\n").name == "worker"


def test_tag_version(project: Path) -> None:
    model = ok(project, "TAG prod\nVERSION 'release 3'\n")
    assert model.tag == "prod" and model.version_label == "release 3"


@pytest.mark.parametrize(("written", "seconds"), [
    ("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1.5h", 5400),
    ("0.5", 0.5), ("2H", 7200)])
def test_ttl(project: Path, written: str, seconds: float) -> None:
    ttl = ok(project, f"TTL {written}\n").ttl
    assert ttl == seconds and type(ttl) is type(seconds)


@pytest.mark.parametrize(("written", "gb"), [
    ("80", 80), ("80GB", 80), ("80gb", 80), ("0.5TB", 500), ("0.1TB", 100), ("500MB", 0.5),
    ("12.0", 12), ("2.5", 2.5), ("1500MB", 1.5)])
def test_storage(project: Path, written: str, gb: float) -> None:
    storage = ok(project, base=f"DEPLOYMENT svc\nFROM img STORAGE {written}\nCODE app.py\n").storage
    assert storage == gb and type(storage) is type(gb)


def test_pip_in_order_with_requirements_files(project: Path) -> None:
    (project / "requirements.txt").write_text(
        "# pinned\nnumpy<2\n\n  torch==2.5.1   # the big one\nfoo; python_version < '3.12'\n"
        "url#frag @ https://x/y.whl\n")
    model = ok(project, "PIP first\nPIP -r requirements.txt\nPIP last 'a b'\n")
    assert model.pip_installs == ("first", "numpy<2", "torch==2.5.1",
                                  "foo; python_version < '3.12'", "url#frag @ https://x/y.whl",
                                  "last", "a b")
    assert [f.path for f in model.requirements_files] == [project / "requirements.txt"]
    assert model.requirements_files[0].span.line == 5


def test_apt_in_order(project: Path) -> None:
    assert ok(project, "APT ffmpeg\nAPT libsndfile1 git\n").apt_gets == (
        "ffmpeg", "libsndfile1", "git")


def test_env_later_value_keeps_first_position(project: Path) -> None:
    model = ok(project, 'ENV A=1 B="two words"\nENV C=3 A=replaced _x=\'$lit\'\n')
    assert model.envs == (("A", "replaced"), ("B", "two words"), ("C", "3"), ("_x", "$lit"))


def test_run_shell_and_exec(project: Path) -> None:
    model = ok(project, 'RUN echo "hi" && mkdir -p /data\nRUN ["python", "-c", "print(1)"]\n'
                        "RUN [ -f x ] || touch x\n")
    assert model.runs == ('echo "hi" && mkdir -p /data', ("python", "-c", "print(1)"),
                          "[ -f x ] || touch x")


def test_copy(project: Path) -> None:
    lib = project.parent / "lib"
    lib.mkdir()
    (lib / "util.py").write_text("")
    (project / "config.json").write_text("{}")
    model = ok(project, "COPY ../lib /app/lib\nCOPY config.json conf/config.json\n")
    assert [(c.src, c.dst) for c in model.copies] == [
        (lib, "/app/lib"), (project / "config.json", "conf/config.json")]
    assert model.copies[0].span.line == 4


def test_copy_through_symlink_inside_workspace(project: Path) -> None:
    (project.parent / "data.txt").write_text("x")
    (project / "link.txt").symlink_to(project.parent / "data.txt")
    model = ok(project, "COPY link.txt /data.txt\n")
    assert model.copies[0].src == project.parent / "data.txt"


def test_venv_and_system_python(project: Path) -> None:
    assert ok(project, "VENV /venv/main\n").venv == "/venv/main"
    assert ok(project, "SYSTEM_PYTHON\n").venv == ""


def test_ports_sorted_deduplicated_with_3000(project: Path) -> None:
    model = ok(project, "PORT 8443/tcp 53/udp 8080\nPORT 8080/TCP 3000\n")
    assert model.ports == ((53, "udp"), (3000, "tcp"), (8080, "tcp"), (8443, "tcp"))


def test_require_terms_typed_after_defaults(project: Path) -> None:
    model = ok(project, """\
        REQUIRE gpu_name IN [RTX_4090, "H100 SXM", L40S] AND gpu_ram >= 48000MB
        REQUIRE cpu_ram >= 0.5TB, gpu_total_ram < 96GB, duration >= 72h
        REQUIRE dph_total < 2.0 AND num_gpus == 1 AND geolocation not in [CN, RU]
        REQUIRE driver_vers >= 535.86.05 AND dphtotal <= 3 AND static_ip == True
        REQUIRE gpu_name != RTX_3060
        """)
    assert model.search[:3] == DEFAULTS
    assert [(t.column, t.op, t.value) for t in model.search[3:]] == [
        ("gpu_name", "in", ("RTX 4090", "H100 SXM", "L40S")),
        ("gpu_ram", "gte", 48),
        ("cpu_ram", "gte", 500),
        ("gpu_total_ram", "lt", 96),
        ("duration", "gte", 3),
        ("dph_total", "lt", 2.0),
        ("num_gpus", "eq", 1),
        ("geolocation", "notin", ("CN", "RU")),
        ("driver_vers", "gte", "535.86.05"),
        ("dph_total", "lte", 3),
        ("static_ip", "eq", True),
        ("gpu_name", "neq", "RTX 3060"),
    ]
    assert type(model.search[4].value) is int and type(model.search[8].value) is float
    assert model.search[3].span is not None and model.search[3].span.line == 4


def test_require_setting_a_default_column_replaces_the_default(project: Path) -> None:
    model = ok(project, "REQUIRE rented == true AND verified != false\n")
    assert [(t.column, t.op, t.value) for t in model.search] == [
        ("rentable", "eq", True), ("rented", "eq", True), ("verified", "neq", False)]


@pytest.mark.parametrize(("written", "days"), [("3", 3), ("3d", 3), ("72h", 3), ("36h", 1.5)])
def test_require_duration_in_days(project: Path, written: str, days: float) -> None:
    assert ok(project, f"REQUIRE duration >= {written}\n").search[-1].value == days


def test_require_keywords_case_insensitive_and_not_in(project: Path) -> None:
    model = ok(project, "require gpu_name notin [RTX_3060] and num_gpus in [1, 2]\n")
    assert [(t.op, t.value) for t in model.search[3:]] == [
        ("notin", ("RTX 3060",)), ("in", (1, 2))]


def test_autoscale_updates_keep_first_position(project: Path) -> None:
    model = ok(project, """\
        AUTOSCALE cold_workers=2 max_workers=10 min_load=100 target_util=0.8
        AUTOSCALE max_queue_time=30.0 target_queue_time=5s inactivity_timeout=5m
        AUTOSCALE cold_workers=3 min_cold_load=1.5 cold_mult=2
        """)
    assert model.autoscale == (
        ("cold_workers", 3), ("max_workers", 10), ("min_load", 100), ("target_util", 0.8),
        ("max_queue_time", 30.0), ("target_queue_time", 5), ("inactivity_timeout", 300),
        ("min_cold_load", 1.5), ("cold_mult", 2))


def test_warnings_do_not_fail(project: Path) -> None:
    model, diagnostics = run(project, "REQUIRE gpu_name == RTX_9999\n")
    assert [d.code for d in diagnostics] == ["W001"] and not has_errors(diagnostics)
    assert model is not None and model.search[-1].value == "RTX_9999"


# --- cardinality and unknown directives ---------------------------------------------------

def test_e020_missing_from_and_code(project: Path) -> None:
    found = only(project, "DEPLOYMENT svc\n", "E020", base="")
    assert [d.message for d in found] == ["the Vastfile has no FROM", "the Vastfile has no CODE"]
    assert all(at(d) == (1, 1) for d in found)
    assert "FROM vastai/pytorch" in (found[0].help or "")


def test_e021_repeated_directive_points_at_both(project: Path) -> None:
    found = only(project, "TTL 5m\nFROM other\nTTL 1h\n", "E021")
    assert [(at(d), d.message) for d in found] == [
        ((5, 1), "FROM is given more than once"), ((6, 1), "TTL is given more than once")]
    assert [(n.span.line, n.span.col, n.message) for n in found[0].notes] == [
        (2, 1, "first FROM here")]
    assert found[1].notes[0].span.line == 4


@pytest.mark.parametrize("text", ["DEPLOYMENT b\n", "TAG a\nTAG b\n", "VERSION 1\nVERSION 2\n",
                                  "CODE app.py\n", "SYSTEM_PYTHON\nSYSTEM_PYTHON\n",
                                  "VENV /a\nVENV /b\n"])
def test_e021_each_once_only_directive(project: Path, text: str) -> None:
    assert only(project, text, "E021")


def test_e022_unknown_directive_suggests_nearest(project: Path) -> None:
    [d] = only(project, "FORM img\n", "E022")
    assert at(d) == (4, 1) and d.message == "unknown directive `FORM`"
    assert d.help == "did you mean `FROM`?"
    [d] = only(project, "XYZZY a b\n", "E022")
    assert "the directives are DEPLOYMENT, TAG" in (d.help or "")


# --- plugins --------------------------------------------------------------------------------

PLUGIN = '''
from vastbuild.diagnostics import error

keyword = "GREET"

def check(node, context):
    if not node.args:
        return None, [error("GRT001", "GREET needs a name", node.keyword_span)]
    path, problems = context.resolve(node.args[0], "file")
    return (node.args[0].text, path, context.root, context.folder), problems
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install a directive plugin for GREET from module source, as an entry point
    ``vb_test_plugin`` (the module itself is the plugin object) or ``module:attr``."""
    def install(source: str, attribute: str | None = None) -> None:
        (tmp_path / "vb_test_plugin.py").write_text(source)
        value = "vb_test_plugin" + (f":{attribute}" if attribute else "")
        point = EntryPoint("GREET", value, plugins.DIRECTIVE_GROUP)
        plugins.use_registry(plugins.Registry([point]))
        sys.modules.pop("vb_test_plugin", None)

    monkeypatch.syspath_prepend(str(tmp_path))
    yield install
    plugins.use_registry(None)
    sys.modules.pop("vb_test_plugin", None)


def test_plugin_directive_lands_in_model(project: Path, plugin) -> None:
    plugin(PLUGIN)
    model = ok(project, "greet app.py\nGREET app.py extra\n")
    assert [(p.keyword, p.value, p.span.line) for p in model.plugins] == [
        ("GREET", ("app.py", project / "app.py", project.parent, project), 4),
        ("GREET", ("app.py", project / "app.py", project.parent, project), 5)]
    assert "GREET" in plugins.registry().known_keywords()


def test_plugin_diagnostics_and_path_rules(project: Path, plugin) -> None:
    plugin(PLUGIN)
    model, diagnostics = run(project, "GREET\nGREET ../../outside\nGRET x\n")
    assert model is None
    assert sorted((d.code, at(d)) for d in diagnostics) == [
        ("E022", (6, 1)), ("E026", (5, 7)), ("GRT001", (4, 1))]
    assert next(d for d in diagnostics if d.code == "E022").help == "did you mean `GREET`?"


@pytest.mark.parametrize(("source", "attribute", "message"), [
    ("raise ImportError('no such thing')\n", None,
     "failed to import: ImportError: no such thing"),
    ("keyword = 'OTHER'\ndef check(node, context): return None, []\n", None,
     "has no `keyword = 'GREET'`"),
    ("class Greet:\n    keyword = 'GREET'\n", "Greet", "or no `check(node, context)`"),
    ("keyword = 'GREET'\ndef check(node, context): raise KeyError('boom')\n", None,
     "the plugin for GREET failed: KeyError: 'boom'"),
    ("keyword = 'GREET'\ndef check(node, context): return 42\n", None,
     "the plugin for GREET failed: TypeError"),
    ("keyword = 'GREET'\ndef check(node, context): return 1, ['not a diagnostic']\n", None,
     "check() must return (value, [Diagnostic, ...])"),
])
def test_e023_broken_plugin(project: Path, plugin, source: str, attribute: str | None,
                            message: str) -> None:
    plugin(source, attribute)
    [d] = only(project, "GREET a\n", "E023")
    assert at(d) == (4, 1) and message in d.message


def test_context_names_other_files_next_to_the_vastfile(tmp_path: Path) -> None:
    folder = tmp_path / "examples" / "llm"
    context = directives.CheckContext(folder / "Vastfile", tmp_path / "examples",
                                      "examples/llm/Vastfile")
    assert context.folder == folder
    assert context.display_path(folder / "app.py") == "examples/llm/app.py"
    assert context.display_path(tmp_path / "examples/lib/req.txt") == "examples/lib/req.txt"
    lone = directives.CheckContext(folder / "Vastfile", folder, "Vastfile")
    assert lone.display_path(folder / "pkg" / "m.py") == "pkg/m.py"


def test_registry_reads_installed_entry_points_once() -> None:
    plugins.use_registry(None)
    first = plugins.registry()
    assert plugins.registry() is first
    assert not set(first.plugin_keywords()) & set(directives.BUILTIN_KEYWORDS)
    assert first.nearest_keyword("CPOY") == "COPY"


def _point(name: str, value: str, group: str) -> EntryPoint:
    return EntryPoint(name, value, group)


@pytest.mark.parametrize(("group", "name"), [
    (plugins.DIRECTIVE_GROUP, "COPY"), (plugins.DIRECTIVE_GROUP, "copy"),
    (plugins.STEP_GROUP, "collect"),
])
def test_e052_a_plugin_cannot_take_a_builtin_name(group: str, name: str) -> None:
    with pytest.raises(plugins.PluginError) as caught:
        plugins.Registry(**{"directive_points" if group == plugins.DIRECTIVE_GROUP
                            else "step_points": [_point(name, "evil:thing", group)]})
    assert caught.value.code == "E052"
    assert f"`{name.upper() if group == plugins.DIRECTIVE_GROUP else name}`" in caught.value.message
    assert "evil:thing" in caught.value.message and "vastbuild's own" in caught.value.message


def test_e052_two_plugins_cannot_take_one_name() -> None:
    with pytest.raises(plugins.PluginError) as caught:
        plugins.Registry(step_points=[_point("render", "first:kind", plugins.STEP_GROUP),
                                      _point("render", "second:kind", plugins.STEP_GROUP)])
    assert caught.value.code == "E052"
    assert "first:kind" in caught.value.message and "second:kind" in caught.value.message


def test_builtin_kinds_need_no_installation() -> None:
    """A checkout that is not installed has every built-in step kind: they are
    registered in code, not through entry points."""
    kinds = plugins.Registry().step_kinds()
    assert list(kinds) == ["collect", "config", "compress", "assemble"]


# --- values of single directives ------------------------------------------------------------

@pytest.mark.parametrize(("written", "message"), [
    ("soon", "TTL is not a duration: `soon` is not a number"),
    ("5y", "TTL is not a duration: `y` is not a unit here (use s, m, h, d)"),
    ("0", "TTL must be longer than zero"),
])
def test_e024_ttl(project: Path, written: str, message: str) -> None:
    [d] = only(project, f"TTL {written}\n", "E024")
    assert at(d) == (4, 5) and d.message == message


@pytest.mark.parametrize(("written", "message"), [
    ("big", "STORAGE is not a size: `big` is not a number"),
    ("12XB", "STORAGE is not a size: `XB` is not a unit here (use MB, GB, TB)"),
    ("0", "STORAGE must be more than zero"),
])
def test_e025_storage(project: Path, written: str, message: str) -> None:
    [d] = only(project, "", "E025", base=f"DEPLOYMENT svc\nFROM img STORAGE {written}\n"
                                        "CODE app.py\n")
    assert at(d) == (2, 18) and d.message == message


def test_e026_paths_that_leave_the_workspace(project: Path, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text("secret")
    (project / "sneaky").symlink_to(outside)
    found = only(project, f"COPY ../../{outside.name} /a\nCOPY sneaky /b\nPIP -r /etc/hostname\n",
                 "E026")
    assert [at(d) for d in found] == [(4, 6), (5, 6), (6, 8)]
    assert found[1].message.startswith("`sneaky` leaves the workspace")
    assert str(outside) in found[1].message
    assert "vastbuild.toml" in (found[0].help or "")


def test_lone_vastfile_workspace_is_its_folder(tmp_path: Path) -> None:
    (tmp_path / "shared.txt").write_text("x")
    folder = tmp_path / "lone"
    folder.mkdir()
    (folder / "app.py").write_text(APP)
    [d] = only(folder, "COPY ../shared.txt /x\n", "E026")
    assert at(d) == (4, 6)


def test_e027_missing_paths(project: Path) -> None:
    found = only(project, "COPY nothing.txt /a\nPIP -r nope.txt\n", "E027",
                 base="DEPLOYMENT svc\nFROM img\nCODE gone.py\n")
    assert [at(d) for d in found] == [(3, 6), (4, 6), (5, 8)]
    assert found[0].message.startswith("`gone.py` does not exist")


def test_e028_code_kind(project: Path) -> None:
    (project / "notes.txt").write_text("")
    (project / "folder").mkdir()
    [d] = only(project, "", "E028", base="FROM img\nCODE notes.txt\n")
    assert at(d) == (2, 6) and d.message == "`notes.txt` is not a Python module"
    [d] = only(project, "", "E028", base="FROM img\nCODE folder\n")
    assert d.message == "`folder` is a folder without `__init__.py`"


def test_e029_python_syntax_error_points_into_code(project: Path) -> None:
    (project / "app.py").write_text("import os\n\ndef broken(:\n    pass\n")
    [d] = only(project, "", "E029")
    assert d.span is not None and d.span.path.endswith("svc/app.py")
    assert at(d) == (3, 12) and d.message.startswith("Python syntax error in")


@pytest.mark.parametrize(("source", "message"), [
    (b"x = 1\x00\n", "null bytes"),
    (b"x = " + b"-" * 100_000 + b"1\n", "is nested too deeply for Python to compile"),
])
def test_e029_source_python_cannot_read(project: Path, source: bytes, message: str) -> None:
    (project / "app.py").write_bytes(source)
    [d] = only(project, "", "E029")
    assert message in d.message and at(d) == (1, 1)


def test_e029_in_package_module(project: Path) -> None:
    package = project / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from .model import app\n")
    (package / "model.py").write_text("x = = 1\n")
    [d] = only(project, "", "E029", base="FROM img\nCODE pkg\n")
    assert d.span is not None and d.span.path.endswith("svc/pkg/model.py") and at(d)[0] == 1


def test_e033_code_that_is_a_named_pipe_is_not_read(project: Path) -> None:
    """Reading a pipe nobody writes would wait forever; the build refuses one anyway."""
    os.mkfifo(project / "pipe.py")
    [d] = only(project, "", "E033", base="DEPLOYMENT svc\nFROM img\nCODE pipe.py\n")
    assert d.span is not None and d.span.path.endswith("pipe.py")
    assert d.message.endswith("pipe.py is not a regular file")
    package = project / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")  # no Deployment: the other modules are read
    os.mkfifo(package / "model.py")
    [d] = only(project, "", "E033", base="DEPLOYMENT svc\nFROM img\nCODE pkg\n")
    assert d.message.endswith("pkg/model.py is not a regular file")


# --- CODE and DEPLOYMENT ---------------------------------------------------------------------

def test_e030_code_names_a_different_deployment(project: Path) -> None:
    (project / "app.py").write_text(APP.replace('"svc"', '"other"'))
    [d] = only(project, "", "E030")
    assert at(d) == (1, 12)
    assert d.message == "CODE names its Deployment `other`, but DEPLOYMENT is `svc`"
    assert d.help is not None and d.help.startswith(
        'change DEPLOYMENT to `other`, or write `Deployment(name="svc")` in ')
    assert d.notes[0].span.path.endswith("app.py") and d.notes[0].span.line == 3


def test_e030_unnamed_deployment_while_deployment_set(project: Path) -> None:
    (project / "app.py").write_text(APP.replace('name="svc"', ""))
    [d] = only(project, "", "E030")
    assert at(d) == (1, 12) and "has no name, but DEPLOYMENT is `svc`" in d.message
    assert "or remove DEPLOYMENT (the name is then `app`)" in (d.help or "")


def test_e030_named_deployment_without_deployment_directive(project: Path) -> None:
    [d] = only(project, "", "E030", base="FROM img\nCODE app.py\n")
    assert at(d) == (2, 6) and d.help == "add the line `DEPLOYMENT svc`"


def test_name_rule_accepts_aliases_attributes_and_any_matching_call(project: Path) -> None:
    (project / "app.py").write_text(
        "import vastai.serverless.remote as remote\n"
        "from vastai.serverless.remote import Deployment as D\n"
        "a = D(name='other')\nb = remote.Deployment(tag='x', name='svc')\n")
    ok(project)


def test_package_name_found_in_submodule(project: Path) -> None:
    package = project / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from .sub.m import app\n")
    (package / "sub" / "m.py").write_text(APP.replace('"svc"', '"other"'))
    [d] = only(project, "", "E030", base="DEPLOYMENT svc\nFROM img\nCODE pkg\n")
    assert d.notes[0].span.path.endswith("pkg/sub/m.py")


def test_e031_positional_name(project: Path) -> None:
    (project / "app.py").write_text(APP.replace('name="svc"', '"svc"'))
    [d] = only(project, "", "E031")
    assert d.span is not None and d.span.path.endswith("app.py") and at(d) == (3, 18)
    assert d.help == 'write `Deployment(name="svc")`'


def test_w002_no_deployment_call(project: Path) -> None:
    (project / "app.py").write_text("from shared import app\n")
    model, diagnostics = run(project, "")
    assert model is not None and [(d.code, at(d)) for d in diagnostics] == [("W002", (3, 6))]


def test_w003_name_not_a_constant(project: Path) -> None:
    (project / "app.py").write_text(APP.replace('name="svc"', "name=os.environ['N']"))
    model, diagnostics = run(project, "")
    assert model is not None and [(d.code, at(d)) for d in diagnostics] == [("W003", (3, 23))]


# --- PIP, ENV, RUN, COPY, VENV, PORT --------------------------------------------------------

def test_e032_requirement_options_point_into_the_file(project: Path) -> None:
    (project / "req.txt").write_text("ok==1\n-e .\nfoo==2 --hash=sha256:00\n")
    found = only(project, "PIP -r req.txt\n", "E032")
    assert [(d.span.path.endswith("svc/req.txt"), at(d)) for d in found] == [
        (True, (2, 1)), (True, (3, 8))]
    assert found[0].message == "`-e`: options in a requirements file are not passed on"
    assert found[0].notes[0].span.line == 4


def test_e033_wrong_kind_or_unreadable(project: Path) -> None:
    (project / "reqs").mkdir()
    (project / "latin1.txt").write_bytes(b"ok==1\ncaf\xe9\n")
    found = only(project, "PIP -r reqs\nPIP -r latin1.txt\n", "E033")
    assert [(Path(d.span.path).name, at(d), d.message.split(" in ")[0]) for d in found] == [
        ("latin1.txt", (2, 4), "invalid UTF-8 byte 0xE9"), ("Vastfile", (4, 8),
                                                             "`reqs` is not a file")]
    assert found[0].notes[0].span.line == 5  # the PIP -r that read it


def test_e033_a_requirements_file_with_a_control_character(project: Path) -> None:
    (project / "req.txt").write_bytes(b"torch\nnumpy\x00==1\n")
    [d] = only(project, "PIP -r req.txt\n", "E033")
    assert d.span.path.endswith("req.txt") and at(d) == (2, 6)
    assert d.message.startswith("control character U+0000")


def test_a_byte_order_mark_is_not_part_of_the_first_requirement(project: Path) -> None:
    (project / "req.txt").write_bytes(b"\xef\xbb\xbftorch\r\nnumpy\n")
    assert ok(project, "PIP -r req.txt\n").pip_installs == ("torch", "numpy")


def test_e034_env_key(project: Path) -> None:
    [d] = only(project, "ENV GOOD=1 1BAD=2\n", "E034")
    assert at(d) == (4, 12) and d.message == "`1BAD` is not an environment variable name"


@pytest.mark.parametrize(("written", "message"), [
    ("70000", "port 70000 is out of range"), ("0", "port 0 is out of range"),
    ("80/sctp", "`80/sctp` is not a port"), ("http", "`http` is not a port"),
])
def test_e035_port(project: Path, written: str, message: str) -> None:
    [d] = only(project, f"PORT 8080 {written}\n", "E035")
    assert at(d) == (4, 11) and d.message == message


@pytest.mark.parametrize(("dst", "message"), [
    ("../up", "COPY's destination `../up` has a `..` component"),
    ("/app/../etc", "COPY's destination `/app/../etc` has a `..` component"),
    ("config.json", "COPY onto `config.json` would overwrite the `config.json` vastbuild "
                    "writes for the worker"),
    ("./deployment/x.py", "COPY onto `./deployment/x.py` would overwrite the `deployment` "
                          "vastbuild writes for the worker"),
    ('""', "COPY's destination is empty"),
])
def test_e036_copy_destination(project: Path, dst: str, message: str) -> None:
    [d] = only(project, f"COPY app.py {dst}\n", "E036")
    assert at(d) == (4, 13) and d.message == message


def test_e037_two_copies_onto_one_destination(project: Path) -> None:
    [d] = only(project, "COPY app.py /app/x\nCOPY Vastfile /app/x/\n", "E037")
    assert at(d) == (5, 15) and d.message == "two COPYs onto `/app/x/`"
    assert (d.notes[0].span.line, d.notes[0].span.col) == (4, 13)


def test_e038_venv_and_system_python(project: Path) -> None:
    [d] = only(project, "SYSTEM_PYTHON\nVENV /venv\n", "E038")
    assert at(d) == (5, 1) and d.notes[0].span.line == 4
    assert d.notes[0].message == "SYSTEM_PYTHON here"


def test_e049_run_nothing(project: Path) -> None:
    [d] = only(project, 'RUN [""]\n', "E049")
    assert at(d) == (4, 5) and d.message == "RUN's exec form names no program"


def test_e050_empty_values(project: Path) -> None:
    found = only(project, "TAG ''\nVENV \"\"\n", "E050", base='DEPLOYMENT ""\nFROM img\n'
                                                             "CODE app.py\n")
    assert [(at(d), d.message) for d in found] == [
        ((1, 12), "DEPLOYMENT has an empty value"), ((4, 5), "TAG has an empty value"),
        ((5, 6), "VENV has an empty value")]


def test_e050_empty_image_and_code(project: Path) -> None:
    found = only(project, "", "E050", base='FROM ""\nCODE ""\n')
    assert [(at(d), d.message) for d in found] == [
        ((1, 6), "FROM has an empty value"), ((2, 6), "the path is empty")]


def test_e051_venv_with_white_space(project: Path) -> None:
    [d] = only(project, "VENV '/my venv'\n", "E051")
    assert at(d) == (4, 6)


# --- AUTOSCALE ------------------------------------------------------------------------------

def test_e039_unknown_autoscale_key(project: Path) -> None:
    [d] = only(project, "AUTOSCALE max_workers=3 cold_wrkers=1\n", "E039")
    assert at(d) == (4, 25) and d.message == "unknown AUTOSCALE key `cold_wrkers`"
    assert d.help == "did you mean `cold_workers`?"


@pytest.mark.parametrize(("assignment", "message"), [
    ("cold_workers=2.5", "cold_workers is a whole number, not `2.5`"),
    ("max_workers=many", "max_workers is a whole number, not `many`"),
    ("min_load=-1", "min_load cannot be negative"),
    ("cold_mult=x", "cold_mult is a number, not `x`"),
    ("target_util=0", "target_util must be above 0 and at most 1, not 0"),
    ("target_util=1.5", "target_util must be above 0 and at most 1, not 1.5"),
    ("max_queue_time=soon", "max_queue_time is a number of seconds (or `30s`, `5m`, `1h`), "
                            "not `soon`"),
    ("inactivity_timeout=-5", "inactivity_timeout cannot be negative"),
])
def test_e040_autoscale_values(project: Path, assignment: str, message: str) -> None:
    [d] = only(project, f"AUTOSCALE {assignment}\n", "E040")
    assert at(d) == (4, 11 + assignment.index("=") + 1) and d.message == message


def test_e041_cold_workers_above_max_workers(project: Path) -> None:
    [d] = only(project, "AUTOSCALE cold_workers=5 max_workers=8\nAUTOSCALE max_workers=2\n",
               "E041")
    assert at(d) == (4, 11) and d.message == "cold_workers=5 is more than max_workers=2"
    assert (d.notes[0].span.line, d.notes[0].span.col) == (5, 11)


# --- REQUIRE --------------------------------------------------------------------------------

def test_e042_unknown_column(project: Path) -> None:
    found = only(project, "REQUIRE gpu_rams >= 4 AND GPU_RAM >= 4 AND zzz == 1\n", "E042")
    assert [(at(d), d.help) for d in found] == [
        ((4, 9), "did you mean `gpu_ram`?"), ((4, 27), "did you mean `gpu_ram`?"),
        ((4, 44), "the columns are listed in the language reference (REQUIRE)")]
    assert found[0].message == "unknown column `gpu_rams`"


@pytest.mark.parametrize(("term", "message", "col"), [
    ("gpu_name >= RTX_4090", "`>=` does not apply to `gpu_name`, a text column", 18),
    ("verified < true", "`<` does not apply to `verified`, a bool column", 18),
    ("rentable IN [true]", "`IN` does not apply to `rentable`, a bool column", 18),
])
def test_e043_operator_for_column_type(project: Path, term: str, message: str,
                                       col: int) -> None:
    [d] = only(project, f"REQUIRE {term}\n", "E043")
    assert at(d) == (4, col)
    assert d.message == message


@pytest.mark.parametrize(("term", "message"), [
    ("verified == yes", "`verified` is true or false, not `yes`"),
    ("gpu_ram >= lots", "`lots` is not a number"),
    ("num_gpus == true", "`true` is not a number"),
    ("driver_vers >= 535.x", "`535.x` is not a version"),
])
def test_e044_value_type(project: Path, term: str, message: str) -> None:
    [d] = only(project, f"REQUIRE {term}\n", "E044")
    assert d.span is not None and d.span.col == 9 + term.rindex(" ") + 1
    assert d.message == message


def test_e045_lists_and_in(project: Path) -> None:
    found = only(project, "REQUIRE num_gpus IN 3 AND num_gpus == [1, 2]\n"
                          "REQUIRE gpu_name NOTIN []\n", "E045")
    assert [(at(d), d.message) for d in found] == [
        ((4, 21), "`IN` needs a list"), ((4, 39), "a list needs IN or NOTIN, not `==`"),
        ((5, 24), "the list is empty")]
    assert found[0].help == "write `num_gpus IN [3]`"


@pytest.mark.parametrize(("term", "message"), [
    ("dph_total < 2GB", "`dph_total` takes a plain number, without a unit"),
    ("gpu_ram >= 48GiB", "`GiB` is not a unit here (use MB, GB, TB)"),
    ("duration >= 3w", "`w` is not a unit here (use d, h)"),
])
def test_e046_units(project: Path, term: str, message: str) -> None:
    [d] = only(project, f"REQUIRE {term}\n", "E046")
    assert d.span is not None and d.span.col == 9 + term.rindex(" ") + 1
    assert d.message == message


def test_e047_same_operator_twice_points_at_both_lines(project: Path) -> None:
    [d] = only(project, "REQUIRE gpu_ram >= 24\nREQUIRE cpu_cores > 4, gpu_ram_GB >= 48\n",
               "E047")
    assert at(d) == (5, 24) and d.message == "`gpu_ram` has the operator `>=` twice"
    assert (d.notes[0].span.line, d.notes[0].span.col) == (4, 9)
    assert d.notes[0].message == "first set here: `gpu_ram >= 24`"


@pytest.mark.parametrize(("first", "second"), [
    ("num_gpus >= 4", "num_gpus < 2"),
    ("num_gpus > 4", "num_gpus <= 4"),
    ("num_gpus >= 4", "num_gpus < 4"),
    ("num_gpus == 1", "num_gpus != 1"),
    ("num_gpus == 1", "num_gpus IN [2, 4]"),
    ("num_gpus == 8", "num_gpus >= 16"),
    ("gpu_name IN [RTX_4090]", "gpu_name NOTIN [RTX_4090, RTX_5090]"),
    ("gpu_name IN [RTX_4090]", "gpu_name == L40S"),
    ("gpu_ram >= 48", "gpu_ram < 48000MB"),
    ("driver_vers >= 535.2", "driver_vers < 535.1.9"),
    ("verified == true", "verified != true"),
])
def test_e048_contradictions_point_at_both_lines(project: Path, first: str, second: str) -> None:
    [d] = only(project, f"REQUIRE {first}\nREQUIRE {second}\n", "E048")
    assert at(d) == (5, 9)
    assert d.message == f"`{second}` contradicts `{first}`: no offer matches both"
    assert (d.notes[0].span.line, d.notes[0].span.col) == (4, 9)


@pytest.mark.parametrize("terms", [
    "num_gpus >= 4 AND num_gpus <= 4", "num_gpus > 1 AND num_gpus != 2",
    "gpu_name IN [RTX_4090, L40S] AND gpu_name NOTIN [L40S]", "num_gpus IN [1, 8] AND num_gpus > 4",
    "gpu_ram > 24 AND gpu_ram < 25",
])
def test_satisfiable_combinations_are_fine(project: Path, terms: str) -> None:
    ok(project, f"REQUIRE {terms}\n")


def test_w001_unknown_gpu_name_suggests(project: Path) -> None:
    model, diagnostics = run(project, "REQUIRE gpu_name IN [RTX4090, 'RTX 409']\n")
    assert model is not None
    assert [(d.code, at(d), d.help) for d in diagnostics] == [
        ("W001", (4, 22), "did you mean `RTX_4090`?"),
        ("W001", (4, 31), "did you mean `RTX 4090`?")]
    assert diagnostics[0].message == "`RTX4090` is not a known GPU name"


# --- every mistake of a file, and the codes' documentation -----------------------------------

def test_all_errors_of_a_file_in_one_run(project: Path) -> None:
    model, diagnostics = run(project, """\
        TTL forever
        PORT 99999
        ENV 9X=1
        REQUIRE gpu_rm >= 4
        AUTOSCALE cold_workers=-1
        COPY missing /x
        """)
    assert model is None
    assert sorted((d.code, at(d)) for d in diagnostics) == [
        ("E024", (4, 5)), ("E027", (9, 6)), ("E034", (6, 5)), ("E035", (5, 6)),
        ("E040", (8, 24)), ("E042", (7, 9))]


def _codes_in_source() -> set[str]:
    found: set[str] = set()
    for path in (REPO / "vastbuild").rglob("*.py"):
        found.update(re.findall(r"""["']([EW]\d{3})["']""", path.read_text("utf-8")))
    return found


def test_every_code_is_documented() -> None:
    reference = (REPO / "docs" / "vastfile.md").read_text("utf-8")
    documented = set(re.findall(r"^#### ([EW]\d{3})\b", reference, re.MULTILINE))
    used = _codes_in_source()
    assert set(SYNTAX_CODES) | set(CHECK_CODES) <= documented
    assert used <= documented, sorted(used - documented)
    assert used <= set(SYNTAX_CODES) | set(CHECK_CODES), sorted(
        used - set(SYNTAX_CODES) - set(CHECK_CODES))


WORDS = st.one_of(
    st.sampled_from(["app.py", "..", "../..", "/", "-r", "[", "]", "[RTX_4090]", "==", ">=",
                     "IN", "not in", "AND", ",", "0", "-1", "1.5TB", "3d", "x=1", "=", "true",
                     '"a b"', "'", "#", "\\", "gpu_ram", "gpu_name", "cold_workers=9",
                     "max_workers=1", "8080/udp", "Vastfile", "svc"]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=6))
LINES = st.lists(st.tuples(
    st.sampled_from(["DEPLOYMENT", "TAG", "VERSION", "TTL", "FROM", "CODE", "PIP", "APT", "ENV",
                     "RUN", "COPY", "VENV", "SYSTEM_PYTHON", "PORT", "REQUIRE", "AUTOSCALE",
                     "FORM", "from"]),
    st.lists(WORDS, max_size=5)), max_size=8)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=LINES)
def test_any_input_gives_diagnostics_never_an_exception(project: Path, lines) -> None:
    source = "".join(" ".join([keyword, *words]) + "\n" for keyword, words in lines)
    (project / "Vastfile").write_bytes(source.encode("utf-8", "surrogatepass"))
    report = api.check(project / "Vastfile")
    model, diagnostics = report.model, report.diagnostics
    assert (model is None) == has_errors(diagnostics)
    assert all(d.span is not None for d in diagnostics)
