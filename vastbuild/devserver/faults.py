"""Fault injection: make the next N requests to a route fail the way a real service can.

Clients must survive a flaky API; their tests need a real server that misbehaves
on cue. A fault is armed through the admin route (``POST /_dev/faults``, see
docs/dev-server.md) and fires on the next ``count`` requests whose
``"METHOD /path"`` matches its ``route`` pattern (shell-style ``*``; trailing
slashes do not matter):

- ``error``: answer ``status`` (default 500) without doing anything;
- ``throttle``: answer 429 with ``Retry-After: retry_after`` (seconds, default 1);
- ``reset``: read ``after_bytes`` of the request body, then reset the connection;
- ``search_quota``: answer 429 ``search_quota_exceeded`` with ``X-RateLimit-Reset``
  (the next UTC midnight, in epoch seconds), as Vast's daily offer-search quota does;
- ``expired_url``: do the work, but issue upload or download URLs that have
  already expired (for ``PUT /api/v0/deployments/`` and ``.../download_url/``).
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import asdict, dataclass
from typing import Any

ERROR = "error"
THROTTLE = "throttle"
RESET = "reset"
EXPIRED_URL = "expired_url"
SEARCH_QUOTA = "search_quota"
KINDS = (ERROR, THROTTLE, RESET, EXPIRED_URL, SEARCH_QUOTA)
#: The faults that replace the answer; ``expired_url`` changes the answer instead.
SHORT_CIRCUIT_KINDS = (ERROR, THROTTLE, RESET, SEARCH_QUOTA)
#: Vast's search quota is daily and resets at midnight UTC.
_DAY = 86_400


@dataclass
class Fault:
    route: str
    kind: str
    count: int = 1
    status: int = 500
    retry_after: int = 1
    after_bytes: int = 16384

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_fault(body: Any) -> Fault:
    """A fault from the admin route's JSON body; ValueError says what is wrong."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    unknown = sorted(set(body) - set(Fault.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(unknown)}")
    route, kind = body.get("route"), body.get("kind")
    if not isinstance(route, str) or " " not in route.strip():
        raise ValueError("'route' must be 'METHOD /path' (for example 'PUT /api/v0/deployments/'"
                         " or 'POST /blobs/*')")
    if kind not in KINDS:
        raise ValueError(f"'kind' must be one of: {', '.join(KINDS)}")
    numbers = {name: body.get(name, default) for name, default in
               (("count", 1), ("status", 500), ("retry_after", 1), ("after_bytes", 16384))}
    for name, value in numbers.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"'{name}' must be a whole number >= 0")
    if numbers["count"] == 0:
        raise ValueError("'count' must be at least 1")
    if not 400 <= numbers["status"] <= 599:
        raise ValueError("'status' must be an HTTP error status (400-599)")
    return Fault(route=_normalise(route), kind=kind, **numbers)


def quota_reset(now: float) -> int:
    """When a daily quota exhausted at ``now`` resets: the next midnight UTC, epoch seconds."""
    return (int(now) // _DAY + 1) * _DAY


def _normalise(route: str) -> str:
    method, _, path = route.strip().partition(" ")
    return f"{method.upper()} {path.strip().rstrip('/') or '/'}"


class FaultBook:
    """The armed faults; request threads take from it concurrently."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def arm(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, path: str, kinds: tuple[str, ...]) -> Fault | None:
        """Use up one firing of the first armed fault of ``kinds`` matching the request."""
        request = _normalise(f"{method} {path}")
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and fnmatch.fnmatchcase(request, fault.route):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def armed(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
