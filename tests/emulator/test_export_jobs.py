"""Usage-export jobs: the window rules, the state machine, parts and expiring links."""

from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from circlecost.usage_columns import COLUMN_NAMES
from circlecost_emulator import Emulator, default_organizations

from .helpers import OCTOBER, SEED, create_job, download_urls, fetch, poll, split_part, typed_rows

HEADER = ",".join(COLUMN_NAMES) + "\n"


def test_a_month_export_returns_exactly_the_generated_rows_in_several_parts(
    emulator: Emulator, client: httpx.Client, org_id: str, http: httpx.Client
) -> None:
    urls = download_urls(client, org_id, OCTOBER)
    parts = [fetch(http, url) for url in urls]
    assert len(parts) >= 2
    assert all(content[:2] == b"\x1f\x8b" for content in parts)
    assert all(split_part(content)[0] == HEADER for content in parts)
    rows = [row for content in parts for row in typed_rows(content)]
    expected = emulator.expected_rows(org_id, date(2026, 10, 1), date(2026, 10, 31))
    assert rows == expected
    assert {r["ORGANIZATION_ID"] for r in rows} == {org_id}


def test_download_urls_are_unguessable_links_on_the_same_server(
    emulator: Emulator, client: httpx.Client, org_id: str
) -> None:
    urls = download_urls(client, org_id, OCTOBER)
    for number, url in enumerate(urls, start=1):
        assert url.startswith(f"{emulator.root_url}/downloads/")
        assert url.endswith(f"/part-{number}.csv.gz")
        token = url.split("/")[-2]
        assert len(token) >= 32


def test_the_create_response_echoes_the_window(client: httpx.Client, org_id: str) -> None:
    response = client.post(f"/organizations/{org_id}/usage_export_job", json=OCTOBER)
    body = response.json()
    assert response.status_code == 201
    assert body["state"] == "created"
    assert body["download_urls"] is None
    assert (body["start"], body["end"]) == (OCTOBER["start"], OCTOBER["end"])


def test_polling_does_not_echo_the_window(client: httpx.Client, org_id: str) -> None:
    body = poll(client, org_id, create_job(client, org_id, OCTOBER)).json()
    assert set(body) == {"usage_export_job_id", "state", "download_urls"}


@pytest.mark.emulator(job_delay=60)
def test_the_job_moves_from_created_to_processing_to_completed_on_the_clock(
    emulator: Emulator, client: httpx.Client, org_id: str
) -> None:
    job_id = create_job(client, org_id, OCTOBER)
    seen = []
    for step in (0, 29, 1, 29, 1):
        emulator.clock.advance(step)
        body = poll(client, org_id, job_id).json()
        seen.append((body["state"], body["download_urls"] is None))
    assert seen == [
        ("created", True),
        ("created", True),
        ("processing", True),
        ("processing", True),
        ("completed", False),
    ]


def test_a_job_without_delay_is_completed_at_the_first_poll(
    client: httpx.Client, org_id: str
) -> None:
    body = poll(client, org_id, create_job(client, org_id, OCTOBER)).json()
    assert body["state"] == "completed"
    assert body["download_urls"]


def test_an_unknown_job_is_404(client: httpx.Client, org_id: str) -> None:
    response = poll(client, org_id, "00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert set(response.json()) == {"message"}


def test_another_organizations_job_is_404(
    emulator: Emulator, client: httpx.Client, org_id: str
) -> None:
    job_id = create_job(client, org_id, OCTOBER)
    other = emulator.organizations[1]["id"]
    assert poll(client, other, job_id).status_code == 404


def test_an_unknown_organization_is_404(client: httpx.Client) -> None:
    response = client.post(
        "/organizations/00000000-0000-4000-8000-000000000000/usage_export_job", json=OCTOBER
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**OCTOBER, "org": "x"}, "Unexpected request body provided."),
        ({"start": OCTOBER["start"]}, "required"),
        ({"start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:01Z"}, "31 days"),
        ({"start": "2025-11-05T11:59:59Z", "end": "2025-11-30T00:00:00Z"}, "one year"),
        ({"start": "2026-11-01T00:00:00Z", "end": "2026-11-05T12:00:01Z"}, "future"),
        ({"start": "2026-10-10T00:00:00Z", "end": "2026-10-09T00:00:00Z"}, "after end"),
        ({"start": "2026-10-01", "end": "2026-10-31T00:00:00Z"}, "RFC 3339"),
        ({"start": "2026-10-01T00:00:00", "end": "2026-10-31T00:00:00Z"}, "RFC 3339"),
        ({"start": "yesterday", "end": "2026-10-31T00:00:00Z"}, "RFC 3339"),
        ({"start": 1759276800, "end": "2026-10-31T00:00:00Z"}, "RFC 3339"),
        ({"start": "2026-13-01T00:00:00Z", "end": "2026-10-31T00:00:00Z"}, "valid"),
        ({**OCTOBER, "shared_org_ids": ["not-a-uuid"]}, "shared_org_ids"),
        ({**OCTOBER, "shared_org_ids": "all"}, "shared_org_ids"),
    ],
)
def test_bad_bodies_and_windows_get_400_with_a_message(
    client: httpx.Client, org_id: str, body: dict[str, object], message: str
) -> None:
    response = client.post(f"/organizations/{org_id}/usage_export_job", json=body)
    assert response.status_code == 400
    assert message in response.json()["message"]


@pytest.mark.parametrize("content", [b"", b"not json", b"[]"])
def test_a_body_that_is_not_a_json_object_gets_400(
    client: httpx.Client, org_id: str, content: bytes
) -> None:
    response = client.post(f"/organizations/{org_id}/usage_export_job", content=content)
    assert response.status_code == 400
    assert response.json() == {"message": "Unexpected request body provided."}


@pytest.mark.parametrize(
    "window",
    [
        {"start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"},  # exactly 31 days
        {"start": "2025-11-05T12:00:00Z", "end": "2025-11-30T00:00:00Z"},  # exactly a year ago
        {"start": "2026-11-05T00:00:00+01:00", "end": "2026-11-05T12:00:00Z"},  # ends now
    ],
)
def test_windows_on_the_limits_are_accepted(
    client: httpx.Client, org_id: str, window: dict[str, str]
) -> None:
    response = client.post(f"/organizations/{org_id}/usage_export_job", json=window)
    assert response.status_code == 201, response.text


def test_a_window_ending_mid_day_only_has_rows_up_to_its_end(
    emulator: Emulator, client: httpx.Client, org_id: str, http: httpx.Client
) -> None:
    window = {"start": "2026-11-01T00:00:00Z", "end": "2026-11-05T11:00:00Z"}
    rows = [
        row for url in download_urls(client, org_id, window) for row in typed_rows(fetch(http, url))
    ]
    assert rows
    assert rows == emulator.expected_rows(
        org_id, datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 5, 11, tzinfo=UTC)
    )
    instants = [r["JOB_RUN_STARTED_AT"] or r["PIPELINE_CREATED_AT"] for r in rows]
    assert all(isinstance(t, datetime) and t <= datetime(2026, 11, 5, 11) for t in instants)


def test_an_export_without_rows_is_one_part_with_only_the_header(
    client: httpx.Client, org_id: str, http: httpx.Client
) -> None:
    window = {"start": "2026-11-05T00:00:00Z", "end": "2026-11-05T00:01:00Z"}
    urls = download_urls(client, org_id, window)
    assert len(urls) == 1
    assert split_part(fetch(http, urls[0])) == (HEADER, [])


def test_shared_org_ids_add_the_rows_of_those_organizations(
    emulator: Emulator, client: httpx.Client, org_id: str, http: httpx.Client
) -> None:
    other = emulator.organizations[1]["id"]
    window = {
        "start": "2026-10-01T00:00:00Z",
        "end": "2026-10-03T23:59:59Z",
        "shared_org_ids": [other],
    }
    rows = [
        row for url in download_urls(client, org_id, window) for row in typed_rows(fetch(http, url))
    ]
    assert {r["ORGANIZATION_ID"] for r in rows} == {org_id, other}
    assert rows == emulator.expected_rows(org_id, date(2026, 10, 1), date(2026, 10, 3), [other])


def test_downloads_need_no_token_and_links_expire_on_the_emulator_clock(
    emulator: Emulator, client: httpx.Client, org_id: str, http: httpx.Client
) -> None:
    job_id = create_job(client, org_id, OCTOBER)
    url = poll(client, org_id, job_id).json()["download_urls"][0]
    assert http.get(url).status_code == 200
    emulator.clock.advance(600)
    expired = http.get(url)
    assert expired.status_code == 403
    assert b"<Code>AccessDenied</Code>" in expired.content
    assert b"expired" in expired.content
    fresh = poll(client, org_id, job_id).json()["download_urls"][0]
    assert fresh != url
    assert http.get(fresh).status_code == 200


@pytest.mark.emulator(link_ttl=30)
def test_links_live_as_long_as_link_ttl(
    emulator: Emulator, client: httpx.Client, org_id: str, http: httpx.Client
) -> None:
    url = download_urls(client, org_id, OCTOBER)[0]
    emulator.clock.advance(29)
    assert http.get(url).status_code == 200
    emulator.clock.advance(1)
    assert http.get(url).status_code == 403


def test_a_made_up_download_link_is_403_and_a_missing_part_404(
    emulator: Emulator, client: httpx.Client, org_id: str, http: httpx.Client
) -> None:
    assert http.get(f"{emulator.root_url}/downloads/{'x' * 32}/part-1.csv.gz").status_code == 403
    url = download_urls(client, org_id, OCTOBER)[0]
    assert http.get(url.replace("part-1.", "part-99.")).status_code == 404


def test_a_download_with_an_authorization_header_is_refused_like_s3(
    emulator: Emulator, client: httpx.Client, org_id: str, http: httpx.Client
) -> None:
    url = download_urls(client, org_id, OCTOBER)[0]
    response = http.get(url, headers={"Authorization": f"Bearer {emulator.tokens['admin']}"})
    assert response.status_code == 400
    assert b"InvalidArgument" in response.content


@pytest.mark.emulator(rows_per_part=50)
def test_parts_follow_rows_per_part(
    emulator: Emulator, client: httpx.Client, org_id: str, http: httpx.Client
) -> None:
    parts = [split_part(fetch(http, u))[1] for u in download_urls(client, org_id, OCTOBER)]
    total = len(emulator.expected_rows(org_id, date(2026, 10, 1), date(2026, 10, 31)))
    assert [len(p) for p in parts[:-1]] == [50] * (len(parts) - 1)
    assert sum(len(p) for p in parts) == total


def test_the_default_organizations_come_from_the_seed(emulator: Emulator) -> None:
    assert [o["id"] for o in emulator.organizations] == [o.id for o in default_organizations(SEED)]


def test_expected_rows_take_datetimes_as_well_as_dates(emulator: Emulator, org_id: str) -> None:
    by_date = emulator.expected_rows(org_id, date(2026, 10, 2), date(2026, 10, 2))
    start = datetime(2026, 10, 2, tzinfo=UTC)
    by_time = emulator.expected_rows(
        org_id, start, start + timedelta(days=1) - timedelta(microseconds=1)
    )
    assert by_date == by_time
    assert by_date
