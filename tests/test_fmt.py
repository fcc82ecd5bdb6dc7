"""``vastbuild fmt``: the canonical layout, round trips on the examples, idempotence,
and that formatting never changes what a Vastfile means."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from vastbuild import nodes
from vastbuild.diagnostics import DiagnosticError
from vastbuild.fmt import format_source
from vastbuild.syntax import parse

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [ROOT / "Vastfile.example", *sorted((ROOT / "examples").glob("*/Vastfile"))]


def meaning(tree: nodes.Vastfile) -> list:
    """What the directives say, without positions or layout: words as (text, quote),
    operators in one spelling, and no record of how REQUIRE terms were joined."""
    return [_meaning(d) for d in tree.directives]


def _meaning(value: object) -> object:
    if isinstance(value, nodes.Word):
        return (value.text, value.quote)
    if isinstance(value, nodes.Comparison):
        op = " ".join(value.op.text.lower().split()).replace("not in", "notin")
        return (_meaning(value.column), op, _meaning(value.value))
    if dataclasses.is_dataclass(value):
        return (type(value).__name__, *(
            _meaning(getattr(value, f.name)) for f in dataclasses.fields(value)
            if not f.name.endswith("span") and f.name != "joiners"))
    if isinstance(value, tuple):
        return tuple(_meaning(v) for v in value)
    return value


def fmt(source: str) -> str:
    formatted = format_source(source, "Vastfile")
    tree, _ = parse(source, "Vastfile")
    again, diagnostics = parse(formatted, "Vastfile")
    assert diagnostics == [] and again is not None
    assert meaning(again) == meaning(tree), "formatting changed the meaning"
    assert format_source(formatted, "Vastfile") == formatted, "not idempotent"
    return formatted



@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_examples_are_canonical(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    formatted = fmt(source)
    assert formatted == source


MESSY = """\


  from   img   storage 80   \t
code app.py   # the code



pip a  b
require gpu_ram>=48 and gpu_name in [ A ,B ]  ,  x not in [c] AND y notin[d]
run apt-get update && \\
    # inside the continuation
    apt-get install -y curl  # tools
env A="x y"   B=2
myplug  Arg   'q  r'
RUN    ["a","b",   "é\\u007f"]
RUN   echo  two  spaces  kept   \t
# last


"""

CANONICAL = """\
FROM img STORAGE 80
CODE app.py  # the code

PIP a b
REQUIRE gpu_ram >= 48 AND gpu_name IN [A, B], x NOTIN [c] AND y NOTIN [d]
# inside the continuation
RUN apt-get update &&     apt-get install -y curl  # tools
ENV A="x y" B=2
myplug Arg 'q  r'
RUN ["a", "b", "é\\u007f"]
RUN echo  two  spaces  kept
# last
"""


def test_canonical_layout() -> None:
    assert fmt(MESSY) == CANONICAL


def test_canonical_form_is_a_fixed_point() -> None:
    assert fmt(CANONICAL) == CANONICAL


def test_blank_lines_collapse_and_edges_are_trimmed() -> None:
    assert fmt("\n\n# a\n\n\n\n# b\nCODE x\n\n\n") == "# a\n\n# b\nCODE x\n"
    assert fmt("CODE x") == "CODE x\n"
    assert fmt("") == ""
    assert fmt("\n \n\t\n") == ""


def test_continuation_lines_are_joined_and_comments_move_above() -> None:
    source = "COPY a \\\n  # why\n  b  # where\nTAG t\n"
    assert fmt(source) == "# why\nCOPY a b  # where\nTAG t\n"
    source = "RUN a && \\  # first\n    b\n"
    assert fmt(source) == "# first\nRUN a &&     b\n"


def test_crlf_and_byte_order_mark_become_plain_lf() -> None:
    assert fmt("\ufeffCODE x\r\n\r\n\r\nTAG y  # t\r\n") == "CODE x\n\nTAG y  # t\n"


def test_words_keep_their_quoting() -> None:
    source = "COPY 'a' \"b c\"\nENV K='v' Q=\"w\\\"x\"\nREQUIRE gpu_name == \"RTX 4090\"\n"
    assert fmt(source) == source


def test_run_shell_text_is_kept_verbatim() -> None:
    source = "RUN echo \"a  # b\" 'c' \\\\  # d\n"
    assert fmt(source) == source


def test_extension_keyword_keeps_its_case() -> None:
    assert fmt("myPlugin  a   b=c\n") == "myPlugin a b=c\n"


def test_a_file_with_errors_is_not_formatted() -> None:
    with pytest.raises(DiagnosticError) as raised:
        format_source("CODE\nTAG a b\n", "Vastfile")
    assert [d.code for d in raised.value.diagnostics] == ["E009", "E010"]
