"""The CSV dialect of CircleCI usage exports: writing values and reading records back.

It is a warehouse-style unload: NULL is `\\N`, fields are normally unquoted with delimiters
backslash-escaped (`feature\\,x`), yet RFC 4180 double-quoted fields (`"feature,x"`, `""` for a
quote) also occur. Both styles appear in one file, so the reader accepts both per field:
- a field that starts with `"` is quoted: it runs to the closing quote, `""` is a quote, and a
  backslash inside it is an ordinary character;
- any other field runs to the next unescaped comma or line end, `\\c` stands for `c` (so a
  quote in the middle of an unquoted field is an ordinary character, as CircleCI writes
  `integration "slow"`), and the whole field `\\N` is NULL.
An empty field is NULL too.
"""

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Final, Literal

from circlecost.usage_columns import FALSE_WORDS, TRUE_WORDS, USAGE_COLUMNS

UsageValue = str | int | float | Decimal | bool | date | datetime | None
UsageRow = dict[str, UsageValue]
EscapeStyle = Literal["backslash", "quote"]

NULL_TEXT: Final[str] = "\\N"
COLUMN_KINDS: Final[Mapping[str, str]] = dict(USAGE_COLUMNS)

# One field at a position: group 1 is a quoted body, group 2 an unquoted run. The unquoted run
# stops at a comma or line end unless escaped; a lone CR (not CRLF) is part of the value.
_FIELD: Final = re.compile(r'"((?:[^"]|"")*)"|((?:[^,\\\r\n]|\\.|\r(?!\n))*)', re.DOTALL)
_ESCAPED_CHAR: Final = re.compile(r"\\(.)", re.DOTALL)
_NEEDS_QUOTES: Final = re.compile(r'[,"\\\r\n]')
_NEEDS_ESCAPE: Final = re.compile(r"[,\\\r\n]")


class DialectError(ValueError):
    """A record that no variant of the dialect can read."""


# ---------------------------------------------------------------------------------------------
# Writing


def timestamp_text(value: datetime) -> str:
    """`YYYY-MM-DD HH:MM:SS[.fff]`, the way the exports write timestamps (no zone, UTC)."""
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond // 1000:03d}"
    return text


def decimal_text(value: Decimal) -> str:
    # normalize() drops trailing zeros; format "f" keeps 100 from turning into 1E+2.
    return format(value.normalize(), "f")


def float_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def value_text(value: UsageValue, *, yes_no: bool = False) -> str | None:
    """The text of a typed value before escaping; None stands for NULL."""
    if value is None:
        return None
    if isinstance(value, bool):
        if yes_no:
            return "Y" if value else "N"
        return "true" if value else "false"
    if isinstance(value, datetime):
        return timestamp_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, float):
        return float_text(value)
    return str(value)


def escape_field(text: str | None, style: EscapeStyle) -> str:
    """One field as written on the line, in the chosen escaping style."""
    if text is None:
        return NULL_TEXT
    if style == "quote":
        # Quote whatever a reader could misread: delimiters, quotes, backslashes, and values
        # that would otherwise read as NULL.
        if text in ("", NULL_TEXT) or _NEEDS_QUOTES.search(text):
            return '"' + text.replace('"', '""') + '"'
        return text
    escaped = _NEEDS_ESCAPE.sub(lambda m: "\\" + m.group(0), text)
    # A leading quote would make the field read as quoted; escaping it keeps it literal.
    return "\\" + escaped if escaped.startswith('"') else escaped


def render_record(fields: Sequence[str | None], style: EscapeStyle) -> str:
    """A whole record, newline-terminated."""
    return ",".join(escape_field(f, style) for f in fields) + "\n"


# ---------------------------------------------------------------------------------------------
# Reading


def _unquoted_value(raw: str) -> str | None:
    if raw in ("", NULL_TEXT):
        return None
    if "\\" not in raw:
        return raw
    return _ESCAPED_CHAR.sub(r"\1", raw)


def parse_record(text: str, pos: int = 0) -> tuple[list[str | None], int]:
    """Read the record starting at `pos`; return its fields and the offset after its line end.

    NULL fields come back as None; a quoted empty field comes back as "".
    """
    fields: list[str | None] = []
    end = len(text)
    while True:
        match = _FIELD.match(text, pos)
        if match is None:  # pragma: no cover - the pattern also matches the empty string
            raise DialectError(f"unreadable field at offset {pos}")
        quoted, plain = match.group(1), match.group(2)
        fields.append(quoted.replace('""', '"') if quoted is not None else _unquoted_value(plain))
        pos = match.end()
        if pos >= end:
            return fields, end
        char = text[pos]
        if char == ",":
            pos += 1
        elif char == "\n":
            return fields, pos + 1
        elif text.startswith("\r\n", pos):
            return fields, pos + 2
        else:
            raise DialectError(f"unexpected {char!r} after a quoted field at offset {pos}")


def iter_records(text: str, pos: int = 0) -> Iterator[tuple[str, list[str | None]]]:
    """Yield (raw record text including its line end, fields) for every record from `pos`.

    Blank lines are skipped. A record may span lines when a quoted field holds a newline.
    """
    while pos < len(text):
        fields, end = parse_record(text, pos)
        raw = text[pos:end]
        pos = end
        if raw.strip("\r\n"):
            yield raw, fields


def header_names(fields: Sequence[str | None]) -> list[str]:
    """Column names of a header record; a UTF-8 byte-order mark on the first one is dropped."""
    names = [(f or "").strip() for f in fields]
    if names:
        names[0] = names[0].lstrip("\ufeff")
    return names


# ---------------------------------------------------------------------------------------------
# Typing


def typed_value(kind: str, text: str | None) -> UsageValue:
    """Convert one field by its DuckDB type from `usage_columns`; NULL and "" give None."""
    if text is None or text == "":
        return None
    if kind == "BOOLEAN":
        word = text.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise DialectError(f"not a boolean: {text!r}")
    if kind == "DATE":
        return date.fromisoformat(text)
    if kind == "TIMESTAMP":
        return datetime.fromisoformat(text)
    if kind == "BIGINT":
        return int(text)
    if kind == "DOUBLE":
        return float(text)
    if kind.startswith("DECIMAL"):
        return Decimal(text)
    return text


def typed_row(names: Sequence[str], fields: Sequence[str | None]) -> UsageRow:
    """Map a record's fields by column name; columns unknown to `usage_columns` stay text."""
    if len(names) != len(fields):
        raise DialectError(f"record has {len(fields)} fields, header has {len(names)}")
    return {
        name: typed_value(COLUMN_KINDS.get(name, "VARCHAR"), field)
        for name, field in zip(names, fields, strict=True)
    }
