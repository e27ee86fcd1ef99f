"""Malformed input, generated and hand-written: CSV lines, UUIDs, prices, dates, windows, filters,
oversize fields, bytes that are not UTF-8, download links and settings. Each one is refused with
an error that names what is wrong (CirclecostError, ValueError or pydantic's ValidationError,
and the client's UnsafeDownloadURLError for links), and none of them changes the store."""

from __future__ import annotations

import gzip
import itertools
import re
import string
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import ValidationError

from circlecost.circleci import CircleCIClient, UnsafeDownloadURLError
from circlecost.cli import main
from circlecost.errors import CirclecostError
from circlecost.models import IntegrationInputs, WorkspaceInputs, field_errors
from circlecost.store import Store
from circlecost.usage_columns import COLUMN_NAMES, USAGE_COLUMNS
from circlecost.vocabulary import TAG_COLUMNS
from circlecost.vql import COST_FIELDS, MAX_FILTER_LENGTH, VQLError, compile_filter
from circlecost.windows import Window, backfill_windows
from circlecost_emulator import Emulator
from circlecost_emulator.request_log import DOWNLOAD
from tests.faults.support import SCOREBOARD, table_counts
from tests.support import (
    HEADER,
    OCTOBER,
    ORG_ID,
    SAMPLE_PARTS,
    load_sample_export,
    org_and_token,
    plain_line_fields,
)

TYPED_COLUMNS = [name for name, kind in USAGE_COLUMNS if kind != "VARCHAR"]
FUZZ = hypothesis_settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


# --- the harness: every case is counted, and must be refused clearly without a write --------


def explained(error: BaseException) -> str:
    """What a person would read about the error."""
    if isinstance(error, ValidationError):
        return "; ".join(f"{field}: {reason}" for field, reason in field_errors(error))
    return str(error)


def refused(
    attempt: Callable[[], object],
    *,
    mentions: Sequence[str],
    store: Store | None = None,
    kinds: tuple[type[BaseException], ...] = (CirclecostError, ValueError, ValidationError),
) -> BaseException:
    """Runs one malformed case: it must raise one of `kinds`, with a message that mentions
    every one of `mentions`, and leave the store's tables as they were."""
    SCOREBOARD.malformed_cases += 1
    before = table_counts(store) if store is not None else None
    try:
        try:
            attempt()
        except kinds as error:
            caught: BaseException = error
        except Exception as other:
            raise AssertionError(f"refused with {type(other).__name__}: {other}") from other
        else:
            raise AssertionError("the malformed input was accepted")
        text = explained(caught)
        missing = [word for word in mentions if word not in text]
        assert not missing, f"the error does not mention {missing}: {text}"
        if store is not None:
            assert table_counts(store) == before
    except AssertionError:
        SCOREBOARD.malformed_failures += 1
        raise
    return caught


@dataclass
class LoadedStore:
    """A store holding the sample export for October, and a folder for malformed parts."""

    store: Store
    integration_id: str
    folder: Path
    counter: Iterator[int]

    def part(self, body: bytes, *, gzipped: bool = True) -> Path:
        path = self.folder / f"part-{next(self.counter)}.csv{'.gz' if gzipped else ''}"
        path.write_bytes(gzip.compress(body, mtime=0) if gzipped else body)
        return path

    def load(self, *paths: Path) -> Callable[[], object]:
        return lambda: self.store.replace_window_rows(
            self.integration_id, OCTOBER, "malformed-job", list(paths)
        )


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> LoadedStore:
    folder = tmp_path_factory.mktemp("malformed")
    store = Store(folder / "store" / "costs.duckdb", writer_kind="pytest", lock_timeout=5.0)
    store.migrate()
    store.ensure_first_owner("ana")
    record = store.insert_integration(ORG_ID, "sha256:0123456789abcdef", organization_name="x")
    load_sample_export(store, record.id)
    return LoadedStore(store, record.id, folder, itertools.count(1))


BASE_FIELDS = plain_line_fields()


def line_with(**changes: str) -> str:
    """The plain job line of the sample, with `changes` to its raw fields."""
    return ",".join({**BASE_FIELDS, **changes}.values())


def half_of(data: bytes) -> bytes:
    return data[: len(data) // 2]


def csv_bytes(*lines: str | bytes, header: str = HEADER) -> bytes:
    encoded = [line if isinstance(line, bytes) else line.encode("utf-8") for line in lines]
    return b"\n".join([header.encode(), *encoded]) + b"\n"


# --- CSV parts: hand-written ---------------------------------------------------------------

BAD_VALUES = [
    ("PIPELINE_NUMBER", "abc", "not a valid BIGINT"),
    ("PARALLELISM", "two", "not a valid BIGINT"),
    ("JOB_RUN_NUMBER", "99999999999999999999999", "not a valid BIGINT"),
    ("JOB_RUN_SECONDS", "fast", "not a valid DOUBLE"),
    ("MAX_CPU_UTILIZATION_PCT", "12%", "not a valid DOUBLE"),
    ("COMPUTE_CREDITS", "12.5.1", "not a valid DECIMAL(18,6)"),
    ("TOTAL_CREDITS", "1e400", "not a valid DECIMAL(18,6)"),
    ("JOB_RUN_DATE", "2026-13-01", "not a valid DATE"),
    ("JOB_RUN_DATE", "2026-02-30", "not a valid DATE"),
    ("ORGANIZATION_CREATED_DATE", "yesterday", "not a valid DATE"),
    ("JOB_RUN_STARTED_AT", "2026-10-01 25:00:00", "not a valid TIMESTAMP"),
    ("PIPELINE_CREATED_AT", "10/01/2026 12:00", "not a valid TIMESTAMP"),
    ("IS_WORKFLOW_SUCCESSFUL", "maybe", "not a valid BOOLEAN"),
    ("IS_UNREGISTERED_USER", "2", "not a valid BOOLEAN"),
]


@pytest.mark.parametrize(("column", "value", "problem"), BAD_VALUES)
def test_a_value_that_does_not_fit_its_column_is_refused_naming_file_line_and_column(
    loaded: LoadedStore, column: str, value: str, problem: str
) -> None:
    part = loaded.part(csv_bytes(line_with(**{column: value})))
    refused(
        loaded.load(part),
        mentions=[part.name, "line 2", column, problem],
        store=loaded.store,
    )


LINE = line_with()
FIELDS = LINE.split(",")
JOB_NAME_LINE = line_with(JOB_NAME="{}").encode()
# id: (the part's bytes, whether to gzip them, what the error mentions besides the file name)
MALFORMED_PARTS: dict[str, tuple[bytes, bool, list[str]]] = {
    "one-field-too-few": (csv_bytes(",".join(FIELDS[:-1])), True, ["line 2", "has 47 fields"]),
    "one-field-too-many": (csv_bytes(LINE + ",extra"), True, ["line 2", "has 49 fields"]),
    "second-line-with-10-fields": (
        csv_bytes(LINE, ",".join(FIELDS[:10])),
        True,
        ["line 3", "has 10 fields"],
    ),
    "quote-never-closed": (csv_bytes(line_with(VCS_BRANCH='"feature,x')), True, ["quote"]),
    "text-after-the-closing-quote": (
        csv_bytes(line_with(VCS_BRANCH='"a"b')),
        True,
        ["after its closing quote"],
    ),
    "lone-backslash-at-the-end": (csv_bytes(LINE + "\\"), True, ["lone backslash"]),
    "byte-0xff": (
        csv_bytes(JOB_NAME_LINE.replace(b"{}", b"bu\xffild")),
        True,
        ["line 2", "not UTF-8"],
    ),
    "overlong-utf8": (
        csv_bytes(JOB_NAME_LINE.replace(b"{}", b"\xc0\xaf")),
        True,
        ["line 2", "not UTF-8"],
    ),
    "a-3-mb-field": (csv_bytes(JOB_NAME_LINE.replace(b"{}", b"x" * 3_000_000)), True, ["line 2"]),
    "header-lacks-a-column": (
        csv_bytes(LINE, header=HEADER.replace(",TOTAL_CREDITS", "")),
        True,
        ["TOTAL_CREDITS"],
    ),
    "header-repeats-a-column": (
        csv_bytes(LINE, header=HEADER.replace("JOB_NAME", "JOB_ID")),
        True,
        ["repeats", "JOB_ID"],
    ),
    "header-has-an-unknown-column": (
        csv_bytes(LINE, header=HEADER + ",COST_USD"),
        True,
        ["unknown column", "COST_USD"],
    ),
    "empty": (b"", True, ["empty"]),
    "garbage-in-a-plain-csv": (b"\xff\xfe\x00garbage", False, ["line 1"]),
    "half-a-gzip-stream": (
        half_of(gzip.compress(csv_bytes(*[LINE] * 50))),
        False,
        ["not a complete gzip file"],
    ),
}


@pytest.mark.parametrize(
    ("body", "gzipped", "mentions"), MALFORMED_PARTS.values(), ids=MALFORMED_PARTS.keys()
)
def test_malformed_lines_and_headers_are_refused_naming_the_file_and_what_is_wrong(
    loaded: LoadedStore, body: bytes, gzipped: bool, mentions: list[str]
) -> None:
    part = loaded.part(body, gzipped=gzipped)
    refused(loaded.load(part), mentions=[part.name, *mentions], store=loaded.store)


def test_a_bad_part_among_good_ones_loads_nothing_of_the_window(loaded: LoadedStore) -> None:
    bad = loaded.part(csv_bytes(line_with(PARALLELISM="many")))
    refused(
        loaded.load(*SAMPLE_PARTS, bad),
        mentions=[bad.name, "PARALLELISM"],
        store=loaded.store,
    )


# --- CSV parts: generated ------------------------------------------------------------------

PLAIN_TEXT = st.text(
    alphabet=string.ascii_letters + string.digits + "-_./:;@!?()[]{}#$%&*+=<>|~^", max_size=12
)


@FUZZ
@given(fields=st.lists(PLAIN_TEXT, min_size=1, max_size=70).filter(lambda f: len(f) != 48))
def test_generated_lines_with_the_wrong_number_of_fields_are_refused(
    loaded: LoadedStore, fields: list[str]
) -> None:
    line = ",".join(fields)
    if not line.strip():
        line = ","  # a blank line is skipped, not malformed; two empty fields are malformed
        fields = ["", ""]
    part = loaded.part(csv_bytes(line))
    refused(
        loaded.load(part),
        mentions=[part.name, "line 2", f"has {len(fields)} fields"],
        store=loaded.store,
    )


@FUZZ
@given(column=st.sampled_from(TYPED_COLUMNS), junk=PLAIN_TEXT)
def test_generated_values_that_are_no_number_date_or_boolean_are_refused(
    loaded: LoadedStore, column: str, junk: str
) -> None:
    value = junk + "#"  # no number, date, timestamp or boolean contains '#'
    part = loaded.part(csv_bytes(line_with(**{column: value})))
    refused(loaded.load(part), mentions=[part.name, "line 2", column], store=loaded.store)


@FUZZ
@given(
    column=st.sampled_from(["JOB_NAME", "VCS_BRANCH", "PROJECT_NAME", "WORKFLOW_NAME"]),
    junk=st.binary(min_size=0, max_size=8).filter(lambda b: not set(b) & set(b',"\\\n\r')),
    lead=st.sampled_from([b"\xff", b"\xfe", b"\xc0\x80", b"\xed\xa0\x80", b"\x80"]),
)
def test_generated_bytes_that_are_not_utf8_are_refused(
    loaded: LoadedStore, column: str, junk: bytes, lead: bytes
) -> None:
    line = line_with(**{column: "{}"}).encode().replace(b"{}", b"x" + lead + junk)
    part = loaded.part(csv_bytes(line))
    refused(loaded.load(part), mentions=[part.name, "not UTF-8"], store=loaded.store)


@FUZZ
@given(column=st.sampled_from(COLUMN_NAMES), text=PLAIN_TEXT)
def test_generated_quotes_that_never_close_are_refused(
    loaded: LoadedStore, column: str, text: str
) -> None:
    part = loaded.part(csv_bytes(line_with(**{column: '"' + text})))
    refused(loaded.load(part), mentions=[part.name, "quote"], store=loaded.store)


# --- integration inputs: UUIDs, prices, dates, sizes ---------------------------------------

BAD_ORG_IDS = [
    "acme",
    "",
    "6513270e-269e-4d37-b2a7-4de452e6b43",
    "6513270e-269e-4d37-b2a7-4de452e6b438x",
    "00000000-0000-0000-0000-00000000000g",
    "'; DROP TABLE usage; --",
    "../../organization/gh%2Facme",
    "6513270e-269e-4d37-b2a7-4de452e6b438\n6513270e",
    "gh/acme",
    "6513270e-269e-4d37-b2a7-4de452e6b438-6513270e",
]
BAD_PRICES = ["0", "-1", "-0", "abc", "NaN", "inf", "", "0.6.1", "1,5", "0x10"]
BAD_DATES = [
    "2027-02-30",
    "2027-02-29",
    "2027/01/01",
    "tomorrow",
    "20270101",
    "2027-1-1",
    "27-01-01",
    "2027-13-01",
    "2027-01-01T00:00:00",
]


def add(*args: str, env: dict[str, str]) -> Callable[[], object]:
    """`circlecost integrations add ...` in this process; a failure becomes CirclecostError."""

    def attempt() -> object:
        result = CliRunner().invoke(main, ["integrations", "add", *args], env=env)
        if result.exit_code == 1 and result.stderr.startswith("error: "):
            raise CirclecostError(result.stderr.strip())
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    return attempt


# id: (the arguments of `integrations add`, variables of its environment, what the error mentions)
NEVER_USED = {"CIRCLECI_TOKEN": "CCIPAT_never_used_malformed"}
BAD_ADDS: dict[str, tuple[list[str], dict[str, str], list[str]]] = {
    **{
        f"organization_id={org_id!r}": (["--org", org_id], NEVER_USED, ["organization_id"])
        for org_id in BAD_ORG_IDS
    },
    **{
        f"price={price!r}": (["--org", ORG_ID, "--price", price], NEVER_USED, ["price_per_credit"])
        for price in BAD_PRICES
    },
    **{
        f"token_expires_on={day!r}": (
            ["--org", ORG_ID, "--token-expires-on", day],
            NEVER_USED,
            ["token_expires_on", "YYYY-MM-DD"],
        )
        for day in BAD_DATES
    },
    **{
        f"token={token!r}": (["--org", ORG_ID], {"CIRCLECI_TOKEN": token}, ["token:", "non-ASCII"])
        for token in ["CCIPAT_tökén", "CCIPAT_\x07bell", "CCIPAT_é_" + "x" * 40]
    },
    **{
        f"circleciUrl={url!r}": (
            ["--org", ORG_ID],
            {"CIRCLECI_TOKEN": "CCIPAT_x", "CIRCLECI_URL": url},
            ["circleciUrl", "must be https"],
        )
        for url in ["http://circleci.example.com/api/v2", "ftp://circleci.com/api/v2", "https://"]
    },
}


@pytest.mark.parametrize(("args", "env", "mentions"), BAD_ADDS.values(), ids=BAD_ADDS.keys())
def test_bad_organization_ids_prices_dates_tokens_and_urls_are_refused_naming_the_field(
    loaded: LoadedStore, args: list[str], env: dict[str, str], mentions: list[str]
) -> None:
    store_env = {"CIRCLECOST_STORE": str(loaded.store.path), "CIRCLECOST_ACTOR": "ana"}
    refused(add(*args, env={**store_env, **env}), mentions=mentions, store=loaded.store)


@pytest.mark.parametrize(
    ("price", "problem"),
    [
        ("0.00000000001", "more than 10 decimal places"),
        ("0.00060000000001", "more than 10 decimal places"),
        ("123456789", "too large"),
        ("1e10", "too large"),
    ],
)
def test_prices_the_store_cannot_hold_exactly_are_refused_naming_the_field(
    loaded: LoadedStore, emulator: Emulator, price: str, problem: str
) -> None:
    org_id, token = org_and_token(emulator)
    env = {
        "CIRCLECOST_STORE": str(loaded.store.path),
        "CIRCLECOST_ACTOR": "ana",
        "CIRCLECI_TOKEN": token,
        "CIRCLECI_URL": emulator.base_url,
    }
    refused(
        add("--org", org_id, "--price", price, env=env),
        mentions=["price_per_credit", problem],
        store=loaded.store,
    )


# id: (fields over a good integration's, the field the error names)
BAD_INTEGRATION_FIELDS: dict[str, tuple[dict[str, object], str]] = {
    "backfill_months=13": ({"backfill_months": 13}, "backfill_months"),
    "backfill_months=-1": ({"backfill_months": -1}, "backfill_months"),
    "backfill_months='three'": ({"backfill_months": "three"}, "backfill_months"),
    "backfill_months=2.5": ({"backfill_months": 2.5}, "backfill_months"),
    "description-of-1001-characters": ({"description": "x" * 1001}, "description"),
    "empty-token": ({"token": ""}, "token"),
    "token-with-a-leading-space": ({"token": " CCIPAT_x"}, "token"),
    "token-with-a-space": ({"token": "CCIPAT x"}, "token"),
    "misspelt-backfil_months": ({"backfil_months": 3}, "backfil_months"),
    "price-from-february-30": (
        {"price_schedule": [{"effective_from": "2027-02-30", "price_per_credit": 1}]},
        "price",
    ),
    "price-of-zero": (
        {"price_schedule": [{"effective_from": "2027-01-01", "price_per_credit": 0}]},
        "price",
    ),
}


@pytest.mark.parametrize(
    ("changes", "field"), BAD_INTEGRATION_FIELDS.values(), ids=BAD_INTEGRATION_FIELDS.keys()
)
def test_out_of_range_and_oversize_inputs_are_refused_naming_the_field(
    changes: dict[str, object], field: str
) -> None:
    good = {"token": "CCIPAT_x", "organization_id": ORG_ID}
    refused(partial(IntegrationInputs.model_validate, {**good, **changes}), mentions=[field])


@pytest.mark.parametrize("name", ["", "x" * 201], ids=["empty", "201-characters"])
def test_workspace_names_empty_or_too_long_are_refused_naming_the_field(name: str) -> None:
    refused(partial(WorkspaceInputs, name=name), mentions=["name"])


# --- windows ---------------------------------------------------------------------------------


@pytest.mark.parametrize("months", [-1, 13, 100])
def test_backfills_out_of_range_are_refused_naming_the_months(months: int) -> None:
    now = datetime(2026, 11, 5, 12, tzinfo=UTC)
    refused(partial(backfill_windows, now, months), mentions=["backfill_months", str(months)])


BAD_WINDOWS: dict[str, tuple[Window, str]] = {
    "end-before-start": (Window(OCTOBER.end, OCTOBER.start), "ends"),
    "a-second-before-it-starts": (
        Window(OCTOBER.start, OCTOBER.start - timedelta(seconds=1)),
        "before it starts",
    ),
    "sixty-days": (Window(OCTOBER.start, OCTOBER.end + timedelta(days=30)), "more than 31 days"),
    "a-year": (
        Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)),
        "31 days",
    ),
    "naive-datetimes": (
        Window(datetime(2026, 9, 1), datetime(2026, 9, 30, 23, 59, 59)),
        "timezone-aware",
    ),
}


@pytest.mark.parametrize(("window", "problem"), BAD_WINDOWS.values(), ids=BAD_WINDOWS.keys())
def test_windows_with_bad_bounds_are_refused_before_they_reach_the_ledger(
    loaded: LoadedStore, window: Window, problem: str
) -> None:
    refused(
        partial(loaded.store.plan_windows, loaded.integration_id, [OCTOBER, window]),
        mentions=["window", problem],
        store=loaded.store,
    )
    refused(
        partial(loaded.store.reopen_window, loaded.integration_id, window),
        mentions=["window", problem],
        store=loaded.store,
    )


# --- report filters --------------------------------------------------------------------------

# id: (the filter, what the error mentions)
BAD_FILTERS: dict[str, tuple[str, str]] = {
    "quote-never-closed": ("costs.service = 'Compute", "no closing quote"),
    "misspelt-field": ("costs.servce = 'Compute'", "costs.servce"),
    "no-value": ("costs.service =", "column"),
    "double-equals": ("costs.service == 'Compute'", "column"),
    "trailing-or": ("costs.service = 'Compute' OR", "column"),
    "and-and": ("costs.service = 'Compute' AND AND costs.account = 'x'", "column"),
    "parenthesis-never-closed": ("(costs.service = 'Compute'", "column"),
    "parenthesis-never-opened": ("costs.service = 'Compute')", "column"),
    "empty-in": ("costs.service IN ()", "column"),
    "not-without-in-or-like": ("costs.service NOT 'Compute'", "column"),
    "unquoted-value": ("costs.service = Compute", "column"),
    "sql-injection": ("costs.service = 'a'); DROP TABLE usage; --", "column"),
    "no-field": ("1 = 1", "column"),
    "a-usage-column": ("usage.JOB_ID = 'x'", "usage.JOB_ID"),
    "unknown-circleci-tag": ("tags.name = 'circleci:nope' AND tags.value = 'x'", "circleci:nope"),
    "sql-comment": ("costs.service = 'Compute' -- comment", "column"),
    "double-quotes": ('costs.service = "Compute"', "column"),
    "nul-character": ("costs.service = 'Compute' \x00", "column"),
    "too-long": ("costs.service = '" + "x" * MAX_FILTER_LENGTH + "'", "long"),
    "empty": ("", "column"),
}


@pytest.mark.parametrize(("text", "mention"), BAD_FILTERS.values(), ids=BAD_FILTERS.keys())
def test_malformed_filters_are_refused_pointing_at_the_column(text: str, mention: str) -> None:
    refused(partial(compile_filter, text), mentions=[mention], kinds=(VQLError,))


FILTER_TEXT = st.text(max_size=80) | st.from_regex(
    r"(costs\.\w+|tags\.(name|value)) ?(=|!=|IN|NOT IN|LIKE) ?('[^']*'?|\(.*)( AND | OR )?.*",
    fullmatch=True,
)
SQL_WORDS = {*COST_FIELDS.values(), *TAG_COLUMNS.values(), "AND", "OR", "NOT", "IN", "LIKE"}
SQL_WORDS |= {"IS", "NULL"}


@hypothesis_settings(FUZZ, max_examples=100)
@given(text=FILTER_TEXT)
def test_generated_filters_compile_to_bound_parameters_or_are_refused(
    loaded: LoadedStore, text: str
) -> None:
    SCOREBOARD.fuzzed_filters += 1
    refusal: VQLError | None
    try:
        compiled = compile_filter(text)
    except VQLError as error:
        refusal = error
    else:
        refusal = None
    if refusal is not None:
        assert refusal.message.startswith("filter error at column ")
        return
    # Only circlecost's own words reach the SQL; every value the filter holds is a parameter.
    assert set(re.findall(r"[A-Za-z_]+", compiled.sql)) <= SQL_WORDS
    assert set(re.sub(r"[A-Za-z_\s]", "", compiled.sql)) <= set("()?=!,")
    before = table_counts(loaded.store)
    totals = loaded.store.cost_totals(
        ["service"], where=compiled.sql, where_params=list(compiled.params)
    )
    assert totals["total"]["credits"] >= 0
    assert table_counts(loaded.store) == before


# --- download links --------------------------------------------------------------------------

UNSAFE_LINKS = [
    ("http://s3.amazonaws.com/bucket/part-1.csv.gz?X-Amz-Signature=s", "not https"),
    ("ftp://s3.amazonaws.com/part-1.csv.gz", "not https"),
    ("https://10.0.0.1/part-1.csv.gz", "private"),
    ("https://192.168.1.20/part-1.csv.gz", "private"),
    ("https://172.16.5.4/part-1.csv.gz", "private"),
    ("https://169.254.169.254/latest/meta-data/", "private"),
    ("https://100.64.0.1/part-1.csv.gz", "private"),
    ("https://[fc00::1]/part-1.csv.gz", "private"),
    ("https://[fe80::1]/part-1.csv.gz", "private"),
    ("https://0.0.0.0/part-1.csv.gz", "private"),
    ("https://2130706433/part-1.csv.gz", "numeric address"),
    ("https://0x7f.1/part-1.csv.gz", "numeric address"),
    ("not a url at all", "not https"),
]
LOOPBACK_LINKS = [
    "http://127.0.0.1:9/downloads/x/part-1.csv.gz",
    "https://localhost/part-1.csv.gz",
    "http://[::1]:9/part-1.csv.gz",
    "http://127.1.2.3/part-1.csv.gz",
]


# (whether loopback links are allowed, the link, what the error mentions)
LINK_CHECKS = [(allow, url, why) for url, why in UNSAFE_LINKS for allow in (False, True)]
LINK_CHECKS += [(False, url, "loopback") for url in LOOPBACK_LINKS]


@pytest.mark.parametrize(
    ("allow", "url", "why"),
    LINK_CHECKS,
    ids=[f"{url}{' (loopback allowed)' if allow else ''}" for allow, url, _ in LINK_CHECKS],
)
def test_download_links_that_are_not_https_to_a_public_host_are_refused_unsent(
    emulator: Emulator, tmp_path: Path, allow: bool, url: str, why: str
) -> None:
    target = tmp_path / "part.csv.gz"
    with CircleCIClient(
        "CCIPAT_links", base_url=emulator.base_url, allow_insecure_loopback_downloads=allow
    ) as client:
        error = refused(
            partial(client.download_usage_export_part, url, target),
            mentions=["Refusing download link", why],
            kinds=(UnsafeDownloadURLError,),
        )
    assert "X-Amz-Signature" not in str(error)
    assert not target.exists()
    assert emulator.requests.count(kind=DOWNLOAD) == 0


# --- settings from the environment -----------------------------------------------------------

BAD_ENVIRONMENT = [
    ("CIRCLECOST_POLL_SECONDS", "abc"),
    ("CIRCLECOST_POLL_SECONDS", "-1"),
    ("CIRCLECOST_FIRST_POLL_SECONDS", "nan"),
    ("CIRCLECOST_RETRY_SECONDS", "inf"),
    ("CIRCLECOST_QUOTA_PER_HOUR", "0"),
    ("CIRCLECOST_QUOTA_PER_HOUR", "1.5"),
    ("CIRCLECOST_QUOTA_PER_HOUR", "ten"),
    ("CIRCLECOST_LOCK_TIMEOUT_SECONDS", "soon"),
    ("CIRCLECOST_LOCK_TIMEOUT_SECONDS", "-5"),
    ("CIRCLECOST_CLOCK_OFFSET_SECONDS", "1 day"),
]


@pytest.mark.parametrize(
    ("name", "value"), BAD_ENVIRONMENT, ids=[f"{name}={value}" for name, value in BAD_ENVIRONMENT]
)
def test_bad_settings_in_the_environment_are_refused_naming_the_variable(
    loaded: LoadedStore, name: str, value: str
) -> None:
    def status() -> Any:
        result = CliRunner().invoke(
            main, ["status"], env={"CIRCLECOST_STORE": str(loaded.store.path), name: value}
        )
        if result.exit_code == 1 and result.stderr.startswith("error: "):
            raise CirclecostError(result.stderr.strip())
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    refused(status, mentions=[name, repr(value)], store=loaded.store)
