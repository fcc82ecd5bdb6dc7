"""One member per path: clashing sources stop the build, coinciding folders travel once,
and Python's bytecode never travels."""

from __future__ import annotations

import subprocess
import tarfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from build_helpers import vastbuild, write_tree

from vastbuild.api import build, hash_targets, load
from vastbuild.archive import ArchivePaths, Origin, normal_arcname
from vastbuild.errors import VastbuildError

APP = "from vastai.serverless.remote import Deployment\n\napp = Deployment(name='demo')\n"
HEAD = "DEPLOYMENT demo\nFROM vastai/pytorch\nCODE {code}\n"  # directives after it: line 4 on


def workspace(root: Path, files: dict[str, str], lines: list[str], code: str = "app.py") -> Path:
    write_tree(root, {"vastbuild.toml": "", "app.py": APP, **files,
                      "Vastfile": HEAD.format(code=code) + "".join(f"{x}\n" for x in lines)})
    return root


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it, with a cache beside ``root``."""
    return vastbuild("--cache-dir", str(root.parent / "cache"), *args, cwd=root,
                     console_script=True)


def tar_names(path: Path) -> list[str]:
    with tarfile.open(path, "r:gz") as tar:
        return [m.name for m in tar.getmembers()]


@dataclass(frozen=True)
class Clash:
    files: dict[str, str]
    lines: list[str]
    #: what the message must hold: the path and where both sources are
    expected: tuple[str, ...]
    code: str = "app.py"
    plugin: bool = False


CLASHES = {
    "overlapping copies": Clash(
        {"lib/common/timing.py": "t", "lib/top.py": "x"},
        ["COPY lib /app/lib", "COPY lib/common /app/lib/common"],
        ("two members at /app/lib/common/timing.py", "COPY lib /app/lib at Vastfile:4:1",
         "COPY lib/common /app/lib/common at Vastfile:5:1", ".vastignore")),
    "a file and a folder at one path": Clash(
        {"site/lib": "a file named lib", "lib/m.py": "m"},
        ["COPY site /app", "COPY lib /app/lib"],
        ("two members at /app/lib", "a file from COPY site /app at Vastfile:4:1",
         "a folder from COPY lib /app/lib at Vastfile:5:1")),
    "a copy below a copied file": Clash(
        {"a.txt": "a", "b.txt": "b"},
        ["COPY a.txt /app/x", "COPY b.txt /app/x/y"],
        ("/app/x/y would be extracted below /app/x, which is a file",
         "COPY a.txt /app/x at Vastfile:4:1", "COPY b.txt /app/x/y at Vastfile:5:1")),
    "a copied file over a folder of an earlier copy": Clash(
        {"lib/x/inner.py": "i", "b.txt": "b"},
        ["COPY lib /app/lib", "COPY b.txt /app/lib/x"],
        ("two members at /app/lib/x", "Vastfile:4:1", "Vastfile:5:1")),
    "a folder onto the working folder bringing deployment.py": Clash(
        {"extras/deployment.py": "shadow", "extras/other.py": "o"},
        ["COPY extras ."],
        ("./deployment.py is reserved for CODE app.py at Vastfile:3:6",
         "COPY extras . at Vastfile:4:1", "extras/deployment.py")),
    "a folder onto the working folder reaching into the package": Clash(
        {"svc/__init__.py": APP, "extras/deployment/sub.py": "s"},
        ["COPY extras ./"],
        ("./deployment is reserved for CODE svc at Vastfile:3:6",
         "a folder from COPY extras ./ at Vastfile:4:1"), code="svc"),
    "a folder onto the working folder bringing config.json": Clash(
        {"extras/config.json": "{}"},
        ["COPY extras ."],
        ("./config.json is reserved for the config.json vastbuild writes",
         "COPY extras . at Vastfile:4:1")),
    "a plugin file onto a copied file": Clash(
        {"conf/settings.ini": "[s]\n", "settings.ini.in": "[s]\nx = 1\n"},
        ["COPY conf /app", "TEMPLATE settings.ini.in /app/settings.ini"],
        ("two members at /app/settings.ini", "COPY conf /app at Vastfile:4:1",
         "the `template` plugin"), plugin=True),
    "a plugin file onto deployment.py": Clash(
        {"settings.ini.in": "x = 1\n"},
        ["TEMPLATE settings.ini.in deployment.py"],
        ("./deployment.py is reserved for CODE app.py at Vastfile:3:6", "`template` plugin"),
        plugin=True),
    "two plugin files at one path": Clash(
        {"a.in": "a\n", "b.in": "b\n"},
        ["TEMPLATE a.in /app/x.ini", "TEMPLATE b.in /app/./x.ini"],
        ("two members at /app/x.ini", "contribution 1 of 2", "contribution 2 of 2"),
        plugin=True),
}


@pytest.fixture(params=list(CLASHES), ids=list(CLASHES))
def clash(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Clash]:
    case = CLASHES[request.param]
    if case.plugin:
        pytest.importorskip("vastbuild_template", reason="the example plugin is not installed")
    return workspace(tmp_path / "ws", case.files, case.lines, case.code), case


def test_a_clash_stops_the_cli_with_both_sources(clash: tuple[Path, Clash]) -> None:
    root, case = clash
    result = cli(root, "build", "-o", "out")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    error = result.stderr[result.stderr.index("error: "):]
    for fragment in case.expected:
        assert fragment in error, error
    assert "= help: " in error
    assert not list((root / "out").glob("*.tar.*")), "nothing may be written"


def test_a_clash_raises_from_the_library(clash: tuple[Path, Clash], tmp_path: Path) -> None:
    root, case = clash
    model = load(root)
    with pytest.raises(VastbuildError) as built:
        build([model], cache_dir=tmp_path / "cache", outdir=tmp_path / "out")
    for fragment in case.expected:  # the library names the Vastfile as it was given
        assert fragment.replace(" at Vastfile:", f" at {root}/Vastfile:") in str(built.value)
    assert not list((tmp_path / "out").glob("*.tar.*"))
    with pytest.raises(VastbuildError) as hashed:
        hash_targets([model], cache_dir=tmp_path / "cache")
    assert str(hashed.value) == str(built.value)


def test_the_checker_still_catches_two_copies_onto_one_destination(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws", {"a.ini": "a", "b.ini": "b"},
                     ["COPY a.ini /app/x.ini", "COPY b.ini /app/x.ini"])
    result = cli(root, "build", "-o", "out")
    assert result.returncode == 1 and "E037" in result.stderr


def test_coinciding_folders_travel_once(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws", {"a/sub/x.py": "x", "b/y.py": "y", "d/lib/z.py": "z",
                                       "d/top.txt": "t"},
                     ["COPY a /app/lib", "COPY b /app/lib/sub", "COPY d /app"])
    (result,) = build([load(root)], cache_dir=tmp_path / "cache", outdir=tmp_path / "out",
                      formats=("gz",))
    names = tar_names(result.artifacts["gz"])
    assert Counter(names).most_common(1)[0][1] == 1
    # each folder where its first source put it; later sources bring only their files
    assert names == ["./config.json", "./deployment.py", "/app/lib", "/app/lib/sub",
                     "/app/lib/sub/x.py", "/app/lib/sub/y.py", "/app", "/app/lib/z.py",
                     "/app/top.txt"]
    assert hash_targets([load(root)], cache_dir=tmp_path / "cache")[0].hash == result.hash
    (cold,) = build([load(root)], cache_dir=tmp_path / "cold", outdir=tmp_path / "again",
                    formats=("gz",))
    assert cold.artifacts["gz"].read_bytes() == result.artifacts["gz"].read_bytes()


def test_the_cli_builds_coinciding_folders(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws", {"a/sub/x.py": "x", "b/y.py": "y"},
                     ["COPY a lib", "COPY b ./lib//sub"])
    result = cli(root, "build", "-o", "out", "--format", "gz")
    assert result.returncode == 0, result.stderr
    assert tar_names(root / "out" / "demo.tar.gz") == [
        "./config.json", "./deployment.py", "./lib", "./lib/sub", "./lib/sub/x.py",
        "./lib/sub/y.py"]


def test_vastignore_patterns_are_relative_to_their_own_folder(tmp_path: Path) -> None:
    """As in a .gitignore: `/lib/common/` beside the Vastfile names ws/lib/common,
    whichever COPY reads it; `/common/` names ws/common, which is not there; a nested
    .vastignore governs its own folder."""
    root = workspace(tmp_path / "ws", {"lib/common/timing.py": "t", "lib/top.py": "x",
                                       "lib/more/a.txt": "a", "lib/more/b.txt": "b",
                                       "lib/more/.vastignore": "/b.txt\n",
                                       ".vastignore": "/lib/common/\n/common/\n"},
                     ["COPY lib /app/lib"])
    (result,) = build([load(root)], cache_dir=tmp_path / "cache", outdir=tmp_path / "out",
                      formats=("gz",))
    names = tar_names(result.artifacts["gz"])
    assert "/app/lib/top.py" in names and "/app/lib/more/a.txt" in names
    assert not [n for n in names if "common" in n or n.endswith(("b.txt", ".vastignore"))]


def test_arcnames_are_compared_normalised() -> None:
    assert {normal_arcname(n) for n in ("./a/../b", "b/", "b", "./b", ".//b")} == {"./b"}
    assert normal_arcname("a//b") == "./a/b" and normal_arcname("//app/./x") == "/app/x"
    plugin, copy = Origin("plugin", "P"), Origin("copy", "C")
    paths = ArchivePaths()
    assert paths.add("/app/x", "file", copy)
    assert paths.add("./app/x", "file", copy)  # relative: below the worker's working folder
    for spelling in ("app/x", "./app/../app//x", "/app/./x"):
        with pytest.raises(VastbuildError, match="two members at "):
            paths.copy().add(spelling, "file", plugin)
    assert paths.add("/app", "dir", copy) and not paths.add("/app/", "dir", plugin)
    code = Origin("code", "CODE svc")
    reserved = ArchivePaths({"./deployment": code})
    assert reserved.add("./deployment", "dir", code)
    assert reserved.add("deployment/a.py", "file", code)
    with pytest.raises(VastbuildError, match=r"^\./deployment/b\.py would land in \./deployment, "
                       "which is reserved for CODE svc"):
        reserved.add("./x/../deployment//b.py", "file", plugin)
    with pytest.raises(VastbuildError, match="which is a symbolic link"):
        linked = ArchivePaths()
        linked.add("/srv/current", "symlink", copy)
        linked.add("/srv/current/app.py", "file", plugin)


PYCACHE_TREE = {
    "svc/__init__.py": APP, "svc/__pycache__/__init__.cpython-311.pyc": "bytecode",
    "svc/inner/__init__.py": "", "svc/inner/__pycache__/__init__.cpython-312.pyc": "bytecode",
    "svc/plain/__init__.py": "",
    "lib/m.py": "m", "lib/__pycache__/m.cpython-311.pyc": "bytecode",
    "lib/legacy.pyc": "a .pyc outside __pycache__ was put there on purpose",
    "tools/__pycache__/keep.pyc": "named by a COPY",
}


def test_pycache_never_travels_unless_named(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws", PYCACHE_TREE,
                     ["COPY lib /app/lib", "COPY tools/__pycache__ /app/bytecode"], code="svc")
    result = cli(root, "build", "-o", "out", "--format", "gz")
    assert result.returncode == 0, result.stderr
    names = tar_names(root / "out" / "demo.tar.gz")
    assert [n for n in names if "__pycache__" in n or n.endswith(".pyc")] == [
        "/app/lib/legacy.pyc", "/app/bytecode/keep.pyc"]
    assert "./deployment/inner/__init__.py" in names


def test_new_bytecode_keeps_the_hash(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws", PYCACHE_TREE, ["COPY lib /app/lib"], code="svc")
    (before,) = hash_targets([load(root)], cache_dir=tmp_path / "cache")
    (root / "svc" / "__pycache__" / "other.cpython-313.pyc").write_text("new bytecode")
    (root / "svc" / "plain" / "__pycache__").mkdir()
    (root / "svc" / "plain" / "__pycache__" / "__init__.cpython-313.pyc").write_text("new")
    (root / "lib" / "__pycache__" / "m.cpython-311.pyc").write_text("recompiled")
    (after,) = hash_targets([load(root)], cache_dir=tmp_path / "cache")
    assert after.hash == before.hash
    assert after.built_steps == 0, "bytecode is not even in the stat listing"
    assert not any("__pycache__" in name for name in after.manifest)
