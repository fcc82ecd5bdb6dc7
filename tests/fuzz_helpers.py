"""Fuzz inputs for the parser, the checker and the formatter, and what each must answer.

Shared by the CI property test (tests/test_fuzz.py, 10,000 inputs drawn by
Hypothesis) and the dedicated run (scripts/fuzz.py, ``make fuzz``, 100,000
inputs with a time limit each), so both draw from one corpus and hold the
parser to one standard. An input is a function of one integer (:func:`case`),
so a failure is reproduced from its seed alone.

Inputs are the example Vastfiles mutated at the byte, line and word level, and
Vastfiles assembled from directive keywords and troublesome words.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from test_fmt import meaning

from vastbuild import nodes
from vastbuild.check import check
from vastbuild.diagnostics import Diagnostic, DiagnosticError, has_errors
from vastbuild.directives import BUILTIN_KEYWORDS
from vastbuild.fmt import format_source, format_vastfile
from vastbuild.model import DEFAULT_TAG, Deployment
from vastbuild.syntax import SYNTAX_CODES, parse

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [ROOT / "Vastfile.example", *sorted((ROOT / "examples").glob("*/Vastfile"))]
SOURCES = [(path, path.read_bytes()) for path in EXAMPLES]

#: Pieces that stress the lexer and the grammar.
TRICKY = [
    b'"', b"'", b"\\", b"\\\n", b"\\\r\n", b"#", b" #", b" # c", b"[", b"]", b",", b"=", b"==",
    b"=>", b"!=", b"<", b">=", b"in", b"IN", b"not in", b"NOTIN", b"AND", b"and", b" ", b"\t",
    b"\r", b"\n", b"\r\n", b"\x00", b"\x07", b"\x7f", b"\xff", b"\xc3", b"\xe2\x82",
    "é".encode(), "\u2028".encode(), b"\xef\xbb\xbf", b"STORAGE", b"storage", b"-r", b'["a"',
    b'["a", 1]', b'["a", "b"]', b"[]", b'"x y"', b"'x y'", b'"\\q"', b'"\\""', b"A=", b"A=b",
    b'A="b c"', b"48GB", b"RTX_4090", b"-1", b"true", b"x" * 300,
    *(k.encode() for k in BUILTIN_KEYWORDS), b"FORM", b"from", b"Require", b"FR\tOM",
]
WORDS = [b"app.py", b"/app/x", b"gpu_ram", b"gpu_name", b"cold_workers=2", b"80", b"img:tag",
         b"../lib", b"[A, B]", b"[RTX_4090]", *TRICKY]


KINDS = ["insert", "delete", "replace", "duplicate", "line delete", "line duplicate",
         "line swap", "line continue", "line indent", "word replace", "word lower",
         "word glue", "word drop"]
KEYWORDS = [k.encode() for k in BUILTIN_KEYWORDS] + [b"from", b"Run", b"MYPLUGIN", b"#", b""]
#: Code points for random words: ASCII, controls, Latin-1, the rest of the BMP (no
#: surrogates: a str holding one cannot be a file), and astral planes.
CODE_POINTS = [(0x20, 0x7E), (0x00, 0x1F), (0x80, 0xFF), (0x100, 0xD7FF), (0xE000, 0xFFFF),
               (0x10000, 0x10FFFF)]


def _mutate(source: bytes, rng: random.Random) -> bytes:
    """One random edit: of bytes, of whole lines, or of a whitespace-separated word."""
    kind = rng.choice(KINDS)
    first, second = rng.randrange(1 << 16), rng.randrange(1 << 16)
    at = first % (len(source) + 1)
    length = second % 8 + 1
    if kind == "insert":
        return source[:at] + rng.choice(TRICKY) + source[at:]
    if kind == "delete":
        return source[:at] + source[at + length:]
    if kind == "replace":
        return source[:at] + bytes([rng.randrange(256)]) + source[at + 1:]
    if kind == "duplicate":
        return source[:at] + source[at:at + length] * 2 + source[at + length:]
    if kind.startswith("line "):
        lines = source.split(b"\n")
        i, j = first % len(lines), second % len(lines)
        if kind == "line delete":
            del lines[i]
        elif kind == "line duplicate":
            lines.insert(j, lines[i])
        elif kind == "line swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "line continue":
            lines[i] += rng.choice([b" \\", b"\\", b" \\  # c", b" \\\r"])
        else:
            lines[i] = rng.choice([b" ", b"\t", b"  \\\n  "]) + lines[i]
        return b"\n".join(lines)
    words = list(re.finditer(rb"\S+", source))
    if not words:
        return source + rng.choice(WORDS)
    found = words[first % len(words)]
    new = {"word replace": rng.choice(WORDS), "word lower": found.group().lower(),
           "word glue": found.group() + rng.choice(TRICKY), "word drop": b""}[kind]
    return source[:found.start()] + new + source[found.end():]


def _random_word(rng: random.Random) -> bytes:
    if rng.random() < 0.7:
        return rng.choice(WORDS)
    low_high = [rng.choice(CODE_POINTS) for _ in range(rng.randint(1, 6))]
    return "".join(chr(rng.randint(low, high)) for low, high in low_high).encode()


def _random_vastfile(rng: random.Random) -> bytes:
    ending = rng.choice([b"\n", b"\r\n"])
    lines = [rng.choice([b" ", b"\t", b"  ", b" \\\n  "]).join(
                 [rng.choice(KEYWORDS), *(_random_word(rng) for _ in range(rng.randint(0, 6)))])
             for _ in range(rng.randint(0, 10))]
    return ending.join(lines) + rng.choice([b"", ending])


def case(seed: int) -> tuple[Path, bytes]:
    """The input of ``seed``: the Vastfile it is checked as, and its bytes.

    Hypothesis draws one integer per example and a seeded generator does the rest:
    drawing every byte through Hypothesis would cost more than the parser, the
    checker and the formatter together (10,000 examples must stay fast), and its
    bias towards small numbers would pick the first example far too often."""
    rng = random.Random(seed)
    if rng.random() < 0.5:
        return EXAMPLES[0], _random_vastfile(rng)
    path, source = rng.choice(SOURCES)
    for _ in range(rng.randint(1, 4)):
        source = _mutate(source, rng)
    return path, source


def _assert_model_is_the_files(model: Deployment, tree: nodes.Vastfile, path: Path) -> None:
    """The model names what the file says: FROM's image, DEPLOYMENT's name (else CODE's
    stem), TAG (else the default), and the file it was read from."""
    assert isinstance(model, Deployment)
    directives = tree.directives
    image = next(d for d in directives if isinstance(d, nodes.From))
    named = next((d for d in directives if isinstance(d, nodes.DeploymentName)), None)
    tag = next((d for d in directives if isinstance(d, nodes.Tag)), None)
    assert model.image == image.image.text != ""
    if named is not None:
        assert model.name == model.config_name == named.name.text != ""
    else:
        stem = model.code.path.stem if model.code.path.suffix == ".py" else model.code.path.name
        assert (model.name, model.config_name) == (stem, "")
    assert model.tag == (tag.tag.text if tag is not None else DEFAULT_TAG) != ""
    assert model.vastfile == path.resolve()


def assert_answers(path: Path, source: bytes) -> None:
    """``source`` (checked as the Vastfile ``path``) gets an answer: a tree or syntax
    diagnostics with sane spans, then a model exactly when the checker finds no error,
    and, for UTF-8 text that parses, a formatting that parses to the same meaning and
    is its own formatting. Raises AssertionError (or what the code under test raised)."""
    tree, diagnostics = parse(source, "Vastfile")
    line_count = source.count(b"\n") + 1
    for d in diagnostics:
        assert isinstance(d, Diagnostic) and d.code in SYNTAX_CODES and d.help
        assert d.span is not None, d
        assert 1 <= d.span.line <= d.span.end_line <= line_count, d
        assert d.span.col >= 1 and (d.span.end_line, d.span.end_col) >= (d.span.line, d.span.col)
    if tree is None:
        assert has_errors(diagnostics)
        return
    model, problems = check(tree, path)
    assert all(isinstance(d, Diagnostic) for d in problems)
    assert (model is None) == has_errors(problems), problems  # a model exactly when no error
    if model is not None:
        _assert_model_is_the_files(model, tree, path)

    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError:
        return
    if has_errors(diagnostics):
        try:
            format_source(text, "Vastfile")
        except DiagnosticError:
            return
        raise AssertionError("a source with syntax errors was formatted")
    formatted = format_vastfile(tree)
    again, again_diagnostics = parse(formatted, "Vastfile")
    assert again is not None and not has_errors(again_diagnostics), formatted
    assert meaning(again) == meaning(tree), formatted
    assert format_vastfile(again) == formatted, "the formatter is idempotent"
