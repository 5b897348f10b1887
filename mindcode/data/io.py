"""Streaming record readers (JSON array, JSONL, CSV, Parquet), atomic writers, and the reject log.

Readers yield ``Record``s one at a time, so a 20 GB file needs no 20 GB of RAM. Every record knows where it came
from (file, index, line), so an error can say exactly which record and field is wrong.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mindcode.errors import MindcodeError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Record:
    """One input row and where it came from."""

    data: dict[str, Any]
    path: str
    index: int  # 0-based record number within the file
    line: int | None = None  # 1-based line where the record starts, when the format has lines

    def where(self) -> str:
        line = f", line {self.line}" if self.line is not None else ""
        return f"{self.path}: record {self.index}{line}"


class RecordError(MindcodeError):
    """A record is malformed; the message names the file, record (and line) and field."""

    def __init__(self, record: Record, field_name: str | None, problem: str):
        self.record, self.field, self.problem = record, field_name, problem
        at = f", field {field_name!r}" if field_name else ""
        super().__init__(f"{record.where()}{at}: {problem}")


def expand_inputs(pattern: str | Path) -> list[Path]:
    """A file, or a glob such as ``data/*.jsonl``; no match is an error naming the pattern."""
    paths = sorted(Path(p) for p in glob.glob(str(pattern))) or ([Path(pattern)] if Path(pattern).exists() else [])
    if not paths:
        raise MindcodeError(f"{pattern}: no such file")
    return paths


def read_records(path: str | Path) -> Iterator[Record]:
    """Stream the records of one file, its format chosen by suffix (.json, .jsonl/.ndjson, .csv, .parquet)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".gz":
        raise MindcodeError(f"{path}: decompress it first (gzip input is not streamed)")
    readers = {".json": _read_json, ".jsonl": _read_jsonl, ".ndjson": _read_jsonl, ".csv": _read_csv,
               ".parquet": _read_parquet}
    if suffix not in readers:
        raise MindcodeError(f"{path}: unknown format {suffix!r}; use .json, .jsonl, .csv or .parquet")
    if not path.is_file():
        raise MindcodeError(f"{path}: no such file")
    return readers[suffix](path)


@contextlib.contextmanager
def utf8_lines(path: Path) -> Iterator[Iterator[tuple[int, str]]]:
    """``(line number, line)`` of a UTF-8 text file, streamed; bytes that are not UTF-8 are one error naming the
    file, the line and the byte."""
    with path.open("rb") as f:
        def lines() -> Iterator[tuple[int, str]]:
            for number, raw in enumerate(f, 1):
                try:
                    yield number, raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise MindcodeError(f"{path}: line {number}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                                        f"{exc.start + 1}); convert the file to UTF-8") from None
        yield lines()


def _read_jsonl(path: Path) -> Iterator[Record]:
    with utf8_lines(path) as numbered:
        index = 0
        for number, line in numbered:
            if not line.strip():
                continue
            record = Record({}, str(path), index, number)
            try:
                data = json.loads(line)
            except ValueError as exc:
                raise RecordError(record, None, f"invalid JSON ({exc})") from None
            if not isinstance(data, dict):
                raise RecordError(record, None, f"expected a JSON object, got {type(data).__name__}")
            yield Record(data, str(path), index, number)
            index += 1


def _read_json(path: Path) -> Iterator[Record]:
    """A JSON array of objects, decoded one element at a time (a JSON object file is one record)."""
    try:
        yield from _read_json_array(path)
    except UnicodeDecodeError as exc:
        raise MindcodeError(f"{path}: byte {exc.start} of a read chunk is not UTF-8 ({exc.reason}); convert the file "
                            f"to UTF-8 (`mindcode data validate` names the line for .jsonl)") from None


def _read_json_array(path: Path) -> Iterator[Record]:
    decoder = json.JSONDecoder()
    with path.open(encoding="utf-8") as f:
        buf, pos, line, index = f.read(_CHUNK), 0, 1, 0
        buf, pos, line = _skip_ws(f, buf, pos, line)
        if buf[pos:pos + 1] == "{":
            data = json.loads(buf + f.read())
            yield Record(data, str(path), 0, 1)
            return
        if buf[pos:pos + 1] != "[":
            raise MindcodeError(f"{path}: expected a JSON array of records")
        pos += 1
        while True:
            buf, pos, line = _skip_ws(f, buf, pos, line)
            if buf[pos:pos + 1] == "]":
                return
            if index and buf[pos:pos + 1] == ",":
                buf, pos, line = _skip_ws(f, buf, pos + 1, line)
            elif index:
                raise RecordError(Record({}, str(path), index, line), None, "expected ',' or ']' between records")
            record = Record({}, str(path), index, line)
            while True:
                try:
                    data, end = decoder.raw_decode(buf, pos)
                    break
                except ValueError as exc:
                    more = f.read(_CHUNK)
                    if not more:
                        raise RecordError(record, None, f"invalid JSON ({exc})") from None
                    buf, pos = buf[pos:] + more, 0
            if not isinstance(data, dict):
                raise RecordError(record, None, f"expected a JSON object, got {type(data).__name__}")
            line += buf.count("\n", pos, end)
            yield Record(data, str(path), index, record.line)
            pos, index = end, index + 1


def _skip_ws(f: IO[str], buf: str, pos: int, line: int) -> tuple[str, int, int]:
    while True:
        while pos < len(buf) and buf[pos] in " \t\r\n":
            line += buf[pos] == "\n"
            pos += 1
        if pos < len(buf):
            return buf, pos, line
        more = f.read(_CHUNK)
        if not more:
            return "", 0, line
        buf, pos = more, 0


def _read_csv(path: Path) -> Iterator[Record]:
    try:
        yield from _read_csv_rows(path)
    except UnicodeDecodeError as exc:
        raise MindcodeError(f"{path}: not UTF-8 ({exc.reason} in a read chunk); convert the file to UTF-8") from None


def _read_csv_rows(path: Path) -> Iterator[Record]:
    csv.field_size_limit(1 << 30)  # code cells are long
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        first = 2  # the line a record starts on (after the header), as the JSON readers name it
        for index, row in enumerate(reader):
            yield Record(dict(row), str(path), index, first)
            first = reader.line_num + 1


def _read_parquet(path: Path) -> Iterator[Record]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MindcodeError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    index = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            yield Record(row, str(path), index)
            index += 1


def require(record: Record, name: str, kind: type | tuple[type, ...] = str, allow_empty: bool = False) -> Any:
    """``record.data[name]``, checked for presence, type and (for strings) non-emptiness."""
    if name not in record.data or record.data[name] is None:
        present = ", ".join(sorted(k for k, v in record.data.items() if v is not None)[:12]) or "no fields"
        raise RecordError(record, name, f"missing (the record has: {present})")
    value = record.data[name]
    if not isinstance(value, kind):
        raise RecordError(record, name, f"expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    if not allow_empty and isinstance(value, str) and not value.strip():
        raise RecordError(record, name, "empty")
    return value


def usual_mode() -> int:
    """The mode a new file gets under this process's umask (0644 under umask 022)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """A temp path beside ``path``; renamed onto it if the block succeeds, removed if it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, usual_mode())  # mkstemp's 0600 is for the temp file; the output gets the usual mode
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as JSON lines, atomically; returns the count."""
    count = 0
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_json_array(path: str | Path, rows: Iterable[dict[str, Any]], indent: int = 2) -> int:
    """Write rows as one JSON array (the layout MindFormers' converters write), streamed and atomic."""
    count = 0
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        f.write("[")
        for row in rows:
            f.write(",\n" if count else "\n")
            text = json.dumps(row, ensure_ascii=False, indent=indent)
            f.write("\n".join(" " * indent + line for line in text.splitlines()))
            count += 1
        f.write("\n]" if count else "]")
    return count


OUTPUT_SUFFIXES = (".json", ".jsonl", ".ndjson")


def check_output(path: str | Path) -> None:
    """Converters write JSON: a path that names another format is an error before any row is read."""
    if Path(path).suffix.lower() not in OUTPUT_SUFFIXES:
        raise MindcodeError(f"{path}: converters write .json (an array) or .jsonl (lines), not "
                            f"{Path(path).suffix or 'a file without a suffix'}")


def write_rows(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """JSON array for ``.json``, JSON lines for ``.jsonl``/``.ndjson``."""
    check_output(path)
    return write_json_array(path, rows) if str(path).endswith(".json") else write_jsonl(path, rows)


@dataclass
class Rejects:
    """What ``--on-error skip`` set aside: counted by reason, and each one written with its reason as it happens
    (to a temp file beside the output, renamed to ``OUTPUT.rejects.jsonl`` by ``write``; nothing is held in memory)."""

    on_error: str = "fail"
    reasons: Counter = field(default_factory=Counter)
    output_path: str | Path | None = None
    _file: IO[str] | None = None
    _tmp: Path | None = None

    def __post_init__(self) -> None:
        if self.on_error not in ("fail", "skip"):
            raise MindcodeError(f"--on-error {self.on_error!r}: choose fail or skip")

    def handle(self, error: RecordError, reason: str | None = None) -> None:
        """Raise (fail, saying how to skip such records instead) or record (skip) a bad record."""
        if self.on_error == "fail":
            raise RecordError(error.record, error.field,
                              f"{error.problem} (--on-error skip sets such records aside, counted by reason)") from None
        if reason is None:
            problem = error.problem.split(" (")[0]
            reason = f"{error.field}: {problem}" if error.field else problem
        self.add(error.record, reason, str(error))

    def add(self, record: Record, reason: str, message: str | None = None) -> None:
        """Count a record skipped on purpose (by a filter, say) whatever ``on_error`` is."""
        self.reasons[reason] += 1
        if self.output_path is None:
            return
        if self._file is None:
            final = Path(f"{self.output_path}.rejects.jsonl")
            final.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
            self._file = self._tmp.open("w", encoding="utf-8")
        self._file.write(json.dumps({"path": record.path, "index": record.index, "line": record.line,
                                     "reason": reason, "error": message or reason, "record": record.data},
                                    ensure_ascii=False) + "\n")

    @property
    def count(self) -> int:
        return sum(self.reasons.values())

    def write(self) -> str | None:
        """Put ``OUTPUT.rejects.jsonl`` in place when anything was rejected; returns its path."""
        if self._file is None:
            return None
        self._file.close()
        final = Path(f"{self.output_path}.rejects.jsonl")
        os.replace(self._tmp, final)
        self._file = None
        return str(final)

    def discard(self) -> None:
        """A failed run leaves no rejects file."""
        if self._file is not None:
            self._file.close()
            self._tmp.unlink(missing_ok=True)
            self._file = None
