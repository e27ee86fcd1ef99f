"""Every fault switch, set from Python and over HTTP, and how each one consumes itself."""

import gzip
import threading
import time
import zlib

import httpx
import pytest

from circlecost_emulator import FAULT_NAMES, Emulator
from circlecost_emulator.state import FAILED_JOB_REASON

from .helpers import OCTOBER, create_job, download_urls, fetch, poll


def test_server_errors_answer_500_502_503_then_recover(
    emulator: Emulator, client: httpx.Client
) -> None:
    emulator.set_faults(server_errors=3)
    responses = [client.get("/me") for _ in range(4)]
    assert [r.status_code for r in responses] == [500, 502, 503, 200]
    assert all("message" in r.json() for r in responses[:3])


def test_a_rate_limit_storm_answers_429_without_spending_quota(
    emulator: Emulator, client: httpx.Client, org_id: str
) -> None:
    emulator.set_faults(rate_limit_storm=2, storm_retry_after=3)
    storm = [
        client.post(f"/organizations/{org_id}/usage_export_job", json=OCTOBER) for _ in range(2)
    ]
    assert [r.status_code for r in storm] == [429, 429]
    assert storm[0].headers["Retry-After"] == "3"
    assert storm[0].json() == {"message": "Rate limit exceeded."}
    after = client.post(f"/organizations/{org_id}/usage_export_job", json=OCTOBER)
    assert after.status_code == 201
    assert after.headers["RateLimit-Remaining"] == "9"


def test_fail_jobs_makes_the_next_job_fail_with_a_reason(
    emulator: Emulator, client: httpx.Client, org_id: str
) -> None:
    emulator.set_faults(fail_jobs=1)
    failing = poll(client, org_id, create_job(client, org_id, OCTOBER)).json()
    healthy = poll(client, org_id, create_job(client, org_id, OCTOBER)).json()
    assert failing["state"] == "failed"
    assert failing["error_reason"] == FAILED_JOB_REASON
    assert failing["download_urls"] is None
    assert healthy["state"] == "completed"


def test_null_urls_polls_leaves_completed_jobs_without_urls_for_that_many_polls(
    emulator: Emulator, client: httpx.Client, org_id: str
) -> None:
    job_id = create_job(client, org_id, OCTOBER)
    emulator.set_faults(null_urls_polls=2)
    polls = [poll(client, org_id, job_id).json() for _ in range(3)]
    assert [p["state"] for p in polls] == ["completed"] * 3
    assert [p["download_urls"] is None for p in polls] == [True, True, False]


def test_truncate_gzip_cuts_the_next_part_download(
    emulator: Emulator, client: httpx.Client, org_id: str, http: httpx.Client
) -> None:
    url = download_urls(client, org_id, OCTOBER)[0]
    emulator.set_faults(truncate_gzip=True)
    broken = fetch(http, url)
    assert broken[:2] == b"\x1f\x8b"
    with pytest.raises((EOFError, zlib.error)):
        gzip.decompress(broken)
    assert gzip.decompress(fetch(http, url)).startswith(b"ORGANIZATION_ID,")


def test_non_gzip_part_sends_plain_csv_once(
    emulator: Emulator, client: httpx.Client, org_id: str, http: httpx.Client
) -> None:
    url = download_urls(client, org_id, OCTOBER)[0]
    emulator.set_faults(non_gzip_part=1)
    plain = fetch(http, url)
    assert plain.startswith(b"ORGANIZATION_ID,")
    assert fetch(http, url)[:2] == b"\x1f\x8b"


def test_wrong_columns_renames_a_column_in_the_next_part(
    emulator: Emulator, client: httpx.Client, org_id: str, http: httpx.Client
) -> None:
    url = download_urls(client, org_id, OCTOBER)[0]
    emulator.set_faults(wrong_columns=1)
    header = gzip.decompress(fetch(http, url)).split(b"\n", 1)[0].split(b",")
    assert b"TOTAL_CREDITS" not in header
    assert b"TOTAL_CREDIT" in header
    assert b"TOTAL_CREDITS" in gzip.decompress(fetch(http, url)).split(b"\n", 1)[0].split(b",")


def test_slow_seconds_delays_every_response_until_reset(
    emulator: Emulator, client: httpx.Client
) -> None:
    emulator.set_faults(slow_seconds=0.3)
    started = time.perf_counter()
    assert client.get("/me").status_code == 200
    assert time.perf_counter() - started >= 0.3
    emulator.set_faults(slow_seconds=0)
    started = time.perf_counter()
    client.get("/me")
    assert time.perf_counter() - started < 0.3


def test_stopping_does_not_wait_for_a_slow_response_in_flight(http: httpx.Client) -> None:
    emulator = Emulator()
    emulator.start()
    emulator.set_faults(slow_seconds=30)
    outcome: list[object] = []

    def call() -> None:
        headers = {"Circle-Token": emulator.tokens["admin"]}
        try:
            outcome.append(
                http.get(f"{emulator.base_url}/me", headers=headers, timeout=10).status_code
            )
        except httpx.TransportError as err:
            outcome.append(err)

    worker = threading.Thread(target=call)
    worker.start()
    deadline = time.monotonic() + 5
    while not emulator.requests.count() and time.monotonic() < deadline:
        time.sleep(0.01)  # wait until the request is inside its 30-second delay
    started = time.perf_counter()
    emulator.stop()
    worker.join(10)
    assert not worker.is_alive()
    assert time.perf_counter() - started < 5
    assert len(outcome) == 1


def test_expire_links_now_revokes_every_link_issued_so_far(
    emulator: Emulator, client: httpx.Client, org_id: str, http: httpx.Client
) -> None:
    job_id = create_job(client, org_id, OCTOBER)
    first, second = poll(client, org_id, job_id).json()["download_urls"][:2]
    emulator.set_faults(expire_links_now=True)
    assert http.get(first).status_code == 403
    assert http.get(second).status_code == 403
    fresh = poll(client, org_id, job_id).json()["download_urls"][0]
    assert http.get(fresh).status_code == 200


def test_faults_are_switched_over_http_too(
    emulator: Emulator, client: httpx.Client, http: httpx.Client
) -> None:
    admin = f"{emulator.root_url}/_emulator/faults"
    response = http.post(admin, json={"server_errors": 1, "slow_seconds": 0.01})
    assert response.status_code == 200
    assert response.json()["server_errors"] == 1
    assert set(http.get(admin).json()) == set(FAULT_NAMES)
    assert client.get("/me").status_code == 500
    assert http.get(admin).json()["server_errors"] == 0
    http.post(admin, json={"fail_jobs": 4})
    cleared = http.delete(admin).json()
    assert cleared["fail_jobs"] == 0
    assert cleared["slow_seconds"] == 0


@pytest.mark.parametrize(
    "body",
    [{"explode": 1}, {"server_errors": -1}, {"server_errors": "many"}, {"slow_seconds": True}, []],
)
def test_a_bad_fault_request_is_400_and_changes_nothing(
    emulator: Emulator, body: object, http: httpx.Client
) -> None:
    admin = f"{emulator.root_url}/_emulator/faults"
    response = http.post(admin, json={"fail_jobs": 2, **body} if isinstance(body, dict) else body)
    assert response.status_code == 400
    assert "message" in response.json()
    assert emulator.faults.snapshot()["fail_jobs"] == 0


def test_admin_endpoints_are_not_subject_to_faults(emulator: Emulator, http: httpx.Client) -> None:
    emulator.set_faults(server_errors=5, rate_limit_storm=5)
    assert http.get(f"{emulator.root_url}/_emulator/clock").status_code == 200
    assert emulator.faults.snapshot()["server_errors"] == 5
