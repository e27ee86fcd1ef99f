"""The 10/hour quotas per organization, their headers, and the request log."""

from datetime import timedelta

import httpx
import pytest

from circlecost_emulator import Emulator

from .helpers import NOW, OCTOBER, SEED, api_client, create_job, poll

RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def post(client: httpx.Client, org_id: str) -> httpx.Response:
    return client.post(f"/organizations/{org_id}/usage_export_job", json=OCTOBER)


def test_the_eleventh_post_within_an_hour_gets_429_with_retry_after(
    emulator: Emulator, client: httpx.Client, org_id: str
) -> None:
    for _ in range(10):
        assert post(client, org_id).status_code == 201
        emulator.clock.advance(60)
    refused = post(client, org_id)
    assert refused.status_code == 429
    assert refused.json() == {"message": "Rate limit exceeded."}
    # The first POST was 10 minutes ago: its slot frees in 50 minutes.
    assert refused.headers["Retry-After"] == str(50 * 60)
    for prefix in ("", "X-"):
        assert refused.headers[f"{prefix}RateLimit-Limit"] == "10"
        assert refused.headers[f"{prefix}RateLimit-Remaining"] == "0"
        assert refused.headers[f"{prefix}RateLimit-Reset"] == str(50 * 60)


def test_successful_responses_carry_the_rate_limit_headers(
    client: httpx.Client, org_id: str
) -> None:
    remaining = [post(client, org_id).headers["X-RateLimit-Remaining"] for _ in range(3)]
    assert remaining == ["9", "8", "7"]
    response = post(client, org_id)
    assert all(name in response.headers for name in RATE_HEADERS)


def test_a_slot_frees_when_the_oldest_request_is_an_hour_old(
    emulator: Emulator, client: httpx.Client, org_id: str
) -> None:
    for _ in range(10):
        post(client, org_id)
    assert post(client, org_id).status_code == 429
    emulator.clock.advance(3599)
    assert post(client, org_id).status_code == 429
    emulator.clock.advance(1)
    assert post(client, org_id).status_code == 201


def test_gets_have_their_own_quota(client: httpx.Client, org_id: str) -> None:
    job_id = create_job(client, org_id, OCTOBER)
    for _ in range(9):
        post(client, org_id)
    assert post(client, org_id).status_code == 429
    statuses = [poll(client, org_id, job_id).status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]


def test_each_organization_has_its_own_quota(
    emulator: Emulator, client: httpx.Client, org_id: str
) -> None:
    for _ in range(10):
        post(client, org_id)
    assert post(client, org_id).status_code == 429
    assert post(client, emulator.organizations[1]["id"]).status_code == 201


def test_a_refused_request_spends_no_slot(
    emulator: Emulator, client: httpx.Client, org_id: str
) -> None:
    for _ in range(10):
        post(client, org_id)
    for _ in range(5):
        assert post(client, org_id).status_code == 429
    emulator.clock.advance(3600)
    assert [post(client, org_id).status_code for _ in range(11)] == [201] * 10 + [429]


@pytest.mark.parametrize(("quota", "admitted"), [(3, 3), (None, 15)])
def test_the_quota_is_configurable_per_instance(
    org_id: str, quota: int | None, admitted: int
) -> None:
    with Emulator(seed=SEED, quota_per_hour=quota) as emulator:
        emulator.clock.freeze(NOW)
        with api_client(emulator) as client:
            statuses = [post(client, org_id).status_code for _ in range(15)]
    assert statuses.count(201) == admitted


def test_the_request_log_counts_what_was_sent_per_org_method_and_hour(
    emulator: Emulator, client: httpx.Client, org_id: str, http: httpx.Client
) -> None:
    job_id = create_job(client, org_id, OCTOBER)
    url = poll(client, org_id, job_id).json()["download_urls"][0]
    http.get(url)
    emulator.clock.advance(3600)
    for _ in range(11):
        post(client, org_id)
    log = emulator.requests
    assert log.count(org_id=org_id, method="POST") == 12
    assert log.count(org_id=org_id, method="POST", status=429) == 1
    assert log.count(org_id=org_id, kind="usage_export_get") == 1
    assert log.per_hour(org_id=org_id, method="POST") == {NOW: 1, NOW + timedelta(hours=1): 11}
    assert log.max_per_hour(org_id=org_id, method="POST") == 11
    assert log.count(org_id=org_id, method="POST", since=NOW + timedelta(minutes=30)) == 11
    downloads = log.records(kind="download")
    assert [(d.org_id, d.status, d.token_sent) for d in downloads] == [(org_id, 200, False)]


def test_max_per_hour_uses_a_sliding_hour(
    emulator: Emulator, client: httpx.Client, org_id: str
) -> None:
    for step in (0, 1800, 1799, 2):  # 00:00, 00:30, 00:59:59, 01:00:01
        emulator.clock.advance(step)
        post(client, org_id)
    assert emulator.requests.max_per_hour(org_id=org_id, method="POST") == 3
