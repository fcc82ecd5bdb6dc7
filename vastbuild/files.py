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
import sys
import tempfile
import threading
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
            if _exchange(self.temporary, self.path):
                # the temporary name now holds the old file: freeing a big one takes a
                # tenth of a second, done while the process goes on (and before it ends)
                self._done = True
                if not _bigger_than(self.temporary, _REMOVE_AFTER):
                    _remove(self.temporary)
                else:
                    threading.Thread(target=_remove, args=(self.temporary,),
                                     name="vastbuild-remove").start()
            else:
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


#: renameat2's flag that swaps two names atomically (Linux 3.15, glibc 2.28)
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(new: str | os.PathLike[str], old: str | os.PathLike[str]) -> bool:
    """Swap the names ``new`` and ``old`` in one step, where the system can; whether it
    did. Renaming over an existing file makes ext4 start writing the new file out
    before the rename returns (its ``auto_da_alloc`` guard for programs that do not
    fsync): a quarter of a second for a 400 MB artifact. An exchange is as atomic
    and waits for nothing; the old file is then removed under the temporary name."""
    if sys.platform != "linux" or not os.path.isfile(old):
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    status: int = renameat2(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(old),
                            _RENAME_EXCHANGE)
    return status == 0


#: an old file this big is removed by a thread of its own once replaced
_REMOVE_AFTER = 64 << 20


def _bigger_than(path: str, size: int) -> bool:
    try:
        return os.stat(path).st_size >= size
    except OSError:
        return False


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass  # a leftover temporary file is harmless, and named as one


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
