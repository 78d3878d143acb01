"""Read timestamped text posts from CSV, JSON Lines or Parquet and assign time slots.

Each row becomes one post with a platform, a time-zone-aware timestamp, the start of
its time slot (an hour, a day or a week in the configured time zone), the text and a
weight. Rows with an unparseable timestamp, an empty text, undecodable bytes or an
invalid weight raise :class:`~equipipe.errors.InputError` naming the file, the line
and the fix, or are skipped and counted with ``on_invalid="skip"``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from equipipe.errors import ConfigError, InputError

logger = logging.getLogger(__name__)

SLOT_LENGTHS = ("hour", "day", "week")
INVALID_POLICIES = ("raise", "skip")
FILE_FORMATS = ("auto", "csv", "jsonl", "parquet")
_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# An explicit UTC offset or "Z" at the end of an ISO 8601 timestamp.
_OFFSET_SUFFIX = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
# Lone surrogates that Python's "surrogateescape" decoding puts in place of bytes that
# are not valid UTF-8.
_UNDECODABLE = re.compile("[\udc80-\udcff]")

POST_COLUMNS = ("post_id", "source", "line", "platform", "time", "slot", "text", "weight")


@dataclass(frozen=True)
class ColumnMap:
    """Names of the input columns (CSV header, JSON keys or Parquet fields).

    Parameters
    ----------
    time : str, default "time"
        Timestamp column.
    text : str, default "text"
        Post text column.
    platform : str or None, default "platform"
        Platform name column; None when every file has a fixed platform.
    weight : str or None, default None
        Optional non-negative weight of each post (for example a repost count); every
        post weighs 1 when None.
    """

    time: str = "time"
    text: str = "text"
    platform: str | None = "platform"
    weight: str | None = None


@dataclass
class IngestReport:
    """Counts of one ingested file: rows read, rows kept and rows skipped by reason."""

    path: str
    rows_read: int = 0
    rows_kept: int = 0
    skipped: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        """Return the counts as a JSON-serialisable dict."""
        return {
            "path": self.path,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "skipped": dict(self.skipped),
        }


@dataclass
class _RawTable:
    """Column values as read from a file, before validation."""

    values: dict[str, list]  # column name -> one value per row (None when absent)
    lines: list[int]  # 1-based line (CSV, JSON Lines) or row (Parquet) of each row
    location_word: str  # "line" or "row"
    problems: dict[int, tuple[str, str, str]]  # row index -> (field, reason, fix)


def detect_format(path: str | os.PathLike, file_format: str = "auto") -> str:
    """Return ``csv``, ``jsonl`` or ``parquet`` for ``path``.

    ``file_format="auto"`` picks the format from the file suffix (``.csv``,
    ``.jsonl``/``.ndjson``/``.json``, ``.parquet``/``.pq``).

    Raises
    ------
    ConfigError
        If ``file_format`` is not a known format or the suffix is not recognised.
    """
    if file_format not in FILE_FORMATS:
        raise ConfigError(
            f"format={file_format!r} is not one of {', '.join(FILE_FORMATS)}",
            field="format",
            fix="set the corpus format to auto, csv, jsonl or parquet",
        )
    if file_format != "auto":
        return file_format
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIX_FORMATS:
        raise ConfigError(
            f"cannot tell the format of {os.fspath(path)!r} from its suffix {suffix!r}",
            field="format",
            fix="rename the file to .csv, .jsonl or .parquet, or set the corpus format",
        )
    return _SUFFIX_FORMATS[suffix]


def read_posts(
    path: str | os.PathLike,
    *,
    columns: ColumnMap | None = None,
    timezone: str = "UTC",
    slot: str = "day",
    time_format: str = "ISO8601",
    platform: str | None = None,
    on_invalid: str = "raise",
    file_format: str = "auto",
) -> tuple[pd.DataFrame, IngestReport]:
    """Read one file of posts and assign each post its time slot.

    Parameters
    ----------
    path : str or os.PathLike
        CSV (with a header line, UTF-8), JSON Lines (one object per line, UTF-8) or
        Parquet file.
    columns : ColumnMap, optional
        Names of the time, text, platform and weight columns.
    timezone : str, default "UTC"
        IANA time zone (``"Asia/Shanghai"``). Timestamps without a UTC offset are
        read as local times of this zone, timestamps with an offset are converted to
        it, and slots start at local midnight (day, week) or on the hour.
    slot : {"hour", "day", "week"}, default "day"
        Length of one time slot. Weeks start on Monday.
    time_format : str, default "ISO8601"
        ``"ISO8601"`` (``2021-07-23``, ``2021-07-23 20:00``, ``2021-07-23T12:00Z``),
        ``"unix"`` (seconds since 1970-01-01 UTC) or a ``strftime`` format.
    platform : str, optional
        Platform of every row of this file; when None the platform column is used.
    on_invalid : {"raise", "skip"}, default "raise"
        What to do with an invalid row: raise :class:`InputError`, or drop it and
        count it in the returned report.
    file_format : {"auto", "csv", "jsonl", "parquet"}, default "auto"
        File format; ``auto`` uses the suffix.

    Returns
    -------
    posts : pandas.DataFrame
        One row per valid post with columns ``post_id`` (``"<file name>:<line>"``),
        ``source``, ``line``, ``platform``, ``time`` and ``slot`` (time-zone-aware
        timestamps in ``timezone``), ``text`` and ``weight`` (float).
    report : IngestReport
        Rows read, kept and skipped by reason.

    Raises
    ------
    InputError
        If the file is missing or unreadable, a configured column is not in the file,
        or (with ``on_invalid="raise"``) a row is invalid. The message names the file,
        the line and the fix.
    ConfigError
        If ``slot``, ``on_invalid``, ``timezone`` or ``file_format`` is invalid.
    """
    columns = columns or ColumnMap()
    _check_choice(slot, SLOT_LENGTHS, "slot")
    _check_choice(on_invalid, INVALID_POLICIES, "on_invalid")
    _check_timezone(timezone)
    if platform is None and columns.platform is None:
        raise ConfigError(
            f"{os.fspath(path)}: neither a platform column nor a fixed platform is given",
            field="platform",
            fix="name the platform column in the corpus columns, or give the file's platform",
        )
    path = Path(path)
    if not path.is_file():
        raise InputError(
            "file not found",
            path=path,
            fix="check the path in the corpus files list of the config",
        )

    required_columns = [columns.time, columns.text]
    if platform is None:
        required_columns.append(columns.platform)
    if columns.weight is not None:
        required_columns.append(columns.weight)

    fmt = detect_format(path, file_format)
    reader = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}[fmt]
    raw = reader(path, required_columns)
    report = IngestReport(path=os.fspath(path), rows_read=len(raw.lines))

    posts, problems = _validate(raw, columns, platform, timezone, time_format, path.name)
    problems.update(raw.problems)
    if problems:
        _handle_problems(problems, raw, path, on_invalid, report)
        posts = posts.drop(index=sorted(problems)).reset_index(drop=True)

    posts["slot"] = assign_slots(posts["time"], slot)
    posts = posts[list(POST_COLUMNS)]
    report.rows_kept = len(posts)
    logger.info(
        "read %d posts from %s (%d rows, %d skipped)",
        report.rows_kept, path, report.rows_read, sum(report.skipped.values()),
    )
    return posts, report


def assign_slots(times: pd.Series, slot: str) -> pd.Series:
    """Return the start of the time slot of each time-zone-aware timestamp.

    Days start at local midnight and weeks at local midnight on Monday. Hours are
    floored in UTC, which equals the local hour in every zone whose offset is a whole
    number of hours.
    """
    _check_choice(slot, SLOT_LENGTHS, "slot")
    if slot == "hour":
        tz = times.dt.tz
        return times.dt.tz_convert("UTC").dt.floor("h").dt.tz_convert(tz)
    day = times.dt.normalize()
    if slot == "day":
        return day
    return day - pd.to_timedelta(day.dt.day_of_week, unit="D")


def slot_range(first: pd.Timestamp, last: pd.Timestamp, slot: str) -> pd.DatetimeIndex:
    """Return every slot start from ``first`` to ``last`` inclusive.

    ``first`` and ``last`` are slot starts (time-zone-aware) as returned by
    :func:`assign_slots`. Daily and weekly steps follow the local calendar, so a
    day across a daylight-saving change still starts at local midnight.
    """
    _check_choice(slot, SLOT_LENGTHS, "slot")
    if slot == "hour":
        hours = pd.date_range(first.tz_convert("UTC"), last.tz_convert("UTC"), freq="h")
        return hours.tz_convert(first.tz)
    step = "D" if slot == "day" else "7D"
    local = pd.date_range(first.tz_localize(None), last.tz_localize(None), freq=step)
    return local.tz_localize(first.tz, ambiguous="NaT", nonexistent="shift_forward")


def _check_choice(value: str, choices: tuple[str, ...], name: str) -> None:
    if value not in choices:
        raise ConfigError(
            f"{name}={value!r} is not one of {', '.join(choices)}",
            field=name,
            fix=f"set {name} to one of {', '.join(choices)} in the config",
        )


def _check_timezone(timezone: str) -> None:
    try:
        pd.Timestamp("2021-01-01").tz_localize(timezone)
    except Exception as error:  # pytz and zoneinfo raise different types
        raise ConfigError(
            f"timezone={timezone!r} is not a known time zone ({error})",
            field="timezone",
            fix="use an IANA time zone name such as UTC or Asia/Shanghai",
        ) from None


def _missing_column_error(path: Path, column: str, available: list[str]) -> InputError:
    listed = ", ".join(repr(name) for name in available[:20]) or "none"
    return InputError(
        f"column {column!r} not found; the file has {listed}",
        path=path,
        field=column,
        fix="set the corpus columns in the config to names that the file uses",
    )


def _decode_error(path: Path, data: bytes, error: UnicodeDecodeError) -> InputError:
    line = data.count(b"\n", 0, error.start) + 1
    return InputError(
        f"bytes {data[error.start:error.end]!r} are not valid UTF-8",
        path=path,
        location=f"line {line}",
        fix="re-encode the file as UTF-8 (for example iconv -f GB18030 -t UTF-8)",
    )


def _read_csv(path: Path, required_columns: list[str]) -> _RawTable:
    data = path.read_bytes()
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    # The csv module rejects fields over 131,072 characters by default; a long post is
    # valid input, so allow fields as long as the whole file.
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(
            "file is empty", path=path, fix="give a CSV file with a header line"
        ) from None
    except csv.Error as error:
        raise InputError(f"invalid CSV header: {error}", path=path, location="line 1") from None
    if _UNDECODABLE.search(",".join(header)):
        raise _decode_error(path, data, _first_decode_error(data))
    for column in required_columns:
        if column not in header:
            raise _missing_column_error(path, column, header)
    positions = {column: header.index(column) for column in required_columns}
    check_bytes = _UNDECODABLE.search(text) is not None

    values: dict[str, list] = {column: [] for column in required_columns}
    lines: list[int] = []
    problems: dict[int, tuple[str, str, str]] = {}
    previous_end = reader.line_num
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise InputError(
                f"invalid CSV: {error}",
                path=path,
                location=f"line {previous_end + 1}",
                fix="check the quoting of this line: close the quoted field or double "
                "the quote characters inside it",
            ) from None
        start = previous_end + 1
        previous_end = reader.line_num
        if not record:  # blank line
            continue
        row = len(lines)
        lines.append(start)
        if len(record) != len(header):
            problems[row] = (
                "",
                f"row has {len(record)} fields but the header has {len(header)}",
                "quote fields that contain the delimiter",
            )
        for column, position in positions.items():
            value = record[position] if position < len(record) else None
            if check_bytes and value is not None and _UNDECODABLE.search(value):
                problems.setdefault(
                    row,
                    (column, "contains bytes that are not valid UTF-8",
                     "re-encode the file as UTF-8"),
                )
                value = None
            values[column].append(value)
    return _RawTable(values, lines, "line", problems)


def _first_decode_error(data: bytes) -> UnicodeDecodeError:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return error
    raise AssertionError("data decodes as UTF-8")  # only called after a failed decode


def _read_jsonl(path: Path, required_columns: list[str]) -> _RawTable:
    values: dict[str, list] = {column: [] for column in required_columns}
    lines: list[int] = []
    problems: dict[int, tuple[str, str, str]] = {}
    seen = dict.fromkeys(required_columns, False)
    keys: set[str] = set()
    with path.open("rb") as handle:
        for number, raw_line in enumerate(handle, start=1):
            if not raw_line.strip():
                continue
            row = len(lines)
            lines.append(number)
            record = None
            try:
                record = json.loads(raw_line.decode("utf-8"))
            except UnicodeDecodeError:
                problems[row] = ("", "contains bytes that are not valid UTF-8",
                                 "re-encode the file as UTF-8")
            except json.JSONDecodeError as error:
                problems[row] = ("", f"invalid JSON ({error.msg} at column {error.colno})",
                                 "write one JSON object per line")
            if record is not None and not isinstance(record, dict):
                problems[row] = ("", f"expected a JSON object, found {type(record).__name__}",
                                 "write one JSON object per line")
                record = None
            record = record or {}
            keys.update(record)
            for column in required_columns:
                value = record.get(column)
                seen[column] = seen[column] or column in record
                values[column].append(value)
    if lines:
        for column in required_columns:
            if not seen[column]:
                raise _missing_column_error(path, column, sorted(keys))
    return _RawTable(values, lines, "line", problems)


def _read_parquet(path: Path, required_columns: list[str]) -> _RawTable:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError and others
        raise InputError(
            f"cannot read Parquet file ({error})",
            path=path,
            fix="check that the file is a complete Parquet file",
        ) from None
    for column in required_columns:
        if column not in schema.names:
            raise _missing_column_error(path, column, list(schema.names))
    table = pq.read_table(path, columns=required_columns)
    values: dict[str, list] = {}
    problems: dict[int, tuple[str, str, str]] = {}
    for column in required_columns:
        column_values = table.column(column).to_pylist()
        for row, value in enumerate(column_values):
            if isinstance(value, bytes):
                try:
                    column_values[row] = value.decode("utf-8")
                except UnicodeDecodeError:
                    column_values[row] = None
                    problems.setdefault(row, (column, "contains bytes that are not valid UTF-8",
                                              "store the column as UTF-8 strings"))
        values[column] = column_values
    return _RawTable(values, list(range(1, table.num_rows + 1)), "row", problems)


def _validate(
    raw: _RawTable,
    columns: ColumnMap,
    platform: str | None,
    timezone: str,
    time_format: str,
    source: str,
) -> tuple[pd.DataFrame, dict[int, tuple[str, str, str]]]:
    problems: dict[int, tuple[str, str, str]] = {}
    n_rows = len(raw.lines)

    texts = pd.Series(raw.values[columns.text], dtype=object)
    text_ok = _is_nonblank_string(texts)
    for row in np.flatnonzero(~text_ok.to_numpy(dtype=bool)):
        problems.setdefault(int(row), (columns.text, "empty or missing text",
                                       "remove the row or fill in its text"))

    times, time_problems = parse_times(raw.values[columns.time], timezone, time_format)
    for row, reason in time_problems.items():
        problems.setdefault(row, (columns.time, reason,
                                  f"write the time as {_format_hint(time_format)}"))

    if platform is not None:
        platforms = pd.Series([platform] * n_rows, dtype=object)
    else:
        platforms = pd.Series(raw.values[columns.platform], dtype=object)
        platform_ok = _is_nonblank_string(platforms)
        for row in np.flatnonzero(~platform_ok.to_numpy(dtype=bool)):
            problems.setdefault(int(row), (columns.platform, "empty or missing platform",
                                           "fill in the platform name"))

    if columns.weight is not None:
        weights = pd.to_numeric(pd.Series(raw.values[columns.weight], dtype=object),
                                errors="coerce").astype(float)
        weight_ok = np.isfinite(weights.to_numpy()) & (weights.to_numpy() >= 0)
        for row in np.flatnonzero(~weight_ok):
            problems.setdefault(int(row), (columns.weight,
                                           f"weight {raw.values[columns.weight][row]!r} is not "
                                           "a finite non-negative number",
                                           "write a number >= 0"))
    else:
        weights = pd.Series(np.ones(n_rows))

    lines = pd.Series(raw.lines, dtype="int64")
    posts = pd.DataFrame({
        "post_id": source + ":" + lines.astype(str),
        "source": source,
        "line": lines,
        "platform": platforms.str.strip(),
        "time": times,
        "text": texts,
        "weight": weights.astype(float),
    })
    return posts, problems


def _is_nonblank_string(values: pd.Series) -> pd.Series:
    """Return a boolean Series: True where the value is a string with a non-space character."""
    stripped = values.str.strip()  # NaN for values that are not strings
    return (stripped.notna() & (stripped != "")).astype(bool)


def parse_times(
    values: list, timezone: str, time_format: str = "ISO8601"
) -> tuple[pd.Series, dict[int, str]]:
    """Parse timestamps into time-zone-aware times in ``timezone``.

    Parameters
    ----------
    values : list
        Raw values (strings, or numbers for ``time_format="unix"``).
    timezone : str
        Zone of timestamps without an offset, and of the result.
    time_format : str, default "ISO8601"
        ``"ISO8601"``, ``"unix"`` (seconds since the epoch, UTC) or a ``strftime``
        format.

    Returns
    -------
    times : pandas.Series
        Parsed times, NaT where a value is invalid.
    problems : dict of int to str
        Row index to the reason the value is invalid.
    """
    raw = pd.Series(values, dtype=object)
    problems: dict[int, str] = {}
    result = pd.Series(pd.NaT, index=raw.index, dtype=f"datetime64[ns, {timezone}]")

    if time_format == "unix":
        seconds = pd.to_numeric(raw, errors="coerce").astype(float)
        valid = np.isfinite(seconds.to_numpy())
        parsed = pd.to_datetime(seconds[valid], unit="s", utc=True, errors="coerce")
        result[valid] = parsed.dt.tz_convert(timezone)
    else:
        strings = raw.str.strip()  # NaN for values that are not strings
        present = strings.notna() & (strings != "")
        if time_format == "ISO8601":
            has_offset = present & strings.str.contains(_OFFSET_SUFFIX, na=False)
        else:
            has_offset = present & ("%z" in time_format or "%Z" in time_format)
        naive = present & ~has_offset
        if has_offset.any():
            aware = pd.to_datetime(strings[has_offset], format=time_format, utc=True,
                                   errors="coerce")
            result[has_offset] = aware.dt.tz_convert(timezone)
        if naive.any():
            local = pd.to_datetime(strings[naive], format=time_format, errors="coerce")
            localised = local.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
            for row in local.index[local.notna() & localised.isna()]:
                problems[int(row)] = (
                    f"time {strings[row]!r} is ambiguous or does not exist in {timezone} "
                    "(daylight-saving change)"
                )
            result[naive] = localised

    for row in np.flatnonzero(result.isna().to_numpy()):
        problems.setdefault(int(row), f"cannot parse time {values[row]!r}")
    return result, problems


def _format_hint(time_format: str) -> str:
    if time_format == "ISO8601":
        return "ISO 8601 (2021-07-23 or 2021-07-23 20:00:00+08:00), or set time_format"
    if time_format == "unix":
        return "seconds since 1970-01-01 UTC, or set time_format"
    return f"{time_format!r}, or change time_format"


def _handle_problems(
    problems: dict[int, tuple[str, str, str]],
    raw: _RawTable,
    path: Path,
    on_invalid: str,
    report: IngestReport,
) -> None:
    first = min(problems)
    column, reason, fix = problems[first]
    if on_invalid == "raise":
        more = f" ({len(problems) - 1} more invalid rows)" if len(problems) > 1 else ""
        raise InputError(
            reason + more,
            path=path,
            location=f"{raw.location_word} {raw.lines[first]}",
            field=column or None,
            fix=f"{fix}, or set on_invalid: skip to drop invalid rows",
        )
    for column, reason, _ in problems.values():
        report.skipped[_reason_key(column, reason)] += 1
    logger.warning(
        "%s: skipped %d invalid rows (%s); first at %s %d: %s",
        path, len(problems),
        ", ".join(f"{key}: {count}" for key, count in sorted(report.skipped.items())),
        raw.location_word, raw.lines[first], reason,
    )


def _reason_key(column: str, reason: str) -> str:
    """Return a short category for counting skipped rows."""
    if "UTF-8" in reason:
        return "undecodable bytes"
    if "time" in reason:
        return "invalid time"
    if "text" in reason:
        return "empty text"
    if "weight" in reason:
        return "invalid weight"
    if "platform" in reason:
        return "missing platform"
    if "JSON" in reason:
        return "invalid JSON"
    if "fields" in reason:
        return "wrong field count"
    return column or "invalid row"


def read_corpus(
    files: list[tuple[str | os.PathLike, str | None]],
    *,
    columns: ColumnMap | None = None,
    timezone: str = "UTC",
    slot: str = "day",
    time_format: str = "ISO8601",
    on_invalid: str = "raise",
    file_format: str = "auto",
) -> tuple[pd.DataFrame, list[IngestReport]]:
    """Read several files of posts into one table, in file order.

    ``files`` lists ``(path, platform)`` pairs; ``platform`` None takes the platform
    from the platform column. The other parameters are those of :func:`read_posts`.
    """
    frames, reports = [], []
    for path, platform in files:
        posts, report = read_posts(
            path, columns=columns, timezone=timezone, slot=slot, time_format=time_format,
            platform=platform, on_invalid=on_invalid, file_format=file_format,
        )
        frames.append(posts)
        reports.append(report)
    posts = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=POST_COLUMNS)
    duplicated = posts["post_id"].duplicated()
    if duplicated.any():
        # Two files with the same name in different folders: keep ids unique.
        posts["post_id"] = (
            posts["post_id"] + "#" + posts.groupby("post_id").cumcount().astype(str)
        )
    return posts, reports


def check_platforms(posts: pd.DataFrame, platforms: list[str] | tuple[str, ...]) -> None:
    """Check that every configured platform has posts.

    Raises
    ------
    ConfigError
        If a platform of ``platforms`` has no post, naming the platforms found.
    """
    found = sorted(posts["platform"].unique())
    for name in platforms:
        if name not in found:
            raise ConfigError(
                f"platform {name!r} has no posts; the files contain {found}",
                field="events.corpora.<corpus>.platforms",
                fix="set the corpus platforms to names found in the platform column",
            )


__all__ = [
    "check_platforms",
    "ColumnMap",
    "IngestReport",
    "assign_slots",
    "detect_format",
    "parse_times",
    "read_corpus",
    "read_posts",
    "slot_range",
]
