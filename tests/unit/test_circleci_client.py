"""Unit tests for the CircleCI API v2 client, against httpx.MockTransport only (no network)."""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import json
import logging
import pickle
import traceback
from collections.abc import Callable, Iterator
from dataclasses import FrozenInstanceError, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from circlecost.circleci import (
    DEFAULT_TIMEOUT,
    AccessDeniedError,
    BadRequestError,
    CircleCIClient,
    CircleCIConnectionError,
    CircleCIError,
    CircleCIStatusError,
    CircleCITimeoutError,
    CircleCITransportError,
    DownloadLinkExpiredError,
    InvalidTokenError,
    NotFoundError,
    NotGzipError,
    RateLimitedError,
    RateLimitInfo,
    RetryPolicy,
    ServerError,
    UnexpectedResponseError,
    UnsafeDownloadURLError,
    parse_rate_limit_headers,
    parse_retry_after,
)
from circlecost.vocabulary import token_fingerprint
from tests.clock import SUITE_NOW

# Recognisable, so a leak anywhere is easy to spot.
TOKEN = "CCIPAT_leak_canary_5f1e9a7c2b8d4e60a1b2c3d4e5f60718"
ORG_ID = "0b5ad4c6-3a4e-4b1f-9c1a-7d2e5f6a8b90"
JOB_ID = "9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4"
PART_PATH = "https://usage-exports.s3.amazonaws.com/exports/part-1.csv.gz"
PRESIGNED_URL = f"{PART_PATH}?X-Amz-Expires=3600&X-Amz-Signature=SIGNATURE-SECRET-42"
SAMPLE_PART = Path(__file__).parents[1] / "data" / "usage-export-part-1.csv.gz"
WINDOW_START = datetime(2026, 9, 1, tzinfo=UTC)
WINDOW_END = datetime(2026, 9, 30, 23, 59, 59, tzinfo=UTC)
NO_RETRY = RetryPolicy(max_attempts=1)
FAKE_GZIP = b"\x1f\x8b\x08\x00" + b"compressed usage rows"

USER_BODY = {"id": "u-1", "login": "octo", "name": "Octo Cat", "avatar_url": None}
JOB_BODY = {
    "usage_export_job_id": JOB_ID,
    "state": "created",
    "start": "2026-09-01T00:00:00Z",
    "end": "2026-09-30T23:59:59Z",
    "download_urls": None,
}

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]


# ---------------------------------------------------------------------------------------------
# A scripted fake CircleCI
# ---------------------------------------------------------------------------------------------


@dataclass
class FakeCircleCI:
    """Plays its answers in order (the last one repeats) and records every request."""

    answers: list[Answer]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        return answer(request) if callable(answer) else answer


@dataclass
class Harness:
    client: CircleCIClient
    fake: FakeCircleCI
    sleeps: list[float]


Connect = Callable[..., Harness]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Build a client wired to a FakeCircleCI and a sleep recorder; close it afterwards."""
    harnesses: list[Harness] = []

    def _connect(*answers: Answer, **client_options: Any) -> Harness:
        fake = FakeCircleCI(list(answers))
        sleeps: list[float] = []
        client_options.setdefault("sleep", sleeps.append)
        client = CircleCIClient(TOKEN, transport=httpx.MockTransport(fake), **client_options)
        harnesses.append(Harness(client, fake, sleeps))
        return harnesses[-1]

    yield _connect
    for harness in harnesses:
        harness.client.close()


def reply(status: int = 200, body: Any = None, **headers: str) -> Answer:
    """A fresh response per request, so streamed bodies are never shared between attempts."""
    header_pairs = {name.replace("_", "-"): value for name, value in headers.items()}
    return lambda request: httpx.Response(status, json=body, headers=header_pairs)


def fail(error_type: type[httpx.TransportError], text: str = "transport failed") -> Answer:
    def raise_it(request: httpx.Request) -> httpx.Response:
        raise error_type(text, request=request)

    return raise_it


def fail_quoting_the_token(error_type: type[httpx.TransportError]) -> Answer:
    """Some transports put request headers into their error text; the token must not follow."""

    def raise_it(request: httpx.Request) -> httpx.Response:
        raise error_type(f"failed, headers: circle-token={request.headers['circle-token']}")

    return raise_it


def serve_bytes(content: bytes, status: int = 200, **headers: str) -> Answer:
    """Serve a body as a stream, as a real socket would (bytes content is pre-read by httpx)."""
    header_pairs = {name.replace("_", "-"): value for name, value in headers.items()}
    return lambda request: httpx.Response(status, content=iter([content]), headers=header_pairs)


def create_job(client: CircleCIClient) -> Any:
    return client.create_usage_export_job(ORG_ID, WINDOW_START, WINDOW_END)


def get_job(client: CircleCIClient) -> Any:
    return client.get_usage_export_job(ORG_ID, JOB_ID)


def get_me(client: CircleCIClient) -> Any:
    return client.get_current_user()


# ---------------------------------------------------------------------------------------------
# Calls and their typed results
# ---------------------------------------------------------------------------------------------


def test_current_user_is_fetched_with_the_token_in_the_circle_token_header(
    connect: Connect,
) -> None:
    harness = connect(reply(200, USER_BODY))

    user = harness.client.get_current_user()

    assert (user.id, user.login, user.name, user.avatar_url) == ("u-1", "octo", "Octo Cat", None)
    [request] = harness.fake.requests
    assert (request.method, str(request.url)) == ("GET", "https://circleci.com/api/v2/me")
    assert request.headers["Circle-Token"] == TOKEN
    assert "authorization" not in request.headers


def test_collaborations_are_a_bare_array_with_hyphenated_vcs_type(connect: Connect) -> None:
    body = [
        {"id": ORG_ID, "vcs-type": "github", "name": "acme", "avatar_url": "a", "slug": "gh/acme"},
        {
            "id": None,
            "vcs-type": "circleci",
            "name": "solo",
            "avatar_url": "b",
            "slug": "circleci/x",
        },
    ]
    harness = connect(reply(200, body))

    collaborations = harness.client.list_collaborations()

    assert [(c.id, c.vcs_type, c.slug) for c in collaborations] == [
        (ORG_ID, "github", "gh/acme"),
        (None, "circleci", "circleci/x"),
    ]
    assert harness.fake.requests[0].url.path == "/api/v2/me/collaborations"


def test_organization_is_read_with_underscored_vcs_type(connect: Connect) -> None:
    body = {"id": ORG_ID, "name": "acme", "slug": "gh/acme", "vcs_type": "github"}
    harness = connect(reply(200, body))

    organization = harness.client.get_organization(ORG_ID)

    assert (organization.id, organization.vcs_type) == (ORG_ID, "github")
    assert harness.fake.requests[0].url.path == f"/api/v2/organization/{ORG_ID}"


def test_organization_can_be_looked_up_by_slug(connect: Connect) -> None:
    body = {"id": ORG_ID, "name": "acme", "slug": "gh/acme", "vcs_type": "github"}
    harness = connect(reply(200, body))

    harness.client.get_organization("gh/acme")

    assert harness.fake.requests[0].url.path == "/api/v2/organization/gh/acme"


@pytest.mark.parametrize("bad_id", ["", "..", "../me", f"{ORG_ID}/../../me", "a/b"])
def test_ids_that_would_change_the_usage_export_path_are_refused(
    connect: Connect, bad_id: str
) -> None:
    harness = connect(reply(200, JOB_BODY))

    with pytest.raises(ValueError, match="not a valid CircleCI id"):
        harness.client.get_usage_export_job(bad_id, JOB_ID)

    assert harness.fake.requests == []


def test_usage_export_job_is_created_with_an_rfc3339_utc_window(connect: Connect) -> None:
    harness = connect(reply(201, JOB_BODY))
    berlin = timezone(timedelta(hours=2))

    job = harness.client.create_usage_export_job(
        ORG_ID,
        datetime(2026, 9, 1, 2, 0, tzinfo=berlin),
        datetime(2026, 10, 1, 1, 59, 59, 999_999, tzinfo=berlin),
        shared_org_ids=["other-org"],
    )

    [request] = harness.fake.requests
    assert request.method == "POST"
    assert request.url.path == f"/api/v2/organizations/{ORG_ID}/usage_export_job"
    assert json.loads(request.content) == {
        "start": "2026-09-01T00:00:00Z",
        "end": "2026-09-30T23:59:59Z",
        "shared_org_ids": ["other-org"],
    }
    assert (job.usage_export_job_id, job.state) == (JOB_ID, "created")
    assert job.start == WINDOW_START


def test_usage_export_window_must_be_timezone_aware(connect: Connect) -> None:
    harness = connect(reply(201, JOB_BODY))

    with pytest.raises(ValueError, match="start must be a timezone-aware datetime"):
        harness.client.create_usage_export_job(ORG_ID, datetime(2026, 9, 1), WINDOW_END)

    assert harness.fake.requests == []


def test_usage_export_job_is_polled_by_org_and_job_id(connect: Connect) -> None:
    body = {"usage_export_job_id": JOB_ID, "state": "failed", "error_reason": "query timed out"}
    harness = connect(reply(200, body))

    job = harness.client.get_usage_export_job(ORG_ID, JOB_ID)

    assert harness.fake.requests[0].url.path == (
        f"/api/v2/organizations/{ORG_ID}/usage_export_job/{JOB_ID}"
    )
    assert (job.state, job.error_reason, job.start, job.end) == (
        "failed",
        "query timed out",
        None,
        None,
    )


@pytest.mark.parametrize(
    "download_urls",
    [
        pytest.param({"download_urls": None}, id="null"),
        pytest.param({}, id="missing"),
        pytest.param({"download_urls": []}, id="empty"),
    ],
)
def test_a_job_without_download_urls_reads_as_an_empty_list(
    connect: Connect, download_urls: dict[str, Any]
) -> None:
    body = {"usage_export_job_id": JOB_ID, "state": "completed", **download_urls}
    harness = connect(reply(200, body))

    assert get_job(harness.client).download_urls == []


def test_a_completed_job_lists_its_download_urls(connect: Connect) -> None:
    urls = [PRESIGNED_URL, PRESIGNED_URL.replace("part-1", "part-2")]
    body = {"usage_export_job_id": JOB_ID, "state": "completed", "download_urls": urls}
    harness = connect(reply(200, body))

    assert get_job(harness.client).download_urls == urls


@pytest.mark.parametrize(
    ("call", "body"),
    [
        pytest.param(get_me, {**USER_BODY, "beta_feature": {"on": True}}, id="user"),
        pytest.param(
            lambda client: client.list_collaborations(),
            [{"id": None, "vcs-type": "github", "name": "a", "slug": "gh/a", "new": 1}],
            id="collaborations",
        ),
        pytest.param(
            lambda client: client.get_organization(ORG_ID),
            {"id": ORG_ID, "name": "a", "slug": "gh/a", "vcs_type": "github", "plan": "scale"},
            id="organization",
        ),
        pytest.param(get_job, {**JOB_BODY, "row_count": 12, "expires_at": "later"}, id="job"),
    ],
)
def test_unknown_extra_fields_in_responses_are_tolerated(
    connect: Connect, call: Callable[[CircleCIClient], Any], body: Any
) -> None:
    harness = connect(reply(200, body))

    assert call(harness.client) is not None


def test_a_body_missing_required_fields_raises_unexpected_response_naming_the_call(
    connect: Connect,
) -> None:
    harness = connect(reply(200, {"state": "completed"}))

    with pytest.raises(UnexpectedResponseError, match=r"GET /organizations/.*usage_export_job_id"):
        get_job(harness.client)


def test_base_url_is_configurable(connect: Connect) -> None:
    harness = connect(reply(200, USER_BODY), base_url="http://127.0.0.1:8765/api/v2")

    harness.client.get_current_user()

    assert str(harness.fake.requests[0].url) == "http://127.0.0.1:8765/api/v2/me"


def test_a_plain_http_base_url_off_loopback_is_refused() -> None:
    with pytest.raises(ValueError, match="must be https"):
        CircleCIClient(TOKEN, base_url="http://circleci.example.com/api/v2")


@pytest.mark.parametrize(
    "timeout",
    [pytest.param(DEFAULT_TIMEOUT, id="default"), pytest.param(httpx.Timeout(3.0), id="custom")],
)
def test_every_request_carries_an_explicit_timeout(
    connect: Connect, timeout: httpx.Timeout
) -> None:
    options = {} if timeout is DEFAULT_TIMEOUT else {"timeout": timeout}
    harness = connect(reply(200, USER_BODY), **options)

    harness.client.get_current_user()

    assert harness.fake.requests[0].extensions["timeout"] == timeout.as_dict()


def test_the_token_may_be_given_as_secretstr_and_surrounding_whitespace_is_dropped() -> None:
    fake = FakeCircleCI([reply(200, USER_BODY)])
    with CircleCIClient(SecretStr(f"  {TOKEN}\n"), transport=httpx.MockTransport(fake)) as client:
        client.get_current_user()

    assert fake.requests[0].headers["Circle-Token"] == TOKEN


@pytest.mark.parametrize("bad_token", ["", "   ", "two words", "tab\there", "nul\x00"])
def test_an_unusable_token_is_refused_without_echoing_it(bad_token: str) -> None:
    with pytest.raises(ValueError, match="token is empty or contains") as caught:
        CircleCIClient(bad_token)

    assert bad_token.strip() == "" or bad_token not in str(caught.value)


def test_the_client_closes_when_used_as_a_context_manager() -> None:
    fake = FakeCircleCI([reply(200, USER_BODY)])
    with CircleCIClient(TOKEN, transport=httpx.MockTransport(fake)) as client:
        client.get_current_user()

    with pytest.raises(RuntimeError, match="closed"):
        client.get_current_user()


def test_a_client_refuses_to_be_pickled_so_the_token_never_lands_in_pulumi_state(
    connect: Connect,
) -> None:
    harness = connect(reply(200, USER_BODY))

    with pytest.raises(TypeError, match="cannot be pickled") as caught:
        pickle.dumps(harness.client)

    assert TOKEN not in str(caught.value)


def test_token_fingerprint_is_a_short_sha256_prefix() -> None:
    fingerprint = token_fingerprint(TOKEN)

    assert fingerprint == "sha256:" + hashlib.sha256(TOKEN.encode()).hexdigest()[:16]
    assert len(fingerprint) == len("sha256:") + 16
    assert token_fingerprint(TOKEN + "x") != fingerprint


# ---------------------------------------------------------------------------------------------
# Status errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, BadRequestError),
        (401, InvalidTokenError),
        (403, AccessDeniedError),
        (404, NotFoundError),
        (409, CircleCIStatusError),
        (429, RateLimitedError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
    ],
)
def test_each_error_status_raises_its_own_error_class(
    connect: Connect, status: int, error_class: type[CircleCIStatusError]
) -> None:
    harness = connect(reply(status, {"message": "nope"}), retry=NO_RETRY)

    with pytest.raises(CircleCIStatusError) as caught:
        harness.client.get_current_user()

    assert type(caught.value) is error_class
    assert isinstance(caught.value, CircleCIError)
    assert (caught.value.status_code, caught.value.method, caught.value.path) == (
        status,
        "GET",
        "/me",
    )
    assert caught.value.circleci_message == "nope"


@pytest.mark.parametrize(
    ("status", "error_class", "advice"),
    [
        (400, BadRequestError, "at most 31 days"),
        (401, InvalidTokenError, "create a new personal API token"),
        (403, AccessDeniedError, "use a token of a user who has it"),
        (404, NotFoundError, "check it for typos"),
        (429, RateLimitedError, "retry later"),
        (500, ServerError, "status.circleci.com"),
    ],
)
def test_error_messages_name_the_call_and_say_what_to_do_next(
    connect: Connect, status: int, error_class: type[CircleCIStatusError], advice: str
) -> None:
    harness = connect(reply(status, {"message": "CircleCI says no."}), retry=NO_RETRY)

    with pytest.raises(error_class) as caught:
        harness.client.get_current_user()

    message = str(caught.value)
    assert f"GET /me failed with HTTP {status}: CircleCI says no." in message
    assert advice in message


def test_bad_request_carries_circleci_message(connect: Connect) -> None:
    harness = connect(reply(400, {"message": "Unexpected request body provided."}))

    with pytest.raises(BadRequestError) as caught:
        create_job(harness.client)

    assert caught.value.circleci_message == "Unexpected request body provided."


def test_a_non_json_error_body_is_shown_truncated(connect: Connect) -> None:
    harness = connect(serve_bytes(b"<html>" + b"x" * 1000, status=502), retry=NO_RETRY)

    with pytest.raises(ServerError) as caught:
        harness.client.get_current_user()

    assert caught.value.circleci_message.startswith("<html>xxx")
    assert caught.value.circleci_message.endswith("...")
    assert len(caught.value.circleci_message) <= 203


@pytest.mark.parametrize("status", [403, 404])
@pytest.mark.parametrize("call", [create_job, get_job], ids=["create", "poll"])
def test_usage_export_403_and_404_mean_not_an_org_admin_or_wrong_org(
    connect: Connect, call: Callable[[CircleCIClient], Any], status: int
) -> None:
    harness = connect(reply(status, {"message": "Forbidden"}), retry=NO_RETRY)

    with pytest.raises(AccessDeniedError) as caught:
        call(harness.client)

    assert caught.value.status_code == status
    assert (
        f"token's user is not an admin of organization {ORG_ID}, or the organization id is wrong"
    ) in str(caught.value)


def test_404_outside_usage_export_is_not_found(connect: Connect) -> None:
    harness = connect(reply(404, {"message": "Not found"}), retry=NO_RETRY)

    with pytest.raises(NotFoundError, match=f"GET /organization/{ORG_ID} failed with HTTP 404"):
        harness.client.get_organization(ORG_ID)


# ---------------------------------------------------------------------------------------------
# Retry-After, rate-limit headers and the retry policy
# ---------------------------------------------------------------------------------------------

NOW = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        (" 7 ", 7.0),
        (email.utils.format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        (email.utils.format_datetime(NOW - timedelta(hours=1), usegmt=True), 0.0),
        ("Thu, 01 Oct 2026 12:00:30 +0000", 30.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("inf", None),
        ("nan", None),
        ("1e3", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_http_date(
    value: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            {"RateLimit-Limit": "10", "RateLimit-Remaining": "7", "RateLimit-Reset": "1800"},
            RateLimitInfo(10, 7, 1800.0),
            id="ietf-headers",
        ),
        pytest.param(
            {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "60"},
            RateLimitInfo(10, 3, 60.0),
            id="x-headers",
        ),
        pytest.param(
            {
                "RateLimit-Limit": "100",
                "RateLimit-Remaining": "2",
                "RateLimit-Reset": "30",
                "X-RateLimit-Limit": "10",
                "X-RateLimit-Remaining": "9",
                "X-RateLimit-Reset": "60",
            },
            RateLimitInfo(10, 2, 60.0),
            id="disagreeing-lower-wins",
        ),
        pytest.param(
            {"RateLimit-Limit": "10, 10;w=3600", "RateLimit-Remaining": "4;w=3600"},
            RateLimitInfo(10, 4, None),
            id="ietf-draft-policy-syntax",
        ),
        pytest.param(
            {"X-RateLimit-Reset": str(int(NOW.timestamp()) + 90)},
            RateLimitInfo(None, None, 90.0),
            id="epoch-reset",
        ),
        pytest.param(
            {"RateLimit-Limit": "lots", "X-RateLimit-Remaining": "-1"}, None, id="garbage"
        ),
        pytest.param({}, None, id="absent"),
    ],
)
def test_rate_limit_headers_are_parsed_and_the_stricter_value_holds(
    headers: dict[str, str], expected: RateLimitInfo | None
) -> None:
    assert parse_rate_limit_headers(httpx.Headers(headers), now=NOW.timestamp()) == expected


def test_the_last_rate_limit_is_exposed_on_the_client(connect: Connect) -> None:
    harness = connect(reply(200, USER_BODY, RateLimit_Limit="10", RateLimit_Remaining="6"))
    assert harness.client.last_rate_limit is None

    harness.client.get_current_user()

    assert harness.client.last_rate_limit == RateLimitInfo(10, 6, None)


def test_rate_limited_errors_carry_retry_after_and_rate_limit_info(connect: Connect) -> None:
    answer = reply(
        429,
        {"message": "Rate limit exceeded."},
        Retry_After="42",
        X_RateLimit_Limit="10",
        X_RateLimit_Remaining="0",
    )
    harness = connect(answer, retry=NO_RETRY)

    with pytest.raises(RateLimitedError) as caught:
        harness.client.get_current_user()

    assert caught.value.retry_after == 42.0
    assert caught.value.rate_limit == RateLimitInfo(10, 0, None)
    assert "retry in 42 s" in str(caught.value)


@pytest.mark.parametrize(
    ("retry_number", "random_fraction", "delay"),
    [
        (1, 0.0, 0.5),
        (2, 0.0, 1.0),
        (3, 0.0, 2.0),
        (7, 0.0, 30.0),
        (20, 0.0, 30.0),
        (1, 1.0, 0.375),
        (20, 1.0, 22.5),
    ],
)
def test_backoff_doubles_is_capped_and_jitter_only_shortens_it(
    retry_number: int, random_fraction: float, delay: float
) -> None:
    assert RetryPolicy().backoff_delay(retry_number, random_fraction) == pytest.approx(delay)


def test_the_retry_policy_defaults_match_the_issue_and_are_frozen() -> None:
    policy = RetryPolicy()

    assert (policy.max_attempts, policy.base_delay, policy.max_delay) == (4, 0.5, 30.0)
    assert (policy.jitter, policy.max_retry_after) == (0.25, 3600)
    with pytest.raises(FrozenInstanceError):
        policy.max_attempts = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    "options",
    [{"max_attempts": 0}, {"base_delay": -1}, {"max_delay": -1}, {"jitter": 1.5}, {"jitter": -0.1}],
)
def test_a_nonsensical_retry_policy_is_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        RetryPolicy(**options)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Retries on GET
# ---------------------------------------------------------------------------------------------


def test_get_retries_429_after_exactly_the_retry_after_seconds(connect: Connect) -> None:
    harness = connect(
        reply(429, Retry_After="7"), reply(429, Retry_After="3"), reply(200, USER_BODY)
    )

    assert harness.client.get_current_user().login == "octo"

    assert len(harness.fake.requests) == 3
    assert harness.sleeps == [7.0, 3.0]


def test_get_retries_429_after_an_http_date_retry_after(connect: Connect) -> None:
    in_two_minutes = SUITE_NOW + timedelta(seconds=120)
    retry_at = email.utils.format_datetime(in_two_minutes, usegmt=True)
    harness = connect(reply(429, Retry_After=retry_at), reply(200, USER_BODY))

    harness.client.get_current_user()

    [slept] = harness.sleeps
    assert 115 <= slept <= 120


def test_get_retries_429_without_retry_after_with_backoff(connect: Connect) -> None:
    harness = connect(reply(429), reply(429), reply(200, USER_BODY))

    harness.client.get_current_user()

    assert len(harness.sleeps) == 2
    assert 0.375 <= harness.sleeps[0] <= 0.5
    assert 0.75 <= harness.sleeps[1] <= 1.0


def test_a_retry_after_longer_than_the_policy_allows_raises_instead_of_sleeping(
    connect: Connect,
) -> None:
    harness = connect(reply(429, Retry_After="7200"), reply(200, USER_BODY))

    with pytest.raises(RateLimitedError) as caught:
        harness.client.get_current_user()

    assert caught.value.retry_after == 7200.0
    assert harness.sleeps == []
    assert len(harness.fake.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_get_retries_server_errors_with_capped_exponential_backoff(
    connect: Connect, status: int
) -> None:
    harness = connect(reply(status), reply(status), reply(status), reply(200, USER_BODY))

    harness.client.get_current_user()

    assert len(harness.fake.requests) == 4
    for retry_number, slept in enumerate(harness.sleeps, start=1):
        full = 0.5 * 2 ** (retry_number - 1)
        assert 0.75 * full <= slept <= full


@pytest.mark.parametrize(
    "error_type",
    [
        httpx.ConnectError,
        httpx.ConnectTimeout,
        httpx.ReadTimeout,
        httpx.ReadError,
        httpx.RemoteProtocolError,
    ],
)
def test_get_retries_transport_errors(
    connect: Connect, error_type: type[httpx.TransportError]
) -> None:
    harness = connect(fail(error_type), reply(200, USER_BODY))

    assert harness.client.get_current_user().login == "octo"
    assert len(harness.fake.requests) == 2
    assert len(harness.sleeps) == 1


@pytest.mark.parametrize(
    ("answer", "error_class"),
    [
        pytest.param(reply(429, Retry_After="1"), RateLimitedError, id="429"),
        pytest.param(reply(503), ServerError, id="503"),
        pytest.param(fail(httpx.ConnectError), CircleCIConnectionError, id="connect-error"),
        pytest.param(fail(httpx.ReadTimeout), CircleCITimeoutError, id="read-timeout"),
    ],
)
@pytest.mark.parametrize("max_attempts", [1, 2, 4])
def test_get_gives_up_after_max_attempts(
    connect: Connect, answer: Answer, error_class: type[CircleCIError], max_attempts: int
) -> None:
    harness = connect(answer, retry=RetryPolicy(max_attempts=max_attempts))

    with pytest.raises(error_class):
        harness.client.get_current_user()

    assert len(harness.fake.requests) == max_attempts
    assert len(harness.sleeps) == max_attempts - 1


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_get_does_not_retry_client_errors(connect: Connect, status: int) -> None:
    harness = connect(reply(status), reply(200, USER_BODY))

    with pytest.raises(CircleCIStatusError):
        harness.client.get_current_user()

    assert len(harness.fake.requests) == 1


# ---------------------------------------------------------------------------------------------
# The usage-export POST is never retried blindly
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "error_class"),
    [
        (httpx.ReadTimeout, CircleCITimeoutError),
        (httpx.WriteTimeout, CircleCITimeoutError),
        (httpx.ReadError, CircleCIConnectionError),
        (httpx.RemoteProtocolError, CircleCIConnectionError),
    ],
)
def test_post_is_not_retried_when_the_request_may_have_reached_circleci(
    connect: Connect, error_type: type[httpx.TransportError], error_class: type[CircleCIError]
) -> None:
    harness = connect(fail(error_type), reply(201, JOB_BODY))

    with pytest.raises(error_class) as caught:
        create_job(harness.client)

    assert isinstance(caught.value, CircleCITransportError)
    assert caught.value.request_never_sent is False
    assert len(harness.fake.requests) == 1
    assert harness.sleeps == []


@pytest.mark.parametrize("error_type", [httpx.ConnectError, httpx.ConnectTimeout])
def test_post_is_retried_when_the_connection_was_never_made(
    connect: Connect, error_type: type[httpx.TransportError]
) -> None:
    harness = connect(fail(error_type), reply(201, JOB_BODY))

    job = create_job(harness.client)

    assert job.usage_export_job_id == JOB_ID
    assert len(harness.fake.requests) == 2
    assert len(harness.sleeps) == 1


def test_post_gives_up_on_connect_errors_after_max_attempts(connect: Connect) -> None:
    harness = connect(fail(httpx.ConnectError))

    with pytest.raises(CircleCIConnectionError) as caught:
        create_job(harness.client)

    assert caught.value.request_never_sent is True
    assert len(harness.fake.requests) == RetryPolicy().max_attempts


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_post_is_not_retried_on_server_errors(connect: Connect, status: int) -> None:
    harness = connect(reply(status), reply(201, JOB_BODY))

    with pytest.raises(ServerError):
        create_job(harness.client)

    assert len(harness.fake.requests) == 1


def test_post_raises_rate_limited_at_once_with_retry_after(connect: Connect) -> None:
    harness = connect(reply(429, {"message": "Rate limit exceeded."}, Retry_After="60"))

    with pytest.raises(RateLimitedError) as caught:
        create_job(harness.client)

    assert caught.value.retry_after == 60.0
    assert caught.value.method == "POST"
    assert len(harness.fake.requests) == 1
    assert harness.sleeps == []


# ---------------------------------------------------------------------------------------------
# Transport errors are wrapped once
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "error_class", "never_sent"),
    [
        (httpx.ConnectError, CircleCIConnectionError, True),
        (httpx.ConnectTimeout, CircleCITimeoutError, True),
        (httpx.PoolTimeout, CircleCITimeoutError, True),
        (httpx.ReadTimeout, CircleCITimeoutError, False),
        (httpx.WriteTimeout, CircleCITimeoutError, False),
        (httpx.ReadError, CircleCIConnectionError, False),
        (httpx.WriteError, CircleCIConnectionError, False),
        (httpx.RemoteProtocolError, CircleCIConnectionError, False),
    ],
)
def test_transport_errors_are_wrapped_once_with_a_never_sent_flag(
    connect: Connect,
    error_type: type[httpx.TransportError],
    error_class: type[CircleCITransportError],
    never_sent: bool,
) -> None:
    harness = connect(fail(error_type, "socket trouble"), retry=NO_RETRY)

    with pytest.raises(error_class) as caught:
        harness.client.get_current_user()

    assert type(caught.value) is error_class
    assert caught.value.request_never_sent is never_sent
    assert type(caught.value.__cause__) is error_type
    assert "GET /me" in str(caught.value)
    assert "socket trouble" in str(caught.value)
    assert "then retry" in str(caught.value)


# ---------------------------------------------------------------------------------------------
# Downloading parts
# ---------------------------------------------------------------------------------------------


def test_a_part_is_downloaded_byte_for_byte_to_the_destination(
    connect: Connect, tmp_path: Path
) -> None:
    sample = SAMPLE_PART.read_bytes()
    harness = connect(serve_bytes(sample))
    destination = tmp_path / "part-1.csv.gz"

    written = harness.client.download_usage_export_part(PRESIGNED_URL, destination)

    assert written == len(sample)
    assert destination.read_bytes() == sample
    assert gzip.decompress(destination.read_bytes()).startswith(b"ORGANIZATION_ID")
    assert str(harness.fake.requests[0].url) == PRESIGNED_URL


def test_a_part_served_with_content_encoding_gzip_is_stored_still_compressed(
    connect: Connect, tmp_path: Path
) -> None:
    sample = SAMPLE_PART.read_bytes()
    harness = connect(serve_bytes(sample, Content_Encoding="gzip"))
    destination = tmp_path / "part-1.csv.gz"

    harness.client.download_usage_export_part(PRESIGNED_URL, destination)

    assert destination.read_bytes() == sample
    assert harness.fake.requests[0].headers["Accept-Encoding"] == "identity"


def test_a_part_is_streamed_to_disk_not_held_in_memory(connect: Connect, tmp_path: Path) -> None:
    destination = tmp_path / "part-1.csv.gz"
    partial = tmp_path / "part-1.csv.gz.partial"
    first_chunk = FAKE_GZIP + bytes(256 * 1024)
    bytes_on_disk_mid_stream: list[int] = []

    def chunks() -> Iterator[bytes]:
        yield first_chunk
        bytes_on_disk_mid_stream.append(partial.stat().st_size)
        yield b"last chunk"

    harness = connect(lambda request: httpx.Response(200, content=chunks()))

    harness.client.download_usage_export_part(PRESIGNED_URL, destination)

    assert bytes_on_disk_mid_stream == [len(first_chunk)]
    assert destination.read_bytes() == first_chunk + b"last chunk"
    assert not partial.exists()


def test_the_download_request_carries_no_circle_token(connect: Connect, tmp_path: Path) -> None:
    harness = connect(serve_bytes(FAKE_GZIP))

    harness.client.download_usage_export_part(PRESIGNED_URL, tmp_path / "part.csv.gz")

    [request] = harness.fake.requests
    assert "circle-token" not in request.headers
    assert "authorization" not in request.headers
    assert TOKEN not in str(request.headers.raw)


@pytest.mark.parametrize(
    "body",
    [b"", b"\x1f", b"ORGANIZATION_ID,ORGANIZATION_NAME\n", b"<?xml version='1.0'?><Error/>"],
)
def test_a_part_that_is_not_gzip_is_refused_naming_the_url_without_its_query(
    connect: Connect, tmp_path: Path, body: bytes
) -> None:
    harness = connect(serve_bytes(body))
    destination = tmp_path / "part-1.csv.gz"

    with pytest.raises(NotGzipError) as caught:
        harness.client.download_usage_export_part(PRESIGNED_URL, destination)

    assert PART_PATH in str(caught.value)
    assert "SIGNATURE-SECRET" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []
    assert len(harness.fake.requests) == 1


def test_an_expired_download_link_raises_download_link_expired(
    connect: Connect, tmp_path: Path
) -> None:
    harness = connect(serve_bytes(b"<Error><Code>AccessDenied</Code></Error>", status=403))

    with pytest.raises(DownloadLinkExpiredError) as caught:
        harness.client.download_usage_export_part(PRESIGNED_URL, tmp_path / "part.csv.gz")

    assert isinstance(caught.value, CircleCIStatusError)
    assert not isinstance(caught.value, AccessDeniedError)
    assert "GET the usage export job for fresh links" in str(caught.value)
    assert "SIGNATURE-SECRET" not in str(caught.value)
    assert len(harness.fake.requests) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_download_retries_server_errors_and_keeps_only_the_final_body(
    connect: Connect, tmp_path: Path
) -> None:
    harness = connect(serve_bytes(b"oops", status=503), serve_bytes(FAKE_GZIP))
    destination = tmp_path / "part.csv.gz"

    harness.client.download_usage_export_part(PRESIGNED_URL, destination)

    assert destination.read_bytes() == FAKE_GZIP
    assert len(harness.sleeps) == 1


def test_a_download_cut_off_mid_stream_leaves_no_file_behind(
    connect: Connect, tmp_path: Path
) -> None:
    def chunks() -> Iterator[bytes]:
        yield FAKE_GZIP
        raise httpx.ReadError("connection reset by peer")

    harness = connect(lambda request: httpx.Response(200, content=chunks()), retry=NO_RETRY)

    with pytest.raises(CircleCIConnectionError, match="ReadError"):
        harness.client.download_usage_export_part(PRESIGNED_URL, tmp_path / "part.csv.gz")

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "allow_loopback"),
    [
        ("https://usage-exports.s3.amazonaws.com/p.csv.gz?X-Amz-Signature=s", False),
        ("https://usage-exports.s3.amazonaws.com/p.csv.gz?X-Amz-Signature=s", True),
        ("http://127.0.0.1:9000/p.csv.gz?sig=s", True),
        ("http://127.8.9.10/p.csv.gz", True),
        ("http://[::1]:9000/p.csv.gz", True),
        ("http://localhost:9000/p.csv.gz", True),
        ("https://localhost:9000/p.csv.gz", True),
    ],
)
def test_download_links_that_are_https_or_allowed_loopback_are_fetched(
    connect: Connect, tmp_path: Path, url: str, allow_loopback: bool
) -> None:
    harness = connect(serve_bytes(FAKE_GZIP), allow_insecure_loopback_downloads=allow_loopback)

    harness.client.download_usage_export_part(url, tmp_path / "part.csv.gz")

    assert len(harness.fake.requests) == 1


@pytest.mark.parametrize(
    ("url", "allow_loopback", "reason"),
    [
        ("http://usage-exports.s3.amazonaws.com/p.csv.gz", False, "not https"),
        ("http://usage-exports.s3.amazonaws.com/p.csv.gz", True, "not https"),
        ("ftp://usage-exports.s3.amazonaws.com/p.csv.gz", True, "not https"),
        ("http://127.0.0.1:9000/p.csv.gz", False, "loopback"),
        ("https://127.0.0.1:9000/p.csv.gz", False, "loopback"),
        ("http://localhost/p.csv.gz", False, "loopback"),
        ("http://[::1]/p.csv.gz", False, "loopback"),
        ("https://10.0.0.5/p.csv.gz", True, "private"),
        ("https://172.16.3.4/p.csv.gz", False, "private"),
        ("https://192.168.1.20/p.csv.gz", False, "private"),
        ("https://169.254.169.254/latest/meta-data", True, "link-local"),
        ("https://[fe80::1]/p.csv.gz", False, "link-local"),
        ("https://[fd00::1]/p.csv.gz", False, "private"),
        ("https://[::ffff:10.0.0.1]/p.csv.gz", False, "private"),
        ("https://0.0.0.0/p.csv.gz", True, "private"),
        ("https://100.64.0.1/p.csv.gz", False, "private"),
        ("https://224.0.0.1/p.csv.gz", False, "private"),
        ("http://10.0.0.5/p.csv.gz", True, "not https"),
        ("https://2130706433/p.csv.gz", True, "numeric"),
        ("https://0x7f.1/p.csv.gz", True, "numeric"),
    ],
)
def test_download_links_to_private_addresses_or_without_https_are_refused(
    connect: Connect, tmp_path: Path, url: str, allow_loopback: bool, reason: str
) -> None:
    harness = connect(serve_bytes(FAKE_GZIP), allow_insecure_loopback_downloads=allow_loopback)

    with pytest.raises(UnsafeDownloadURLError, match=reason):
        harness.client.download_usage_export_part(url, tmp_path / "part.csv.gz")

    assert harness.fake.requests == []
    assert list(tmp_path.iterdir()) == []


def test_a_refused_download_link_is_named_without_its_query(
    connect: Connect, tmp_path: Path
) -> None:
    harness = connect(serve_bytes(FAKE_GZIP))
    insecure = PRESIGNED_URL.replace("https://", "http://")

    with pytest.raises(UnsafeDownloadURLError) as caught:
        harness.client.download_usage_export_part(insecure, tmp_path / "part.csv.gz")

    assert PART_PATH.replace("https://", "http://") in str(caught.value)
    assert "SIGNATURE-SECRET" not in str(caught.value)


# ---------------------------------------------------------------------------------------------
# The token never leaks
# ---------------------------------------------------------------------------------------------


def _echo_token_json(status: int) -> Answer:
    return reply(status, {"message": f"token {TOKEN} is not valid here"})


@pytest.mark.parametrize(
    ("call", "answer"),
    [
        pytest.param(get_me, _echo_token_json(400), id="400-echoing-token"),
        pytest.param(get_me, _echo_token_json(401), id="401-echoing-token"),
        pytest.param(get_me, _echo_token_json(403), id="403-echoing-token"),
        pytest.param(get_job, _echo_token_json(404), id="404-usage-export"),
        pytest.param(get_me, _echo_token_json(429), id="429-echoing-token"),
        pytest.param(get_me, _echo_token_json(500), id="500-echoing-token"),
        pytest.param(
            get_me, serve_bytes(f"raw {TOKEN}".encode(), status=502), id="raw-text-echoing-token"
        ),
        pytest.param(get_me, fail_quoting_the_token(httpx.ConnectError), id="connect-error"),
        pytest.param(get_me, fail_quoting_the_token(httpx.ReadTimeout), id="read-timeout"),
        pytest.param(create_job, fail_quoting_the_token(httpx.ConnectError), id="post-connect"),
        pytest.param(create_job, fail_quoting_the_token(httpx.ReadTimeout), id="post-timeout"),
        pytest.param(
            create_job, fail_quoting_the_token(httpx.RemoteProtocolError), id="post-protocol"
        ),
        pytest.param(get_me, reply(200, {"login": TOKEN}), id="unexpected-body"),
    ],
)
def test_no_error_or_log_record_ever_contains_the_token(
    connect: Connect,
    caplog: pytest.LogCaptureFixture,
    call: Callable[[CircleCIClient], Any],
    answer: Answer,
) -> None:
    caplog.set_level(logging.DEBUG)
    harness = connect(answer)

    with pytest.raises(CircleCIError) as caught:
        call(harness.client)

    error = caught.value
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    texts += [str(error.__cause__), repr(error.__cause__)]
    texts += [repr(value) for value in vars(error).values()]
    texts += [record.getMessage() for record in caplog.records]
    texts += [caplog.text, repr(harness.client)]
    assert not [text for text in texts if TOKEN in text]
    assert any(record.name == "circlecost.circleci" for record in caplog.records)


def test_successful_calls_log_method_path_and_status_but_no_token(
    connect: Connect, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    harness = connect(reply(200, USER_BODY), serve_bytes(FAKE_GZIP))

    harness.client.get_current_user()
    harness.client.download_usage_export_part(PRESIGNED_URL, tmp_path / "part.csv.gz")

    messages = [r.getMessage() for r in caplog.records if r.name == "circlecost.circleci"]
    assert "CircleCI GET /me -> 200" in messages
    assert f"CircleCI GET {PART_PATH} -> 200" in messages
    assert TOKEN not in caplog.text
    # httpx itself logs full URLs at INFO; this module's own records must not add signatures.
    assert not [message for message in messages if "SIGNATURE-SECRET" in message]
