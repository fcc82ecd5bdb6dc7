"""The shape of the code, checked: layers, names, imports on the fast paths, packaging.

`lint-imports` (the contracts in pyproject.toml) and `mypy --strict` run in
`make test`; these tests check what those tools cannot: that every module is
placed in a layer, that the warm paths import nothing heavy, and that vastbuild
runs from a checkout that is not installed and from a wheel outside the checkout.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pkgutil
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

import pytest
from build_helpers import OLD, age, write_tree

import vastbuild
from vastbuild import directives

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "vastbuild"
#: what a warm `hash` or a build with nothing to do must not import
HEAVY = ("networkx", "lark", "requests", "rich", "zstandard", "vastbuild.syntax",
         "vastbuild.check", "vastbuild.graph", "vastbuild.plan", "vastbuild.execute")


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def _top_level_modules() -> set[str]:
    return {f"vastbuild.{m.name}" for m in pkgutil.iter_modules(vastbuild.__path__)
            if m.name != "__main__"}


def test_every_module_has_a_layer() -> None:
    [layers] = [c for c in _contracts() if c["type"] == "layers"]
    assigned = [name.strip() for layer in layers["layers"]  # type: ignore[attr-defined]
                for name in str(layer).split("|")]
    assert sorted(assigned) == sorted(set(assigned)), "a module is in two layers"
    assert set(assigned) == _top_level_modules()


def test_the_command_line_may_import_only_the_api() -> None:
    [forbidden] = [c for c in _contracts() if c["type"] == "forbidden"]
    assert forbidden["source_modules"] == ["vastbuild.cli"]
    assert set(forbidden["forbidden_modules"]) == (  # type: ignore[arg-type]
        _top_level_modules() - {"vastbuild.api", "vastbuild.cli"})
    for path in (PACKAGE / "cli").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] if node.module != "vastbuild" else [
                    f"vastbuild.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name.startswith("vastbuild"):
                    assert name.startswith(("vastbuild.api", "vastbuild.cli")), (path, name)


def test_no_two_classes_share_a_name() -> None:
    names = Counter(node.name for path in PACKAGE.rglob("*.py")
                    for node in ast.walk(ast.parse(path.read_text("utf-8")))
                    if isinstance(node, ast.ClassDef))
    assert [name for name, count in names.items() if count > 1] == []


def test_the_language_reference_lists_the_directive_table() -> None:
    reference = (ROOT / "docs" / "vastfile.md").read_text("utf-8")
    assert directives.reference_table() in reference


def test_the_readme_layout_names_every_module() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    layout = readme[readme.index("## Layout"):]
    for path in PACKAGE.rglob("*.py"):
        name = path.name if path.name != "__init__.py" else path.parent.name + "/"
        assert name in layout, f"README's layout does not mention {path.relative_to(ROOT)}"


# -- the warm paths ------------------------------------------------------------------------

PROBE = """
import json, sys
from vastbuild.cli import main
sys.argv = ["vastbuild", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    status = exit.code
print(json.dumps({"status": status, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _probe(cwd: Path, *args: str) -> tuple[int, set[str], str]:
    """Run the CLI; its exit status, every module it imported, and its stdout."""
    run = subprocess.run([sys.executable, "-c", PROBE, "--color", "never", *args], cwd=cwd,
                         capture_output=True, text=True, timeout=120)
    report = json.loads(run.stderr.strip().splitlines()[-1])
    return report["status"], set(report["modules"]), run.stdout


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY)


def _old_tree(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    write_tree(project, {"Vastfile": "FROM vastai/base\nCODE app.py\nCOPY data /app/data\n",
                         "app.py": "print('hi')\n", "data/a.txt": "a\n",
                         "data/b/c.bin": b"\0" * 99})
    return project


def _age_everything(*roots: Path) -> None:
    for root in roots:
        age(root)
        os.utime(root, (OLD, OLD))


def test_a_warm_hash_imports_no_parser_no_graph_no_http(tmp_path: Path) -> None:
    project, cache = _old_tree(tmp_path), tmp_path / "cache"
    status, cold, out = _probe(tmp_path, "--cache-dir", str(cache), "hash", "project")
    assert status == 0 and "networkx" in cold and "vastbuild.syntax" in cold
    _age_everything(project)
    status, slow, again = _probe(tmp_path, "--cache-dir", str(cache), "hash", "project")
    assert status == 0 and again == out  # files aged: this run records the result
    status, warm, third = _probe(tmp_path, "--cache-dir", str(cache), "hash", "project")
    assert status == 0 and third == out
    assert _heavy(warm) == []
    # a file's new content is hashed from the record's state, still without the parser
    (project / "data" / "a.txt").write_text("changed\n")
    status, patched, fourth = _probe(tmp_path, "--cache-dir", str(cache), "hash", "project")
    assert status == 0 and fourth != out and "vastbuild.syntax" not in patched
    # a new file is the full hash's to see
    (project / "data" / "new.txt").write_text("new\n")
    status, changed, fifth = _probe(tmp_path, "--cache-dir", str(cache), "hash", "project")
    assert status == 0 and fifth not in (out, fourth) and "vastbuild.syntax" in changed


def test_a_build_with_nothing_to_do_imports_nothing_heavy_and_writes_nothing(
        tmp_path: Path) -> None:
    project, cache, out = _old_tree(tmp_path), tmp_path / "cache", tmp_path / "out"
    args = ("--cache-dir", str(cache), "build", "project", "-o", str(out))
    assert _probe(tmp_path, *args)[0] == 0
    _age_everything(project, out)
    assert _probe(tmp_path, *args)[0] == 0  # nothing to do, and now recorded
    before = {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.iterdir()}
    status, modules, stdout = _probe(tmp_path, *args)
    assert status == 0 and "0 steps run" in stdout
    assert _heavy(modules) == []
    assert {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.iterdir()} == before
    for artifact in out.glob("*.tar.gz"):
        artifact.write_bytes(b"tampered")
    status, modules, stdout = _probe(tmp_path, *args)
    assert status == 0 and "vastbuild.plan" in modules  # an output changed: planned again
    assert all(p.read_bytes() != b"tampered" for p in out.glob("*.tar.gz"))


def test_a_file_changed_just_before_a_run_is_recorded_by_its_content(tmp_path: Path) -> None:
    """A file modified within the racy window is recorded with its digest: the next
    run rereads it (the stat alone cannot vouch for it) and answers without planning."""
    project, cache = _old_tree(tmp_path), tmp_path / "cache"
    _age_everything(project)
    (project / "data" / "a.txt").write_text("just now\n")  # racy for the next two runs
    status, _, out = _probe(tmp_path, "--cache-dir", str(cache), "hash", "project")
    status, warm, again = _probe(tmp_path, "--cache-dir", str(cache), "hash", "project")
    assert status == 0 and again == out and _heavy(warm) == []


def test_a_changed_requirements_file_is_seen_by_a_warm_hash(tmp_path: Path) -> None:
    project, cache = tmp_path / "project", tmp_path / "cache"
    write_tree(project, {"Vastfile": "FROM vastai/base\nCODE app.py\nPIP -r reqs/base.txt\n",
                         "app.py": "print('hi')\n", "reqs/base.txt": "requests==2.31.0\n"})
    _age_everything(project)
    _probe(tmp_path, "--cache-dir", str(cache), "hash", "project")
    status, warm, out = _probe(tmp_path, "--cache-dir", str(cache), "hash", "project")
    assert status == 0 and _heavy(warm) == []
    (project / "reqs" / "base.txt").write_text("requests==2.32.3\n")
    status, _, changed = _probe(tmp_path, "--cache-dir", str(cache), "hash", "project")
    assert status == 0 and changed != out


def test_a_record_names_the_inputs_that_changed(tmp_path: Path) -> None:
    """A racy input is compared by what the run saw of it, even when its stat holds."""
    from vastbuild import uptodate
    from vastbuild.stats import CONTENT, LISTING, stat_key

    project = _old_tree(tmp_path)
    vastfile = str(project / "Vastfile")
    app, data = project / "app.py", project / "data"
    started = max(app.stat().st_mtime_ns, data.stat().st_mtime_ns) + 1  # both racy then
    right = hashlib.sha256(app.read_bytes()).hexdigest()
    inputs = [(str(app), stat_key(app.stat()), CONTENT + right),
              (str(data), stat_key(data.stat()), LISTING + "0" * 64)]
    record = uptodate.NewRecord("hash", "env", {"answer": 1})
    assert uptodate.save(tmp_path / "cache", vastfile, [record], root=str(project),
                         started_ns=started, inputs=inputs)
    found = uptodate.lookup(tmp_path / "cache", vastfile, "hash", "env")
    assert found is not None and found.payload == {"answer": 1}
    assert found.changed == (str(data),)  # its listing is not the one recorded
    # and a racy input with nothing to compare it by makes the record unsafe
    assert not uptodate.save(tmp_path / "cache", vastfile, [record], root=str(project),
                             started_ns=started, inputs=[(str(app), stat_key(app.stat()), "")])


@pytest.mark.parametrize("command", ["hash", "build", "plan", "deploy"])
def test_every_command_checks_the_api_url_the_same_way(tmp_path: Path, command: str) -> None:
    run = subprocess.run([sys.executable, "-m", "vastbuild", command, "--api-url",
                          "ftp://u:p@x", str(tmp_path)], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "VAST_API_KEY": "k3y-never-used"})
    assert run.returncode == 2, run.stderr
    assert "--api-url" in run.stderr and "u:p" not in run.stderr + run.stdout


# -- running from a checkout and from a wheel ------------------------------------------------

@pytest.fixture(scope="module")
def dependencies_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding vastbuild's dependencies (links into this venv's site-packages)
    but neither vastbuild nor any plugin: what `pip install` of the dependencies gives."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    folder = tmp_path_factory.mktemp("deps")
    for entry in site.iterdir():
        lowered = entry.name.lower()
        if lowered.startswith(("vastbuild", "__editable__", "_editable", "_vastbuild")) \
                or entry.suffix == ".pth":
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


def _fresh_venv(where: Path, dependencies: Path) -> Path:
    """A new venv whose only packages are the dependencies; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True,
                   timeout=120)
    python = where / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                              "'purelib'))"], capture_output=True, text=True, check=True)
    Path(purelib.stdout.strip(), "dependencies.pth").write_text(f"{dependencies}\n")
    return python


def _checkout_copy(target: Path) -> Path:
    """The files of the checkout, as a fresh clone has them."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_a_checkout_builds_without_being_installed(tmp_path: Path,
                                                  dependencies_only: Path) -> None:
    python = _fresh_venv(tmp_path / "venv", dependencies_only)
    clone = _checkout_copy(tmp_path / "clone")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["VASTBUILD_CACHE_DIR"] = str(tmp_path / "cache")
    run = subprocess.run([str(python), "-m", "vastbuild", "build", "examples/llm", "-o", "out/"],
                         cwd=clone, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (clone / "out").iterdir()) == [
        "qwen-chat.deployment.json", "qwen-chat.tar.gz", "qwen-chat.tar.zst"]


def test_the_wheel_carries_the_grammar_and_parses_outside_the_checkout(
        tmp_path: Path, dependencies_only: Path) -> None:
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(wheels), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    [wheel] = wheels.glob("vastbuild-*.whl")
    python = _fresh_venv(tmp_path / "venv", dependencies_only)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                              "'purelib'))"], capture_output=True, text=True, check=True)
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                                "--target", purelib.stdout.strip(), str(wheel)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    probe = ("import vastbuild, vastbuild.syntax as s, pathlib, sys\n"
             "packaged = pathlib.Path(vastbuild.__file__).parent / s.GRAMMAR\n"
             "tree, problems = s.parse(sys.stdin.read(), 'Vastfile')\n"
             "print(vastbuild.__file__, packaged.is_file(), len(tree.directives), problems)")
    source = (ROOT / "Vastfile.example").read_text("utf-8")
    run = subprocess.run([str(python), "-c", probe], input=source, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    where, packaged, count, problems = run.stdout.split(maxsplit=3)
    assert where.startswith(str(tmp_path / "venv")) and packaged == "True"
    assert int(count) > 10 and problems.strip() == "[]"
