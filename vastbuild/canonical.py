"""JSON values, and the one byte spelling that keys and digests are taken over.

Step keys, step ids, component hashes and cached results are all digests of
JSON. Two spellings of one value (key order, white space, escapes) would give
two digests, so every digest in vastbuild is taken over :func:`canonical_json`.
"""

from __future__ import annotations

import json
from typing import TypeAlias

JsonValue: TypeAlias = "None | bool | int | float | str | list[JsonValue] | dict[str, JsonValue]"


def canonical_json(value: JsonValue) -> bytes:
    """Sorted keys, no white space, ASCII escapes: equal values give equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
