"""Files on a MicroPython board through any exec: ls, cat, put, rm, mkdir, sync.

:class:`FileSystem` runs MicroPython through a function ``run(code, timeout) -> stdout``
that raises DeviceExceptionError when the code raised: a raw-REPL link's
``exec_checked`` (:meth:`FileSystem.over_link`), or the ``exec`` of a leased BOARD
handle, so files move through the runtime with the board owned like any other call.

Works on current firmware (``os.ilistdir``, ``os.stat``, ``hashlib``, ``binascii``) and on
the micro:bit's 1.9.2 (a flat file system: ``os.listdir``, ``os.size``, no hashlib).
What arrives is checked by a hash the board computes of the file as stored (SHA-256
where the firmware has ``hashlib``, else FNV-1a 32 in MicroPython), compared with the
host's of the same bytes: a damaged transfer is sent again, and reported if it stays
damaged.  Every operation runs within the deadline given.

This module imports core and links only.
"""

from __future__ import annotations

import ast
import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from actorhw.core.errors import (
    DeviceExceptionError,
    InvalidArgumentError,
    ProtocolError,
    ResultParseError,
    UnsupportedOperationError,
)
from actorhw.links.framing import bytes_literal
from actorhw.links.raw_repl import RawReplLink

__all__ = ["Entry", "FileSystem"]

_ATTEMPTS: Final = 3
_READ_CHUNK: Final = 512

# Defined on the board once per FileSystem (per link): the hash of a stored file.
_HASH_DEF: Final = """\
def _ahw_h(p):
 try:
  import hashlib
  h=hashlib.sha256()
  u=1
 except ImportError:
  h=2166136261
  u=0
 f=open(p,'rb')
 while 1:
  b=f.read(256)
  if not b:
   break
  if u:
   h.update(b)
  else:
   for c in b:
    h=((h^c)*16777619)&4294967295
 f.close()
 if u:
  import binascii
  return 'sha256:'+binascii.hexlify(h.digest()).decode()
 return 'fnv1a32:%08x'%h
"""

_PROBE: Final = (
    "import os,gc\ntry:\n import binascii\n b=hasattr(binascii,'a2b_base64')\nexcept ImportError:\n"
    " b=False\ngc.collect()\n"
    "print(repr((hasattr(os,'ilistdir'),hasattr(os,'stat'),hasattr(os,'mkdir'),b,gc.mem_free())))"
)
_HEAP_SHARE: Final = 32
"""A write's chunk is at most 1/32 of the free heap: its escaped literal, the parse and
the bytes object all live there at once (the micro:bit has about 9 KB free)."""


def host_hash(data: bytes, kind: str) -> str:
    """The hash the board reports for ``data``, computed on the host."""
    if kind == "sha256":
        return "sha256:" + hashlib.sha256(data).hexdigest()
    h = 2166136261
    for c in data:
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return f"fnv1a32:{h:08x}"


@attrs.frozen
class Entry:
    """One directory entry: ``size`` is -1 for a directory (or when unknown)."""

    name: str
    is_dir: bool
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "is_dir": self.is_dir, "size": self.size}


Runner = Callable[[str, float], str]
"""Runs MicroPython code within a timeout; returns stdout (``\n`` line endings) or raises
DeviceExceptionError."""


class FileSystem:
    """A board's files through one runner.

    Args:
        run: runs code on the board (see :data:`Runner`).
        name: the board's name in errors.
        chunk: bytes of file per exec when writing (more per exec: fewer round trips).
    """

    def __init__(self, run: Runner, *, name: str = "board", chunk: int = 2048) -> None:
        if chunk < 16:
            raise InvalidArgumentError("chunk must be >= 16", argument="chunk")
        self.runner = run
        self.name = name
        self.chunk = chunk
        self._caps: tuple[bool, bool, bool, bool] | None = None

    @classmethod
    def over_link(cls, link: RawReplLink, *, chunk: int = 2048) -> FileSystem:
        """The files of the board at the other end of ``link``."""
        return cls(lambda code, t: link.exec_checked(code, timeout=t), name=link.name, chunk=chunk)

    # --- queries ---------------------------------------------------------------------

    def _run(self, code: str, deadline: float) -> str:
        return self.runner(code, max(0.001, deadline - time.monotonic()))

    def _value(self, code: str, deadline: float, what: str) -> Any:
        text = self._run(code, deadline)
        try:
            return ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError) as e:
            raise ResultParseError(
                f"{self.name}: {what}: the board answered {text[:80]!r}", text=text[:200]
            ) from e

    def capabilities(self, *, timeout: float) -> tuple[bool, bool, bool, bool]:
        """``(ilistdir, stat, mkdir, base64)`` of the firmware, probed once."""
        if self._caps is None:
            deadline = time.monotonic() + timeout
            *caps, free = self._value(_PROBE, deadline, "probe")
            self._caps = tuple(bool(c) for c in caps)  # type: ignore[assignment]
            self.chunk = max(64, min(self.chunk, int(free) // _HEAP_SHARE))
            self._run(_HASH_DEF, deadline)
        assert self._caps is not None
        return self._caps

    def ls(self, path: str = "", *, timeout: float) -> list[Entry]:
        """The entries of directory ``path`` (``""``: the current directory), sorted."""
        deadline = time.monotonic() + timeout
        ilistdir, _stat, _mkdir, _b64 = self.capabilities(timeout=timeout)
        if ilistdir:
            prefix = path.rstrip("/") + "/" if path.strip("/") else ("/" if path else "")
            code = (
                "import os\nr=[]\n"
                f"for e in os.ilistdir({path!r}):\n"
                " d=e[1]==16384\n"
                f" s=e[3] if len(e)>3 else -1 if d else os.stat({prefix!r}+e[0])[6]\n"
                " r.append((e[0],d,s))\n"
                "print(repr(r))"
            )
        else:
            if path not in ("", "/", "."):
                raise UnsupportedOperationError(
                    f"{self.name} has a flat file system: no directory {path!r}",
                    path=path,
                )
            code = "import os\nprint(repr([(n,False,os.size(n)) for n in os.listdir()]))"
        rows = self._value(code, deadline, "ls")
        return sorted(Entry(str(n), bool(d), -1 if d else int(s)) for n, d, s in rows)

    def hash(self, path: str, *, timeout: float) -> str | None:
        """The hash of the stored file ``path`` (``sha256:...`` / ``fnv1a32:...``), or
        None when there is no such file."""
        deadline = time.monotonic() + timeout
        self.capabilities(timeout=timeout)
        code = f"try:\n print(repr(_ahw_h({path!r})))\nexcept OSError:\n print('None')"
        value = self._value(code, deadline, "hash")
        return None if value is None else str(value)

    def cat(self, path: str, *, timeout: float) -> bytes:
        """The content of ``path``, checked against the board's hash of it."""
        deadline = time.monotonic() + timeout
        self.capabilities(timeout=timeout)
        for _ in range(_ATTEMPTS):
            data = self._read(path, deadline)
            stored = self.hash(path, timeout=deadline - time.monotonic())
            if stored is not None and stored == host_hash(data, stored.split(":", 1)[0]):
                return data
        raise ProtocolError(f"{self.name}: {path} arrived damaged {_ATTEMPTS} times", path=path)

    def _read(self, path: str, deadline: float) -> bytes:
        self._run(f"_ahw_f=open({path!r},'rb')", deadline)
        out = bytearray()
        try:
            while True:
                piece = self._value(f"print(repr(_ahw_f.read({_READ_CHUNK})))", deadline, "read")
                if not isinstance(piece, bytes):
                    raise ResultParseError(f"{self.name}: read gave {piece!r}")
                if not piece:
                    return bytes(out)
                out += piece
        finally:
            self._run("_ahw_f.close()\ndel _ahw_f", deadline)

    # --- changes ---------------------------------------------------------------------

    def put(self, path: str, data: bytes, *, timeout: float) -> str:
        """Write ``data`` to ``path`` (replacing it); returns the verified hash."""
        if not isinstance(data, bytes | bytearray):
            raise InvalidArgumentError("data must be bytes", argument="data")
        deadline = time.monotonic() + timeout
        _ls, _stat, _mkdir, b64 = self.capabilities(timeout=timeout)
        for _ in range(_ATTEMPTS):
            self._write(path, bytes(data), deadline, b64)
            stored = self.hash(path, timeout=deadline - time.monotonic())
            if stored is not None and stored == host_hash(data, stored.split(":", 1)[0]):
                return stored
        raise ProtocolError(f"{self.name}: {path} was stored damaged {_ATTEMPTS} times", path=path)

    def _write(self, path: str, data: bytes, deadline: float, b64: bool) -> None:
        import base64

        self._ensure_parents(path, deadline)
        opener = "import binascii\n" if b64 else ""
        self._run(f"{opener}_ahw_f=open({path!r},'wb')", deadline)
        try:
            for start in range(0, len(data), self.chunk):
                piece = data[start : start + self.chunk]
                if b64:
                    text = base64.b64encode(piece).decode()
                    code = f"_ahw_f.write(binascii.a2b_base64('{text}'))"
                else:
                    code = "_ahw_f.write(" + bytes_literal(piece).decode("ascii") + ")"
                self._run(code, deadline)
        finally:
            self._run("_ahw_f.close()\ndel _ahw_f", deadline)

    def _ensure_parents(self, path: str, deadline: float) -> None:
        parts = path.strip("/").split("/")[:-1]
        if not parts or not self.capabilities(timeout=deadline - time.monotonic())[2]:
            return
        prefix = "/" if path.startswith("/") else ""
        for i in range(1, len(parts) + 1):
            folder = prefix + "/".join(parts[:i])
            self._run(f"import os\ntry:\n os.mkdir({folder!r})\nexcept OSError:\n pass", deadline)

    def rm(self, path: str, *, timeout: float) -> None:
        """Remove the file ``path``."""
        self._checked(f"import os\nos.remove({path!r})", path, timeout)

    def mkdir(self, path: str, *, timeout: float) -> None:
        """Make directory ``path`` (UnsupportedOperationError on a flat file system)."""
        _ls, _stat, mkdir, _b64 = self.capabilities(timeout=timeout)
        if not mkdir:
            raise UnsupportedOperationError(
                f"{self.name} has a flat file system: no mkdir", path=path
            )
        self._checked(f"import os\nos.mkdir({path!r})", path, timeout)

    def _checked(self, code: str, path: str, timeout: float) -> None:
        try:
            self.runner(code, timeout)
        except DeviceExceptionError as e:
            raise DeviceExceptionError(
                f"{self.name}: {path}: {e.message}", path=path, **e.context
            ) from e

    def sync(self, files: Mapping[str, bytes], *, timeout: float) -> dict[str, list[str]]:
        """Make the board's files equal to ``files`` (path -> content), copying only what
        differs (the board's hash against the host's, as belay's sync does).

        Returns:
            ``{"copied": [...], "unchanged": [...]}``.
        """
        deadline = time.monotonic() + timeout
        self.capabilities(timeout=timeout)
        copied, unchanged = [], []
        for path, data in sorted(files.items()):
            stored = self.hash(path, timeout=deadline - time.monotonic())
            if stored is not None and stored == host_hash(data, stored.split(":", 1)[0]):
                unchanged.append(path)
                continue
            self.put(path, data, timeout=deadline - time.monotonic())
            copied.append(path)
        return {"copied": copied, "unchanged": unchanged}
