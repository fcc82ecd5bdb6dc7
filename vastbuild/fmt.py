"""``vastbuild fmt``: the canonical layout of a Vastfile.

The formatter prints the syntax tree back, so it can only change layout, never
meaning: keywords in capitals, one space between words, one directive per line
(continuations joined), ``REQUIRE`` spaced as ``column OP value`` with ``IN`` and
``NOTIN`` in capitals (``not in`` becomes ``NOTIN``) and terms joined as written
(``AND`` or ``,``), comments kept, at most one blank line in a row, no trailing
white space, one newline at the end. Words keep their quoting exactly; RUN's shell
text is kept verbatim; RUN's exec form is re-printed as JSON (same strings).
Comments that sat inside a continued directive move above it; an inline comment
follows its directive after two spaces.
"""

from __future__ import annotations

import json
from bisect import bisect_right

from vastbuild import nodes
from vastbuild.diagnostics import DiagnosticError, has_errors
from vastbuild.directives import spec_of
from vastbuild.syntax import parse

_OPERATORS = {"in": "IN", "notin": "NOTIN", "not in": "NOTIN"}


def format_source(source: str, path: str) -> str:
    """The canonical text of a Vastfile; raises DiagnosticError when it does not parse."""
    tree, diagnostics = parse(source, path)
    if tree is None or has_errors(diagnostics):
        raise DiagnosticError(diagnostics)
    return format_vastfile(tree)


def format_vastfile(tree: nodes.Vastfile) -> str:
    """Print a parsed Vastfile in canonical form (see the module docstring)."""
    physical = tree.source.split("\n")
    directives = sorted(tree.directives, key=lambda d: (d.span.line, d.span.col))
    # Each block: (first line, last line, output lines), in source order.
    blocks: list[tuple[int, int, list[str]]] = []
    leading: dict[int, list[str]] = {}
    inline: dict[int, str] = {}
    starts = [d.span.line for d in directives]
    for comment in tree.comments:
        owner = _owner(directives, starts, comment.span.line)
        if owner is None:
            blocks.append((comment.span.line, comment.span.line, [comment.text]))
        elif comment.inline and comment.span.line == directives[owner].span.end_line:
            inline[owner] = comment.text
        else:
            leading.setdefault(owner, []).append(comment.text)
    for index, directive in enumerate(directives):
        line = render_directive(directive)
        if index in inline:
            line = f"{line}  {inline[index]}"
        blocks.append((directive.span.line, directive.span.end_line,
                       [*leading.get(index, ()), line]))
    blocks.sort(key=lambda block: block[0])

    out: list[str] = []
    previous_end = 0
    for first, last, lines in blocks:
        between = physical[previous_end:first - 1]
        if out and any(not text.strip(" \t\r") for text in between):
            out.append("")
        out.extend(lines)
        previous_end = last
    return "\n".join(out) + "\n" if out else ""


def _owner(directives: list[nodes.Directive], starts: list[int], line: int) -> int | None:
    """The index of the directive whose lines hold ``line``, if any."""
    index = bisect_right(starts, line) - 1
    if index >= 0 and directives[index].span.end_line >= line:
        return index
    return None


def render_directive(directive: nodes.Directive) -> str:
    """One directive as one canonical line: its keyword in capitals (from the directive
    table; a plugin's keyword as written), then its arguments."""
    if isinstance(directive, nodes.Extension):
        # The keyword keeps its case: whether a plugin's name is case-sensitive is
        # the registry's business, and the formatter must not change meaning.
        return _words(directive.keyword.raw, directive.args)
    keyword = spec_of(directive).keyword
    match directive:
        case (nodes.DeploymentName(name=word) | nodes.Tag(tag=word) | nodes.Version(label=word)
              | nodes.Ttl(duration=word) | nodes.Code(path=word) | nodes.Venv(path=word)
              | nodes.Include(path=word) | nodes.Arg(name=word, default=None)):
            return f"{keyword} {word.raw}"
        case nodes.Arg(name=name, default=nodes.Word() as default):
            return f"{keyword} {name.raw}={default.raw}"
        case nodes.From(image=image, storage=storage):
            return f"{keyword} {image.raw}" + (f" STORAGE {storage.raw}" if storage else "")
        case (nodes.Pip(specs=words) | nodes.Apt(packages=words) | nodes.Port(ports=words)
              | nodes.Secret(names=words)):
            return _words(keyword, words)
        case nodes.PipRequirements(file=file):
            return f"{keyword} -r {file.raw}"
        case nodes.Env(assignments=assignments) | nodes.Autoscale(assignments=assignments):
            return _assignments(keyword, assignments)
        case nodes.RunShell(text=text):
            return f"{keyword} {text}"
        case nodes.RunExec(argv=argv):
            return f"{keyword} {_json_array(argv)}"
        case nodes.Copy(src=src, dst=dst):
            return f"{keyword} {src.raw} {dst.raw}"
        case nodes.SystemPython():
            return keyword
        case nodes.Login(user=user, password=password, registry=registry):
            return (f"{keyword} {user.raw} PASSWORD {password.raw}"
                    + (f" REGISTRY {registry.raw}" if registry else ""))
        case nodes.Require(terms=terms, joiners=joiners):
            text = f"{keyword} " + _comparison(terms[0])
            for joiner, term in zip(joiners, terms[1:], strict=True):
                text += (", " if joiner == "," else " AND ") + _comparison(term)
            return text
    raise TypeError(f"no layout for {type(directive).__name__}")


def _words(keyword: str, words: tuple[nodes.Word, ...]) -> str:
    return " ".join([keyword, *(word.raw for word in words)])


def _assignments(keyword: str, assignments: tuple[nodes.Assignment, ...]) -> str:
    return " ".join([keyword, *(f"{a.key.raw}={a.value.raw}" for a in assignments)])


def _comparison(term: nodes.Comparison) -> str:
    op = _OPERATORS.get(term.op.text.lower(), term.op.text)
    if isinstance(term.value, nodes.ListValue):
        value = "[" + ", ".join(item.raw for item in term.value.items) + "]"
    else:
        value = term.value.raw
    return f"{term.column.raw} {op} {value}"


def _json_array(argv: tuple[str, ...]) -> str:
    """JSON with the strings as they read (no \\u escapes for letters), except DEL,
    which the parser rejects as a raw character."""
    return json.dumps(list(argv), ensure_ascii=False).replace("\x7f", "\\u007f")
