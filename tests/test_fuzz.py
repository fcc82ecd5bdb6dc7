"""Property tests: whatever bytes come in, the parser, the checker and the formatter
answer with a tree, a model or diagnostics -- never an exception.

The inputs and the answer each must get are in tests/fuzz_helpers.py, shared
with ``make fuzz`` (scripts/fuzz.py), which runs ten times as many with a time
limit each. Here the run is derandomized (same examples every time, no example
database), so CI is reproducible; 10,000 examples take about twenty seconds.
"""

from __future__ import annotations

from pathlib import Path

from fuzz_helpers import assert_answers, case
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

settings.register_profile(
    "vastbuild-fuzz", max_examples=10_000, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings.get_profile("vastbuild-fuzz")

cases = st.integers(0, 2**64 - 1).map(case)


def test_any_input_gets_an_answer() -> None:
    """At least 10,000 inputs, counted: a model or diagnostics, never an exception."""
    seen = []

    @FUZZ
    @given(cases)
    def answers(drawn: tuple[Path, bytes]) -> None:
        seen.append(None)
        note(f"source: {drawn[1]!r}")
        assert_answers(*drawn)

    answers()
    assert len(seen) >= 10_000
