"""The content hash, the component hashes and the !VAST_IGNORE_CHANGES filter."""

from __future__ import annotations

import pytest

from vastbuild.api import is_content_hash
from vastbuild.archive import ChunkInfo, Member
from vastbuild.hashing import (
    COMPONENTS,
    component_hashes,
    content_hash,
    filter_ignored_lines,
    manifest,
)

A = ChunkInfo("a" * 64, 1024, "a" * 64, 1024)
B = ChunkInfo("b" * 64, 2048, "b" * 64, 2048)


def test_content_hash_depends_on_chunks_their_order_and_lengths() -> None:
    h = content_hash([A, B])
    assert is_content_hash(h)
    assert content_hash([A, B]) == h
    assert content_hash([B, A]) != h
    assert content_hash([A]) != h
    assert content_hash([A, ChunkInfo("b" * 64, 2560, "b" * 64, 2560)]) != h


def test_content_hash_uses_the_hash_view_of_a_chunk() -> None:
    filtered = ChunkInfo("c" * 64, 1536, "a" * 64, 1024)
    assert content_hash([filtered, B]) == content_hash([A, B])


@pytest.mark.parametrize("text", ["", "0" * 63, "g" * 64, "0" * 65, "sha256:" + "0" * 57])
def test_malformed_hashes_are_recognised(text: str) -> None:
    assert not is_content_hash(text)


def test_marked_lines_are_left_out() -> None:
    source = (b"import os\n"
              b"DEBUG = True  # !VAST_IGNORE_CHANGES\n"
              b"LEVEL = 3 #!VAST_IGNORE_CHANGES   \n"
              b"x = 1\n")
    assert filter_ignored_lines(source) == b"import os\nx = 1\n"


@pytest.mark.parametrize("source", [
    b"s = '# !VAST_IGNORE_CHANGES'\n",
    b'doc = """\n# !VAST_IGNORE_CHANGES\n"""\n',
    b"x = 1  # !VAST_IGNORE_CHANGES please\n",
    b"x = 1  # see !VAST_IGNORE_CHANGES\n",
    b"no marker here\n",
])
def test_marker_only_counts_as_the_whole_comment(source: bytes) -> None:
    assert filter_ignored_lines(source) == source


def test_source_the_tokenizer_cannot_read_is_kept_whole() -> None:
    source = b"x = (  # !VAST_IGNORE_CHANGES\n"
    assert filter_ignored_lines(source) == source


def test_source_that_is_not_utf8_is_hashed_whole() -> None:
    source = b"a = 1  # !VAST_IGNORE_CHANGES\n\xbb\xff\n"
    assert filter_ignored_lines(source) == source


def test_crlf_lines_are_filtered_too() -> None:
    source = b"a = 1\r\nb = 2  # !VAST_IGNORE_CHANGES\r\nc = 3\r\n"
    assert filter_ignored_lines(source) == b"a = 1\r\nc = 3\r\n"


BASE = dict(
    config=b'{"name": "x"}',
    code=[Member("./deployment.py", "file", 0o644, 3, "1" * 64)],
    copies=[("/app/lib", [Member("/app/lib", "dir", 0o755),
                          Member("/app/lib/a.py", "file", 0o644, 3, "2" * 64)])],
    requirements={"pip": ["torch"], "apt": [], "files": []},
    image={"image": "img", "storage": 50, "env": "-p 3000:3000/tcp"},
    search="verified=true",
    autoscale={"settings": {"max_workers": 4}, "ttl": None, "version_label": None},
    tag={"name": "x", "tag": "default"},
)

CHANGES = {
    "config": b'{"name": "y"}',
    "code": [Member("./deployment.py", "file", 0o755, 3, "1" * 64)],
    "copies": [("/app/lib2", BASE["copies"][0][1])],
    "requirements": {"pip": ["torch", "numpy"], "apt": [], "files": []},
    "image": {"image": "img2", "storage": 50, "env": "-p 3000:3000/tcp"},
    "search": "verified=false",
    "autoscale": {"settings": {"max_workers": 5}, "ttl": None, "version_label": None},
    "tag": {"name": "x", "tag": "prod"},
}


def test_components_are_all_there() -> None:
    assert tuple(component_hashes(**BASE)) == COMPONENTS


@pytest.mark.parametrize("component", COMPONENTS)
def test_a_change_moves_only_its_component(component: str) -> None:
    before = component_hashes(**BASE)
    after = component_hashes(**{**BASE, component: CHANGES[component]})
    assert {name for name in COMPONENTS if before[name] != after[name]} == {component}


def test_manifest_spells_members_as_the_hash_sees_them() -> None:
    members = [Member("./deployment.py", "file", 0o644, 3, "1" * 64, hash_size=1,
                      hash_sha256="9" * 64),
               Member("/app", "dir", 0o755), Member("/app/l", "symlink", 0o777, linkname="x"),
               Member("/app/run", "file", 0o755, 1, "3" * 64)]
    assert manifest(members) == {
        "./deployment.py": "file 0644 " + "9" * 64,
        "/app": "dir 0755",
        "/app/l": "symlink x",
        "/app/run": "file 0755 " + "3" * 64,
    }
