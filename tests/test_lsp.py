"""``vastbuild lsp``: a real server process, driven over stdio by pytest-lsp.

One server serves the whole module (starting Python and the parser is most of the
cost); each test opens its own documents in a workspace of real files, so what
one test opens does not change what another sees.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from urllib.parse import urlparse

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from vastbuild.diagnostics import Span
from vastbuild.directives import BUILTIN_KEYWORDS
from vastbuild.lsp.positions import Text
from vastbuild.plugins import registry

#: the tests that talk to the module's server, which lives in the module's event loop
speaks = pytest.mark.asyncio(loop_scope="module")

APP = 'from vastai import Deployment\n\nDeployment(name="demo")\n'
#: a Vastfile that checks clean against the workspace below
CLEAN = "DEPLOYMENT demo\nFROM img\nCODE app.py\n"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace root with a deployment's files: its code, a package, a requirements
    file, a folder to COPY and a shared fragment. Each test opens Vastfiles of its own
    name in it (unsaved buffers: the server reads the editor's text)."""
    root = tmp_path_factory.mktemp("lsp")
    (root / "vastbuild.toml").write_text("")
    (root / "app.py").write_text(APP)
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text(APP)
    (root / "requirements.txt").write_text("torch\n")
    (root / "lib").mkdir()
    (root / "lib" / "data.txt").write_text("data\n")
    (root / "shared").mkdir()
    (root / "shared" / "gpu.vast").write_text("REQUIRE gpu_ram >= 24\n")
    return root


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(
    server_command=[sys.executable, "-m", "vastbuild", "lsp"]))
async def client(lsp_client: LanguageClient) -> AsyncIterator[LanguageClient]:
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code")))
    yield lsp_client
    await lsp_client.shutdown_session()


async def _published(client: LanguageClient, uri: str, version: int
                     ) -> Sequence[types.Diagnostic]:
    """The diagnostics the server publishes for that version of the document."""
    while True:
        params = await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        if params.uri == uri and params.version == version:
            return list(params.diagnostics)


async def _open(client: LanguageClient, path: Path, text: str
                ) -> tuple[str, Sequence[types.Diagnostic]]:
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri, "vastfile", 1, text)))
    return uri, await _published(client, uri, 1)


def _at(line: int, character: int) -> types.Position:
    return types.Position(line, character)


def _doc(uri: str) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri)


@speaks
async def test_five_errors_are_five_diagnostics_at_their_words(
        client: LanguageClient, workspace: Path) -> None:
    text = (CLEAN + "REQUIRE gpu_rma >= 48\nAUTOSCALE max_wrkers=3\nFORM x\n"
            'ENV GREETING="👋" 1BAD=2\nREQUIRE verified == yes\n')
    _, found = await _open(client, workspace / "five.Vastfile", text)
    found = sorted(found, key=lambda d: (d.range.start.line, d.range.start.character))
    assert [(d.code, d.range.start.line, d.range.start.character, d.range.end.character)
            for d in found] == [
        ("E042", 3, 8, 15), ("E039", 4, 10, 20), ("E022", 5, 0, 4),
        # after the emoji, one code point but two UTF-16 units
        ("E034", 6, 18, 22), ("E044", 7, 20, 23)]
    assert all(d.severity == types.DiagnosticSeverity.Error and d.source == "vastbuild"
               for d in found)
    assert "did you mean `gpu_ram`?" in found[0].message
    description = found[0].code_description
    assert description is not None and description.href.endswith("docs/vastfile.md#e042")
    assert Path(urlparse(description.href).path).is_file()


@speaks
async def test_a_fragment_opened_on_its_own_is_checked_as_a_fragment(
        client: LanguageClient, workspace: Path) -> None:
    """A `.vast` file: its lines' own checks and E054, not FROM/CODE or ${NAME}s, which
    the Vastfiles that include it provide."""
    _, found = await _open(client, workspace / "shared" / "own.vast",
                           "REQUIRE gpu_rma >= 24\nENV MODEL=${MODEL}\nCOPY lib /app/lib\n")
    assert sorted((d.code, d.range.start.line) for d in found) == [("E042", 0), ("E054", 2)]


@speaks
async def test_a_problem_in_a_fragment_is_shown_where_it_is_included(
        client: LanguageClient, workspace: Path) -> None:
    (workspace / "shared" / "typo.vast").write_text("\n# GPUs\nREQUIRE gpu_rma >= 24\n")
    _, found = await _open(client, workspace / "include.Vastfile",
                           CLEAN + "INCLUDE shared/typo.vast\n")
    assert [(d.code, d.range.start.line) for d in found] == [("E042", 3)]
    assert found[0].message.startswith(f"{workspace.as_posix()}/shared/typo.vast:3:9: ")
    assert found[0].related_information is not None
    where = found[0].related_information[0].location
    assert where.uri == (workspace / "shared" / "typo.vast").as_uri()
    assert (where.range.start.line, where.range.start.character) == (2, 8)


@speaks
async def test_a_half_written_line_is_a_syntax_error_until_it_is_finished(
        client: LanguageClient, workspace: Path) -> None:
    uri, found = await _open(client, workspace / "edit.Vastfile", CLEAN)
    assert found == []
    end = _at(3, 0)
    for version, typed, codes in ((2, "REQUIRE gpu_ram >=", ["E015"]),
                                  (3, " 24\n", [])):
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version, uri),
            [types.TextDocumentContentChangePartial(types.Range(end, end), typed)]))
        assert [d.code for d in await _published(client, uri, version)] == codes
        end = _at(3, len(typed))


@speaks
async def test_formatting_is_fmt_and_a_syntax_error_gives_no_edits(
        client: LanguageClient, workspace: Path) -> None:
    messy = "deployment   demo\nfrom img\n\n\n\ncode app.py   \n"
    uri, _ = await _open(client, workspace / "messy.Vastfile", messy)
    options = types.FormattingOptions(tab_size=4, insert_spaces=True)
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(_doc(uri), options))
    assert edits is not None and [e.new_text for e in edits] == [
        "DEPLOYMENT demo\nFROM img\n\nCODE app.py\n"]
    assert edits[0].range == types.Range(_at(0, 0), _at(6, 0))
    broken, _ = await _open(client, workspace / "broken.Vastfile", "FROM\nCODE   a.py\n")
    assert await client.text_document_formatting_async(
        types.DocumentFormattingParams(_doc(broken), options)) == ()


@speaks
async def test_hover_explains_directives_columns_gpus_and_autoscale_keys(
        client: LanguageClient, workspace: Path) -> None:
    text = CLEAN + "REQUIRE gpu_ram >= 24 AND gpu_name IN [RTX_4090]\nAUTOSCALE max_workers=4\n"
    uri, _ = await _open(client, workspace / "hover.Vastfile", text)

    async def hover(line: int, character: int) -> str:
        answer = await client.text_document_hover_async(
            types.HoverParams(_doc(uri), _at(line, character)))
        assert answer is not None and isinstance(answer.contents, types.MarkupContent)
        return answer.contents.value

    assert "the image" in await hover(1, 2)  # FROM: the directive table's meaning
    column = await hover(3, 10)
    assert "gpu_ram" in column and "number" in column and "GB" in column
    assert "`RTX 4090`" in await hover(3, 42)
    key = await hover(4, 12)
    assert "whole number" in key and "default 20" in key
    assert await client.text_document_hover_async(
        types.HoverParams(_doc(uri), _at(0, 13))) is None  # a name means nothing more


async def _labels(client: LanguageClient, uri: str, line: int, character: int
                  ) -> dict[str, types.CompletionItem]:
    answer = await client.text_document_completion_async(
        types.CompletionParams(_doc(uri), _at(line, character)))
    assert isinstance(answer, types.CompletionList)
    return {item.label: item for item in answer.items}


@speaks
async def test_completion_offers_the_words_that_fit_where_the_cursor_is(
        client: LanguageClient, workspace: Path) -> None:
    lines = ["", "REQUIRE gpu_r", "REQUIRE gpu_ram ", "REQUIRE gpu_name IN [RTX_4090, RTX_40",
             "AUTOSCALE cold_workers=1 ", "CODE ", "PIP -r req", "COPY lib/", "INCLUDE shared/"]
    uri, _ = await _open(client, workspace / "complete.Vastfile", "\n".join(lines) + "\n")

    directives = set(await _labels(client, uri, 0, 0))
    assert {*BUILTIN_KEYWORDS, *registry().plugin_keywords()} <= directives
    columns = await _labels(client, uri, 1, 13)
    assert "gpu_ram" in columns and "cpu_cores" in columns
    edit = columns["gpu_ram"].text_edit
    assert isinstance(edit, types.TextEdit) and edit.range == types.Range(_at(1, 8), _at(1, 13))
    assert {">=", "==", "IN", "NOTIN"} <= set(await _labels(client, uri, 2, 16))
    gpus = await _labels(client, uri, 3, 36)
    assert gpus["RTX_4090"].detail == "RTX 4090"
    keys = await _labels(client, uri, 4, 25)
    edit = keys["max_workers"].text_edit
    assert isinstance(edit, types.TextEdit) and edit.new_text == "max_workers="
    assert {"app.py", "lib/", "requirements.txt"} <= set(await _labels(client, uri, 5, 5))
    assert set(await _labels(client, uri, 6, 10)) == {"requirements.txt"}
    assert set(await _labels(client, uri, 7, 9)) == {"data.txt"}
    assert "gpu.vast" in await _labels(client, uri, 8, 15)


@speaks
async def test_definition_opens_the_files_paths_name(
        client: LanguageClient, workspace: Path) -> None:
    text = ("DEPLOYMENT demo\nFROM img\nCODE pkg\nINCLUDE shared/gpu.vast\n"
            "COPY lib/data.txt /app/data.txt\nPIP -r requirements.txt\n")
    uri, found = await _open(client, workspace / "Vastfile", text)
    assert found == []
    opened = {}
    for line, character in ((2, 6), (3, 10), (4, 8), (5, 10)):
        answer = await client.text_document_definition_async(
            types.DefinitionParams(_doc(uri), _at(line, character)))
        assert isinstance(answer, types.Location)
        opened[line] = answer.uri
    assert opened == {2: (workspace / "pkg" / "__init__.py").as_uri(),
                      3: (workspace / "shared" / "gpu.vast").as_uri(),
                      4: (workspace / "lib" / "data.txt").as_uri(),
                      5: (workspace / "requirements.txt").as_uri()}


@speaks
async def test_document_symbols_are_one_per_directive(
        client: LanguageClient, workspace: Path) -> None:
    text = "# demo\nDEPLOYMENT demo\nFROM img \\\n  STORAGE 40\nCODE app.py\n"
    uri, _ = await _open(client, workspace / "symbols.Vastfile", text)
    symbols = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(_doc(uri)))
    assert symbols is not None
    assert [(s.name, getattr(s, "detail", None)) for s in symbols] == [
        ("DEPLOYMENT", "demo"), ("FROM", "img STORAGE 40"), ("CODE", "app.py")]
    first, continued = symbols[0], symbols[1]
    assert isinstance(first, types.DocumentSymbol) and first.kind == types.SymbolKind.Module
    assert isinstance(continued, types.DocumentSymbol)
    assert (continued.range.start.line, continued.range.end.line) == (2, 3)


@speaks
async def test_a_did_you_mean_has_a_quick_fix(client: LanguageClient, workspace: Path) -> None:
    uri, found = await _open(client, workspace / "fix.Vastfile",
                             CLEAN + "REQUIRE GPU_RAM >= 24\n")
    assert [d.code for d in found] == ["E042"]
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        _doc(uri), found[0].range, types.CodeActionContext(list(found))))
    assert actions is not None and len(actions) == 1
    action = actions[0]
    assert isinstance(action, types.CodeAction) and action.kind == types.CodeActionKind.QuickFix
    assert action.edit is not None and action.edit.changes is not None
    assert list(action.edit.changes[uri]) == [types.TextEdit(found[0].range, "gpu_ram")]


def test_without_pygls_it_says_what_to_install() -> None:
    """A real process in which pygls cannot be imported, as where the extra is missing."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['pygls'] = None; "
         "sys.argv = ['vastbuild', 'lsp']; from vastbuild.cli import main; main()"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 1
    assert "vastbuild[lsp]" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("encoding", "start", "end", "bom"), [
    (types.PositionEncodingKind.Utf16, 4, 8, 1), (types.PositionEncodingKind.Utf8, 7, 11, 3),
    (types.PositionEncodingKind.Utf32, 3, 7, 1)])
def test_columns_count_in_the_encoding_the_editor_agreed_on(
        encoding: str, start: int, end: int, bom: int) -> None:
    """`1BAD` after `é🚀 ` is the parser's columns 4 to 8 (code points, 1-based): `é` is
    two UTF-8 bytes, the rocket four bytes or two UTF-16 units. A byte order mark is
    a character of the editor's first line, not of the parser's."""
    text = Text("\ufeffFROM x\né🚀 1BAD\n", encoding)
    assert text.range(Span("Vastfile", 2, 4, 2, 8)) == types.Range(_at(1, start), _at(1, end))
    assert text.point(_at(1, start)) == (1, 3)
    assert text.range(Span("Vastfile", 1, 1, 1, 5)) == types.Range(_at(0, bom),
                                                                   _at(0, bom + 4))
    assert text.point(_at(0, bom)) == (0, 0)
