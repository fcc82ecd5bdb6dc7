"""The content hash of a deployment, its component hashes, and the SDK's ignore marker.

The content hash (``vastbuild hash``, ``file_hash`` on the wire) names the
tarball by the ordered digests of its chunks and the tar framing, never by
compressed bytes: it is the same with any compressor, level or machine, and a
warm cache computes it without reading a file. Component hashes split the same
inputs by what they change on a live deployment (code, copies, requirements,
config, image, search, autoscale, tag), so that ``plan`` can name the update
tier and its reasons.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Sequence

from vastbuild.archive import ChunkInfo, Member, end_of_archive
from vastbuild.canonical import JsonValue, canonical_json

#: domain tags: bump when a definition changes, so old and new hashes never meet
CONTENT_TAG = b"vastbuild content hash v2\n"
COMPONENT_TAG = b"vastbuild component v1\n"

#: the comment the vastai SDK's users mark "do not redeploy for this line" with
IGNORE_MARKER = "!VAST_IGNORE_CHANGES"
COMPONENTS = ("code", "copies", "requirements", "config", "image", "search", "autoscale", "tag")


def content_hash(chunks: Iterable[ChunkInfo]) -> str:
    """SHA-256 over a versioned tag, each chunk's digest and length in order, and the
    length of the end-of-archive blocks: the identity of the uncompressed tarball."""
    h = hashlib.sha256(CONTENT_TAG)
    total = 0
    for chunk in chunks:
        h.update(bytes.fromhex(chunk.hash_digest))
        h.update(chunk.hash_size.to_bytes(8, "big"))
        total += chunk.hash_size
    h.update(b"end")
    h.update(len(end_of_archive(total)).to_bytes(8, "big"))
    return h.hexdigest()


def filter_ignored_lines(data: bytes) -> bytes:
    """``data`` (Python source) without the lines whose comment is exactly
    ``!VAST_IGNORE_CHANGES`` (after ``#`` and surrounding blanks).

    Python's own tokenizer finds the comments, so a marker inside a string is not
    one. Source the tokenizer cannot read (broken syntax, bytes that are not in its
    encoding) is returned whole: a deterministic answer for a file the worker could
    not import anyway.
    """
    if IGNORE_MARKER.encode() not in data:
        return data
    import tokenize

    marked: set[int] = set()
    try:
        for token in tokenize.tokenize(io.BytesIO(data).readline):
            if token.type == tokenize.COMMENT and token.string[1:].strip() == IGNORE_MARKER:
                marked.add(token.start[0])
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError):
        return data
    if not marked:
        return data
    lines = data.split(b"\n")
    return b"\n".join(line for number, line in enumerate(lines, 1) if number not in marked)


def manifest_entry(member: Member) -> str:
    """How the per-file manifest spells a member, as the content hash sees it:
    ``file 0644 <sha256>``, ``dir 0755``, ``symlink <target>``."""
    if member.type == "file":
        sha = member.sha256 if member.hash_sha256 is None else member.hash_sha256
        return f"file {member.mode:04o} {sha}"
    if member.type == "dir":
        return f"dir {member.mode:04o}"
    return f"symlink {member.linkname}"


def manifest(members: Iterable[Member]) -> dict[str, str]:
    """Archive name -> :func:`manifest_entry` for every member, in archive order."""
    return {m.name: manifest_entry(m) for m in members}


def _component(name: str, value: JsonValue) -> str:
    h = hashlib.sha256(COMPONENT_TAG)
    h.update(name.encode() + b"\n")
    h.update(canonical_json(value))
    return h.hexdigest()


def _tree(members: Sequence[Member]) -> list[JsonValue]:
    return [f"{m.name}\0{manifest_entry(m)}" for m in members]


def code_and_copies(trees: Iterable[tuple[str, str, Sequence[Member]]],
                    ) -> tuple[list[Member], list[tuple[str, Sequence[Member]]]]:
    """What :func:`component_hashes` takes as ``code`` and ``copies`` from a target's
    trees, each ``(role, arcroot, members)`` in archive order: the CODE tree's
    members, then each COPY by destination and each plugin's files by step name."""
    listed = list(trees)
    code = [m for role, _, members in listed if role == "code" for m in members]
    copies = [(root, members) for role, root, members in listed if role == "copy"]
    copies += [(f"plugin {root}", members) for role, root, members in listed
               if role == "plugin"]
    return code, copies


def tree_components(code: Sequence[Member],
                    copies: Sequence[tuple[str, Sequence[Member]]]) -> dict[str, str]:
    """The two components files make: ``code`` and ``copies``."""
    return {"code": _component("code", _tree(code)),
            "copies": _component("copies", [[dst, _tree(members)] for dst, members in copies])}


def component_hashes(
    *,
    config: bytes,
    code: Sequence[Member],
    copies: Sequence[tuple[str, Sequence[Member]]],
    requirements: dict[str, JsonValue],
    image: dict[str, JsonValue],
    search: str,
    autoscale: dict[str, JsonValue],
    tag: dict[str, JsonValue],
) -> dict[str, str]:
    """One hash per component, each over a canonical JSON of what it covers.

    ``copies`` pairs each COPY's destination with its members (plugin outputs come
    last, named by their step); ``requirements``, ``image``, ``autoscale`` and
    ``tag`` are the small values the caller gathered from the model and wire.
    """
    return {
        **tree_components(code, copies),
        "requirements": _component("requirements", requirements),
        "config": _component("config", hashlib.sha256(config).hexdigest()),
        "image": _component("image", image),
        "search": _component("search", search),
        "autoscale": _component("autoscale", autoscale),
        "tag": _component("tag", tag),
    }
