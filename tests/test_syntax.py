"""The Vastfile parser: every directive, the lexical rules, and every syntax error code
with its exact position."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vastbuild import nodes
from vastbuild.diagnostics import Diagnostic, render
from vastbuild.directives import BUILTIN_KEYWORDS, BY_KEYWORD
from vastbuild.syntax import SYNTAX_CODES, parse

ROOT = Path(__file__).resolve().parent.parent


def at(span) -> tuple[int, int, int, int]:
    return (span.line, span.col, span.end_line, span.end_col)


def word(w: nodes.Word) -> tuple[str, str, str]:
    return (w.text, w.raw, w.quote)


def parsed(source: str | bytes) -> nodes.Vastfile:
    tree, diagnostics = parse(source, "Vastfile")
    assert diagnostics == [], [render(d) for d in diagnostics]
    assert tree is not None
    return tree


def only(source: str | bytes) -> nodes.Directive:
    (directive,) = parsed(source).directives
    return directive


def errors(source: str | bytes) -> list[Diagnostic]:
    _, diagnostics = parse(source, "Vastfile")
    assert diagnostics, "expected a syntax error"
    return diagnostics


def one_error(source: str | bytes) -> Diagnostic:
    (diagnostic,) = errors(source)
    assert diagnostic.is_error
    return diagnostic


EVERY_DIRECTIVE = """\
DEPLOYMENT qwen-chat
TAG default
VERSION "v 2"
TTL 15m
FROM vastai/pytorch:@vastai-automatic-tag STORAGE 80GB
CODE app.py
PIP torch==2.5.1 'transformers>=4'
PIP -r requirements.txt
APT ffmpeg libsndfile1
ENV MODEL_NAME="Qwen/Qwen3-0.6B" DEBUG=true EMPTY=
RUN echo 'Starting up...' && mkdir -p /data
RUN ["python", "-c", "print('ready')"]
COPY local_config.json /app/config.json
VENV /venv/main
SYSTEM_PYTHON
PORT 8080/tcp 8443
REQUIRE gpu_name IN [RTX_4090, "RTX 5090"] AND gpu_ram >= 48GB
AUTOSCALE cold_workers=2 target_util=0.8
MYPLUGIN arg key="a b"
"""


def test_every_directive_with_positions() -> None:
    tree = parsed(EVERY_DIRECTIVE)
    d = tree.directives
    assert [type(x).__name__ for x in d] == [
        "DeploymentName", "Tag", "Version", "Ttl", "From", "Code", "Pip", "PipRequirements",
        "Apt", "Env", "RunShell", "RunExec", "Copy", "Venv", "SystemPython", "Port", "Require",
        "Autoscale", "Extension"]
    assert tree.path == "Vastfile" and tree.source == EVERY_DIRECTIVE and tree.comments == ()

    assert at(d[0].span) == (1, 1, 1, 21) and at(d[0].keyword_span) == (1, 1, 1, 11)
    assert word(d[0].name) == ("qwen-chat", "qwen-chat", "")
    assert at(d[0].name.span) == (1, 12, 1, 21)
    assert word(d[1].tag) == ("default", "default", "") and at(d[1].tag.span) == (2, 5, 2, 12)
    assert word(d[2].label) == ("v 2", '"v 2"', '"') and at(d[2].label.span) == (3, 9, 3, 14)
    assert word(d[3].duration) == ("15m", "15m", "") and at(d[3].duration.span) == (4, 5, 4, 8)

    from_ = d[4]
    assert from_.image.text == "vastai/pytorch:@vastai-automatic-tag"
    assert at(from_.image.span) == (5, 6, 5, 42)
    assert word(from_.storage) == ("80GB", "80GB", "") and at(from_.storage.span) == (5, 51, 5, 55)
    assert at(from_.span) == (5, 1, 5, 55)

    assert word(d[5].path) == ("app.py", "app.py", "") and at(d[5].path.span) == (6, 6, 6, 12)
    assert [word(w) for w in d[6].specs] == [
        ("torch==2.5.1", "torch==2.5.1", ""), ("transformers>=4", "'transformers>=4'", "'")]
    assert at(d[6].specs[1].span) == (7, 18, 7, 35)
    assert word(d[7].file) == ("requirements.txt", "requirements.txt", "")
    assert at(d[7].file.span) == (8, 8, 8, 24)
    assert [w.text for w in d[8].packages] == ["ffmpeg", "libsndfile1"]
    assert at(d[8].packages[1].span) == (9, 12, 9, 23)

    env = d[9].assignments
    assert [(word(a.key), word(a.value)) for a in env] == [
        (("MODEL_NAME", "MODEL_NAME", ""), ("Qwen/Qwen3-0.6B", '"Qwen/Qwen3-0.6B"', '"')),
        (("DEBUG", "DEBUG", ""), ("true", "true", "")),
        (("EMPTY", "EMPTY", ""), ("", "", ""))]
    assert at(env[0].span) == (10, 5, 10, 33)
    assert at(env[0].key.span) == (10, 5, 10, 15) and at(env[0].value.span) == (10, 16, 10, 33)
    assert at(env[2].value.span) == (10, 51, 10, 51)  # empty: zero width, after the '='

    assert d[10].text == "echo 'Starting up...' && mkdir -p /data"
    assert at(d[10].text_span) == (11, 5, 11, 44) and at(d[10].keyword_span) == (11, 1, 11, 4)
    assert d[11].argv == ("python", "-c", "print('ready')")
    assert at(d[11].argv_span) == (12, 5, 12, 39)
    assert (d[12].src.text, d[12].dst.text) == ("local_config.json", "/app/config.json")
    assert at(d[12].dst.span) == (13, 24, 13, 40)
    assert d[13].path.text == "/venv/main"
    assert at(d[14].span) == (15, 1, 15, 14) and at(d[14].keyword_span) == (15, 1, 15, 14)
    assert [w.text for w in d[15].ports] == ["8080/tcp", "8443"]

    require = d[16]
    assert require.joiners == ("AND",)
    first, second = require.terms
    assert (first.column.text, first.op.text) == ("gpu_name", "IN")
    assert isinstance(first.value, nodes.ListValue)
    assert [word(w) for w in first.value.items] == [
        ("RTX_4090", "RTX_4090", ""), ("RTX 5090", '"RTX 5090"', '"')]
    assert at(first.value.span) == (17, 21, 17, 43)
    assert at(first.value.items[1].span) == (17, 32, 17, 42)
    assert at(first.span) == (17, 9, 17, 43) and at(first.op.span) == (17, 18, 17, 20)
    assert (second.column.text, second.op.text, second.value.text) == ("gpu_ram", ">=", "48GB")
    assert at(second.span) == (17, 48, 17, 63)

    assert [(a.key.text, a.value.text) for a in d[17].assignments] == [
        ("cold_workers", "2"), ("target_util", "0.8")]

    extension = d[18]
    assert word(extension.keyword) == ("MYPLUGIN", "MYPLUGIN", "")
    assert at(extension.keyword_span) == (19, 1, 19, 9)
    assert [word(w) for w in extension.args] == [("arg", "arg", ""),
                                                  ("key=a b", 'key="a b"', '"')]
    assert at(extension.args[1].span) == (19, 14, 19, 23)


def test_examples_parse_cleanly() -> None:
    for path in [ROOT / "Vastfile.example", *sorted((ROOT / "examples").glob("*/Vastfile"))]:
        tree, diagnostics = parse(path.read_bytes(), str(path))
        assert diagnostics == [], path
        assert tree is not None and tree.directives


# -- keywords -----------------------------------------------------------------------------


def test_keywords_are_case_insensitive() -> None:
    tree = parsed("from img storage 80\nCode app.py\nsystem_python\n"
                  "require a in [b] and c not in [d] AND e NotIn [f], g == 1\n")
    from_, code, system, require = tree.directives
    assert isinstance(from_, nodes.From) and from_.storage.text == "80"
    assert isinstance(code, nodes.Code) and isinstance(system, nodes.SystemPython)
    assert [t.op.text for t in require.terms] == ["in", "not in", "NotIn", "=="]
    assert require.joiners == ("and", "AND", ",")
    assert at(require.terms[1].op.span) == (4, 24, 4, 30)


def test_not_in_keeps_its_spacing_in_raw() -> None:
    require = only("REQUIRE a NOT   in [b]\n")
    assert (require.terms[0].op.text, require.terms[0].op.raw) == ("NOT in", "NOT   in")


def test_keyword_must_end_at_white_space() -> None:
    fromage = only("FROMAGE brie\n")
    assert isinstance(fromage, nodes.Extension) and fromage.keyword.text == "FROMAGE"
    assert isinstance(only("FORM image\n"), nodes.Extension)  # the checker suggests FROM
    assert [w.text for w in only("PIP -rfoo\n").specs] == ["-rfoo"]
    assert only("FROM x STORAGE 1\n").storage.text == "1"


def test_extension_keeps_its_words() -> None:
    extension = only("weird-directive 'a b' c=d \"e\"\n")
    assert extension.keyword.raw == "weird-directive"
    assert [word(w) for w in extension.args] == [
        ("a b", "'a b'", "'"), ("c=d", "c=d", ""), ("e", '"e"', '"')]
    bare = only("ALONE\n")
    assert isinstance(bare, nodes.Extension) and bare.args == ()


def test_require_needs_no_spaces_and_keeps_what_the_checker_judges() -> None:
    require = only("REQUIRE gpu_ram>=48,num_gpus==1\n")
    assert [(t.column.text, t.op.text, t.value.text) for t in require.terms] == [
        ("gpu_ram", ">=", "48"), ("num_gpus", "==", "1")]
    # A list with == and IN with a scalar are the checker's business (E045), not syntax.
    require = only("REQUIRE gpu_name == [A] AND gpu_name IN B AND x IN []\n")
    assert isinstance(require.terms[0].value, nodes.ListValue)
    assert isinstance(require.terms[1].value, nodes.Word)
    assert require.terms[2].value.items == ()
    values = only("REQUIRE a == 'x y' AND b == \"q\\\"\" AND c >= -1.5\n").terms
    assert [word(t.value) for t in values] == [
        ("x y", "'x y'", "'"), ('q"', '"q\\""', '"'), ("-1.5", "-1.5", "")]
    assert only("REQUIRE x == and\n").terms[0].value.text == "and"


# -- lexical rules ------------------------------------------------------------------------


def test_double_quote_escapes_and_literal_single_quotes() -> None:
    env = only('ENV A="q\\"b\\\\s\\nn\\tt" B=\'x\\n\' C="#"\n').assignments
    assert env[0].value.text == 'q"b\\s\nn\tt'
    assert env[1].value.text == "x\\n"
    assert env[2].value.text == "#"


def test_comments_full_line_and_inline() -> None:
    tree = parsed("# top\n  # indented\nCODE app.py # why\nRUN echo a#b # c\n")
    assert [(c.text, c.inline, at(c.span)) for c in tree.comments] == [
        ("# top", False, (1, 1, 1, 6)),
        ("# indented", False, (2, 3, 2, 13)),
        ("# why", True, (3, 13, 3, 18)),
        ("# c", True, (4, 14, 4, 17))]
    code, run = tree.directives
    assert code.path.text == "app.py" and at(code.span) == (3, 1, 3, 12)
    assert run.text == "echo a#b"


def test_hash_inside_a_word_or_quotes_is_not_a_comment() -> None:
    copy = only("COPY a#b c#\n")
    assert (copy.src.text, copy.dst.text) == ("a#b", "c#")
    assert only('RUN echo "a # b" \'# c\' # d\n').text == 'echo "a # b" \'# c\''
    assert only("RUN echo it\\'s # shell escape, no quote opened\n").text == "echo it\\'s"
    assert only("RUN echo a\\ #b\n").text == "echo a\\ #b"
    assert only('ENV A="x # y"\n').assignments[0].value.text == "x # y"


def test_run_shell_text_is_the_rest_of_the_line() -> None:
    run = only("RUN   [ -f x ] || exit 1   \n")
    assert isinstance(run, nodes.RunShell)
    assert run.text == "[ -f x ] || exit 1" and at(run.text_span) == (1, 7, 1, 25)
    assert only('RUN ["a"]\n').argv == ("a",)
    assert only('RUN ["é", "\\u00e9\\n"]\n').argv == ("é", "é\n")


def test_continuations_keep_original_positions() -> None:
    source = ("RUN apt-get update && \\\n"
              "    apt-get install -y curl  # tools\n"
              'COPY "a b" \\   \n'
              "  # skipped, as in a Dockerfile\n"
              "  dst\n"
              "ENV A=\"x \\\n"
              'y" B=1\n')
    tree = parsed(source)
    run, copy, env = tree.directives
    assert run.text == "apt-get update &&     apt-get install -y curl"
    assert at(run.span) == (1, 1, 2, 28) and at(run.text_span) == (1, 5, 2, 28)
    assert at(copy.src.span) == (3, 6, 3, 11) and at(copy.dst.span) == (5, 3, 5, 6)
    assert at(copy.span) == (3, 1, 5, 6)
    assert env.assignments[0].value.text == "x y"
    assert at(env.assignments[0].value.span) == (6, 7, 7, 3)
    assert at(env.assignments[1].span) == (7, 4, 7, 7)
    assert [(c.text, c.inline, c.span.line) for c in tree.comments] == [
        ("# tools", True, 2), ("# skipped, as in a Dockerfile", False, 4)]


def test_continuation_before_an_inline_comment() -> None:
    tree = parsed("RUN a && \\  # first step\n    b\n")
    assert tree.directives[0].text == "a &&     b"
    assert tree.comments[0].inline and tree.comments[0].span.line == 1


def test_continuation_ends_at_a_blank_line_or_the_end_of_the_file() -> None:
    tree = parsed("COPY a b \\\n\nCODE x \\\n")
    copy, code = tree.directives
    assert copy.dst.text == "b" and code.path.text == "x"
    assert at(code.span) == (3, 1, 3, 7)


def test_an_even_run_of_backslashes_does_not_continue() -> None:
    run, code = parsed("RUN echo \\\\\nCODE x\n").directives
    assert run.text == "echo \\\\" and code.path.text == "x"
    (run,) = parsed("RUN echo \\\\\\\n  more\n").directives
    assert run.text == "echo \\\\  more"


def test_crlf_line_endings() -> None:
    tree = parsed("# c\r\nCODE app.py\r\nTAG x  # t\r\n")
    code, tag = tree.directives
    assert at(code.path.span) == (2, 6, 2, 12) and tag.tag.text == "x"
    assert [c.text for c in tree.comments] == ["# c", "# t"]


def test_byte_order_mark_is_dropped() -> None:
    for source in ("\ufeffCODE app.py\n", b"\xef\xbb\xbfCODE app.py\n"):
        code = only(source)
        assert at(code.keyword_span) == (1, 1, 1, 5)


def test_utf8_columns_count_characters() -> None:
    tree = parsed("VERSION été\nTAG 'naïve café'\n".encode())
    assert at(tree.directives[0].label.span) == (1, 9, 1, 12)
    assert tree.directives[1].tag.text == "naïve café"
    diagnostic = one_error("VERSION été x\n")
    assert at(diagnostic.span) == (1, 13, 1, 14)


def test_tabs_separate_words() -> None:
    copy = only("COPY\ta\t\tb\n")
    assert (copy.src.text, copy.dst.text) == ("a", "b") and at(copy.dst.span) == (1, 9, 1, 10)


def test_empty_and_comment_only_files() -> None:
    assert parsed("").directives == ()
    assert parsed("\n\n   \n# just a comment\n").directives == ()
    assert parsed("CODE x").directives[0].path.text == "x"  # no final newline


def test_64_kib_is_the_limit() -> None:
    assert only("RUN " + "x" * (64 * 1024 - 4)).text.startswith("x")


# -- syntax errors --------------------------------------------------------------------------

#: (source, code, line, col, end_col, words in the message)
ERROR_CASES = [
    (b"CODE app.py\nTAG \xff\xfe\n", "E001", 2, 5, 6, "invalid UTF-8 byte 0xFF"),
    ("CODE app.py\nTAG \ud800\n", "E001", 2, 5, 6, "lone surrogate"),
    ("CODE a\x00b\n", "E002", 1, 7, 8, "NUL"),
    ("TAG a\x07\n", "E002", 1, 6, 7, "U+0007"),
    ("TAG a\rb\n", "E002", 1, 6, 7, "carriage return"),
    ("RUN echo " + "x" * 70000 + "\n", "E003", 1, 64 * 1024 + 1, 64 * 1024 + 2, "64 KiB"),
    ("FR\tOM image\n", "E004", 1, 3, 4, "tab inside the keyword FROM"),
    ("SYSTEM\t_PYTHON\n", "E004", 1, 7, 8, "SYSTEM_PYTHON"),
    ('RUN echo "hi # there\n', "E005", 1, 10, 11, "unterminated double-quoted"),
    ("COPY 'a b\n", "E005", 1, 6, 7, "unterminated single-quoted"),
    ('CODE "a\\qb"\n', "E006", 1, 8, 10, "unknown escape \\q"),
    ('COPY a"b" c\n', "E007", 1, 6, 10, 'a quote inside the word `a"b"`'),
    ('ENV A="x"y\n', "E007", 1, 5, 11, "quote inside"),
    ('REQUIRE gpu_name == "A"x\n', "E007", 1, 21, 25, "quote inside"),
    ('"FROM" image\n', "E008", 1, 1, 7, "must start with a directive keyword"),
    ("CODE\n", "E009", 1, 5, 6, "CODE needs a path"),
    ("FROM\n", "E009", 1, 5, 6, "FROM needs an image"),
    ("FROM img STORAGE\n", "E009", 1, 17, 18, "STORAGE needs a size"),
    ("COPY a\n", "E009", 1, 7, 8, "COPY needs a destination after `a`"),
    ("PIP -r\n", "E009", 1, 7, 8, "PIP -r needs a requirements file"),
    ("RUN\n", "E009", 1, 4, 5, "RUN needs a command"),
    ("REQUIRE\n", "E009", 1, 8, 9, "REQUIRE needs a comparison"),
    ("ENV\n", "E009", 1, 4, 5, "ENV needs a KEY=VALUE"),
    ("CODE a b\n", "E010", 1, 8, 9, "CODE takes one path: unexpected `b`"),
    ("FROM img 80\n", "E010", 1, 10, 12, "optional STORAGE size: unexpected `80`"),
    ("SYSTEM_PYTHON x\n", "E010", 1, 15, 16, "SYSTEM_PYTHON takes no arguments"),
    ("PIP -r a.txt b.txt\n", "E010", 1, 14, 19, "PIP -r takes one file"),
    ("ENV FOO\n", "E011", 1, 5, 8, "`FOO` is not one"),
    ("AUTOSCALE cold_workers = 2\n", "E011", 1, 11, 23, "AUTOSCALE takes KEY=VALUE"),
    ('RUN ["a", 1]\n', "E012", 1, 5, 13, "only strings"),
    ('RUN ["a"\n', "E012", 1, 9, 10, "not valid JSON"),
    ('RUN ["a", "b\\u0000"]\n', "E012", 1, 5, 21, "NUL"),
    ("REQUIRE gpu_ram >= 48 AND\n", "E013", 1, 26, 27, "column name after `AND`"),
    ('REQUIRE "gpu_ram" >= 48\n', "E013", 1, 9, 18, "expected a column name"),
    ("REQUIRE gpu_ram = 48\n", "E014", 1, 17, 18, "expected an operator after `gpu_ram`"),
    ("REQUIRE gpu_ram\n", "E014", 1, 16, 17, "expected an operator"),
    ("REQUIRE gpu_ram >=\n", "E015", 1, 19, 20, "expected a value after `>=`"),
    ("REQUIRE gpu_ram >= 48 cpu_cores\n", "E016", 1, 23, 32, "expected AND, a comma"),
    ("REQUIRE gpu_name IN [A B]\n", "E017", 1, 24, 25, "expected `,` or `]`"),
    ("REQUIRE gpu_name IN [A, B\n", "E017", 1, 26, 27, "not closed"),
    ("REQUIRE gpu_name IN [[A]]\n", "E017", 1, 22, 23, "cannot hold another list"),
]


@pytest.mark.parametrize(("source", "code", "line", "col", "end_col", "words"), ERROR_CASES,
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(ERROR_CASES)])
def test_syntax_error(source: str | bytes, code: str, line: int, col: int, end_col: int,
                      words: str) -> None:
    diagnostic = one_error(source)
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.col,
            diagnostic.span.end_col) == (code, line, col, end_col), render(diagnostic)
    assert words in diagnostic.message
    assert diagnostic.help, "every syntax error says what to do"
    assert diagnostic.span.path == "Vastfile"


def test_every_code_is_tested_and_titled() -> None:
    tested = {case[1] for case in ERROR_CASES}
    assert tested | {"E018"} == set(SYNTAX_CODES)  # E018 is the fallback no input reaches
    assert all(title and code.startswith("E0") for code, title in SYNTAX_CODES.items())
    assert list(SYNTAX_CODES) == [f"E{n:03d}" for n in range(1, len(SYNTAX_CODES) + 1)]
    assert len(SYNTAX_CODES) <= 19


def test_arity_errors_show_the_usage_line() -> None:
    for keyword in ("DEPLOYMENT", "TAG", "VERSION", "TTL", "CODE", "VENV"):
        assert one_error(f"{keyword}\n").help == f"usage: {BY_KEYWORD[keyword].usage}"
        assert one_error(f"{keyword} a b\n").help.startswith(f"usage: {BY_KEYWORD[keyword].usage}")
    assert one_error("COPY a b c\n").help.startswith("usage: COPY src dst")
    assert one_error("FROM img 80\n").help.endswith("FROM img STORAGE 80")
    assert set(BY_KEYWORD) == set(BUILTIN_KEYWORDS)


def test_operator_help_suggests_the_fix() -> None:
    assert "write ==" in one_error("REQUIRE a = 1\n").help
    assert "write >=" in one_error("REQUIRE a => 1\n").help
    assert 'quote only the value' in one_error('ENV "A=b"\n').help


def test_errors_inside_continuations_point_into_the_original_lines() -> None:
    diagnostic = one_error("CODE \\\n  # note\n  a b\n")
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.col) == ("E010", 3, 5)
    diagnostic = one_error('ENV A="x \\\ny\n')
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.col) == ("E005", 1, 7)


def test_all_errors_of_a_file_in_one_run_and_the_good_lines_kept() -> None:
    source = ("FROM img\n"
              "CODE\n"
              "COPY a\"b\" c\n"
              "REQUIRE gpu_ram = 4\n"
              "RUN echo ok\n"
              "TAG a\x00\n"
              "ENV X\n"
              "VENV /venv\n")
    tree, diagnostics = parse(source, "Vastfile")
    assert [(d.code, d.span.line) for d in diagnostics] == [
        ("E009", 2), ("E007", 3), ("E014", 4), ("E002", 6), ("E011", 7)]
    assert tree is not None
    assert [type(d).__name__ for d in tree.directives] == ["From", "RunShell", "Venv"]


def test_invalid_utf8_gives_no_tree_but_every_bad_line() -> None:
    tree, diagnostics = parse(b"CODE \xc3(\nTAG ok\nVERSION \xe2\x82\n", "Vastfile")
    assert tree is None
    assert [(d.code, d.span.line, d.span.col) for d in diagnostics] == [
        ("E001", 1, 6), ("E001", 3, 9)]


def test_a_binary_file_is_reported_not_raised() -> None:
    tree, diagnostics = parse(bytes(range(256)) * 4, "Vastfile")
    assert tree is None and diagnostics and all(d.is_error for d in diagnostics)


def test_diagnostics_render_with_caret() -> None:
    source = "REQUIRE gpu_ram = 48\n"
    text = render(one_error(source), source.split("\n"))
    assert text.splitlines()[0] == (
        "Vastfile:1:17: error[E014]: expected an operator after `gpu_ram`, found `=`")
    assert "                ^" in text


def test_an_excerpt_shows_no_control_character_and_no_endless_line() -> None:
    """A hostile file cannot drive the terminal (an escape sequence is shown as U+FFFD)
    nor flood it (a 1 MB line is shown around its caret)."""
    source = "ENV A=\x1b]0;title\x07\n"
    text = render(one_error(source), source.split("\n"))
    assert "\x1b" not in text and "\x07" not in text and "\ufffd]0;title" in text
    source = "RUN " + "x" * 1_000_000 + "\n"
    diagnostics = parse(source, "Vastfile")[1]
    [shown] = [render(d, source.split("\n")).splitlines() for d in diagnostics]
    line, caret = shown[2], shown[3]
    assert len(line) < 200 and line.endswith("…")
    assert line[caret.index("^")] == "x"


# -- any well-formed line parses to the words it was built from ------------------------

#: Words that look like something else somewhere in the grammar.
CONFUSABLE = [*BUILTIN_KEYWORDS, "from", "storage", "STORAGE", "-r", "a=b", "torch==2.0",
              "AND", "and", "in", "not", "NOTIN", "x,y", "[x]", "]", "[", "a#b", "\\x", "é",
              "'q r'", '"s \\" t"', "''", "RTX_4090", ">=", "==", "48GB"]
words = st.sampled_from(CONFUSABLE) | st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"),
                  blacklist_characters="\"'#\\"), min_size=1, max_size=5)


def _text(raw: str) -> str:
    if raw[:1] == "'":
        return raw[1:-1]
    if raw[:1] == '"':
        return raw[1:-1].replace('\\"', '"')
    return raw


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(st.sampled_from(["PIP", "APT", "PORT", "COPY", "FROM", "CODE", "TAG", "MYPLUGIN"]),
       st.lists(words, min_size=1, max_size=4), st.sampled_from([" ", "\t", "  ", " \\\n "]))
def test_any_word_is_a_word_in_any_position(keyword: str, args: list[str], gap: str) -> None:
    if keyword in ("COPY", "FROM"):
        args = (args * 2)[:2]
        if keyword == "FROM":
            args = [args[0], "STORAGE", args[1]]
    elif keyword in ("CODE", "TAG"):
        args = args[:1]
    elif keyword == "PIP" and args[0] == "-r":
        args[0] = "-rx"
    directive = only(gap.join([keyword, *args]) + "\n")
    got = {
        nodes.Pip: lambda d: d.specs, nodes.Apt: lambda d: d.packages,
        nodes.Port: lambda d: d.ports, nodes.Copy: lambda d: (d.src, d.dst),
        nodes.From: lambda d: (d.image, d.storage), nodes.Code: lambda d: (d.path,),
        nodes.Tag: lambda d: (d.tag,), nodes.Extension: lambda d: d.args,
    }[type(directive)](directive)
    expected = [args[0], args[2]] if keyword == "FROM" else args  # not the STORAGE keyword
    assert [w.raw for w in got] == expected
    assert [w.text for w in got] == [_text(a) for a in expected]


values = st.sampled_from(["and", "in", "not", "STORAGE", "RUN", "true", "-1.5", "48GB",
                          "RTX_4090", "'a, b]'", '"x y"', "a=b", "a#"])


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["==", ">=", "<", "!=", "IN", "notin", "not in"]),
                          values, st.booleans()), min_size=1, max_size=3))
def test_any_value_is_a_value(terms: list[tuple[str, str, bool]]) -> None:
    written = [f"c{i} {op} " + (f"[{value}, {value}]" if as_list else value)
               for i, (op, value, as_list) in enumerate(terms)]
    require = only("REQUIRE " + " AND ".join(written) + "\n")
    for term, (op, value, as_list) in zip(require.terms, terms, strict=True):
        assert term.op.text == op
        items = term.value.items if as_list else (term.value,)
        assert [w.raw for w in items] == ([value, value] if as_list else [value])


def test_a_byte_order_mark_past_the_start_is_an_error_not_a_directive() -> None:
    """Found by `make fuzz`: read as an unknown directive, it let `fmt` move the mark to
    the start of the file, where the next read drops it, changing what the file says."""
    for source in (b"\n\xef\xbb\xbf", b"FROM x\n\xef\xbb\xbfCODE app.py\n"):
        _, [found] = parse(source, "Vastfile")
        assert found.code == "E002" and "byte order mark" in found.message
        assert (found.span.line, found.span.col) == (2, 1)
    assert parse(b"\xef\xbb\xbfFROM x\n", "Vastfile")[1] == []
