"""Helpers for the build tests: real trees on disk and the models that describe them."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from vastbuild.diagnostics import Span
from vastbuild.model import CodeSource, CopySpec, Deployment, RequirementsFile

#: a modification time well before any test runs: files with it are never "racy"
OLD = 1_600_000_000


def write_tree(root: Path, files: Mapping[str, bytes | str]) -> None:
    """Create ``files`` (relative path -> content) below ``root``, all with an old mtime."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    age(root)


def age(root: Path, when: int = OLD) -> None:
    """Give every file and folder below ``root`` the mtime ``when`` (links untouched)."""
    for folder, dirs, files in os.walk(root):
        for name in files + dirs:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.utime(path, (when, when))


def span(path: Path) -> Span:
    return Span(str(path), 1, 1, 1, 2)


def deployment(root: Path, *, code: str = "app.py", copies: Sequence[tuple[str, str]] = (),
               requirements: Sequence[str] = (), name: str = "demo",
               vastfile: str = "Vastfile", **fields: object) -> Deployment:
    """A checked model of a target in ``root`` (built directly, as the checker would)."""
    vf = root / vastfile
    if not vf.exists():
        vf.write_text("# built by the tests\n")
    code_path = root / code
    kind = "package" if code_path.is_dir() else "module"
    return Deployment(
        vastfile=vf, root=root, name=name, config_name=name, image="vastai/pytorch",
        code=CodeSource(code_path, kind, span(vf)),
        copies=tuple(CopySpec((root / src).resolve(), dst, span(vf)) for src, dst in copies),
        requirements_files=tuple(RequirementsFile(root / r, span(vf)) for r in requirements),
        **fields,  # type: ignore[arg-type]
    )


def members(path: Path) -> dict[str, tarfile.TarInfo]:
    """The members of a .tar.gz, by name, read as the worker bootstrap reads it."""
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def read_member(path: Path, name: str) -> bytes:
    with tarfile.open(path, "r:gz") as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


#: the installed console script, next to this interpreter, as a user runs it
CONSOLE_SCRIPT = Path(sys.executable).parent / "vastbuild"


def vastbuild(*args: str, cwd: Path | None = None, env: Mapping[str, str | None] | None = None,
              umask: int | None = None, stdin: str | None = None, console_script: bool = False,
              timeout: float | None = 120, color: str | None = "never",
              program: Sequence[str] | None = None, file_size_limit: int | None = None,
              errors: str = "strict") -> subprocess.CompletedProcess[str]:
    """Run the CLI as its own process: ``python -m vastbuild --color never ARGS``.

    ``console_script`` runs the installed ``vastbuild`` entry point instead, and
    ``program`` any other command that starts the CLI (``python -c SNIPPET``, a
    ``setpriv ...`` prefix); ``color=None`` leaves ``--color`` out. ``env`` is laid
    over this process's environment (a None value unsets that variable). ``stdin``
    is the text the CLI reads (None: /dev/null). ``umask`` and ``file_size_limit``
    (RLIMIT_FSIZE, which fails a write the way a full disk does) apply to the child
    only. ``errors`` is how its output is decoded (``"surrogateescape"`` keeps bytes
    that are not UTF-8).
    """
    if program is None:
        program = [str(CONSOLE_SCRIPT)] if console_script else [sys.executable, "-m",
                                                                "vastbuild"]
    elif console_script:
        raise ValueError("console_script and program are two ways to say what to run")
    command = [*program, *(("--color", color) if color is not None else ()), *args]
    environment = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value

    def limits() -> None:
        if umask is not None:
            os.umask(umask)
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    needs_preexec = umask is not None or file_size_limit is not None
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True,
                          errors=errors, timeout=timeout,
                          input=stdin, stdin=subprocess.DEVNULL if stdin is None else None,
                          preexec_fn=limits if needs_preexec else None)
