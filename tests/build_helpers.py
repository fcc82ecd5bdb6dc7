"""Helpers for the build tests: real trees on disk and the models that describe them."""

from __future__ import annotations

import os
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


def vastbuild(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
              umask: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI as its own process."""
    command = [sys.executable, "-m", "vastbuild", "--color", "never", *args]
    environment = {**os.environ, **(env or {})}
    preexec = (lambda: os.umask(umask)) if umask is not None else None
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=120, preexec_fn=preexec)
