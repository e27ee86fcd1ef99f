r"""Loads the parts of a CircleCI usage export into the store's `usage` table, exactly and fast.

CircleCI writes a warehouse-style unload (see shared/circleci-api.md, "The CSV"): `\N` is NULL,
fields are unquoted with backslash-escaped delimiters (`feature\,x`), yet RFC 4180 quoted fields
(`"feature,x"`, `"a ""b"" c"`) occur too, and a bare `"` inside an unquoted field is a literal
character. No single CSV reader setting reads all of that, so every line takes one of two paths:

- fast path, in DuckDB: each part is read once as whole lines (one VARCHAR per line, numbered);
  a line with no `"` and no backslash other than whole `\N` fields, split on commas into
  exactly 48 fields, is cast column by column in SQL and inserted;
- slow path, in Python: the same scan hands every other line (with its number) to a Python
  function as it filters it out; those lines are parsed exactly here (field by field, joining a
  record that continues on the next line), then cast by the same SQL and inserted.

The parts are read in lanes: a lane is a few parts read one after another by one thread, one
lane per thread. With several lanes, each lane's typed rows are written by an in-memory DuckDB
of its own to a temporary Parquet file, side by side, and one INSERT reads the files (DuckDB 1.5
runs the lanes of a single INSERT one after another). One scan serves both paths: a second one,
for the slow path's lines alone, decompressed and read the whole export again, a fifth of the
load's CPU.

Both happen inside the caller's transaction. Anything neither path can read (a wrong field
count, a bad number or date, text that is not UTF-8) raises `CsvFormatError` naming the file
and the line, so the caller's rollback leaves the rows loaded before intact.

Dialect decisions where CircleCI documents nothing:
- a quoted field is literal text: `"\N"` is the two characters and `""` the empty string
  (NULL in a typed column, where an empty value means nothing else);
- in an unquoted field, `\n`, `\r`, `\t` are a newline, carriage return and tab, a backslash
  before a line break continues the value on the next line, and `\X` is X for any other X;
- inside quotes a backslash is an ordinary character (RFC 4180 has no escapes but `""`);
- blank lines are skipped; a UTF-8 byte-order mark before the header is ignored.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gzip
import re
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import duckdb

from circlecost.engine import sql_string
from circlecost.errors import CirclecostError
from circlecost.usage_columns import COLUMN_NAMES, COLUMN_TYPES, CREDIT_SERVICES, USAGE_COLUMNS

FIELD_COUNT: Final = len(USAGE_COLUMNS)
GZIP_MAGIC: Final = b"\x1f\x8b"
GZIP_CHECK_CHUNK: Final = 1 << 20
# The whole-line reader needs a delimiter that no text line contains.
LINE_DELIMITER: Final = "\x00"
MAX_HEADER_BYTES: Final = 64 * 1024
# Measured on 1M rows (bench/measure_load.py): appending in parallel without keeping the
# file order, and not merging the partial row groups that leaves at the commit's checkpoint,
# halves the load time.
LOAD_SETTINGS: Final = (
    "SET preserve_insertion_order = false",
    "SET max_vacuum_tasks = 0",
    # A load of several seconds would otherwise draw DuckDB's progress bar on our output.
    "SET enable_progress_bar = false",
)
# The loading connection's memory (DuckDB spills beyond it), by engine. Measured on 1M rows in
# 2 lanes: the embedded store at 300MB peaks at 574–584 MB RSS in 7.0–7.1 s (400MB: 660–720 MB in
# 6.8 s); the shared store at 300MB spilled its Parquet writes (8.4 s instead of 5.9 s).
LOAD_MEMORY: Final = {"embedded": "300MB", "shared": "400MB"}

# The SQL name under which the fast insert's scan calls `_SlowLines.set_aside`.
SET_ASIDE_FUNCTION: Final = "circlecost_set_aside"

# A line the fast path may split on commas: no quote, and every backslash is a whole `\N`.
# `,\N,` is replaced twice because neighbouring `\N` fields share a comma.
_NEEDS_SLOW_PATH_SQL: Final = (
    "(contains(line, '\"') OR (contains(line, '\\') AND contains("
    "replace(replace(',' || line || ',', ',\\N,', ',,'), ',\\N,', ',,'), '\\')))"
)
_ESCAPE_RE: Final = re.compile(r"\\(.)", re.DOTALL)
_ESCAPED_CHARACTERS: Final = {"n": "\n", "r": "\r", "t": "\t"}
_DUCKDB_LINE_RE: Final = re.compile(r"Line: (\d+)")
_TYPED_COLUMNS: Final = tuple((name, kind) for name, kind in USAGE_COLUMNS if kind != "VARCHAR")


class CsvFormatError(CirclecostError):
    """A part of a usage export that cannot be loaded exactly; names the file and the line."""

    def __init__(self, path: Path, line: int | None, problem: str) -> None:
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(
            f"{where}: {problem}",
            hint="nothing of this window was loaded and its previous rows are unchanged; "
            "if the export is damaged, import the window again (`circlecost sync`), "
            "otherwise report the line as a CircleCI format change",
        )
        self.path = path
        self.line = line
        self.problem = problem


@dataclass(frozen=True)
class LoadResult:
    """What one window's load put into the store."""

    rows: int
    total_mismatch_rows: int
    slow_path_rows: int
    rows_without_job: int


@dataclass(frozen=True)
class Part:
    """One file of an export and where its header puts each of the 48 columns."""

    path: Path
    number: int  # 1-based, as in usage.source_part
    compressed: bool
    positions: Mapping[str, int]  # column name -> 1-based field position
    size: int  # bytes in the file, to share the parts fairly between DuckDB's threads

    @property
    def compression(self) -> str:
        return "gzip" if self.compressed else "none"


@dataclass(frozen=True)
class Record:
    """A line (or a record continued over several lines) parsed by the slow path."""

    part: Part
    line: int
    values: tuple[str | None, ...]  # in USAGE_COLUMNS order


@dataclass(frozen=True)
class Target:
    """The usage rows of one window: who they belong to and where they came from."""

    integration_id: str
    window_start: datetime  # naive UTC, as stored
    export_job_id: str | None
    loaded_at: datetime  # naive UTC, as stored

    def constants(self) -> list[Any]:
        return [self.integration_id, self.window_start, self.export_job_id, self.loaded_at]


# --- the part files ----------------------------------------------------------------------------


def open_part(path: Path, number: int) -> Part:
    """Reads and checks a part's header: every one of the 48 columns, by name, exactly once."""
    try:
        with path.open("rb") as raw:
            compressed = raw.read(2) == GZIP_MAGIC
        size = path.stat().st_size
        header = _read_header(path, compressed)
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise CsvFormatError(path, 1, f"cannot read the header row ({err})") from err
    names = _header_names(path, header)
    positions = {name: index for index, name in enumerate(names, 1)}
    return Part(path, number, compressed, positions, size)


def _read_header(path: Path, compressed: bool) -> str:
    opener = gzip.open if compressed else open
    with opener(path, "rb") as stream:
        raw = stream.readline(MAX_HEADER_BYTES)
    if not raw.strip():
        raise CsvFormatError(path, 1, "is empty: a usage export starts with a header row")
    return raw.decode("utf-8-sig").rstrip("\r\n")


def _header_names(path: Path, header: str) -> list[str]:
    try:
        names = [(value or "").strip().upper() for value in split_fields(header)]
    except ValueError as err:
        raise CsvFormatError(path, 1, f"the header row cannot be read: {err}") from err
    problems = _header_problems(names)
    if problems:
        raise CsvFormatError(path, 1, "; ".join(problems))
    return names


def _header_problems(names: list[str]) -> list[str]:
    expected = set(COLUMN_NAMES)
    missing = [name for name in COLUMN_NAMES if name not in names]
    unknown = [name for name in names if name not in expected]
    repeated = sorted({name for name in names if names.count(name) > 1})
    problems = []
    if missing:
        problems.append(f"the header lacks the column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"the header has unknown column(s) {', '.join(map(repr, unknown))}")
    if repeated:
        problems.append(f"the header repeats the column(s) {', '.join(repeated)}")
    return problems


# --- loading -----------------------------------------------------------------------------------


def tune_for_load(con: duckdb.DuckDBPyConnection, engine: str = "embedded") -> None:
    """Settings for a bulk load, on the caller's short-lived connection (they end with it)."""
    for setting in (*LOAD_SETTINGS, f"SET memory_limit = '{LOAD_MEMORY[engine]}'"):
        con.execute(setting)


def load_parts(con: duckdb.DuckDBPyConnection, paths: Sequence[Path], target: Target) -> LoadResult:
    """Inserts the rows of every part for `target`, inside the caller's open transaction.

    The caller deletes the window's previous rows first and rolls back on any error. Each part
    is read once: the slow path's lines come out of the fast insert's own scan.
    """
    parts = [open_part(path, number) for number, path in enumerate(paths, 1)]
    # DuckDB's reader ends a cut-off gzip file quietly (a cut between lines would lose rows
    # without a word), so every compressed part's stream is checked to its end, alongside.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as checker:
        checks = [checker.submit(gzip_problem, part.path) for part in parts if part.compressed]
        try:
            slow_lines = _SlowLines()
            if parts:
                _insert_fast(con, lanes(parts, _duckdb_threads(con)), target, slow_lines)
            records = parse_pending(parts, slow_lines.in_file_order())
            if records:
                _insert_records(con, records, target)
        except (duckdb.Error, CsvFormatError) as err:
            _raise_gzip_problem(checks, err)
            raise
        _raise_gzip_problem(checks, None)
    return _summarize(con, target, len(records))


def gzip_problem(path: Path) -> CsvFormatError | None:
    """Whether a gzip part ends where its stream says it does (zlib releases the GIL)."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        with path.open("rb") as raw:
            while chunk := raw.read(GZIP_CHECK_CHUNK):
                while chunk:
                    inflater.decompress(chunk, GZIP_CHECK_CHUNK)
                    chunk = inflater.unconsumed_tail
                    if inflater.eof and inflater.unused_data:
                        # Another gzip member follows (concatenated parts are valid gzip).
                        chunk = inflater.unused_data + chunk
                        inflater = zlib.decompressobj(wbits=31)
    except (OSError, zlib.error) as err:
        return CsvFormatError(path, None, f"is not a complete gzip file ({err})")
    if not inflater.eof:
        return CsvFormatError(path, None, "is not a complete gzip file (it ends mid-stream)")
    return None


def _raise_gzip_problem(
    checks: Sequence[concurrent.futures.Future[CsvFormatError | None]], cause: BaseException | None
) -> None:
    for check in checks:
        problem = check.result()
        if problem is not None:
            raise problem from cause


def lanes(parts: Sequence[Part], count: int) -> list[list[Part]]:
    """The parts shared into about `count` lanes of similar size, each lane in part order.

    A lane is read by one DuckDB thread, part after part (numbering lines keeps it on one), so
    one lane per thread is the parallelism. Measured on 1M rows: one lane per part ran out of
    memory at 40 parts (each held a reader and a partial row group); two lanes per thread were
    no faster than one. A lane holds parts of one header layout and compression (one read_csv
    reads it), and never the same file twice (a part starts where the file name changes).
    """
    layouts: dict[tuple[bool, tuple[int, ...]], list[Part]] = {}
    for part in parts:
        layout = tuple(part.positions[name] for name in COLUMN_NAMES)
        layouts.setdefault((part.compressed, layout), []).append(part)
    result: list[list[Part]] = []
    for alike in layouts.values():
        shared: list[list[Part]] = [[] for _ in range(min(count, len(alike)))]
        sizes = [0] * len(shared)
        for part in sorted(alike, key=lambda part: part.size, reverse=True):
            free = [i for i, lane in enumerate(shared) if part.path not in {p.path for p in lane}]
            if not free:
                shared.append([])
                sizes.append(0)
                free = [len(shared) - 1]
            lightest = min(free, key=lambda i: sizes[i])
            shared[lightest].append(part)
            sizes[lightest] += part.size
        result.extend(sorted(lane, key=lambda part: part.number) for lane in shared)
    return result


class _SlowLines:
    """The slow path's lines, as the fast insert's scan sets them aside (from its threads)."""

    def __init__(self) -> None:
        # Keyed by position: a line counted twice (were DuckDB to evaluate twice) is one line.
        self._lines: dict[tuple[int, int], str] = {}

    def set_aside(self, part: int, line: int, text: str) -> bool:
        self._lines[(part, line)] = text  # one dict store: atomic under the GIL
        return True

    def in_file_order(self) -> list[tuple[int, int, str]]:
        return [(part, line, text) for (part, line), text in sorted(self._lines.items())]


@contextlib.contextmanager
def _set_aside_function(con: duckdb.DuckDBPyConnection, slow_lines: _SlowLines) -> Iterator[None]:
    """SET_ASIDE_FUNCTION, on `con` while the block runs."""
    con.create_function(
        SET_ASIDE_FUNCTION,
        slow_lines.set_aside,
        ["INTEGER", "BIGINT", "VARCHAR"],  # source_part, source_line, line
        "BOOLEAN",
        side_effects=True,  # called for its effect: DuckDB must neither skip nor cache it
    )
    try:
        yield
    except BaseException:
        # After a failed statement the transaction refuses even this; the connection ends soon.
        with contextlib.suppress(duckdb.Error):
            con.remove_function(SET_ASIDE_FUNCTION)
        raise
    con.remove_function(SET_ASIDE_FUNCTION)


def _duckdb_threads(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT current_setting('threads')").fetchone()
    return max(1, int(row[0])) if row else 1


def _lines_sql(lane: Sequence[Part]) -> tuple[str, list[Any]]:
    """Every non-blank line of the lane's parts, numbered as in its file (the header is line 1).

    One thread reads the parts one after another: an empty OVER () follows the scan order by
    design (DuckDB keeps such a pipeline in order whatever preserve_insertion_order says), and
    a part's lines count from the row where the file name changes.
    """
    at_file_start = "CASE WHEN filename IS DISTINCT FROM previous THEN {} END"
    so_far = "OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    numbers = "[" + ", ".join(str(part.number) for part in lane) + "]"
    scan = (
        "SELECT filename, line, row_number() OVER () AS row, lag(filename) OVER () AS previous "
        "FROM read_csv(?, columns = {'line': 'VARCHAR'}, header = true, auto_detect = false, "
        "delim = ?, quote = '', escape = '', compression = ?, strict_mode = true, "
        "filename = true)"
    )
    numbered = (
        f"SELECT line, row - max({at_file_start.format('row')}) {so_far} + 2 AS source_line, "
        f"max({at_file_start.format('list_position(?, filename)')}) {so_far} AS file "
        f"FROM ({scan})"
    )
    sql = (
        f"SELECT CASE WHEN file IS NULL THEN error('a part was read under another name') "
        f"ELSE {numbers}[file] END AS source_part, source_line, line "
        f"FROM ({numbered}) WHERE line IS NOT NULL"
    )
    paths = [str(part.path) for part in lane]
    return sql, [paths, paths, LINE_DELIMITER, lane[0].compression]


def _split_lines_sql(lane: Sequence[Part], *, set_aside: bool = False) -> tuple[str, list[Any]]:
    """The lane's fast-path lines, each split on every comma into `f`.

    With `set_aside`, each line the filter drops goes to SET_ASIDE_FUNCTION: a CASE branch
    runs only for the rows its condition selects, so the function sees the slow lines alone.
    """
    lines, params = _lines_sql(lane)
    slow = _NEEDS_SLOW_PATH_SQL
    if set_aside:
        slow = (
            f"CASE WHEN {slow} THEN {SET_ASIDE_FUNCTION}(source_part, source_line, line) "
            "ELSE false END"
        )
    sql = (
        "SELECT source_part, source_line, string_split(line, ',') AS f "
        f"FROM ({lines}) WHERE NOT {slow}"
    )
    return sql, params


def _fast_lines_sql(lane: Sequence[Part]) -> tuple[str, list[Any]]:
    """The fast-path lines; one without exactly 48 fields fails the insert (then diagnosed)."""
    split, params = _split_lines_sql(lane, set_aside=True)
    sql = (
        f"SELECT source_part, source_line, CASE WHEN len(f) = {FIELD_COUNT} THEN f "
        "ELSE error('a line has the wrong number of fields') END AS f "
        f"FROM ({split})"
    )
    return sql, params


def _fast_select(lane: Sequence[Part]) -> tuple[str, list[Any]]:
    fast, params = _fast_lines_sql(lane)
    columns = ", ".join(
        f"{_typed(_fast_field(lane[0], name), kind)} AS {name}" for name, kind in USAGE_COLUMNS
    )
    return f"SELECT source_part, source_line, {columns} FROM ({fast})", params


def _fast_field(part: Part, name: str) -> str:
    return f"nullif(nullif(f[{part.positions[name]}], '\\N'), '')"


def _typed(value_sql: str, kind: str) -> str:
    return value_sql if kind == "VARCHAR" else f"CAST({value_sql} AS {kind})"


def _insert_fast(
    con: duckdb.DuckDBPyConnection,
    lanes: Sequence[Sequence[Part]],
    target: Target,
    slow_lines: _SlowLines,
) -> None:
    """Inserts the fast-path rows of every lane. With several lanes, each lane is first read,
    split and cast by its own in-memory DuckDB into a Parquet file of a temporary folder, all
    lanes at once, and then one INSERT reads those files: DuckDB 1.5 runs the lanes of a single
    INSERT one after another (measured on 1M rows in 2 lanes: 8.7 s, and 3.9 s with DuckDB 2.0),
    but two connections in two threads side by side. The files hold typed rows only; nothing
    reaches the store before the INSERT, inside the caller's transaction."""
    try:
        if len(lanes) == 1:
            sql, params = _fast_select(lanes[0])
            with _set_aside_function(con, slow_lines):
                con.execute(_INSERT_SQL.format(source=f"({sql})"), [*target.constants(), *params])
            return
        with tempfile.TemporaryDirectory(prefix="circlecost-load-") as folder:
            with concurrent.futures.ThreadPoolExecutor(max_workers=len(lanes)) as pool:
                staged = list(
                    pool.map(
                        lambda lane: _stage_lane(lane, slow_lines, Path(folder)),
                        lanes,
                    )
                )
            con.execute(_INSERT_SQL.format(source="read_parquet(?)"), [*target.constants(), staged])
    except duckdb.Error as err:
        found = diagnose_parts([part for lane in lanes for part in lane], err)
        if found is None:
            raise  # not the data's fault (disk, memory): the store reports it
        raise found from err


_INSERT_SQL: Final = (
    "INSERT INTO usage BY NAME SELECT ? AS integration_id, ? AS window_start, "
    "? AS export_job_id, ? AS loaded_at, * FROM {source}"
)
# Each staging connection's share of the load's memory (DuckDB spills beyond it), and the
# Parquet row group it buffers. Measured on 1M rows in 2 lanes: 200MB with 30,000-row groups
# loads as fast as 400MB with the default groups; 200MB with the default groups spilled so much
# that the load took twice as long.
STAGING_MEMORY: Final = "SET memory_limit = '200MB'"
STAGING_ROW_GROUP: Final = 30_000


def _stage_lane(lane: Sequence[Part], slow_lines: _SlowLines, folder: Path) -> str:
    """The lane's typed fast-path rows written to a Parquet file in `folder`; its path."""
    output = str(folder / f"lane-{lane[0].number}.parquet")
    # Each in-memory database spills to a folder of its own (two sharing DuckDB's default
    # `.tmp` overwrite each other's spill files).
    spill = folder / f"spill-{lane[0].number}"
    staging = duckdb.connect(config={"temp_directory": str(spill)})
    try:
        for setting in (*LOAD_SETTINGS, STAGING_MEMORY, "SET threads = 1"):
            staging.execute(setting)
        sql, params = _fast_select(lane)
        with _set_aside_function(staging, slow_lines):
            # Snappy: measured as fast as no compression, and the temporary files are smaller.
            staging.execute(
                f"COPY ({sql}) TO {sql_string(output)} "
                f"(FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE {STAGING_ROW_GROUP})",
                params,
            )
    finally:
        staging.close()
    return output


def _insert_records(con: duckdb.DuckDBPyConnection, records: list[Record], target: Target) -> None:
    sql, params = _records_select(records)
    try:
        con.execute(
            "INSERT INTO usage BY NAME SELECT ? AS integration_id, ? AS window_start, "
            f"? AS export_job_id, ? AS loaded_at, * FROM ({sql})",
            target.constants() + params,
        )
    except duckdb.Error as err:
        found = diagnose_records(records)
        if found is None:
            raise
        raise found from err


def _records_source(records: list[Record]) -> tuple[str, list[Any]]:
    """The slow path's records as rows of VARCHAR columns v1..v48, bound as parameters."""
    unnests = ", ".join(f"unnest(?::VARCHAR[]) AS v{index}" for index in range(1, FIELD_COUNT + 1))
    sql = (
        "SELECT unnest(?::SMALLINT[]) AS source_part, unnest(?::BIGINT[]) AS source_line, "
        f"{unnests}"
    )
    params: list[Any] = [[r.part.number for r in records], [r.line for r in records]]
    params.extend([r.values[index] for r in records] for index in range(FIELD_COUNT))
    return sql, params


def _records_select(records: list[Record]) -> tuple[str, list[Any]]:
    """The slow path's records cast exactly like the fast path's lines."""
    source, params = _records_source(records)
    columns = ", ".join(
        f"{_typed(f'v{index}', kind)} AS {name}"
        for index, (name, kind) in enumerate(USAGE_COLUMNS, 1)
    )
    return f"SELECT source_part, source_line, {columns} FROM ({source})", params


def _summarize(con: duckdb.DuckDBPyConnection, target: Target, slow_rows: int) -> LoadResult:
    components = " + ".join(f"coalesce({column}, 0)" for column, _ in CREDIT_SERVICES)
    row = con.execute(
        "SELECT count(*), "
        f"count(*) FILTER (WHERE coalesce(TOTAL_CREDITS, 0) <> {components}), "
        "count(*) FILTER (WHERE JOB_ID IS NULL) "
        "FROM usage WHERE integration_id = ? AND window_start = ?",
        [target.integration_id, target.window_start],
    ).fetchone()
    assert row is not None
    rows, mismatches, without_job = (int(value) for value in row)
    return LoadResult(rows, mismatches, slow_rows, without_job)


# --- the slow path ----------------------------------------------------------------------------


class UnfinishedFieldError(ValueError):
    """The text ends inside a quoted field or right after an escaping backslash."""


def split_fields(text: str) -> list[str | None]:
    """Splits one record into its decoded fields (None is NULL); raises ValueError if malformed.

    It splits on every comma, then joins back the pieces of a quoted field that holds commas
    and of an unquoted field whose comma is escaped; nearly every piece is a whole field.
    """
    pieces = text.split(",")
    fields: list[str | None] = []
    index = 0
    while index < len(pieces):
        piece, index = pieces[index], index + 1
        if piece.startswith('"'):
            while piece.count('"') % 2 or len(piece) == 1:
                if index == len(pieces):
                    raise UnfinishedFieldError(
                        f"field {len(fields) + 1} opens a quote that is never closed"
                    )
                piece, index = piece + "," + pieces[index], index + 1
            fields.append(_unquote(piece, len(fields) + 1))
        elif "\\" in piece:
            while _escapes_next(piece):
                if index == len(pieces):
                    raise UnfinishedFieldError(
                        f"field {len(fields) + 1} ends with a lone backslash"
                    )
                piece, index = piece + "," + pieces[index], index + 1
            fields.append(_unescape(piece))
        else:
            fields.append(piece or None)
    return fields


def _unquote(piece: str, field: int) -> str:
    inner = piece[1:-1]
    if not piece.endswith('"') or '"' in inner.replace('""', ""):
        raise ValueError(f"field {field} has text after its closing quote")
    return inner.replace('""', '"')


def _escapes_next(piece: str) -> bool:
    """True if the piece ends with an odd run of backslashes: its last one escapes the comma."""
    return (len(piece) - len(piece.rstrip("\\"))) % 2 == 1


def _unescape(piece: str) -> str | None:
    if piece == "\\N":
        return None
    return _ESCAPE_RE.sub(lambda m: _ESCAPED_CHARACTERS.get(m.group(1), m.group(1)), piece)


def parse_pending(parts: Sequence[Part], pending: Iterable[tuple[int, int, str]]) -> list[Record]:
    """Parses the slow path's lines, given in file order as (part number, line, text).

    A record left open at the end of a line continues on the next line if that line is
    pending too (a quoted or escaped line break); otherwise it is an error.
    """
    by_number = {part.number: part for part in parts}
    lines = list(pending)
    records: list[Record] = []
    index = 0
    while index < len(lines):
        number, first_line, text = lines[index]
        index += 1
        while True:
            try:
                fields = split_fields(text)
                break
            except UnfinishedFieldError as err:
                if index == len(lines) or lines[index][:2] != (number, lines[index - 1][1] + 1):
                    raise CsvFormatError(by_number[number].path, first_line, str(err)) from None
                text, index = text + "\n" + lines[index][2], index + 1
            except ValueError as err:
                raise CsvFormatError(by_number[number].path, first_line, str(err)) from None
        records.append(_record(by_number[number], first_line, fields))
    return records


def _record(part: Part, line: int, fields: list[str | None]) -> Record:
    if len(fields) != FIELD_COUNT:
        raise CsvFormatError(
            part.path, line, f"has {len(fields)} fields where the header has {FIELD_COUNT}"
        )
    values = tuple(
        None if value == "" and kind != "VARCHAR" else value
        for value, kind in zip(
            (fields[part.positions[name] - 1] for name, _ in USAGE_COLUMNS),
            (kind for _, kind in USAGE_COLUMNS),
            strict=True,
        )
    )
    return Record(part, line, values)


# --- explaining a failed load -----------------------------------------------------------------
# These run only after DuckDB refused a batch: they find the first file and line to blame,
# on a scratch in-memory connection because the caller's transaction is aborted.


def diagnose_parts(parts: Sequence[Part], err: duckdb.Error) -> CsvFormatError | None:
    """Finds the file and line behind a failed fast-path insert; None if the data is fine."""
    with duckdb.connect() as scratch:
        for part in parts:
            found = _first_bad_fast_line(scratch, part)
            if found is not None:
                return found
    if _duckdb_line(err) is not None and len(parts) == 1:
        return CsvFormatError(parts[0].path, _duckdb_line(err), _duckdb_problem(err))
    return None


def _first_bad_fast_line(scratch: duckdb.DuckDBPyConnection, part: Part) -> CsvFormatError | None:
    split, params = _split_lines_sql([part])
    tests = [(name, kind, _fast_field(part, name)) for name, kind in _TYPED_COLUMNS]
    try:
        miscounted = scratch.execute(
            f"SELECT source_line, len(f) FROM ({split}) WHERE len(f) <> {FIELD_COUNT} "
            "ORDER BY source_line LIMIT 1",
            params,
        ).fetchone()
        bad_value = scratch.execute(
            _first_bad_value_sql(f"SELECT * FROM ({split}) WHERE len(f) = {FIELD_COUNT}", tests),
            params,
        ).fetchone()
    except duckdb.Error as err:
        return CsvFormatError(part.path, _duckdb_line(err), _duckdb_problem(err))
    if miscounted is not None and (bad_value is None or miscounted[0] < bad_value[1]):
        line, count = miscounted
        return CsvFormatError(
            part.path, int(line), f"has {count} fields where the header has {FIELD_COUNT}"
        )
    return None if bad_value is None else _bad_value_error({part.number: part}, bad_value)


def diagnose_records(records: list[Record]) -> CsvFormatError | None:
    """Finds the slow-path record behind a failed insert; None if every value casts."""
    source, params = _records_source(records)
    tests = [(name, kind, f"v{COLUMN_NAMES.index(name) + 1}") for name, kind in _TYPED_COLUMNS]
    with duckdb.connect() as scratch:
        row = scratch.execute(_first_bad_value_sql(source, tests), params).fetchone()
    if row is None:
        return None
    return _bad_value_error({record.part.number: record.part for record in records}, row)


def _first_bad_value_sql(source: str, tests: list[tuple[str, str, str]]) -> str:
    """The first row of `source` with a value that does not cast: (part, line, column, value)."""
    bad = {
        name: f"({value} IS NOT NULL AND TRY_CAST({value} AS {kind}) IS NULL)"
        for name, kind, value in tests
    }
    column = " ".join(f"WHEN {bad[name]} THEN '{name}'" for name, _, _ in tests)
    value = " ".join(f"WHEN {bad[name]} THEN {raw}" for name, _, raw in tests)
    return (
        f"SELECT source_part, source_line, CASE {column} END, CASE {value} END "
        f"FROM ({source}) WHERE {' OR '.join(bad.values())} "
        "ORDER BY source_part, source_line LIMIT 1"
    )


def _bad_value_error(parts: Mapping[int, Part], row: tuple[Any, ...]) -> CsvFormatError:
    number, line, name, value = row
    kind = COLUMN_TYPES[name]
    return CsvFormatError(
        parts[int(number)].path, int(line), f"{name} is {value!r}, which is not a valid {kind}"
    )


def _duckdb_line(err: duckdb.Error) -> int | None:
    match = _DUCKDB_LINE_RE.search(str(err))
    return int(match.group(1)) if match else None


def _duckdb_problem(err: duckdb.Error) -> str:
    text = str(err)
    if "Invalid unicode" in text or "not utf-8" in text:
        return "is not UTF-8 text"
    lowered = text.lower()
    if any(word in lowered for word in ("gzip", "zlib", "decompress", "inflate")):
        return f"is not a complete gzip file ({text.splitlines()[0]})"
    return text.splitlines()[0] if text else type(err).__name__
