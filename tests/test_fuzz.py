"""Property tests: whatever bytes come in, the parser, the checker and the formatter
answer with a tree, a model or diagnostics -- never an exception.

Inputs are the example Vastfiles mutated at the byte, line and word level, and
Vastfiles assembled from directive keywords and troublesome words. The run is
derandomized (same examples every time, no example database), so CI is
reproducible; 10,000 examples take a few seconds.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fmt import meaning

from vastbuild.check import check
from vastbuild.diagnostics import Diagnostic, DiagnosticError, has_errors
from vastbuild.fmt import format_source, format_vastfile
from vastbuild.model import Deployment
from vastbuild.syntax import DIRECTIVE_KEYWORDS, SYNTAX_CODES, parse

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [ROOT / "Vastfile.example", *sorted((ROOT / "examples").glob("*/Vastfile"))]
SOURCES = [(path, path.read_bytes()) for path in EXAMPLES]

settings.register_profile(
    "vastbuild-fuzz", max_examples=10_000, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ = settings.get_profile("vastbuild-fuzz")

#: Pieces that stress the lexer and the grammar.
TRICKY = [
    b'"', b"'", b"\\", b"\\\n", b"\\\r\n", b"#", b" #", b" # c", b"[", b"]", b",", b"=", b"==",
    b"=>", b"!=", b"<", b">=", b"in", b"IN", b"not in", b"NOTIN", b"AND", b"and", b" ", b"\t",
    b"\r", b"\n", b"\r\n", b"\x00", b"\x07", b"\x7f", b"\xff", b"\xc3", b"\xe2\x82",
    "é".encode(), "\u2028".encode(), b"\xef\xbb\xbf", b"STORAGE", b"storage", b"-r", b'["a"',
    b'["a", 1]', b'["a", "b"]', b"[]", b'"x y"', b"'x y'", b'"\\q"', b'"\\""', b"A=", b"A=b",
    b'A="b c"', b"48GB", b"RTX_4090", b"-1", b"true", b"x" * 300,
    *(k.encode() for k in DIRECTIVE_KEYWORDS), b"FORM", b"from", b"Require", b"FR\tOM",
]
WORDS = [b"app.py", b"/app/x", b"gpu_ram", b"gpu_name", b"cold_workers=2", b"80", b"img:tag",
         b"../lib", b"[A, B]", b"[RTX_4090]", *TRICKY]


def _mutate_bytes(draw: st.DrawFn, source: bytes) -> bytes:
    kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
    at = draw(st.integers(0, len(source)))
    if kind == "insert":
        return source[:at] + draw(st.sampled_from(TRICKY)) + source[at:]
    length = draw(st.integers(1, 8))
    if kind == "delete":
        return source[:at] + source[at + length:]
    if kind == "replace":
        return source[:at] + bytes([draw(st.integers(0, 255))]) + source[at + 1:]
    return source[:at] + source[at:at + length] * 2 + source[at + length:]


def _mutate_lines(draw: st.DrawFn, source: bytes) -> bytes:
    lines = source.split(b"\n")
    i = draw(st.integers(0, len(lines) - 1))
    j = draw(st.integers(0, len(lines) - 1))
    kind = draw(st.sampled_from(["delete", "duplicate", "swap", "join", "indent"]))
    if kind == "delete":
        del lines[i]
    elif kind == "duplicate":
        lines.insert(j, lines[i])
    elif kind == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "join":
        lines[i] += draw(st.sampled_from([b" \\", b"\\", b" \\  # c", b" \\\r"]))
    else:
        lines[i] = draw(st.sampled_from([b" ", b"\t", b"  \\\n  "])) + lines[i]
    return b"\n".join(lines)


def _mutate_words(draw: st.DrawFn, source: bytes) -> bytes:
    words = list(re.finditer(rb"\S+", source))
    if not words:
        return source + draw(st.sampled_from(WORDS))
    word = draw(st.sampled_from(words))
    kind = draw(st.sampled_from(["replace", "lower", "glue", "drop"]))
    if kind == "replace":
        new = draw(st.sampled_from(WORDS))
    elif kind == "lower":
        new = word.group().lower()
    elif kind == "glue":
        new = word.group() + draw(st.sampled_from(TRICKY))
    else:
        new = b""
    return source[:word.start()] + new + source[word.end():]


@st.composite
def mutated_examples(draw: st.DrawFn) -> tuple[Path, bytes]:
    path, source = draw(st.sampled_from(SOURCES))
    for _ in range(draw(st.integers(1, 4))):
        mutate = draw(st.sampled_from([_mutate_bytes, _mutate_lines, _mutate_words]))
        source = mutate(draw, source)
    return path, source


@st.composite
def random_vastfiles(draw: st.DrawFn) -> tuple[Path, bytes]:
    lines = []
    for _ in range(draw(st.integers(0, 10))):
        keyword = draw(st.sampled_from([k.encode() for k in DIRECTIVE_KEYWORDS] + [
            b"from", b"Run", b"MYPLUGIN", b"#", b""]))
        args = draw(st.lists(st.one_of(
            st.sampled_from(WORDS),
            st.text(max_size=6).map(lambda text: text.encode("utf-8"))), max_size=6))
        separator = draw(st.sampled_from([b" ", b"\t", b"  ", b" \\\n  "]))
        lines.append(separator.join([keyword, *args]))
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    return EXAMPLES[0], ending.join(lines) + draw(st.sampled_from([b"", ending]))


def _assert_answers(path: Path, source: bytes) -> None:
    tree, diagnostics = parse(source, "Vastfile")
    line_count = source.count(b"\n") + 1
    for d in diagnostics:
        assert isinstance(d, Diagnostic) and d.code in SYNTAX_CODES and d.help
        assert 1 <= d.span.line <= d.span.end_line <= line_count, d
        assert d.span.col >= 1 and (d.span.end_line, d.span.end_col) >= (d.span.line, d.span.col)
    if tree is None:
        assert has_errors(diagnostics)
        return
    model, problems = check(tree, path)
    assert model is None or isinstance(model, Deployment)
    assert all(isinstance(d, Diagnostic) for d in problems)
    if model is None:
        assert has_errors(problems)

    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError:
        return
    try:
        formatted = format_source(text, "Vastfile")
    except DiagnosticError as exc:
        assert has_errors(diagnostics) and has_errors(exc.diagnostics)
        return
    assert not has_errors(diagnostics)
    again, again_diagnostics = parse(formatted, "Vastfile")
    assert again is not None and not has_errors(again_diagnostics), formatted
    assert meaning(again) == meaning(tree), formatted
    assert format_vastfile(again) == formatted, "the formatter is idempotent"


@FUZZ
@given(mutated_examples() | random_vastfiles())
def test_any_input_gets_an_answer(case: tuple[Path, bytes]) -> None:
    _assert_answers(*case)
