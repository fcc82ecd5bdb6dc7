"""The canonical tar stream, its chunking and its chunk-by-chunk compression."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from dataclasses import replace

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from vastbuild.archive import (
    BLOCK,
    MAX_CHUNK_BYTES,
    RECORD,
    SEGMENT,
    TARGET_CHUNK_BYTES,
    Compressor,
    Member,
    _tarfile_header,
    chunk_info,
    chunk_stream,
    compress_bytes,
    compresses,
    end_of_archive,
    gzip_member,
    header,
    normal_mode,
    plan_chunks,
    replan_chunks,
)


def file_member(name: str, data: bytes, mode: int = 0o644) -> tuple[Member, bytes]:
    return Member(name, "file", mode, len(data), hashlib.sha256(data).hexdigest()), data


CONTENTS: dict[str, bytes] = {}


def sample() -> list[Member]:
    """Members exercising every header path: long and non-ASCII names, an absolute
    name, a folder, a link, an executable, an empty file."""
    rows = [
        file_member("./config.json", b'{"name": ""}'),
        file_member("./deployment.py", b"print('hi')\n" * 100),
        (Member("./deployment", "dir", 0o755), b""),
        file_member("./deployment/" + "x" * 150 + ".py", b"long name\n"),
        file_member("./deployment/données/ünïcode.txt", "é".encode() * 700),
        file_member("./deployment/run.sh", b"#!/bin/sh\n", 0o755),
        file_member("./deployment/empty", b""),
        (Member("./deployment/link", "symlink", 0o777, linkname="run.sh"), b""),
        file_member("/app/prompts.json", b"[]"),
    ]
    for member, data in rows:
        CONTENTS[member.sha256] = data
    return [m for m, _ in rows]


def content(position: int, member: Member) -> list[bytes]:
    return [CONTENTS[member.sha256]]


def uncompressed(members: list[Member], mtime: int = 0) -> bytes:
    return b"".join(chunk_stream(members, mtime, content))


def tarfile_bytes(members: list[Member], mtime: int = 0) -> bytes:
    """The same members written by Python's tarfile (PAX), the reference."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE,
                         "symlink": tarfile.SYMTYPE}[m.type]
            info.mode, info.size, info.mtime = m.mode, m.size, mtime
            info.uname = info.gname = "root"
            info.linkname = m.linkname
            tar.addfile(info, io.BytesIO(CONTENTS[m.sha256]) if m.type == "file" else None)
    return out.getvalue()


def test_stream_is_what_tarfile_writes_for_the_same_members() -> None:
    members = sample()
    ours = uncompressed(members) + end_of_archive(len(uncompressed(members)))
    assert ours == tarfile_bytes(members)
    assert len(ours) % RECORD == 0


def test_source_date_epoch_goes_into_every_header() -> None:
    members = sample()
    data = uncompressed(members, mtime=1_700_000_000)
    data += end_of_archive(len(data))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert {m.mtime for m in tar.getmembers()} == {1_700_000_000}
    assert data == tarfile_bytes(members, mtime=1_700_000_000)


def test_headers_carry_no_time_owner_or_pax_timestamps() -> None:
    data = uncompressed(sample())
    data += end_of_archive(len(data))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "root", "root")
            assert not {"mtime", "atime", "ctime"} & set(m.pax_headers)
        names = tar.getnames()
    assert "./deployment/" + "x" * 150 + ".py" in names
    assert "./deployment/données/ünïcode.txt" in names
    assert "/app/prompts.json" in names


def test_chunk_info_names_the_bytes_without_reading_them() -> None:
    members = sample()
    info = chunk_info(members)
    assert info.size == len(uncompressed(members))
    assert info.hash_digest == info.digest and info.hash_size == info.size
    assert chunk_info(members).digest == info.digest
    # any header field or content digest changes the chunk's identity
    for index, changed in ((1, replace(members[1], mode=0o755)),
                           (1, replace(members[1], name="./other.py")),
                           (1, replace(members[1], sha256="0" * 64)),
                           (7, replace(members[7], linkname="empty"))):
        altered = list(members)
        altered[index] = changed
        assert chunk_info(altered).digest != info.digest
    assert chunk_info(members, mtime=1).digest != info.digest


def test_hash_view_replaces_filtered_content_only_for_the_hash() -> None:
    members = sample()
    filtered = replace(members[1], hash_size=5, hash_sha256=hashlib.sha256(b"short").hexdigest())
    info = chunk_info([filtered])
    plain = chunk_info([members[1]])
    assert info.digest == plain.digest and info.size == plain.size
    view = chunk_info([filtered.hash_view()])
    assert (info.hash_digest, info.hash_size) == (view.digest, view.size)
    assert info.hash_digest != plain.digest


def test_modes_are_normalised() -> None:
    assert normal_mode("file", 0o100600) == 0o644
    assert normal_mode("file", 0o100700) == 0o755
    assert normal_mode("file", 0o100641) == 0o755
    assert normal_mode("dir", 0o40700) == 0o755
    assert normal_mode("symlink", 0o120777) == 0o777


def test_end_of_archive_pads_to_a_record() -> None:
    for length in (0, BLOCK, 10 * BLOCK, RECORD - 2 * BLOCK, RECORD - BLOCK, RECORD, 12345 * BLOCK):
        tail = end_of_archive(length)
        assert len(tail) >= 2 * BLOCK and (length + len(tail)) % RECORD == 0
        assert tail == bytes(len(tail))


def many(count: int, size: int = 100) -> list[Member]:
    return sorted((Member(f"./tree/d{i % 37}/f{i:06d}", "file", 0o644, size, "0" * 64)
                   for i in range(count)), key=lambda m: m.name)


def chunk_names(members: list[Member]) -> list[tuple[str, ...]]:
    return [tuple(m.name for m in members[a:b]) for a, b in plan_chunks(members)]


def test_chunks_cover_the_members_in_order_in_about_the_target_size() -> None:
    members = many(5000, size=20_000)  # about 100 MB
    ranges = plan_chunks(members)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(members)
    assert all(a < b for a, b in ranges)
    assert all(prev[1] == cur[0] for prev, cur in zip(ranges, ranges[1:], strict=False))
    expected = 5000 * (20_000 + 1024) / TARGET_CHUNK_BYTES
    assert expected / 2 < len(ranges) < expected * 2


def test_a_size_change_moves_no_boundary_but_its_own() -> None:
    members = many(5000, size=20_000)
    before = chunk_names(members)
    for size in (10, 300_000, 5 << 20):
        changed = list(members)
        changed[2500] = replace(members[2500], size=size)
        after = chunk_names(changed)
        assert len(set(before) - set(after)) <= 2  # the member's chunk and the one before
        assert after[:len(after) // 3] == before[:len(after) // 3]


def test_adding_or_removing_a_file_changes_only_its_neighbourhood() -> None:
    members = many(5000)
    before = set(chunk_names(members))
    added = sorted([*members, Member("./tree/d5/f002500x", "file", 0o644, 10, "0" * 64)],
                   key=lambda m: m.name)
    assert len(set(chunk_names(added)) - before) <= 2
    removed = members[:1000] + members[1001:]
    assert len(set(chunk_names(removed)) - before) <= 2


@settings(max_examples=300, deadline=None)
@given(count=st.integers(1, 400),
       sizes=st.lists(st.integers(0, 3 << 20), min_size=1, max_size=400),
       changes=st.lists(st.tuples(st.integers(0, 399), st.integers(0, 12 << 20)), max_size=6))
def test_cutting_again_around_changed_sizes_is_cutting_afresh(
        count: int, sizes: list[int], changes: list[tuple[int, int]]) -> None:
    """What a patched build cuts (:func:`replan_chunks`) is what a full build cuts."""
    members = [replace(m, size=sizes[i % len(sizes)]) for i, m in enumerate(many(count))]
    before = plan_chunks(members)
    changed = {}
    for position, size in changes:
        changed[position % count] = size
    after = [replace(m, size=changed[i]) if i in changed else m
             for i, m in enumerate(members)]
    assert replan_chunks(after, before, changed) == plan_chunks(after)


def test_big_files_split_a_run() -> None:
    members = many(200, size=1 << 20)
    ranges = plan_chunks(members)
    for a, b in ranges:
        if b - a > 1:
            assert sum(BLOCK + m.size for m in members[a:b]) <= MAX_CHUNK_BYTES
    assert len(ranges) > 40


@pytest.mark.parametrize("fmt", ["gz", "zst"])
def test_concatenated_chunks_are_one_readable_archive(fmt: str) -> None:
    members = sample()
    chunks = [members[:3], members[3:6], members[6:]]
    out = io.BytesIO()
    total = 0
    for chunk in chunks:
        info = chunk_info(chunk)
        compressor = Compressor(fmt, 2 if fmt == "gz" else 3, info.size, out)
        for piece in chunk_stream(chunk, 0, content):
            compressor.feed(piece)
        compressor.finish()
        total += info.size
    compress_bytes(fmt, 2 if fmt == "gz" else 3, end_of_archive(total), out)
    data = out.getvalue()
    if fmt == "gz":
        plain = gzip.decompress(data)
    else:
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data),
                                                            read_across_frames=True)
        plain = reader.read()
    assert plain == tarfile_bytes(members)
    if fmt == "gz":
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            assert len(tar.getmembers()) == len(members)
    elif shutil.which("zstd"):
        result = subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True)
        assert result.stdout == plain


def test_gzip_members_carry_no_name_and_no_time() -> None:
    out = io.BytesIO()
    compress_bytes("gz", 2, b"x" * 5000, out)
    data = out.getvalue()
    assert data[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    assert gzip.decompress(data) == b"x" * 5000


@pytest.mark.parametrize("fmt", ["gz", "zst"])
def test_compression_is_deterministic(fmt: str) -> None:
    data = b"".join(hashlib.sha256(str(i).encode()).hexdigest().encode() for i in range(100_000))
    a, b = io.BytesIO(), io.BytesIO()
    compress_bytes(fmt, 2 if fmt == "gz" else 3, data, a)
    compress_bytes(fmt, 2 if fmt == "gz" else 3, data, b)
    assert a.getvalue() == b.getvalue()


def test_headers_are_pinned_across_python_versions() -> None:
    """The content hash covers header bytes, so they must not drift with Python:
    this digest is what CPython 3.10 to 3.13 write for these members."""
    from vastbuild.archive import header

    cases = [Member("./config.json", "file", 0o644, 12), Member("./deployment", "dir", 0o755),
             Member("./d/" + "x" * 150, "file", 0o755, 99),
             Member("/app/ünï.txt", "file", 0o644, 5),
             Member("./l", "symlink", 0o777, linkname="t" * 120),
             Member("./big", "file", 0o644, 9 << 30),
             Member("./bad\udcffname", "file", 0o644, 1), Member("./" + "a" * 99, "file", 0o644, 1)]
    h = hashlib.sha256()
    for member in cases:
        for mtime in (0, 1_700_000_000):
            h.update(header(member, mtime))
    assert h.hexdigest() == "6ffb9ebf10831ccd5c88c3feb2c9691a6f9add2e3f424e2ad36edfd6ca3bb207"


NAME_CHARS = st.sampled_from(list("abcXYZ019._-/") + ["é", "\udcff", " "])


@settings(max_examples=2000, deadline=None)
@given(name=st.text(NAME_CHARS, min_size=1, max_size=160),
       kind=st.sampled_from(["file", "dir", "symlink"]),
       link=st.text(NAME_CHARS, max_size=120),
       size=st.sampled_from([0, 1, 511, 512, 10**6, 8**11 - 1, 8**11]),
       mode=st.sampled_from([0o644, 0o755, 0o777]),
       mtime=st.sampled_from([0, 1_700_000_000, 8**11 - 1]))
def test_headers_are_what_tarfile_writes(name: str, kind: str, link: str, size: int, mode: int,
                                         mtime: int) -> None:
    """The headers built directly are tarfile's, byte for byte (and tarfile's own are
    used where a pax record is needed)."""
    member = Member("./" + name, kind, mode, size if kind == "file" else 0, "0" * 64,  # type: ignore[arg-type]
                    link if kind == "symlink" else "")
    assert header(member, mtime) == _tarfile_header(member, mtime)


MIXED = [b"", b"x", b"text " * 300_000, os.urandom(1 << 20), os.urandom(65535 * 3),
         os.urandom(70_000) + b"a" * 70_000, b"a" * 70_000 + os.urandom(70_000),
         b"".join(os.urandom(40_000) + b"text " * 20_000 for _ in range(5)),
         os.urandom(SEGMENT) + b"a" * SEGMENT + os.urandom(SEGMENT)]


@pytest.mark.parametrize("data", MIXED)
def test_gzip_members_are_standard_and_store_what_does_not_compress(data: bytes) -> None:
    member = gzip_member(data, 2)
    assert gzip.decompress(member) == data
    assert subprocess.run(["gzip", "-t"], input=member).returncode == 0
    segments = [data[i:i + SEGMENT] for i in range(0, len(data), SEGMENT)]
    stored = [s for s in segments if not compresses(s)]
    # a stored segment costs 5 bytes a block (two blocks a segment at most), as
    # does the empty block ending a stream of stored segments
    overhead = 18 + 5 + 10 * len(stored)
    if len(stored) == len(segments):
        assert len(member) <= len(data) + overhead
    else:
        compressed = len(data) - sum(len(s) for s in stored)
        assert len(member) < len(data) - compressed // 2 + overhead
    assert gzip_member(data, 2) == member  # a function of the bytes
