"""The language server: Language Server Protocol requests over stdio, with pygls.

Each request reads the editor's current text of the document (saved or not) and
asks the same passes the commands use: diagnostics are what ``vastbuild check``
reports for that text as if it were the file, formatting is ``vastbuild fmt``'s
layout, and the rest reads the parser's syntax tree. Nothing is cached between
requests: a Vastfile is small, and a fragment or a CODE file that changed on disk
is seen at the next keystroke.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from vastbuild import __version__, nodes
from vastbuild.diagnostics import Diagnostic, DiagnosticError, Span, reference_link
from vastbuild.fmt import format_source, render_directive
from vastbuild.lsp import vocabulary
from vastbuild.lsp.cursor import Completion, MeaningfulWord, completing, word_at
from vastbuild.lsp.positions import Text
from vastbuild.syntax import parse
from vastbuild.targets import VASTFILE

#: the diagnostics of a Vastfile's text, as if read from the path (what
#: :func:`vastbuild.api.check_source` reports)
Diagnose = Callable[[bytes, Path], Sequence[Diagnostic]]

#: the characters after which an editor asks for completions unprompted
TRIGGERS = [" ", "[", ",", "/", "="]

_MEANINGS: dict[str, Callable[[str], str | None]] = {
    "directive": vocabulary.directive_doc, "column": vocabulary.column_doc,
    "value": vocabulary.gpu_doc, "autoscale": vocabulary.autoscale_doc}

_ITEM_KINDS = {
    "directive": types.CompletionItemKind.Keyword, "column": types.CompletionItemKind.Field,
    "operator": types.CompletionItemKind.Operator, "value": types.CompletionItemKind.EnumMember,
    "autoscale": types.CompletionItemKind.Property}


class Document:
    """The editor's current text of one document, and the Vastfile it stands for."""

    def __init__(self, server: LanguageServer, uri: str):
        document = server.workspace.get_text_document(uri)
        encoding = server.workspace.position_encoding or types.PositionEncodingKind.Utf16
        self.uri = uri
        self.version = document.version
        self.text = Text(document.source, str(encoding))
        # an unsaved, untitled buffer is checked as a Vastfile of the working folder
        self.vastfile = Path(to_fs_path(uri) or Path.cwd() / VASTFILE).absolute()

    @property
    def shown(self) -> str:
        """How the parser's spans name this document."""
        return self.vastfile.as_posix()

    def source(self) -> bytes:
        """The text as the bytes of a file (a lone surrogate stays an error to report)."""
        return self.text.source.encode("utf-8", errors="surrogatepass")

    def tree(self) -> nodes.Vastfile | None:
        """The lines that parse (None for text that is not UTF-8)."""
        return parse(self.text.source, self.shown)[0]


@functools.cache
def _source_root() -> Path:
    """The folder above the package: in a source checkout, the repository, which holds
    the language reference (an installed wheel does not carry the docs)."""
    return Path(__file__).resolve().parents[2]


def _code_description(code: str) -> types.CodeDescription | None:
    """The link to the code's section of the language reference, when it is here."""
    page, _, anchor = reference_link(code).partition("#")
    docs = _source_root() / page
    return types.CodeDescription(f"{docs.as_uri()}#{anchor}") if docs.is_file() else None


def _location(span: Span, document: Document) -> types.Location:
    """Where a span of the document or of another file (a fragment) is."""
    if span.path == document.shown:
        return types.Location(document.uri, document.text.range(span))
    path = document.vastfile.parent / span.path
    try:
        text = Text(path.read_text("utf-8", errors="replace"), document.text.encoding)
    except OSError:
        text = Text("", document.text.encoding)
    return types.Location(path.as_uri(), text.range(span))


def _diagnostic(found: Diagnostic, document: Document) -> types.Diagnostic:
    """A diagnostic as the editor shows it. One in a fragment this document includes
    is shown at the INCLUDE line that pulled it in, naming where it is."""
    here = [s for s in (found.span, *(n.span for n in found.notes))
            if s is not None and s.path == document.shown]
    span = here[0] if here else None
    message = found.message
    related = [types.DiagnosticRelatedInformation(_location(note.span, document), note.message)
               for note in found.notes]
    if found.span is not None and span is not found.span:  # it is in another file
        message = f"{found.span}: {message}"
        related.insert(0, types.DiagnosticRelatedInformation(
            _location(found.span, document), found.message))
    return types.Diagnostic(
        range=(document.text.range(span) if span is not None else
               types.Range(types.Position(0, 0), types.Position(0, 0))),
        message=message + (f"\nhelp: {found.help}" if found.help else ""),
        severity=(types.DiagnosticSeverity.Error if found.is_error
                  else types.DiagnosticSeverity.Warning),
        code=found.code, code_description=_code_description(found.code), source="vastbuild",
        related_information=related or None)


def _overlap(a: types.Range, b: types.Range) -> bool:
    def at(p: types.Position) -> tuple[int, int]:
        return p.line, p.character

    return at(a.start) <= at(b.end) and at(b.start) <= at(a.end)


def _paths(folder: Path, typed: str) -> list[tuple[str, bool]]:
    """The entries of the folder a partly written path is in that its last part starts,
    each with whether it is a folder (hidden ones only once a `.` is written)."""
    unquoted = typed.lstrip("\"'")
    if unquoted.startswith("/"):  # a Vastfile's paths are relative: no absolute one offered
        return []
    head, _, stem = unquoted.rpartition("/")
    try:
        entries = sorted((folder / head).iterdir())
    except OSError:
        return []
    return [(entry.name, entry.is_dir()) for entry in entries
            if entry.name.startswith(stem) and (stem.startswith(".")
                                                or not entry.name.startswith("."))]


def _completions(wanted: Completion, document: Document, position: types.Position
                 ) -> list[types.CompletionItem]:
    line, col = document.text.point(position)

    def replacing(partial: str) -> types.Range:
        return types.Range(document.text.position(line, max(col - len(partial), 0)), position)

    if wanted.kind == "path":
        stem = wanted.partial.lstrip("\"'").rpartition("/")[2]
        return [types.CompletionItem(
            name + "/" * folder, kind=(types.CompletionItemKind.Folder if folder
                                       else types.CompletionItemKind.File),
            text_edit=types.TextEdit(replacing(stem), name + "/" * folder))
            for name, folder in _paths(document.vastfile.parent, wanted.partial)]
    words: list[vocabulary.Candidate] = []
    suffix = ""
    match wanted.kind:
        case "directive":
            words = vocabulary.directives()
        case "column":
            words = vocabulary.columns()
        case "operator":
            words = vocabulary.operators()
        case "autoscale":
            words, suffix = vocabulary.autoscale_keys(), "="
        case "value":
            words = vocabulary.values(wanted.column)
    return [types.CompletionItem(
        word.text, kind=_ITEM_KINDS[wanted.kind], detail=word.detail,
        documentation=types.MarkupContent(types.MarkupKind.Markdown, word.doc),
        text_edit=types.TextEdit(replacing(wanted.partial), word.text + suffix))
        for word in words]


def _meaning(target: MeaningfulWord) -> str | None:
    explain = _MEANINGS.get(target.kind)
    return None if explain is None else explain(target.text)


def _opened(target: MeaningfulWord, document: Document) -> Path | None:
    """The file a path word names: a package's ``__init__.py`` for a folder."""
    path = document.vastfile.parent / target.text
    if path.is_dir():
        path = path / "__init__.py"
    return path if path.is_file() else None


def language_server(diagnose: Diagnose) -> LanguageServer:
    """A server whose diagnostics come from ``diagnose``."""
    server = LanguageServer("vastbuild", __version__)

    def publish(uri: str) -> None:
        document = Document(server, uri)
        found = diagnose(document.source(), document.vastfile)
        server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri, [_diagnostic(d, document) for d in found], document.version))

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: LanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: LanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(params.text_document.uri, []))

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: LanguageServer, params: types.DocumentFormattingParams
                   ) -> list[types.TextEdit]:
        document = Document(server, params.text_document.uri)
        try:
            formatted = format_source(document.text.source, document.shown)
        except DiagnosticError:  # a syntax error: the diagnostics already say where
            return []
        if formatted == document.text.source:
            return []
        return [types.TextEdit(document.text.whole(), formatted)]

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: LanguageServer, params: types.HoverParams) -> types.Hover | None:
        document = Document(server, params.text_document.uri)
        tree = document.tree()
        target = None if tree is None else word_at(tree, *document.text.point(params.position))
        meaning = None if target is None else _meaning(target)
        if target is None or meaning is None:
            return None
        return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, meaning),
                           document.text.range(target.span))

    @server.feature(types.TEXT_DOCUMENT_COMPLETION,
                    types.CompletionOptions(trigger_characters=TRIGGERS))
    def completion(ls: LanguageServer, params: types.CompletionParams
                   ) -> types.CompletionList:
        document = Document(server, params.text_document.uri)
        wanted = completing(document.text.before(params.position))
        items = [] if wanted is None else _completions(wanted, document, params.position)
        return types.CompletionList(is_incomplete=False, items=items)

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: LanguageServer, params: types.DefinitionParams
                   ) -> types.Location | None:
        document = Document(server, params.text_document.uri)
        tree = document.tree()
        target = None if tree is None else word_at(tree, *document.text.point(params.position))
        opened = None if target is None or target.kind != "path" else _opened(target, document)
        if opened is None:
            return None
        start = types.Position(0, 0)
        return types.Location(opened.resolve().as_uri(), types.Range(start, start))

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def symbols(ls: LanguageServer, params: types.DocumentSymbolParams
                ) -> list[types.DocumentSymbol]:
        document = Document(server, params.text_document.uri)
        tree = document.tree()
        found = []
        for directive in () if tree is None else tree.directives:
            keyword, _, arguments = render_directive(directive).partition(" ")
            found.append(types.DocumentSymbol(
                name=keyword, detail=arguments or None,
                kind=(types.SymbolKind.Module if isinstance(directive, nodes.DeploymentName)
                      else types.SymbolKind.Key),
                range=document.text.range(directive.span),
                selection_range=document.text.range(directive.keyword_span)))
        return found

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind.QuickFix]))
    def code_actions(ls: LanguageServer, params: types.CodeActionParams
                     ) -> list[types.CodeAction]:
        document = Document(server, params.text_document.uri)
        actions = []
        for found in diagnose(document.source(), document.vastfile):
            if found.suggestion is None or found.span is None \
                    or found.span.path != document.shown:
                continue
            where = document.text.range(found.span)
            if _overlap(where, params.range):
                actions.append(types.CodeAction(
                    f"Replace with `{found.suggestion}`", kind=types.CodeActionKind.QuickFix,
                    diagnostics=[_diagnostic(found, document)], is_preferred=True,
                    edit=types.WorkspaceEdit(changes={document.uri: [
                        types.TextEdit(where, found.suggestion)]})))
        return actions

    return server


class _OneLine(logging.Formatter):
    """A problem of the server as one line of the editor's log, without the traceback
    (which only a bug report needs)."""

    def format(self, record: logging.LogRecord) -> str:
        cause = record.exc_info[1] if record.exc_info else None
        return f"vastbuild lsp: {record.getMessage()}" + (f": {cause}" if cause else "")


def serve(diagnose: Diagnose, *, tracebacks: bool = False) -> None:
    """Answer requests on stdin and stdout until the editor says exit; what goes wrong
    on the way is logged to stderr, with tracebacks only when asked for."""
    log = logging.StreamHandler()  # stderr: the editor's log of the server
    log.setFormatter(logging.Formatter() if tracebacks else _OneLine())
    pygls_log = logging.getLogger("pygls")
    pygls_log.addHandler(log)
    pygls_log.propagate = False
    language_server(diagnose).start_io()
