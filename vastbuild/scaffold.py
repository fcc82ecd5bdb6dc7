"""``vastbuild init``: a new deployment written from a template.

A template is a folder under ``vastbuild/templates/`` holding ``Vastfile.in`` and
the code file it names (``app.py.in``); every ``*.in`` file is written without
its suffix, with ``{name}`` replaced by the deployment's name. Templates are plain
files, not Python strings, so that they read (and diff) as the files a user gets;
the folder sits inside the package, so the wheel carries it with no extra rule.

Each template checks clean, builds and deploys as written (tests/test_init.py):
it reaches no file outside its folder, so it needs no ``vastbuild.toml``. Without
a marker the workspace root is the Vastfile's own folder (:mod:`vastbuild.workspace`),
or a repository or monorepo around it, and either root holds every path the
template names. That is why nothing but the Vastfile and its code is written.

Existing files are never replaced: every destination is checked before the first
is written, and each is created exclusively, so that a file appearing meanwhile
is not clobbered either (the ones already written are then removed again).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vastbuild.errors import InvalidArgument, VastbuildError

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
#: the templates, the default first
TEMPLATES = ("blank", "llm", "speech", "image", "embed")
DEFAULT_TEMPLATE = TEMPLATES[0]
PLACEHOLDER = "{name}"
SUFFIX = ".in"
#: a name that is safe as a Vastfile word, a Python string and an artifact's file name
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}", re.IGNORECASE)
_NOT_NAME = re.compile(r"[^a-z0-9]+")
#: the name of a folder whose own name gives none (``/``, ``...``)
FALLBACK_NAME = "app"


class FilesExist(InvalidArgument):
    """A file :func:`scaffold` would write exists; nothing was written."""


@dataclass(frozen=True)
class Scaffold:
    """A written template: where, under which name, and the files in writing order
    (the Vastfile first)."""

    folder: Path
    name: str
    template: str
    files: tuple[Path, ...]


def default_name(folder: Path) -> str:
    """The name a deployment in ``folder`` gets when none is given: the folder's own
    name in lower case, each run of other characters a ``-`` (``My Model`` is
    ``my-model``), so that it is a valid name whatever the folder is called."""
    name = _NOT_NAME.sub("-", folder.resolve().name.lower()).strip("-")[:63].strip("-")
    return name or FALLBACK_NAME


def check_name(name: str) -> str:
    """``name`` if it can be DEPLOYMENT as written, else :class:`InvalidArgument`: it
    lands unquoted in the Vastfile, quoted in Python and in the artifact's file name."""
    if _NAME.fullmatch(name) is None:
        raise InvalidArgument(
            f"`{name}` cannot name a deployment",
            "use 1 to 63 letters, digits, `-`, `_` and `.`, starting with a letter or digit")
    return name


def render_template(template: str, name: str) -> dict[str, str]:
    """The files of ``template`` (file name -> text) for the deployment ``name``, the
    Vastfile first."""
    if template not in TEMPLATES:
        raise InvalidArgument(f"there is no template `{template}`",
                              f"choose one of {', '.join(TEMPLATES)}")
    sources = sorted((TEMPLATES_DIR / template).glob(f"*{SUFFIX}"),
                     key=lambda path: (path.name != f"Vastfile{SUFFIX}", path.name))
    return {source.name.removesuffix(SUFFIX):
            source.read_text("utf-8").replace(PLACEHOLDER, name) for source in sources}


def scaffold(folder: Path, template: str = DEFAULT_TEMPLATE,
             name: str | None = None) -> Scaffold:
    """Write ``template`` into ``folder`` (made when missing) for the deployment
    ``name`` (default: :func:`default_name`). :class:`FilesExist` when any of its
    files exists, and then nothing is written."""
    name = default_name(folder) if name is None else check_name(name)
    files = render_template(template, name)
    targets = [folder / file_name for file_name in files]
    present = [target for target in targets if target.exists() or target.is_symlink()]
    if present:
        raise FilesExist(f"{', '.join(p.as_posix() for p in present)} already "
                         f"{'exists' if len(present) == 1 else 'exist'}; nothing was written",
                         "choose another folder, or move the existing files away")
    written: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for target, text in zip(targets, files.values(), strict=True):
            with target.open("x", encoding="utf-8", newline="\n") as out:
                written.append(target)
                out.write(text)
    except FileExistsError as exc:  # made between the check and the write
        _remove(written)
        raise FilesExist(f"{exc.filename} already exists; nothing was written",
                         "choose another folder, or move the existing file away") from None
    except OSError as exc:
        _remove(written)
        raise VastbuildError(f"cannot write into {folder.as_posix()}: {exc.strerror or exc}",
                             "make the folder writable or free some space") from None
    return Scaffold(folder, name, template, tuple(targets))


def _remove(paths: list[Path]) -> None:
    """Take back the files of a scaffold that failed half way (best effort)."""
    for path in paths:
        path.unlink(missing_ok=True)
