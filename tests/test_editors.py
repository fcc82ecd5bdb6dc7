"""The editor grammars and the Pygments lexer, run by the engines editors use.

Every example Vastfile, every ``vastbuild init`` template, the fuzz corpus's inputs
that parse and a file holding every directive (tests/editors/every-directive.vastfile)
are highlighted three ways: by
VS Code's engine (vscode-textmate on Oniguruma, under node, from the tiny node
project in tests/editors, which ``make test`` installs with ``npm ci``), by Vim
(``vim -es``, when installed) and by the Pygments lexer found through its entry
point. Each character gets a label (keyword, string, comment, number, unit,
operator, GPU constant...); the tests check the labels of chosen words in the
every-directive file, and that the three highlighters label every file alike.
The node tests are skipped only when node is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzz_helpers import case
from pygments import lex
from pygments.lexers import find_lexer_class_for_filename, get_lexer_by_name
from pygments.token import _TokenType

from vastbuild.diagnostics import has_errors
from vastbuild.highlight import VastfileLexer, vocabulary
from vastbuild.scaffold import TEMPLATES, render_template
from vastbuild.syntax import parse

ROOT = Path(__file__).resolve().parent.parent
#: the fuzz inputs highlighted besides the examples (about a quarter of them parse)
FUZZ_SEEDS = range(400)
NODE_PROJECT = ROOT / "tests" / "editors"
SAMPLE = NODE_PROJECT / "every-directive.vastfile"
VSCODE = ROOT / "editors" / "vscode"
VIM = ROOT / "editors" / "vim"

#: a line's labels, one per character ("" where a highlighter says nothing in particular)
Labels = list[str]


# -- what each highlighter calls a thing ------------------------------------------------

#: TextMate scope prefixes -> label; the innermost scope that has a label wins
TEXTMATE_LABELS = {
    "keyword.control.directive": "keyword", "keyword.other.unit": "unit",
    "keyword.other": "keyword", "keyword.operator": "operator",
    "entity.name.function.directive.plugin": "plugin", "comment": "comment",
    "string": "string",
    "constant.character.escape": "escape", "constant.numeric": "number",
    "support.constant.gpu": "gpu", "constant.language.boolean": "boolean",
    "support.type.property-name": "attribute", "variable.other.arg": "reference",
    "variable.other": "key", "invalid": "error",
}
#: Pygments token types -> label; the most specific type that has a label wins
PYGMENTS_LABELS = {
    "Token.Keyword": "keyword", "Token.Keyword.Type": "unit",
    "Token.Keyword.Constant": "boolean", "Token.Name.Builtin": "plugin",
    "Token.Comment": "comment", "Token.Literal.String": "string",
    "Token.Literal.String.Escape": "escape",
    "Token.Literal.String.Interpol": "reference", "Token.Literal.Number": "number",
    "Token.Operator": "operator", "Token.Name.Constant": "gpu",
    "Token.Name.Attribute": "attribute", "Token.Name.Variable": "key",
    "Token.Punctuation": "", "Token.Error": "error",
}
#: Vim syntax groups -> label
VIM_LABELS = {
    "vastfileDirective": "keyword", "vastfileFromKeyword": "keyword",
    "vastfilePipKeyword": "keyword", "vastfileLoginKeyword": "keyword",
    "vastfilePluginKeyword": "plugin", "vastfileComment": "comment",
    "vastfileContinuedComment": "comment",
    "vastfileInlineComment": "comment", "vastfileString": "string",
    "vastfileSingle": "string", "vastfileShellString": "string",
    "vastfileEscape": "escape", "vastfileQuotedContinuation": "escape",
    "vastfileArgRef": "reference",
    "vastfileNumber": "number", "vastfileUnit": "unit", "vastfileKey": "key",
    "vastfileAutoscaleKey": "attribute", "vastfileAssign": "operator",
    "vastfileOperator": "operator", "vastfileWordOperator": "operator",
    "vastfileColumn": "attribute", "vastfileGpu": "gpu", "vastfileBoolean": "boolean",
    "vastfileContinuation": "escape",
}


def _textmate_label(scopes: list[str]) -> str:
    for scope in reversed(scopes):
        for prefix, label in TEXTMATE_LABELS.items():
            if scope == prefix + ".vastfile" or scope.startswith(prefix + "."):
                return label
    return ""


def _pygments_label(token: _TokenType) -> str:
    while token.parent is not None:
        if str(token) in PYGMENTS_LABELS:
            return PYGMENTS_LABELS[str(token)]
        token = token.parent
    return ""


def _runs_to_labels(runs: list[tuple[str, str]]) -> Labels:
    return [label for text, label in runs for _ in text]


# -- the files ------------------------------------------------------------------------------

def _fuzzed(seeds: range) -> Iterator[tuple[int, str]]:
    """The fuzz corpus's inputs (tests/fuzz_helpers.py) that the parser accepts: the
    odd corners of the language (continuations into comments, words glued to
    operators, lone backslashes) that every highlighter must read as the lexer does.
    Inputs with carriage returns are left out: each editor splits lines its own way."""
    for seed in seeds:
        path, source = case(seed)
        try:
            text = source.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if "\r" not in text and not has_errors(parse(source, str(path))[1]):
            yield seed, text


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Every example Vastfile, each template rendered as ``vastbuild init`` writes it,
    fuzzed Vastfiles that parse, and the file holding every directive; each under a name
    the editors claim (``Vastfile`` in a folder named after where it comes from, or
    ``*.vastfile``)."""
    folder = tmp_path_factory.mktemp("vastfiles")
    texts = {"Vastfile.example": (ROOT / "Vastfile.example").read_text("utf-8")}
    texts |= {f"examples-{path.parent.name}": path.read_text("utf-8")
              for path in sorted(ROOT.glob("examples/*/Vastfile"))}
    texts |= {f"template-{template}": render_template(template, f"demo-{template}")["Vastfile"]
              for template in TEMPLATES}
    texts |= {f"fuzz-seed-{seed}": text for seed, text in _fuzzed(FUZZ_SEEDS)}
    paths = []
    for name, text in texts.items():
        path = folder / name / "Vastfile"
        path.parent.mkdir()
        path.write_text(text, "utf-8")
        paths.append(path)
    return [*paths, SAMPLE]


def _line(text: str, needle: str) -> int:
    """The 0-based number of the first line of the sample that starts with ``needle``."""
    return next(number for number, line in enumerate(text.splitlines())
                if line.startswith(needle))


#: (the sample's line starting with, a word on it, its label); a word is found from the
#: line's start, or after the previous word of the same line
EXPECTED = [
    ("# Every", "# Every directive", "comment"),
    ("ARG MODEL", "ARG", "keyword"), ("ARG MODEL", "MODEL", "key"),
    ("ARG MODEL", "=", "operator"),
    ("TTL", "TTL", "keyword"), ("TTL", "1.5", "number"), ("TTL", "h", "unit"),
    ("FROM", "STORAGE", "keyword"), ("FROM", "1.5", "number"), ("FROM", "TB", "unit"),
    ("PIP torch", '"numpy<2"', "string"), ("PIP torch", "\\", "escape"),
    ("    # a comment line", "# a comment line", "comment"),
    ("    accelerate", "\\", "escape"),
    ("    accelerate", "# a comment after", "comment"),
    ("PIP -r", "-r", "keyword"),
    ("ENV", "MODEL_ID", "key"), ("ENV", "${MODEL}", "reference"),
    ("ENV", '\\"', "escape"), ("ENV", "#not-a-comment", "string"),
    ("ENV", "'a#b'", "string"), ("ENV", "# a comment", "comment"),
    ("RUN echo", "'Starting up...'", "string"), ("RUN echo", "${HOME}", "string"),
    ("RUN echo", "mkdir", ""),
    ("RUN echo", "# an inline comment", "comment"),
    ('RUN ["python"', '"python"', "string"),
    ("system_python", "system_python", "keyword"),
    ("PORT", "8080/tcp", ""), ("PORT", "9000", "number"),
    ("REQUIRE gpu_name IN", "gpu_name", "attribute"),
    ("REQUIRE gpu_name IN", "IN", "operator"), ("REQUIRE gpu_name IN", "RTX_4090", "gpu"),
    ("REQUIRE gpu_name IN", '"H100 SXM"', "string"),
    ("REQUIRE gpu_name IN", "L40S", "gpu"), ("REQUIRE gpu_name IN", "AND", "operator"),
    ("REQUIRE gpu_name IN", ">=", "operator"), ("REQUIRE gpu_name IN", "64", "number"),
    ("REQUIRE gpu_name IN", "GB", "unit"),
    ("REQUIRE gpu_ram>=48", "gpu_ram", "attribute"),
    ("REQUIRE gpu_ram>=48", ">=", "operator"), ("REQUIRE gpu_ram>=48", "48", "number"),
    ("REQUIRE gpu_ram>=48", "==", "operator"), ("REQUIRE gpu_ram>=48", "<", "operator"),
    ("REQUIRE gpu_ram>=48", "2.0", "number"),
    ("REQUIRE gpu_name NOT", "NOT", "operator"), ("REQUIRE gpu_name NOT", "IN", "operator"),
    ("REQUIRE gpu_name NOT", "and", "operator"), ("REQUIRE gpu_name NOT", "true", "boolean"),
    ("REQUIRE duration", "<=", "operator"), ("REQUIRE duration", "72", "number"),
    ("REQUIRE duration", "h", "unit"), ("REQUIRE duration", "!=", "operator"),
    ("REQUIRE duration", "false", "boolean"), ("REQUIRE duration", "NOTIN", "operator"),
    ("REQUIRE duration", "A100_SXM4", "gpu"),
    ("AUTOSCALE", "cold_workers", "attribute"), ("AUTOSCALE", "=", "operator"),
    ("AUTOSCALE", "2", "number"), ("AUTOSCALE", "5", "number"), ("AUTOSCALE", "m", "unit"),
    ("AUTOSCALE", "cold_wrkers", "key"),
    ("\\", "\\", "escape"),
    ("INCLUDE", "INCLUDE", "keyword"), ("INCLUDE", "../shared/gpu.vastfile", ""),
    ("ENV LONG", '"split ', "string"), ("ENV LONG", "\\", "escape"),
    ("in two", 'in two"', "string"),
    ("LOGIN", "PASSWORD", "keyword"), ("LOGIN", "GHCR_TOKEN", ""),
    ("LOGIN", "REGISTRY", "keyword"),
    ("TEMPLATE", "TEMPLATE", "plugin"), ("TEMPLATE", "GREETING", "key"),
    ("TEMPLATE", "hello", ""),
]


def _expected_labels(text: str) -> Iterator[tuple[int, int, str, str]]:
    """(line, column, word, label) of each row of :data:`EXPECTED`."""
    lines = text.splitlines()
    after: dict[int, int] = {}
    for start, word, label in EXPECTED:
        number = _line(text, start)
        column = lines[number].index(word, after.get(number, 0))
        after[number] = column + len(word)
        yield number, column, word, label


def _check_expected(labels: list[Labels], highlighter: str) -> None:
    text = SAMPLE.read_text("utf-8")
    wrong = [f"line {number + 1}: {word!r} is {sorted(set(got))} in {highlighter}, not "
             f"{label!r}" for number, column, word, label in _expected_labels(text)
             if set(got := labels[number][column:column + len(word)]) != {label}]
    assert not wrong, "\n".join(wrong)


# -- the highlighters -------------------------------------------------------------------------

def pygments_labels(path: Path) -> list[Labels]:
    """The Pygments lexer's labels of each line, the lexer found by its file name."""
    lexer_class = find_lexer_class_for_filename(path.name)
    assert lexer_class is VastfileLexer, path
    lines: list[Labels] = [[]]
    # stripnl=False: the lines stay where they are in the file
    for token, text in lex(path.read_text("utf-8"), lexer_class(stripnl=False)):
        for character in text:
            if character == "\n":
                lines.append([])
            else:
                lines[-1].append(_pygments_label(token))
    return lines


def _node() -> str:
    """The node program; the test is skipped when node is not installed."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: VS Code's grammar engine (vscode-textmate) and "
                    "the extension run under node")
    return node


@pytest.fixture(scope="module")
def textmate(files: list[Path]) -> dict[Path, list[Labels]]:
    """VS Code's labels of each file: the grammar run by vscode-textmate under node."""
    node = _node()
    if not (NODE_PROJECT / "node_modules" / "vscode-textmate").is_dir():
        pytest.fail("tests/editors/node_modules is missing: run `make test`, or "
                    "`npm ci` in tests/editors")
    run = subprocess.run(
        [node, "tokenize.js", str(VSCODE / "syntaxes" / "vastfile.tmLanguage.json"),
         *map(str, files)], cwd=NODE_PROJECT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return {Path(name): [_runs_to_labels([(token["text"], _textmate_label(token["scopes"]))
                                          for token in line]) for line in lines]
            for name, lines in json.loads(run.stdout).items()}


@pytest.fixture(scope="module")
def vim(files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[Path, list[Labels]]:
    """Vim's labels of each file: editors/vim on the runtime path, syntax on, ``vim -es``."""
    program = shutil.which("vim")
    if program is None:
        pytest.skip("vim is not installed")
    output = tmp_path_factory.mktemp("vim") / "groups.json"
    run = subprocess.run(
        [program, "-N", "-u", "NONE", "-i", "NONE", "-es", "--cmd", f"set rtp^={VIM}",
         "--cmd", f"let g:output = '{output}'", "-c", "filetype on", "-c", "syntax on",
         "-c", f"source {NODE_PROJECT / 'syntax-groups.vim'}", "-c", "qa!", *map(str, files)],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout + run.stderr
    found = {Path(name): result for name, result in json.loads(output.read_text("utf-8")).items()}
    assert {path: found[path]["filetype"] for path in files} == dict.fromkeys(files, "vastfile")
    return {path: [_runs_to_labels([(text, VIM_LABELS.get(group, "")) for text, group in line])
                   for line in found[path]["lines"]] for path in files}


# -- the tests ----------------------------------------------------------------------------------

def test_committed_grammars_are_generated_from_the_language() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "editor_grammars.py"),
                          "--check"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def test_the_sample_holds_every_directive_and_keyword_and_parses() -> None:
    text = SAMPLE.read_text("utf-8")
    _, diagnostics = parse(text, str(SAMPLE))
    assert not has_errors(diagnostics), diagnostics
    written = {word.upper() for line in text.splitlines() for word in line.split()}
    language = vocabulary()
    keywords = {*language.directives,
                *(word.upper() for words in language.sub_keywords.values() for word in words)}
    assert keywords <= written, keywords - written
    assert [op for op in language.comparison_operators if op not in text] == []


def test_pygments_labels_the_sample() -> None:
    _check_expected(pygments_labels(SAMPLE), "Pygments")


def test_vscode_labels_the_sample(textmate: dict[Path, list[Labels]]) -> None:
    _check_expected(textmate[SAMPLE], "VS Code")


def test_vim_labels_the_sample(vim: dict[Path, list[Labels]]) -> None:
    _check_expected(vim[SAMPLE], "Vim")


def _disagreements(path: Path, ours: list[Labels], theirs: list[Labels], name: str
                   ) -> list[str]:
    """Where two highlighters label a non-blank character of ``path`` differently: the
    first such character of each line."""
    text = path.read_text("utf-8").split("\n")
    found = []
    for number, line in enumerate(text):
        for column, character in enumerate(line):
            a, b = ours[number][column], theirs[number][column]
            if not character.isspace() and a != b:
                found.append(f"{path.name}:{number + 1}:{column + 1}: {line!r}: Pygments "
                             f"says {a!r}, {name} {b!r}")
                break
    return found


@pytest.mark.parametrize("highlighter", ["textmate", "vim"])
def test_every_file_is_highlighted_alike_and_without_errors(
        highlighter: str, files: list[Path], request: pytest.FixtureRequest) -> None:
    labels: dict[Path, list[Labels]] = request.getfixturevalue(highlighter)
    problems = []
    for path in files:
        ours = pygments_labels(path)
        problems += [f"{path}: Pygments labels an error" for line in ours if "error" in line]
        problems += _disagreements(path, ours, labels[path], highlighter)
    assert not problems, "\n".join(problems)


def test_pygments_finds_the_lexer_through_its_entry_point() -> None:
    assert type(get_lexer_by_name("vastfile")) is VastfileLexer
    run = subprocess.run([Path(sys.executable).parent / "pygmentize", "-l", "vastfile", "-f",
                          "raw", str(ROOT / "examples" / "llm" / "Vastfile")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "Token.Keyword\t'REQUIRE'" in run.stdout
    assert "Token.Name.Constant\t'RTX_4090'" in run.stdout
    assert "Token.Error" not in run.stdout


def test_every_editor_claims_the_same_files() -> None:
    manifest = json.loads((VSCODE / "package.json").read_text("utf-8"))
    language, = manifest["contributes"]["languages"]
    grammar, = manifest["contributes"]["grammars"]
    claimed = [*language["filenames"], *("*" + suffix for suffix in language["extensions"])]
    assert claimed == list(VastfileLexer.filenames)
    assert language["id"] == grammar["language"] == VastfileLexer.aliases[0]
    tm = json.loads((VSCODE / grammar["path"]).read_text("utf-8"))
    assert tm["scopeName"] == grammar["scopeName"]
    configuration = json.loads((VSCODE / language["configuration"]).read_text("utf-8"))
    assert configuration["comments"]["lineComment"] == "#"
    detect = (VIM / "ftdetect" / "vastfile.vim").read_text("utf-8")
    assert f"{','.join(VastfileLexer.filenames)} setfiletype {language['id']}" in detect


def test_the_vscode_extension_runs_vastbuild_lsp() -> None:
    run = subprocess.run([_node(), "extension-client.js", str(VSCODE / "extension.js")],
                         cwd=NODE_PROJECT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    events = json.loads(run.stdout)["events"]
    started = [(e["command"], e["args"], e["documents"]) for e in events
               if e["event"] == "create"]
    documents = [{"language": "vastfile"}]
    # the default, then the `vastbuild.path` setting once it changes, each stopped in turn
    assert started == [("vastbuild", ["lsp"], documents),
                       ("/projects/llm/.venv/bin/vastbuild", ["lsp"], documents)]
    assert [e["event"] for e in events] == ["create", "start", "stop"] * 2

