"""Streaming line readers that turn every malformed line into a FormatError.

Files are read as bytes and decoded line by line, so invalid UTF-8 is reported at its line,
only a newline ends a line (a stray carriage return or U+2028 inside a passage stays text),
and nothing but the current line is held.

Compressed files are read as distributed: a file whose name ends in `.gz` is decompressed as
it streams, and where a layout names `X` but only `X.gz` is there, `require_file` and
`existing` return `X.gz` (MS MARCO ships `collection.tsv.gz`, BEIR `corpus.jsonl.gz`). Line
numbers and messages are those of the decompressed text, under the `.gz` file's name.
"""
from __future__ import annotations

import array
import contextvars
import csv
import gzip
import hashlib
import json
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from grdr.realdata.errors import FormatError, snippet


SHOW_PROGRESS: contextvars.ContextVar[bool | None] = contextvars.ContextVar("realdata_progress", default=None)
"""Progress bars while a collection is read and featurised: None shows them on a terminal only
(tqdm's choice), False never (`grdr real --no-progress`), True always."""


def progress(items: Iterable, what: str, total: int | None = None, unit: str = "doc") -> Iterable:
    """`items`, with a progress bar on stderr naming `what` (a 100k-document collection takes tens
    of seconds to read and featurise); the bar is removed when the pass ends."""
    show = SHOW_PROGRESS.get()
    if show is False:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=what, total=total, unit=unit, unit_scale=True, leave=False, mininterval=0.5,
                disable=None if show is None else False)


def existing(path: Path) -> Path | None:
    """`path` if it is a file, else `path` + ".gz" if that is one, else None."""
    path = Path(path)
    if path.is_file():
        return path
    compressed = path.with_name(path.name + ".gz")
    return compressed if compressed.is_file() else None


def strip_gz(name: str) -> str:
    """A file name without a trailing ".gz" (what the layout calls the file)."""
    return name.removesuffix(".gz")


def require_file(path: Path, layout: str) -> Path:
    """`path`, or `path.gz` when only that is there; else FileNotFoundError naming the layout."""
    found = existing(path)
    if found is None:
        raise FileNotFoundError(f"{path}: no such file (nor {Path(path).name}.gz); expected the "
                                f"{layout}")
    return found


def _open(path: Path):
    """The file as bytes, decompressed as it is read when its name ends in .gz."""
    return gzip.open(path, "rb") if Path(path).name.endswith(".gz") else open(path, "rb")


def iter_lines(path: Path, expected: str) -> Iterator[tuple[int, str]]:
    """Yields (line number, text without its newline); FormatError on bad UTF-8 or no lines.

    Args:
      path: the file.
      expected: what a line should hold, for the message about an empty file.
    """
    line_no = 0
    with _open(path) as f:
        for line_no, raw in _numbered(f, path):
            raw = raw.removesuffix(b"\n").removesuffix(b"\r")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                bad = raw[max(0, err.start - 20) : err.end + 20]
                raise FormatError(
                    path, line_no, f"bytes that are not valid UTF-8 at byte {err.start}: {bad!r}",
                    "UTF-8 text") from None
            if line_no == 1:
                text = text.removeprefix("\ufeff")  # a byte-order mark is encoding, not data
            yield line_no, text
    if line_no == 0:
        raise FormatError(path, 1, "an empty file", expected)


def _numbered(f, path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) of an open file; a corrupt or cut-off gzip stream is a
    FormatError at the line where decompression failed."""
    line_no = 0
    lines = iter(f)
    while True:
        try:
            raw = next(lines)
        except StopIteration:
            return
        except (gzip.BadGzipFile, EOFError, zlib.error) as err:
            raise FormatError(path, line_no + 1, f"a corrupt or truncated gzip stream ({err})",
                              "a complete gzip file") from None
        line_no += 1
        yield line_no, raw


def iter_tsv(path: Path, columns: tuple[str, ...], sep: str | None = "\t"
             ) -> Iterator[tuple[int, list[str]]]:
    """Yields (line number, fields) of a file with exactly len(columns) fields a line.

    Args:
      path: the file.
      columns: the column names, for messages.
      sep: the separator; None splits on runs of whitespace (TREC qrels and runs).
    """
    sep_name = "tab" if sep == "\t" else "whitespace"
    layout = f"{len(columns)} {sep_name}-separated columns ({' '.join(columns)})"
    for line_no, text in iter_lines(path, f"lines of {layout}"):
        fields = text.split(sep)
        if len(fields) != len(columns):
            raise FormatError(path, line_no, f"{len(fields)} {sep_name}-separated columns in "
                              f"{snippet(text)}", layout)
        yield line_no, fields


def iter_csv_tsv(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """Like iter_tsv for tab-separated files written by pandas.to_csv, whose fields may be quoted.

    A quoted field may hold tabs, doubled quotes and newlines; the line number is that of the
    record's first line, and an unclosed quote is reported where it opened.
    """
    layout = f"{len(columns)} tab-separated columns ({' '.join(columns)})"
    last_line = [0]

    def texts() -> Iterator[str]:
        for line_no, text in iter_lines(path, f"lines of {layout}"):
            last_line[0] = line_no
            yield text + "\n"

    reader = csv.reader(texts(), delimiter="\t", quotechar='"', doublequote=True, strict=True)
    while True:
        start = last_line[0] + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise FormatError(path, start, f"a badly quoted field ({err})", layout) from None
        if len(fields) != len(columns):
            raise FormatError(path, start, f"{len(fields)} tab-separated columns in "
                              f"{snippet(chr(9).join(fields))}", layout)
        yield start, fields


def iter_jsonl(path: Path, fields: dict[str, bool]) -> Iterator[tuple[int, dict]]:
    """Yields (line number, object) of a JSON-lines file.

    Args:
      path: the file.
      fields: field name -> required; each present field must be a string (an optional one
        may also be null).
    """
    names = ", ".join(f'"{k}"' + ("" if req else " (optional)") for k, req in fields.items())
    expected = f"one JSON object a line with string fields {names}"
    for line_no, text in iter_lines(path, expected):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            raise FormatError(path, line_no, f"invalid JSON ({err.msg} at column {err.colno}) "
                              f"in {snippet(text)}", expected) from None
        if not isinstance(obj, dict):
            raise FormatError(path, line_no, f"a JSON {type(obj).__name__}", expected)
        for key, required in fields.items():
            if key not in obj:
                if required:
                    raise FormatError(path, line_no, f"no field \"{key}\" in {snippet(text)}",
                                      expected)
            elif not (isinstance(obj[key], str) or (obj[key] is None and not required)):
                raise FormatError(path, line_no, f"field \"{key}\" of JSON type "
                                  f"{type(obj[key]).__name__}: {obj[key]!r}", expected)
        yield line_no, obj


def parse_relevance(path: Path, line_no: int, value: object) -> int:
    """An integer relevance grade from a qrels field, else FormatError."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    elif isinstance(value, int) and not isinstance(value, bool):
        return value
    raise FormatError(path, line_no, f"relevance {value!r}", "an integer relevance grade")


class IdIndex:
    """Detects duplicate ids among millions in 24 bytes each, without holding the ids.

    A 128-bit hash stands for each id, so a false duplicate is out of reach (p < 1e-20 at 1e9
    ids); when a duplicate is found the file is read again up to it to name it (a `.gz` file is
    decompressed again from its start, as gzip streams cannot seek cheaply).

    Args:
      path: the file, for messages and to read again.
      id_of_line: line text -> id, to name a duplicate.
      lines: a zero-argument callable yielding (line number, text) again, for a source that is
        not a file of lines (ir_datasets' iterators); None reads `path` with iter_lines.
    """

    def __init__(self, path: Path, id_of_line,
                 lines: Callable[[], Iterable[tuple[int, str]]] | None = None):
        self._path = path
        self._id_of_line = id_of_line
        self._lines = lines or (lambda: iter_lines(path, ""))
        self._hi = array.array("Q")
        self._lo = array.array("Q")
        self._line_nos = array.array("Q")

    def add(self, doc_id: str, line_no: int) -> None:
        digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=16).digest()
        self._hi.append(int.from_bytes(digest[:8], "little"))
        self._lo.append(int.from_bytes(digest[8:], "little"))
        self._line_nos.append(line_no)

    def check(self, what: str) -> None:
        """FormatError at the second occurrence of the first duplicated id, if any."""
        hi = np.frombuffer(self._hi, dtype=np.uint64)
        lo = np.frombuffer(self._lo, dtype=np.uint64)
        lines = np.frombuffer(self._line_nos, dtype=np.uint64)
        order = np.lexsort((lines, lo, hi))
        same = (hi[order[1:]] == hi[order[:-1]]) & (lo[order[1:]] == lo[order[:-1]])
        if not same.any():
            return
        pairs = np.stack([lines[order[:-1]][same], lines[order[1:]][same]], axis=1)
        first, second = (int(x) for x in pairs[np.argmin(pairs[:, 1])])
        text = next(t for n, t in self._lines() if n == second)
        raise FormatError(self._path, second, f"{what} {self._id_of_line(text)!r} again "
                          f"(first on line {first})", f"each {what} once")

