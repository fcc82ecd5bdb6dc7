"""Helpers shared by the example deployments (copied to /app/lib/common)."""

from .timing import Stopwatch

__all__ = ["Stopwatch"]
