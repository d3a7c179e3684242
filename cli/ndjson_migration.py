"""Convert JSON-array files to NDJSON with bounded memory and no way to lose the original.

Order of operations: stream the array into ``<output>.migrating`` (one object per line),
fsync it, rename the original to ``<input>.bak``, rename the temporary file into place, fsync
the directory. A crash at any point leaves either the original or a complete NDJSON file plus
its backup; the next run finishes or skips the job (it is idempotent).

Run over a whole directory (``migrate-ndjson data/*``) the glob also names what an earlier run
left: backups (``*.bak``), temporary files (``*.migrating``) and the NDJSON outputs. Those are
skipped with the reason (:func:`skip_reason`, and outputs are NDJSON already), so a backup is
never converted into a second copy of the data (``x.json.ndjson``) that the tail glob would
read twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from telegraf_bridge.plugins.common._state import fsync_dir

CHUNK = 1024 * 1024
BACKUP_SUFFIX = ".bak"
TEMP_SUFFIX = ".migrating"
_WS = " \t\r\n"


class NotMigratable(ValueError):
    """The file is not a JSON array of objects; the message says what it is."""


@dataclass
class Outcome:
    """What happened to one file."""

    path: Path
    status: str  # "migrated", "already-ndjson"
    records: int = 0
    output: Path | None = None
    backup: Path | None = None


def _first_char(path: Path) -> str:
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(4096)
            if not chunk:
                return ""
            stripped = chunk.lstrip(b" \t\r\n\xef\xbb\xbf")
            if stripped:
                return chr(stripped[0])


class _ChunkedText:
    """A text file read in chunks with a cursor: memory stays at about two chunks."""

    def __init__(self, handle: TextIO, progress: Callable[[int], None] | None) -> None:
        self._handle = handle
        self._progress = progress
        self._decoder = json.JSONDecoder()
        self.buf = ""
        self.pos = 0
        self.eof = False

    def fill(self) -> bool:
        """Append the next chunk (dropping what was consumed); False at the end of the file."""
        chunk = self._handle.read(CHUNK)
        if self._progress is not None:
            self._progress(len(chunk.encode("utf-8")))
        if not chunk:
            self.eof = True
            return False
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return True

    def skip_ws(self) -> None:
        """Move past whitespace, reading on until something else or the end."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.buf) or not self.fill():
                return

    def peek(self) -> str:
        """The character at the cursor ("" at the end of the file)."""
        return self.buf[self.pos] if self.pos < len(self.buf) else ""

    def value(self, index: int) -> object:
        """Decode the JSON value at the cursor (element ``index``), reading on as it needs."""
        while True:
            try:
                value, end = self._decoder.raw_decode(self.buf, self.pos)
                # A number at the end of the buffer may continue in the next chunk.
                if end == len(self.buf) and not self.eof and self.fill():
                    continue
                break
            except json.JSONDecodeError as exc:
                if not self.eof and self.fill():
                    continue
                raise NotMigratable(f"element {index} is not valid JSON: {exc.msg}") from None
        self.pos = end
        return value


def _array_closed(text: _ChunkedText, index: int) -> bool:
    """After element ``index - 1``: True at the closing ']' (nothing may follow), False at ','."""
    text.skip_ws()
    char = text.peek()
    if not char:
        raise NotMigratable("the array is not closed with ']' (truncated file?)")
    if char == "]":
        text.pos += 1
        text.skip_ws()
        if text.peek():
            raise NotMigratable("unexpected data after the closing ']'")
        return True
    if char != ",":
        raise NotMigratable(f"expected ',' or ']' after element {index - 1}")
    text.pos += 1
    text.skip_ws()
    return False


def iter_array(path: Path, progress: Callable[[int], None] | None = None) -> Iterator[object]:
    """Yield the elements of a top-level JSON array, reading the file in chunks."""
    with path.open("r", encoding="utf-8-sig") as handle:
        text = _ChunkedText(handle, progress)
        text.fill()
        text.skip_ws()
        if text.peek() != "[":
            raise NotMigratable("does not start with '[': not a JSON array")
        text.pos += 1
        text.skip_ws()
        if text.peek() == "]":
            return
        index = 0
        while True:
            yield text.value(index)
            index += 1
            if _array_closed(text, index):
                return


def output_path(path: Path) -> Path:
    """``data.json`` -> ``data.ndjson``; a ``.ndjson`` file holding an array keeps its name."""
    return path if path.suffix == ".ndjson" else path.with_suffix(".ndjson")


def original_of(backup: Path) -> Path:
    """``x.json.bak`` (or ``x.json.bak.bak``) -> ``x.json``."""
    name = backup.name
    while name.endswith(BACKUP_SUFFIX):
        name = name.removesuffix(BACKUP_SUFFIX)
    return backup.with_name(name)


def skip_reason(path: Path) -> str | None:
    """Why ``path`` is one of the files a migration leaves behind, or None to migrate it."""
    if path.name.endswith(BACKUP_SUFFIX):
        original = original_of(path)
        out = output_path(original)
        if out.exists():
            return (
                f"the backup of {original.name}, already migrated to {out.name}; backups are "
                f"never converted (delete it once {out.name} is checked)"
            )
        return (
            f"a backup ({BACKUP_SUFFIX}); backups are never converted (rename it to "
            f"{original.name} to convert it)"
        )
    if path.name.endswith(TEMP_SUFFIX):
        return (
            "the temporary file of an interrupted migration; migrating the original again "
            "rewrites it"
        )
    return None


def migrate(
    path: Path,
    progress: Callable[[int], None] | None = None,
    on_line: Callable[[bytes], None] | None = None,
) -> Outcome:
    """Migrate one file; raises NotMigratable (original untouched) when it cannot.

    ``on_line`` sees each NDJSON line written (without its newline), for a preview of what
    ndjson_tail will make of it.
    """
    first = _first_char(path)
    if first == "{":
        return Outcome(path, "already-ndjson")
    if first != "[":
        raise NotMigratable(
            "neither a JSON array nor NDJSON (first character "
            + (repr(first) if first else "missing: empty file")
            + ")"
        )
    out = output_path(path)
    backup = path.with_name(path.name + ".bak")
    if out != path and out.exists():
        raise NotMigratable(f"{out} already exists; move it away first")
    if backup.exists():
        raise NotMigratable(
            f"backup {backup} already exists from an earlier run; check and remove it"
        )
    tmp = out.with_name(out.name + ".migrating")
    records = 0
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            for index, element in enumerate(iter_array(path, progress)):
                if not isinstance(element, dict):
                    raise NotMigratable(
                        f"element {index} is a {type(element).__name__}, not an object; only "
                        "arrays of objects can become NDJSON"
                    )
                line = json.dumps(element, ensure_ascii=False, separators=(",", ":"))
                handle.write(line + "\n")
                if on_line is not None:
                    on_line(line.encode("utf-8"))
                records += 1
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    path.rename(backup)
    tmp.rename(out)
    fsync_dir(out.parent)
    return Outcome(path, "migrated", records, out, backup)
