"""Builds of real trees: layout the worker bootstrap reads, reproducibility, incrementality."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from build_helpers import OLD, age, deployment, members, read_member, vastbuild, write_tree

from vastbuild import wire
from vastbuild.api import build, hash_targets
from vastbuild.cache import BuildCache
from vastbuild.errors import InvalidArgument, VastbuildError
from vastbuild.execute import Executor
from vastbuild.plan import plan
from vastbuild.progress import Reporter
from vastbuild.steps.base import StepContext

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_TARGETS = ("llm", "whisper", "imagegen", "embed")


def one(d, tmp_path: Path, **options):
    (result,) = build([d], cache_dir=tmp_path / "cache", outdir=tmp_path / "out", **options)
    return result


def hash_of(d, tmp_path: Path) -> str:
    (result,) = hash_targets([d], cache_dir=tmp_path / "cache")
    return result.hash


@pytest.fixture
def package_project(tmp_path: Path):
    root = tmp_path / "proj"
    write_tree(root, {
        "svc/__init__.py": "from .core import app\n",
        "svc/core.py": "app = None\n",
        "svc/sub/__init__.py": "",
        "svc/run.sh": "#!/bin/sh\necho hi\n",
        "prompts.json": '["hello"]',
        "lib/common/__init__.py": "X = 1\n",
        "lib/common/data/weights.bin": os.urandom(3000),
        "lib/rel/notes.txt": "relative\n",
        "requirements.txt": "numpy==2.0\n",
    })
    (root / "svc" / "run.sh").chmod(0o700)
    landing = tmp_path / "worker-root"
    d = deployment(root, code="svc",
                   copies=[("prompts.json", str(landing / "app" / "prompts.json")),
                           ("lib/common", str(landing / "app" / "lib" / "common")),
                           ("lib/rel", "data/rel")],
                   requirements=["requirements.txt"],
                   pip_installs=("numpy==2.0",), envs=(("A", "1"),), runs=("echo hi",))
    return d, landing


def test_the_worker_bootstrap_finds_everything(package_project, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    d, landing = package_project
    result = one(d, tmp_path)
    gz = result.artifacts["gz"]
    names = list(members(gz))
    app = str(landing / "app")
    assert names == [
        "./config.json",
        "./deployment", "./deployment/__init__.py", "./deployment/core.py",
        "./deployment/run.sh", "./deployment/sub", "./deployment/sub/__init__.py",
        f"{app}/prompts.json",
        f"{app}/lib/common", f"{app}/lib/common/__init__.py", f"{app}/lib/common/data",
        f"{app}/lib/common/data/weights.bin",
        "./data/rel", "./data/rel/notes.txt",
    ]
    assert read_member(gz, "./config.json") == wire.config_json(d)
    assert members(gz)["./deployment/run.sh"].mode == 0o755
    assert members(gz)["./deployment/core.py"].mode == 0o644
    # extract as serve_deployment.py does: member by member, fully trusted, in its cwd
    work = tmp_path / "worker-cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    with tarfile.open(gz, "r:gz") as tar:
        for member in tar.getmembers():
            tar.extract(member, filter="fully_trusted")
    assert json.loads((work / "config.json").read_text())["name"] == "demo"
    assert (work / "deployment" / "core.py").read_text() == "app = None\n"
    assert (work / "data" / "rel" / "notes.txt").read_text() == "relative\n"
    assert (landing / "app" / "prompts.json").read_text() == '["hello"]'
    assert (landing / "app" / "lib" / "common" / "data" / "weights.bin").read_bytes() == \
        (d.root / "lib" / "common" / "data" / "weights.bin").read_bytes()
    # the zstd artifact holds the same tar stream
    import zstandard

    with open(result.artifacts["zst"], "rb") as handle:
        plain = zstandard.ZstdDecompressor().stream_reader(handle, read_across_frames=True).read()
    import gzip

    assert plain == gzip.decompress(gz.read_bytes())
    assert result.sizes["tar"] == len(plain)


def test_a_module_travels_as_deployment_py(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write_tree(root, {"app.py": "print(1)\n"})
    result = one(deployment(root), tmp_path)
    assert list(members(result.artifacts["gz"])) == ["./config.json", "./deployment.py"]
    assert read_member(result.artifacts["gz"], "./deployment.py") == b"print(1)\n"


def test_registration_body_describes_the_gzip_artifact(package_project, tmp_path: Path) -> None:
    d, _ = package_project
    result = one(d, tmp_path, api_url="https://api.example", autoscaler_url="https://as.example")
    body = json.loads((tmp_path / "out" / "demo.deployment.json").read_text())
    assert body == result.deployment_config
    assert body == wire.deployment_config(d, file_hash=result.hash,
                                          file_size=result.artifacts["gz"].stat().st_size,
                                          api_url="https://api.example",
                                          autoscaler_url="https://as.example")
    assert "-e VAST_API_URL=https://api.example" in body["env"]
    assert "REPORT_ADDR=https://as.example" in body["env"]


def test_zst_only_compresses_no_gzip_and_writes_no_registration(package_project,
                                                                 tmp_path: Path) -> None:
    """The registration describes the .tar.gz Vast's workers take: a build of vastbuild's
    own format alone spends nothing on gzip, and has no registration to write."""
    d, _ = package_project
    both = one(d, tmp_path)
    assert both.deployment_config is not None
    assert both.deployment_config["file_size"] == both.artifacts["gz"].stat().st_size
    (zst,) = build([d], cache_dir=tmp_path / "cache2", outdir=tmp_path / "zst", formats=("zst",))
    assert set(zst.artifacts) == {"zst"} and sorted(p.name for p in (tmp_path / "zst").iterdir()) \
        == ["demo.tar.zst"]
    assert zst.deployment_config is None and "gz" not in zst.sizes
    assert zst.hash == both.hash


def test_without_outdir_artifacts_go_to_the_cache(package_project, tmp_path: Path) -> None:
    d, _ = package_project
    (result,) = build([d], cache_dir=tmp_path / "cache", outdir=None, formats=("gz",))
    assert result.artifacts["gz"].parent == tmp_path / "cache" / "artifacts"
    assert "./config.json" in members(result.artifacts["gz"])


def clone_examples(destination: Path, mtime: int, private: bool) -> Path:
    shutil.copytree(EXAMPLES, destination, ignore=shutil.ignore_patterns("plugins",
                                                                         "__pycache__"))
    age(destination, mtime)
    if private:  # as a checkout made under umask 077 would be
        for folder, dirs, files in os.walk(destination):
            for name in files:
                os.chmod(os.path.join(folder, name), 0o600)
            for name in dirs:
                os.chmod(os.path.join(folder, name), 0o700)
    return destination


def test_two_clones_build_byte_identical_artifacts(tmp_path: Path) -> None:
    clones = [clone_examples(tmp_path / "a" / "examples", OLD, private=False),
              clone_examples(tmp_path / "b" / "deeper" / "checkout", OLD + 86_400 * 400,
                             private=True)]
    outputs = []
    for index, clone in enumerate(clones):
        out = tmp_path / f"out{index}"
        run = vastbuild("--cache-dir", str(tmp_path / f"cache{index}"), "build",
                        *EXAMPLE_TARGETS, "-o", str(out), "--json",
                        cwd=clone, umask=0o022 if index == 0 else 0o077)
        assert run.returncode == 0, run.stderr
        outputs.append((json.loads(run.stdout), out))
    (first, out0), (second, out1) = outputs
    assert [t["hash"] for t in first["targets"]] == [t["hash"] for t in second["targets"]]
    files = sorted(p.name for p in out0.iterdir())
    assert files == sorted(p.name for p in out1.iterdir()) and len(files) == 12
    for name in files:
        assert (out0 / name).read_bytes() == (out1 / name).read_bytes(), name


def test_the_examples_extract_where_their_vastfiles_say(tmp_path: Path) -> None:
    from vastbuild.api import load

    clone = clone_examples(tmp_path / "examples", OLD, private=False)
    results = build([load(clone / t) for t in EXAMPLE_TARGETS], cache_dir=tmp_path / "cache",
                    outdir=tmp_path / "out")
    by_name = {r.name: members(r.artifacts["gz"]) for r in results}
    assert "/app/lib/common/timing.py" in by_name["qwen-chat"]
    assert "/app/prompts.json" in by_name["qwen-chat"]
    assert "./lib/common/timing.py" in by_name["sdxl-images"]
    assert "./deployment/__init__.py" in by_name["embeddings"]
    assert "/app/lib/common/timing.py" in by_name["embeddings"]
    assert all("./config.json" in names for names in by_name.values())


def inputs_of(d) -> list[Path]:
    files = [d.code.path] if d.code.path.is_file() else \
        [p for p in d.code.path.rglob("*") if p.is_file()]
    for copy in d.copies:
        files += [copy.src] if copy.src.is_file() else \
            [p for p in copy.src.rglob("*") if p.is_file()]
    return files


def test_touching_every_input_keeps_the_hash(package_project, tmp_path: Path) -> None:
    d, _ = package_project
    before = hash_of(d, tmp_path)
    for path in inputs_of(d):
        os.utime(path)
    assert hash_of(d, tmp_path) == before


def test_one_changed_byte_in_any_input_changes_the_hash(package_project,
                                                        tmp_path: Path) -> None:
    d, _ = package_project
    before = hash_of(d, tmp_path)
    for path in inputs_of(d):
        original = path.read_bytes()
        changed = bytearray(original or b"\0")
        changed[0] ^= 0x01
        path.write_bytes(bytes(changed))
        assert hash_of(d, tmp_path) != before, path
        path.write_bytes(original)
        assert hash_of(d, tmp_path) == before, path


def test_a_requirements_file_is_an_input_of_its_component(package_project,
                                                          tmp_path: Path) -> None:
    # its lines reach the tarball through config.json, which the checker folds them
    # into; the file itself is hashed into the requirements component
    d, _ = package_project
    (before,) = hash_targets([d], cache_dir=tmp_path / "cache")
    (d.root / "requirements.txt").write_text("numpy==2.0  # pinned\n")
    (after,) = hash_targets([d], cache_dir=tmp_path / "cache")
    changed = {k for k in before.components if before.components[k] != after.components[k]}
    assert changed == {"requirements"} and after.hash == before.hash


def test_a_requirements_change_reaches_the_hash_through_the_checker(tmp_path: Path) -> None:
    from vastbuild.api import load

    root = tmp_path / "p"
    write_tree(root, {"app.py": "from vastai import Deployment\napp = Deployment()\n",
                      "requirements.txt": "numpy==2.0\n",
                      "Vastfile": "FROM vastai/pytorch\nCODE app.py\nPIP -r requirements.txt\n"})
    before = hash_of(load(root), tmp_path)
    (root / "requirements.txt").write_text("numpy==2.1\n")
    assert hash_of(load(root), tmp_path) != before


def test_a_mode_change_changes_the_hash(package_project, tmp_path: Path) -> None:
    d, _ = package_project
    before = hash_of(d, tmp_path)
    (d.root / "svc" / "core.py").chmod(0o755)
    assert hash_of(d, tmp_path) != before


def test_vastignore_excludes_from_every_copy(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write_tree(root, {
        "app.py": "x = 1\n",
        ".vastignore": "*.log\n/data/top-only.txt\ncache/\n!keep.log\n",
        "data/a.txt": "a", "data/run.log": "log", "data/keep.log": "keep",
        "data/top-only.txt": "top", "data/sub/top-only.txt": "nested",
        "data/cache/big.bin": "x" * 1000, "data/.git/HEAD": "ref",
    })
    d = deployment(root, copies=[("data", "/app/data"), (".", "/app/all")])
    result = one(d, tmp_path)
    names = set(members(result.artifacts["gz"]))
    assert {"/app/data/a.txt", "/app/data/keep.log", "/app/data/sub/top-only.txt"} <= names
    assert not {"/app/data/run.log", "/app/data/top-only.txt", "/app/data/cache",
                "/app/data/.git/HEAD", "/app/all/Vastfile", "/app/all/.vastignore",
                "/app/all/data/.git", "/app/all/data/top-only.txt"} & names
    before = result.hash
    (root / "data" / "run.log").write_text("changed")
    (root / "data" / "cache" / "big.bin").write_text("changed")
    assert hash_of(d, tmp_path) == before
    (root / "data" / "a.txt").write_text("changed")
    assert hash_of(d, tmp_path) != before


def test_vastignore_paths_are_relative_to_its_folder_as_in_gitignore(tmp_path: Path) -> None:
    """`assets/table.csv` beside the Vastfile names that file inside `COPY assets`."""
    root = tmp_path / "p"
    write_tree(root, {"app.py": "x = 1\n", ".vastignore": "assets/table.csv\n",
                      "assets/table.csv": "a,b\n", "assets/logo.svg": "<svg/>",
                      "assets/more/table.csv": "kept: the pattern has a slash, so anchored\n"})
    d = deployment(root, copies=[("assets", "/opt/assets")])
    result = one(d, tmp_path)
    names = set(members(result.artifacts["gz"]))
    assert "/opt/assets/table.csv" not in names
    assert {"/opt/assets/logo.svg", "/opt/assets/more/table.csv"} <= names
    before = result.hash
    (root / "assets" / "table.csv").write_text("c,d\n")
    assert hash_of(d, tmp_path) == before


def test_a_copy_may_name_an_excluded_path_explicitly(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write_tree(root, {"app.py": "x\n", "data/.git/HEAD": "ref"})
    d = deployment(root, copies=[("data/.git", "/app/git")])
    assert "/app/git/HEAD" in members(one(d, tmp_path).artifacts["gz"])


def test_the_cache_never_travels(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write_tree(root, {"app.py": "x\n", "data.txt": "d"})
    d = deployment(root, copies=[(".", "/app")])
    (result,) = build([d], cache_dir=root / ".cache", outdir=tmp_path / "dist")
    (again,) = build([d], cache_dir=root / ".cache", outdir=tmp_path / "dist")
    names = set(members(again.artifacts["gz"]))
    assert "/app/data.txt" in names and not any(".cache" in n for n in names)
    assert again.hash == result.hash


def test_an_output_folder_inside_a_copied_tree_must_be_ignored(tmp_path: Path) -> None:
    """Otherwise each build would pack the last one's artifacts, and `hash` (which
    writes no output) would hash another tree than `build -o` does."""
    root = tmp_path / "p"
    write_tree(root, {"app.py": "x\n", "data.txt": "d", "dist/old.tar.gz": "old"})
    d = deployment(root, copies=[(".", "/app")])
    with pytest.raises(InvalidArgument,
                       match=r"the output folder .*dist is inside the tree") as caught:
        build([d], cache_dir=tmp_path / "cache", outdir=root / "dist")
    assert ".vastignore" in (caught.value.hint or "") and caught.value.setting == "outdir"
    (root / ".vastignore").write_text("/dist/\n")
    (built,) = build([d], cache_dir=tmp_path / "cache", outdir=root / "dist")
    assert not any("dist" in n for n in members(built.artifacts["gz"]))
    (hashed,) = hash_targets([d], cache_dir=tmp_path / "cache")
    assert hashed.hash == built.hash


def test_links_inside_the_tree_stay_links(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write_tree(root, {"app.py": "x\n", "data/real.txt": "r", "data/sub/x": "x"})
    (root / "data" / "link.txt").symlink_to("real.txt")
    (root / "data" / "sub" / "up").symlink_to(root / "data" / "real.txt")  # absolute, inside
    d = deployment(root, copies=[("data", "/app/data")])
    names = members(one(d, tmp_path).artifacts["gz"])
    assert names["/app/data/link.txt"].issym() and names["/app/data/link.txt"].linkname == \
        "real.txt"
    assert names["/app/data/sub/up"].linkname == "../real.txt"


@pytest.mark.parametrize("target", ["../../outside.txt", "/etc/hostname"])
def test_a_link_leaving_the_tree_is_an_error_naming_it(tmp_path: Path, target: str) -> None:
    root = tmp_path / "p"
    write_tree(root, {"app.py": "x\n", "data/a": "a"})
    (tmp_path / "outside.txt").write_text("secret")
    (root / "data" / "escape").symlink_to(target)
    d = deployment(root, copies=[("data", "/app/data")])
    with pytest.raises(VastbuildError, match=r"data/escape is a symbolic link .* outside"):
        one(d, tmp_path)


def test_special_files_are_an_error_naming_them(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write_tree(root, {"app.py": "x\n", "data/a": "a"})
    os.mkfifo(root / "data" / "pipe")
    d = deployment(root, copies=[("data", "/app/data")])
    with pytest.raises(VastbuildError, match=r"data/pipe is a named pipe") as info:
        one(d, tmp_path)
    assert ".vastignore" in str(info.value)
    assert info.value.message.startswith(f"{root / 'Vastfile'}:1:1: ")  # the COPY that reads it
    (root / ".vastignore").write_text("pipe\n")
    assert "/app/data/a" in members(one(deployment(root, copies=[("data", "/app/data")]),
                                        tmp_path).artifacts["gz"])


def test_an_unreadable_file_is_an_error_naming_it(tmp_path: Path) -> None:
    """Root reads any file: as root, the build runs without the capabilities that
    let it (setpriv), in a subprocess."""
    root = tmp_path / "p"
    write_tree(root, {"Vastfile": "FROM img\nCODE app.py\nCOPY data /app/data\n",
                      "app.py": "x\n", "data/secret": "s"})
    (root / "data" / "secret").chmod(0)
    program = [sys.executable, "-m", "vastbuild"]
    if os.geteuid() == 0:
        program = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *program]
    run = vastbuild("--cache-dir", str(tmp_path / "cache"), "hash", str(root), program=program)
    assert run.returncode == 1, run.stderr
    assert "data/secret: permission denied" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_file_that_vanishes_mid_build_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write_tree(root, {"app.py": "x\n", "data/a": "a", "data/b": "b"})
    d = deployment(root, copies=[("data", "/app/data")])
    the_plan = plan([d], cache_dir=tmp_path / "cache", outdir=tmp_path / "out", formats=("gz",))
    (root / "data" / "b").unlink()
    store = BuildCache(tmp_path / "cache")
    try:
        with ThreadPoolExecutor(2) as pool:
            executor = Executor(the_plan.graph, StepContext(store, Reporter(), pool))
            with pytest.raises(VastbuildError, match="data/b vanished"):
                executor.run(the_plan.targets[0].assemble.values())
    finally:
        store.close()


def test_long_and_unicode_names_travel(tmp_path: Path) -> None:
    root = tmp_path / "p"
    deep = "/".join(["a" * 60] * 4) + "/" + "f" * 120 + ".txt"
    write_tree(root, {"app.py": "x\n", f"data/{deep}": "deep", "data/ünï/çødé.txt": "u"})
    names = members(one(deployment(root, copies=[("data", "data")]), tmp_path).artifacts["gz"])
    assert f"./data/{deep}" in names and "./data/ünï/çødé.txt" in names


def test_source_date_epoch_sets_every_mtime(package_project, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    d, _ = package_project
    plain = hash_of(d, tmp_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    result = one(d, tmp_path)
    assert {m.mtime for m in members(result.artifacts["gz"]).values()} == {1_700_000_000}
    assert result.hash != plain
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(VastbuildError, match="SOURCE_DATE_EPOCH"):
        hash_of(d, tmp_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(8 ** 11))  # would need a pax time record
    with pytest.raises(VastbuildError, match="past the tar header's limit"):
        hash_of(d, tmp_path)


def test_marked_lines_in_code_leave_the_hash_but_not_the_tarball(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write_tree(root, {"app.py": "x = 1\nDEBUG = True  # !VAST_IGNORE_CHANGES\n",
                      "lib/conf.py": "DEBUG = True  # !VAST_IGNORE_CHANGES\n"})
    d = deployment(root, copies=[("lib", "/app/lib")])
    first = one(d, tmp_path)
    (root / "app.py").write_text("x = 1\nDEBUG = False  # !VAST_IGNORE_CHANGES\n")
    second = one(d, tmp_path)
    assert second.hash == first.hash
    assert second.components["code"] == first.components["code"]
    assert read_member(second.artifacts["gz"], "./deployment.py").endswith(
        b"DEBUG = False  # !VAST_IGNORE_CHANGES\n")
    (root / "app.py").write_text("x = 2\nDEBUG = False  # !VAST_IGNORE_CHANGES\n")
    assert hash_of(d, tmp_path) != first.hash
    # only CODE honours the marker
    (root / "app.py").write_text("x = 1\nDEBUG = True  # !VAST_IGNORE_CHANGES\n")
    assert hash_of(d, tmp_path) == first.hash
    (root / "lib" / "conf.py").write_text("DEBUG = False  # !VAST_IGNORE_CHANGES\n")
    assert hash_of(d, tmp_path) != first.hash


def test_unchanged_outputs_keep_their_mtime(package_project, tmp_path: Path) -> None:
    d, _ = package_project
    result = one(d, tmp_path)
    outputs = [*result.artifacts.values(), tmp_path / "out" / "demo.deployment.json"]
    for path in outputs:
        os.utime(path, (OLD, OLD))
    again = one(d, tmp_path)
    # the artifacts' stats changed, so the assemble steps' cached results restore them:
    # their bytes are compared (and found right), nothing runs, nothing is written
    assert again.built_steps == 0
    assert [p.stat().st_mtime for p in outputs] == [OLD] * 3
    assert one(d, tmp_path).built_steps == 0
    (tmp_path / "cache").rename(tmp_path / "cache-old")  # a cold cache rewrites nothing either
    cold = one(d, tmp_path)
    assert cold.built_steps > 0
    assert [p.stat().st_mtime for p in outputs] == [OLD] * 3


def test_a_changed_output_is_rewritten(package_project, tmp_path: Path) -> None:
    d, _ = package_project
    result = one(d, tmp_path)
    good = result.artifacts["gz"].read_bytes()
    result.artifacts["gz"].write_bytes(b"tampered")
    again = one(d, tmp_path)
    # restored from the cached blobs: the step's result held, its output was rewritten
    assert again.artifacts["gz"].read_bytes() == good and again.built_steps == 0


def test_targets_copying_the_same_tree_share_its_steps(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    write_tree(root, {"a/app.py": "a\n", "b/app.py": "b\n", "lib/x.py": "x\n"})
    a = deployment(root, code="a/app.py", vastfile="a/Vastfile", name="a",
                   copies=[("lib", "/app/lib")])
    b = deployment(root, code="b/app.py", vastfile="b/Vastfile", name="b",
                   copies=[("lib", "/app/lib")])
    the_plan = plan([a, b], cache_dir=tmp_path / "cache")
    collects = [s for s in the_plan.graph.steps() if s.kind == "collect"]
    assert len(collects) == 3  # a's code, b's code, and lib once


def test_two_targets_with_one_output_name_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    write_tree(root, {"a/app.py": "a\n", "b/app.py": "b\n"})
    a = deployment(root, code="a/app.py", vastfile="a/Vastfile", name="same")
    b = deployment(root, code="b/app.py", vastfile="b/Vastfile", name="same", tag="prod")
    with pytest.raises(VastbuildError, match="would both write"):
        build([a, b], cache_dir=tmp_path / "cache", outdir=tmp_path / "out")


def big_tree(root: Path, count: int) -> None:
    for i in range(count):
        folder = root / "data" / f"d{i % 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05d}.txt").write_text(f"file {i}\n" * (1 + i % 7))
    (root / "app.py").write_text("print('big')\n")
    age(root)


def test_incremental_builds_run_only_what_a_change_reaches(tmp_path: Path) -> None:
    root = tmp_path / "big"
    big_tree(root, 10_000)
    d = deployment(root, copies=[("data", "/app/data")])
    first = one(d, tmp_path)
    assert first.cached_steps == 0
    second = one(d, tmp_path)
    assert (second.built_steps, second.hash) == (0, first.hash)
    blobs = BuildCache(tmp_path / "cache").blobs
    before = {path for path, _ in blobs.files()}
    target = root / "data" / "d42" / "f04242.txt"
    target.write_bytes(b"X" + target.read_bytes()[1:])
    third = one(d, tmp_path)
    # the tree's collect step and its two compress steps, the two artifacts; and of
    # the tree's chunks only the one holding the file compressed again, in each format
    assert third.built_steps == 5 and third.hash != first.hash
    assert len({path for path, _ in blobs.files()} - before) == 2
    assert read_member(third.artifacts["gz"], "/app/data/d42/f04242.txt").startswith(b"Xile")


def test_a_copy_onto_the_working_folder_leaves_its_modes_alone(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write_tree(root, {"app.py": "x\n", "data/a.txt": "a", "data/sub/b.txt": "b"})
    names = list(members(one(deployment(root, copies=[("data", ".")]),
                             tmp_path).artifacts["gz"]))
    assert names == ["./config.json", "./deployment.py", "./a.txt", "./sub", "./sub/b.txt"]


@pytest.mark.skipif(not (shutil.which("tar") and shutil.which("zstd")), reason="needs tar, zstd")
def test_gnu_tar_and_zstd_read_the_artifacts(package_project, tmp_path: Path) -> None:
    import subprocess

    d, _ = package_project
    result = one(d, tmp_path)
    gz = subprocess.run(["tar", "-tzf", str(result.artifacts["gz"])], capture_output=True,
                        text=True, check=True).stdout
    plain = subprocess.run(["zstd", "-dc", str(result.artifacts["zst"])], capture_output=True,
                           check=True).stdout
    zst = subprocess.run(["tar", "-tf", "-"], input=plain, capture_output=True,
                         check=True).stdout.decode()
    assert gz == zst and "./deployment/core.py" in gz.splitlines()
