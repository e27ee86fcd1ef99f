"""Loading usage exports: the sample reproduces expected.json, and loads are all-or-nothing."""

from decimal import Decimal
from pathlib import Path

import pytest

from circlecost import csvload
from circlecost.csvload import CsvFormatError
from circlecost.store import Integration, Store
from tests.support import HEADER, NOVEMBER, OCTOBER, SAMPLE_PARTS

from .conftest import WritePart


def usage_rows(store: Store, integration_id: str) -> int:
    with store.reader() as con:
        row = con.execute("SELECT count(*) FROM usage WHERE integration_id = ?", [integration_id])
        return int(row.fetchone()[0])  # type: ignore[index]


def credits_by(store: Store, dimension: str) -> dict[str, Decimal]:
    totals = store.cost_totals([dimension])
    return {str(row[dimension]): row["credits"] for row in totals["rows"]}


@pytest.fixture
def loaded(store: Store, integration: Integration) -> Integration:
    store.plan_windows(integration.id, [OCTOBER])
    store.replace_window_rows(integration.id, OCTOBER, "job-1", SAMPLE_PARTS)
    return integration


def test_sample_export_loads_every_row_and_counts_its_oddities(
    store: Store, integration: Integration, expected: dict[str, object]
) -> None:
    result = store.replace_window_rows(integration.id, OCTOBER, "job-1", SAMPLE_PARTS)

    assert result.rows == expected["usage_rows"] == 401
    assert result.total_mismatch_rows == expected["rows_with_total_mismatch"] == 1
    assert result.rows_without_job == expected["rows_without_job"] == 1
    assert result.slow_path_rows > 0


def test_sample_export_reproduces_the_expected_costs(
    store: Store, loaded: Integration, expected: dict[str, object]
) -> None:
    summary = store.integration_summary(loaded.id)

    assert summary["line_items"] == expected["cost_line_items"] == 517
    assert summary["total_credits"] == Decimal(str(expected["total_credits_from_components"]))
    assert summary["total_cost_usd"] == Decimal(str(expected["usd_at_0.0006"]))
    assert summary["total_cost_usd"] == Decimal("476.0922")
    assert credits_by(store, "service") == expected["credits_by_service"]
    assert credits_by(store, "account") == expected["credits_by_project"]
    assert credits_by(store, "tag:circleci:vcs_branch") == expected["credits_by_branch"]


def test_sample_export_keeps_the_seat_row_without_a_job(store: Store, loaded: Integration) -> None:
    with store.reader() as con:
        seat = con.execute(
            "SELECT service, credits, date, category, resource FROM costs WHERE job_id IS NULL"
        ).fetchall()

    assert len(seat) == 1
    service, credits, day, category, resource = seat[0]
    assert (service, credits, str(day), category, resource) == (
        "Users",
        Decimal(25000),
        "2026-10-09",
        None,
        None,
    )


def test_window_reimported_twice_holds_the_same_rows(store: Store, loaded: Integration) -> None:
    before = store.cost_totals(["service", "account", "date"])

    again = store.replace_window_rows(loaded.id, OCTOBER, "job-2", SAMPLE_PARTS)

    assert again.rows == usage_rows(store, loaded.id) == 401
    assert store.cost_totals(["service", "account", "date"]) == before


def test_unparseable_line_fails_with_file_and_line_and_keeps_previous_rows(
    store: Store, loaded: Integration, write_part: WritePart
) -> None:
    before = store.cost_totals(["service"])
    bad = write_part({}, {"JOB_NAME": '"never closed'}, {})

    with pytest.raises(CsvFormatError) as caught:
        store.replace_window_rows(loaded.id, OCTOBER, "job-2", [bad])

    assert caught.value.path == bad
    assert caught.value.line == 3
    assert f"{bad}, line 3" in str(caught.value)
    assert "never closed" in str(caught.value)
    assert store.cost_totals(["service"]) == before
    assert usage_rows(store, loaded.id) == 401


def test_load_failing_in_its_last_part_keeps_the_previous_rows(
    store: Store, loaded: Integration, write_part: WritePart
) -> None:
    before = store.cost_totals(["account"])
    good = write_part({}, {})
    bad = write_part({}, {"COMPUTE_CREDITS": "12x"})

    with pytest.raises(CsvFormatError) as caught:
        store.replace_window_rows(loaded.id, OCTOBER, "job-2", [*SAMPLE_PARTS, good, bad])

    assert (caught.value.path, caught.value.line) == (bad, 3)
    assert "COMPUTE_CREDITS is '12x'" in str(caught.value)
    assert store.cost_totals(["account"]) == before
    assert [w.state for w in store.list_windows(loaded.id)] == ["loaded"]


@pytest.mark.parametrize(
    ("fields", "line", "problem"),
    [
        (
            {"JOB_RUN_DATE": "2026-13-45"},
            3,
            "JOB_RUN_DATE is '2026-13-45', which is not a valid DATE",
        ),
        ({"PIPELINE_NUMBER": "4x"}, 3, "PIPELINE_NUMBER is '4x', which is not a valid BIGINT"),
        ({"IS_UNREGISTERED_USER": "maybe"}, 3, "IS_UNREGISTERED_USER is 'maybe'"),
        ({"JOB_NAME": '"quoted" tail'}, 3, "text after its closing quote"),
        ({"JOB_NAME": "a,b"}, 3, "has 49 fields where the header has 48"),
        ({"JOB_NAME": "a\\,b", "JOB_BUILD_STATUS": '"x"', "EXECUTOR": "c,d"}, 3, "49 fields"),
        ({"JOB_NAME": '"bad", "x"'}, 3, "has 49 fields"),
        ({"JOB_RUN_STARTED_AT": '"2026-10-02 03:30:04"', "JOB_RUN_SECONDS": "8 s"}, 3, "8 s"),
    ],
)
def test_bad_line_is_reported_by_file_line_and_reason(
    store: Store,
    integration: Integration,
    write_part: WritePart,
    fields: dict[str, str],
    line: int,
    problem: str,
) -> None:
    part = write_part({}, fields, {})

    with pytest.raises(CsvFormatError) as caught:
        store.replace_window_rows(integration.id, NOVEMBER, None, [part])

    assert (caught.value.path, caught.value.line) == (part, line)
    assert problem in caught.value.problem
    assert caught.value.hint
    assert usage_rows(store, integration.id) == 0


def test_line_with_too_few_fields_fails_the_window(
    store: Store, integration: Integration, write_part: WritePart, base_fields: dict[str, str]
) -> None:
    short = ",".join(list(base_fields.values())[:-1])
    part = write_part({}, {}, short)

    with pytest.raises(CsvFormatError, match="line 4: has 47 fields"):
        store.replace_window_rows(integration.id, NOVEMBER, None, [part])


def test_text_that_is_not_utf8_fails_with_its_line(
    store: Store, integration: Integration, write_part: WritePart, tmp_path: Path
) -> None:
    part = write_part({}, {"JOB_NAME": "caf\u00e9"}, gzipped=False)
    part.write_bytes(part.read_bytes().replace("caf\u00e9".encode(), b"caf\xe9"))

    with pytest.raises(CsvFormatError, match="line 3: is not UTF-8 text"):
        store.replace_window_rows(integration.id, NOVEMBER, None, [part])


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("ORGANIZATION_ID,ORGANIZATION_NAME", "lacks the column(s) ORGANIZATION_CREATED_DATE"),
        (None, "unknown column(s) 'COST_CENTER'"),
        ("", "is empty"),
    ],
)
def test_part_with_a_missing_or_unknown_column_names_file_and_column(
    store: Store,
    integration: Integration,
    write_part: WritePart,
    header: str | None,
    problem: str,
) -> None:
    part = write_part(header=HEADER + ",COST_CENTER" if header is None else header)

    with pytest.raises(CsvFormatError) as caught:
        store.replace_window_rows(integration.id, NOVEMBER, None, [part])

    assert caught.value.path == part
    assert problem in str(caught.value)


def test_columns_are_mapped_by_name_not_position(
    store: Store, integration: Integration, write_part: WritePart, base_fields: dict[str, str]
) -> None:
    names = list(base_fields)
    swapped = names.copy()
    swapped[23], swapped[24] = swapped[24], swapped[23]  # JOB_ID before JOB_RUN_NUMBER
    line = ",".join(base_fields[name] for name in swapped)
    part = write_part(line, header=",".join(swapped))

    store.replace_window_rows(integration.id, NOVEMBER, None, [part])

    with store.reader() as con:
        job = con.execute("SELECT JOB_ID, JOB_RUN_NUMBER FROM usage").fetchone()
    assert job == (base_fields["JOB_ID"], int(base_fields["JOB_RUN_NUMBER"]))


def test_plain_csv_parts_and_blank_lines_are_accepted(
    store: Store, integration: Integration, write_part: WritePart
) -> None:
    part = write_part({}, "", {"JOB_NAME": '"a,b"'}, gzipped=False)

    result = store.replace_window_rows(integration.id, NOVEMBER, None, [part])

    assert (result.rows, result.slow_path_rows) == (2, 1)


def test_quoted_line_break_joins_the_next_line(
    store: Store, integration: Integration, write_part: WritePart
) -> None:
    part = write_part({"JOB_NAME": '"deploy\nto prod"'}, {"JOB_NAME": "after"})

    result = store.replace_window_rows(integration.id, NOVEMBER, None, [part])

    with store.reader() as con:
        rows = con.execute("SELECT source_line, JOB_NAME FROM usage ORDER BY 1").fetchall()
    assert result.rows == 2
    assert rows == [(2, "deploy\nto prod"), (4, "after")]


def test_rows_remember_their_part_and_line(store: Store, loaded: Integration) -> None:
    with store.reader() as con:
        rows = con.execute(
            "SELECT source_part, min(source_line), max(source_line), count(*) FROM usage "
            "GROUP BY ALL ORDER BY 1"
        ).fetchall()

    assert rows == [(1, 2, 201, 200), (2, 2, 202, 201)]


def test_load_marks_the_window_and_its_job(store: Store, integration: Integration) -> None:
    store.record_job(integration.id, OCTOBER, "job-1", OCTOBER.end)

    store.load_window(integration.id, OCTOBER, "job-1", SAMPLE_PARTS)

    (window,) = store.list_windows(integration.id)
    job = store.get_job("job-1")
    assert (window.state, window.rows, window.total_mismatch_rows) == ("loaded", 401, 1)
    assert job is not None
    assert job.download_completed


def test_truncated_gzip_part_fails_the_window_and_keeps_previous_rows(
    store: Store, loaded: Integration, tmp_path: Path
) -> None:
    data = SAMPLE_PARTS[1].read_bytes()
    truncated = tmp_path / "truncated.csv.gz"
    truncated.write_bytes(data[: len(data) // 2])

    with pytest.raises(CsvFormatError, match="is not a complete gzip file") as caught:
        store.replace_window_rows(loaded.id, OCTOBER, "job-2", [SAMPLE_PARTS[0], truncated])

    assert caught.value.path == truncated
    assert usage_rows(store, loaded.id) == 401


def test_parts_read_one_after_another_keep_their_own_numbers(
    store: Store,
    integration: Integration,
    write_part: WritePart,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(csvload, "_duckdb_threads", lambda con: 2)
    parts = [write_part({}, {"JOB_NAME": f'"job,{n}"'}, "", {}) for n in range(5)]
    parts += [write_part(), parts[0]]  # a part with no rows, and a part listed twice

    result = store.replace_window_rows(integration.id, NOVEMBER, None, parts)

    with store.reader() as con:
        slow = con.execute(
            "SELECT source_part, source_line, JOB_NAME FROM usage WHERE JOB_NAME LIKE 'job,%' "
            "ORDER BY 1"
        ).fetchall()
        lines = con.execute(
            "SELECT source_part, list(source_line ORDER BY source_line) FROM usage "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert len(csvload.lanes([csvload.open_part(path, 1) for path in parts], 2)) == 2
    assert (result.rows, result.slow_path_rows) == (18, 6)
    assert slow == [(n + 1, 3, f"job,{n}") for n in range(5)] + [(7, 3, "job,0")]
    assert lines == [(number, [2, 3, 5]) for number in (1, 2, 3, 4, 5, 7)]
