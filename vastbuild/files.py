"""Writing files so that a crash, a full disk or Ctrl-C never leaves half of one.

Every file vastbuild writes for a user (an artifact, ``deployment.json``, a
depfile, a formatted Vastfile, the record of a deploy) goes through here: the
bytes go to a temporary file beside the destination, which is renamed over it
only once complete. A reader sees the old file or the new one, whole. The
temporary name is unique per writer, so two processes writing the same file
never share one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import BinaryIO


class PendingFile:
    """A file being written beside ``path``: :meth:`commit` renames it over ``path``;
    leaving the ``with`` block without committing removes it.

    ``mode`` is the permission the file gets (``None``: keep ``path``'s own, or 0644
    for a new file); ``durable`` flushes it to disk before the rename, for files a
    user cannot rebuild (their own Vastfile).
    """

    def __init__(self, path: str | os.PathLike[str], *, mode: int | None = 0o644,
                 durable: bool = False):
        self.path = Path(path)
        self.mode = mode
        self.durable = durable
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, self.temporary = tempfile.mkstemp(dir=self.path.parent,
                                                  prefix=f".{self.path.name}.", suffix=".tmp")
        self.stream: BinaryIO = os.fdopen(handle, "wb")
        self._done = False

    def __enter__(self) -> PendingFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if not self._done:
            self.discard()

    def write(self, data: bytes) -> None:
        self.stream.write(data)

    def commit(self) -> None:
        """Replace ``path`` with what was written."""
        try:
            self.stream.flush()
            if self.durable:
                os.fsync(self.stream.fileno())
            self.stream.close()
            mode = self.mode
            if mode is None:
                try:
                    mode = os.stat(self.path).st_mode & 0o7777
                except FileNotFoundError:
                    mode = 0o644
            os.chmod(self.temporary, mode)
            os.replace(self.temporary, self.path)
        except BaseException:
            self.discard()
            raise
        self._done = True

    def discard(self) -> None:
        """Forget what was written; ``path`` is untouched."""
        self._done = True
        try:
            self.stream.close()
        except OSError:
            pass  # what could not be flushed is thrown away with the file
        try:
            os.unlink(self.temporary)
        except FileNotFoundError:
            pass


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int | None = 0o644,
                 durable: bool = False) -> None:
    """Replace ``path`` with ``data`` in one step (see :class:`PendingFile`)."""
    with PendingFile(path, mode=mode, durable=durable) as pending:
        pending.write(data)
        pending.commit()


def write_if_changed(path: str | os.PathLike[str], data: bytes, *,
                     mode: int | None = 0o644) -> bool:
    """:func:`atomic_write`, unless ``path`` already holds ``data``: then nothing is
    written and its mtime is kept, so ``make`` sees nothing new. Whether it wrote."""
    try:
        if os.stat(path).st_size == len(data) and Path(path).read_bytes() == data:
            return False
    except OSError:
        pass
    atomic_write(path, data, mode=mode)
    return True
