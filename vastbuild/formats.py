"""The artifact formats and their file names, apart from the code that writes them
(so that naming an artifact imports no compressor)."""

from __future__ import annotations

from typing import Literal

#: gz is what Vast's workers take; zst is vastbuild's own
Format = Literal["gz", "zst"]
FORMATS: tuple[Format, ...] = ("gz", "zst")
#: the artifact of a deployment NAME in a format is NAME + suffix
SUFFIXES: dict[str, str] = {"gz": ".tar.gz", "zst": ".tar.zst"}
