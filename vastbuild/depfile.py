"""Make depfiles: every input of a target, for ``include``-ing into a Makefile.

``vastbuild deps`` writes ``OUT: input...`` and, as ``gcc -MP`` does, an empty
rule per input so that deleting an input rebuilds the target instead of
stopping make. Folders are listed too: adding or removing a file changes a
folder's mtime, which is how make can notice a new file in a COPY.
"""

from __future__ import annotations

from collections.abc import Iterable


def escape(path: str) -> str:
    """``path`` as a make word: spaces, ``#``, ``:`` and ``\\`` escaped, ``$`` doubled."""
    out = []
    for char in path:
        if char == "$":
            out.append("$$")
        elif char in " \t#:\\":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def render(target: str, inputs: Iterable[str]) -> str:
    """The depfile text for ``target`` and its ``inputs`` (duplicates dropped, order kept)."""
    unique = [escape(p) for p in dict.fromkeys(inputs)]
    lines = [escape(target) + ":" + "".join(f" \\\n  {p}" for p in unique), ""]
    lines += [f"{p}:" for p in unique]
    return "\n".join(lines) + "\n"
