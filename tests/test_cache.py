"""The cache store, the stat-remembered file index, and the cache under real builds."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from build_helpers import deployment, vastbuild, write_tree

from vastbuild.api import build, hash_targets
from vastbuild.cache import ABANDONED_AFTER, BuildCache
from vastbuild.errors import VastbuildError
from vastbuild.filestate import FileDigest, FileIndex, read_file
from vastbuild.stats import RACY_NS, stat_key


@pytest.fixture
def store(tmp_path: Path) -> BuildCache:
    s = BuildCache(tmp_path / "cache")
    yield s
    s.close()


def corrupt_files(folder: Path) -> int:
    """Flip a byte in every value file diskcache keeps below ``folder``."""
    count = 0
    for path in folder.rglob("*.val"):
        data = bytearray(path.read_bytes())
        if data:
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))
            count += 1
    return count


def test_results_round_trip(store: BuildCache) -> None:
    assert store.get_result("collect", "k") is None
    store.put_result("collect", "k", b'{"a":1}')
    assert store.get_result("collect", "k") == b'{"a":1}'
    big = b"x" * 100_000
    store.put_result("collect", "k", big)
    assert store.get_result("collect", "k") == big


def test_a_result_that_does_not_match_its_digest_is_dropped(store: BuildCache) -> None:
    store.put_result("collect", "k", bytes(range(256)) * 1000)  # big: kept as a file
    assert corrupt_files(store.directory) == 1
    assert store.get_result("collect", "k") is None
    assert store.stats().entries["step results"] == 0


def put_blob(store: BuildCache, name: str, data: bytes) -> None:
    with store.blobs.writer(name) as out:
        out.write(data)


def corrupt_blobs(store: BuildCache) -> int:
    """Flip a byte in every blob (as a disk write would: its stat changes)."""
    count = 0
    for path, _ in store.blobs.files():
        data = bytearray(Path(path).read_bytes())
        data[len(data) // 2] ^= 0xFF
        Path(path).write_bytes(bytes(data))
        count += 1
    return count


def test_a_blob_is_there_whole_or_not_at_all(store: BuildCache) -> None:
    payload = os.urandom(200_000)
    with pytest.raises(RuntimeError), store.blobs.writer("b") as out:
        out.write(payload[:1000])
        raise RuntimeError("interrupted mid-write")
    assert store.blobs.key("b") is None
    assert [p for p in store.blobs.folder.rglob("*") if p.is_file()] == []
    put_blob(store, "b", payload)
    key = store.blobs.key("b")
    assert key is not None and key[0] == len(payload) and store.blobs.written_keys["b"] == key


def test_blobs_are_copied_into_place_and_checked_by_length(store: BuildCache,
                                                         tmp_path: Path) -> None:
    payload = os.urandom(200_000)
    put_blob(store, "b", payload)
    target = tmp_path / "out"
    key = store.blobs.written_keys["b"]
    with target.open("wb") as out:
        out.write(b"head")
        store.blobs.copy_into("b", key, out.fileno(), 4)
    assert target.read_bytes() == b"head" + payload
    corrupt_blobs(store)  # a write changes the stat the blob is trusted by
    with target.open("r+b") as out, pytest.raises(KeyError):
        store.blobs.copy_into("b", key, out.fileno(), 0)
    with target.open("r+b") as out, pytest.raises(KeyError):
        store.blobs.copy_into("missing", key, out.fileno(), 0)


def test_generated_content_is_addressed_by_its_digest(store: BuildCache) -> None:
    digest = store.put_content(b"config")
    assert digest == hashlib.sha256(b"config").hexdigest()
    assert store.get_content(digest) == b"config"
    assert store.get_content("0" * 64) is None


def test_stats_gc_and_clear(store: BuildCache) -> None:
    for i in range(20):
        put_blob(store, f"{i:02d}", os.urandom(50_000))
    stats = store.stats()
    assert stats.entries["compressed chunks"] == 20 and stats.volume >= 1_000_000
    store.artifacts.mkdir()
    old = store.artifacts / "old.tar.gz"
    old.write_bytes(b"x")
    os.utime(old, (1, 1))
    (store.artifacts / "new.tar.gz").write_bytes(b"y")
    evicted, deleted = store.gc(max_size=300_000)
    assert evicted >= 10 and deleted == 1
    assert store.stats().volume <= 300_000 and store.stats().artifacts == 1
    store.put_result("collect", "k", b"{}")
    assert store.clear() >= 1
    assert store.stats().entries["compressed chunks"] == 0 and store.stats().artifacts == 0


def test_gc_removes_temporary_blobs_a_killed_build_left(store: BuildCache) -> None:
    """A build killed while writing a blob leaves its temporary file: culling removes
    it once no write has touched it for an hour, and leaves a younger one (a build
    may be writing it)."""
    put_blob(store, "ab01", b"kept")
    folder = store.blobs.folder / "ab"
    abandoned, writing = folder / ".tmpabandoned", folder / ".tmpwriting"
    abandoned.write_bytes(b"half a blob")
    writing.write_bytes(b"half a blob")
    os.utime(abandoned, (time.time() - ABANDONED_AFTER - 60,) * 2)
    store.gc()
    assert not abandoned.exists() and writing.exists()
    assert [os.path.basename(path) for path, _ in store.blobs.files()] == ["ab01"]


def test_file_index_remembers_by_stat(store: BuildCache, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hello")
    os.utime(path, (1_600_000_000, 1_600_000_000))
    key = stat_key(os.lstat(path))
    index = FileIndex(store, str(tmp_path))
    assert index.lookup("f", key) is None
    digest, data = read_file(str(path), key, keep=True)
    assert data == b"hello" and digest == hashlib.sha256(b"hello").hexdigest()
    index.remember("f", key, FileDigest(digest, 5), time.time_ns())
    index.save()
    again = FileIndex(store, str(tmp_path))
    assert again.lookup("f", key) == FileDigest(digest, 5)
    path.write_bytes(b"HELLO")  # same size, new mtime: the stat no longer matches
    assert again.lookup("f", stat_key(os.lstat(path))) is None


def test_racy_files_are_not_remembered(store: BuildCache, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"fresh")
    key = stat_key(os.lstat(path))
    index = FileIndex(store, str(tmp_path))
    index.remember("f", key, FileDigest("0" * 64, 5), time.time_ns())
    index.save()
    assert FileIndex(store, str(tmp_path)).lookup("f", key) is None
    index.remember("f", key, FileDigest("0" * 64, 5), time.time_ns() + 2 * RACY_NS)
    index.save()
    assert FileIndex(store, str(tmp_path)).lookup("f", key) is not None


def test_file_index_forgets_files_gone_from_the_tree(store: BuildCache, tmp_path: Path) -> None:
    index = FileIndex(store, str(tmp_path))
    for name in ("a", "b"):
        index.remember(name, (1, 1, 1, 1, 1), FileDigest("0" * 64, 1), 10**19)
    index.save()
    second = FileIndex(store, str(tmp_path))
    second.lookup("a", (1, 1, 1, 1, 1))
    second.save()
    third = FileIndex(store, str(tmp_path))
    assert third.lookup("a", (1, 1, 1, 1, 1)) is not None
    assert third.lookup("b", (1, 1, 1, 1, 1)) is None


def project(tmp_path: Path):
    root = tmp_path / "proj"
    write_tree(root, {"app.py": "print('app')\n",
                      **{f"data/f{i}.bin": os.urandom(40_000) for i in range(30)}})
    return deployment(root, copies=[("data", "/app/data")])


def test_corrupt_cache_entries_are_rebuilt_never_used(tmp_path: Path) -> None:
    d = project(tmp_path)
    cache, out = tmp_path / "cache", tmp_path / "out"
    (first,) = build([d], cache_dir=cache, outdir=out)
    reference = {fmt: path.read_bytes() for fmt, path in first.artifacts.items()}
    for path in first.artifacts.values():
        path.unlink()
    store = BuildCache(cache)
    try:
        assert corrupt_blobs(store) > 0
    finally:
        store.close()
    (second,) = build([d], cache_dir=cache, outdir=out)
    assert second.hash == first.hash
    assert {fmt: path.read_bytes() for fmt, path in second.artifacts.items()} == reference
    assert second.built_steps > 0


def test_a_missing_blob_is_rebuilt(tmp_path: Path) -> None:
    d = project(tmp_path)
    cache, out = tmp_path / "cache", tmp_path / "out"
    (first,) = build([d], cache_dir=cache, outdir=out)
    gz = first.artifacts["gz"].read_bytes()
    first.artifacts["gz"].unlink()
    store = BuildCache(cache)
    for key in list(store._cache.iterkeys()):
        if str(key).startswith("blob:"):
            store._cache.delete(key)
    store.close()
    (second,) = build([d], cache_dir=cache, outdir=out)
    assert second.artifacts["gz"].read_bytes() == gz


def test_hash_after_build_runs_nothing(tmp_path: Path) -> None:
    d = project(tmp_path)
    build([d], cache_dir=tmp_path / "cache", outdir=tmp_path / "out")
    (result,) = hash_targets([d], cache_dir=tmp_path / "cache")
    assert result.built_steps == 0 and result.cached_steps > 0


CONCURRENT = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from build_helpers import deployment
from vastbuild.api import build
d = deployment(Path({root!r}), copies=[("data", "/app/data")])
for _ in range(3):
    (r,) = build([d], cache_dir=Path({cache!r}), outdir=Path(sys.argv[1]))
print(r.hash)
"""


def test_two_processes_share_one_cache(tmp_path: Path) -> None:
    d = project(tmp_path)
    cache = tmp_path / "cache"
    script = CONCURRENT.format(tests=str(Path(__file__).parent), root=str(d.root),
                               cache=str(cache))
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / f"out{i}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert outputs[0][0] == outputs[1][0]
    for name in ("demo.tar.gz", "demo.tar.zst"):
        assert (tmp_path / "out0" / name).read_bytes() == (tmp_path / "out1" / name).read_bytes()


def test_a_damaged_database_is_emptied_and_the_build_is_the_same(tmp_path: Path) -> None:
    """A cache.db that is not a database any more is never trusted: the store starts
    afresh, and the artifacts come out byte for byte as before."""
    d = project(tmp_path)
    cache = tmp_path / "cache"
    (first,) = build([d], cache_dir=cache, outdir=tmp_path / "one")
    database = next(cache.rglob("cache.db"))
    for journal in database.parent.glob("cache.db-*"):  # its write-ahead log goes too
        journal.unlink()
    database.write_bytes(b"this is not SQLite at all" * 1000)
    (second,) = build([d], cache_dir=cache, outdir=tmp_path / "two")
    assert second.cached_steps == 0
    assert {f: p.read_bytes() for f, p in second.artifacts.items()} == \
        {f: p.read_bytes() for f, p in first.artifacts.items()}


def test_a_database_the_store_cannot_open_is_an_error_that_says_what_to_do(
        tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    BuildCache(cache).close()
    database = next(cache.rglob("cache.db"))
    database.unlink()
    database.mkdir()
    with pytest.raises(VastbuildError) as caught:
        BuildCache(cache)
    assert str(cache) in caught.value.message and "delete the folder" in (caught.value.hint or "")


def test_an_index_of_a_tree_whose_name_is_not_utf8(store: BuildCache) -> None:
    root = os.fsdecode(b"/work/caf\xe9")
    store.put_index(root, {"a": (1,)})
    assert store.get_index(root) == {"a": (1,)}
    assert store.get_index("/work/caf\\udce9") is None  # the escape's spelling is another name


# -- cache verify ----------------------------------------------------------------------

def verify(cache: Path) -> tuple[int, dict]:
    """``vastbuild cache verify --json`` as a user runs it: (exit code, report)."""
    done = vastbuild("--cache-dir", str(cache), "cache", "verify", "--json")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def blobs_by_format(cache: Path) -> dict[str, list[Path]]:
    """The cache's blobs, by the format their first bytes say."""
    found: dict[str, list[Path]] = {"gz": [], "zst": []}
    for path in sorted((cache / "blobs-v1").rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            head = path.read_bytes()[:4]
            found["gz" if head[:2] == b"\x1f\x8b" else "zst"].append(path)
    return found


def flip(path: Path) -> None:
    """Flip a byte in the middle of ``path`` (past any header)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    """Cut the last few bytes off ``path`` (a trailer or checksum, half of it)."""
    path.write_bytes(path.read_bytes()[:-3])


def test_verify_a_sound_cache_exits_0(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    build([project(tmp_path)], cache_dir=cache, outdir=tmp_path / "out")
    code, report = verify(cache)
    assert code == 0 and report["damaged"] == []
    assert report["directory"] == str(cache)
    assert report["checked"]["step results"] > 0 and report["checked"]["compressed chunks"] > 0
    plain = vastbuild("--cache-dir", str(cache), "cache", "verify")
    assert plain.returncode == 0 and "none damaged" in plain.stdout


def test_verify_drops_changed_blobs_and_the_next_build_restores_the_artifacts(
        tmp_path: Path) -> None:
    """A byte written into one blob, another truncated: both no longer have the stat
    they were written with. verify names them, drops them (exit 1), and the next build
    compresses their chunks again into byte-identical artifacts."""
    d = project(tmp_path)
    cache, out = tmp_path / "cache", tmp_path / "out"
    (first,) = build([d], cache_dir=cache, outdir=out)
    reference = {fmt: path.read_bytes() for fmt, path in first.artifacts.items()}
    blobs = blobs_by_format(cache)
    flip(blobs["gz"][0])
    truncate(blobs["zst"][0])
    code, report = verify(cache)
    assert code == 1
    assert {(d["kind"], d["name"]) for d in report["damaged"]} == {
        ("compressed chunks", blobs["gz"][0].name), ("compressed chunks", blobs["zst"][0].name)}
    assert all("changed since it was written" in d["reason"] for d in report["damaged"])
    assert not blobs["gz"][0].exists() and not blobs["zst"][0].exists()
    assert verify(cache)[0] == 0
    for path in first.artifacts.values():
        path.unlink()
    (second,) = build([d], cache_dir=cache, outdir=out)
    assert second.built_steps > 0
    assert {fmt: path.read_bytes() for fmt, path in second.artifacts.items()} == reference


def test_verify_finds_damage_the_stat_does_not_show(tmp_path: Path) -> None:
    """Damage below the file system leaves a blob's stat as it was recorded (simulated
    here by recording the new stat): the checksums of its gzip members and zstd
    frames, and their ends, still show it."""
    d = project(tmp_path)
    cache, out = tmp_path / "cache", tmp_path / "out"
    (first,) = build([d], cache_dir=cache, outdir=out)
    reference = {fmt: path.read_bytes() for fmt, path in first.artifacts.items()}
    blobs = blobs_by_format(cache)
    damaged = {blobs["gz"][0]: flip, blobs["gz"][1]: truncate,
               blobs["zst"][0]: flip, blobs["zst"][1]: truncate}
    store = BuildCache(cache)
    try:
        for path, damage in damaged.items():
            damage(path)
            store._record_blob(path.name, stat_key(os.stat(path)))
    finally:
        store.close()
    code, report = verify(cache)
    assert code == 1
    reasons = {d["name"]: d["reason"] for d in report["damaged"]}
    assert set(reasons) == {path.name for path in damaged}
    assert reasons[blobs["gz"][0].name].startswith("damaged:")
    assert reasons[blobs["zst"][0].name].startswith("damaged:")
    assert reasons[blobs["gz"][1].name].startswith("truncated")
    assert reasons[blobs["zst"][1].name].startswith("truncated")
    for path in first.artifacts.values():
        path.unlink()
    (second,) = build([d], cache_dir=cache, outdir=out)
    assert {fmt: path.read_bytes() for fmt, path in second.artifacts.items()} == reference


def test_verify_drops_damaged_cached_artifacts(tmp_path: Path) -> None:
    """Artifacts built into the cache (for deploy), one with a byte changed and one
    truncated: dropped, and the next build writes the same artifacts again."""
    d = project(tmp_path)
    cache = tmp_path / "cache"
    (first,) = build([d], cache_dir=cache, outdir=None)
    reference = {fmt: path.read_bytes() for fmt, path in first.artifacts.items()}
    assert all(path.parent == cache / "artifacts" for path in first.artifacts.values())
    flip(first.artifacts["gz"])
    truncate(first.artifacts["zst"])
    code, report = verify(cache)
    assert code == 1
    assert {(d["kind"], d["name"]) for d in report["damaged"]} == {
        ("artifacts", path.name) for path in first.artifacts.values()}
    assert not any(path.exists() for path in first.artifacts.values())
    assert verify(cache)[0] == 0
    (second,) = build([d], cache_dir=cache, outdir=None)
    assert {fmt: path.read_bytes() for fmt, path in second.artifacts.items()} == reference


def test_verify_drops_store_entries_that_do_not_match_their_digest(store: BuildCache) -> None:
    store.put_result("collect", "k", bytes(range(256)) * 1000)  # big: kept as a file
    digest = store.put_content(bytes(range(256)) * 999)
    store.put_result("collect", "small", b"{}")
    assert corrupt_files(store.directory) == 2
    report = store.verify()
    assert {(d.kind, d.name) for d in report.damaged} == {
        ("step results", "step:collect:k"), ("generated files", f"cas:{digest}")}
    assert report.checked["step results"] == 2 and report.checked["generated files"] == 1
    assert store.get_result("collect", "small") == b"{}"
    assert store.stats().entries["step results"] == 1
    assert store.stats().entries["generated files"] == 0
