"""What the emulated CircleCI API does: tokens, organizations, export jobs, quotas, downloads.

Order of checks on an API request: injected faults (5xx, 429 storm), routing, the
`circle-token` query parameter, the token, then per endpoint. On the usage endpoints: unknown
organization (404), quota (429; every admitted request spends a slot, whatever its outcome),
admin rights (404 for a caller who is not an admin of that organization, as CircleCI does not
reveal the organization), then the body.

Rights are per user and per organization, as a personal token has its user's rights:
- `admin` (Ada Admin): admin, hence member, of every organization the emulator serves;
- `non_admin` (Nico Member): member of every organization, admin of none;
- each organization's admin bot (`org_admin_tokens[org id]`): admin of that organization only
  and member of no other, so `/me/collaborations` lists its own organization alone and every
  other organization's usage export answers 404.
`GET /organization/{id-or-slug}` answers any valid token (CircleCI does not document who may
read it), so a wrong organization is refused where CircleCI surely refuses it: the usage export.
"""

import re
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import unquote

from circlecost_emulator.clock import EmulatorClock
from circlecost_emulator.export import ExportPart, UsageSource, part_payload
from circlecost_emulator.faults import Faults
from circlecost_emulator.messages import (
    HttpRequest,
    Response,
    error_response,
    json_response,
    s3_error,
)
from circlecost_emulator.organizations import Organization, seeded_uuid
from circlecost_emulator.quota import QuotaTracker
from circlecost_emulator.request_log import (
    COLLABORATIONS,
    DOWNLOAD,
    ME,
    ORGANIZATION,
    UNKNOWN,
    USAGE_EXPORT_CREATE,
    USAGE_EXPORT_GET,
    RequestLog,
    RequestRecord,
)
from circlecost_emulator.window import ExportWindow, WindowError, parse_export_request, rfc3339

API_PREFIX: Final = "/api/v2"
TOKEN_KINDS: Final = ("admin", "non_admin", "expired", "project", "old_format")
OLD_TOKEN_MESSAGE: Final = (
    "New format tokens are needed to authenticate this API endpoint. "
    "Create a new API token for access."
)
QUERY_TOKEN_MESSAGE: Final = (
    "Support for query parameter authentication has been deprecated to improve security. "
    "Please use a supported authentication method such as header-based, or basic authentication."
)
INVALID_TOKEN: Final = "Invalid token provided."
ORG_NOT_FOUND: Final = "Organization does not exist."
JOB_NOT_FOUND: Final = "Usage export job not found."
RATE_LIMITED: Final = "Rate limit exceeded."
FAILED_JOB_REASON: Final = "The usage export query timed out. Try a smaller date range."
_SERVER_ERROR_MESSAGES: Final = {
    500: "Internal server error.",
    502: "Bad gateway.",
    503: "Service unavailable.",
}
_DOWNLOAD_PATH: Final = re.compile(
    r"/downloads/(?P<token>[A-Za-z0-9_-]+)/part-(?P<number>\d+)\.csv\.gz"
)


def make_tokens(given: Mapping[str, str] | None = None) -> dict[str, str]:
    """One token per kind, random unless given; personal tokens look like new-format ones."""
    unknown = set(given or {}) - set(TOKEN_KINDS)
    if unknown:
        raise ValueError(f"unknown token kinds {sorted(unknown)}; known: {', '.join(TOKEN_KINDS)}")

    def personal() -> str:
        return f"CCIPAT_{secrets.token_urlsafe(16)}_{secrets.token_hex(20)}"

    tokens = {
        "admin": personal(),
        "non_admin": personal(),
        "expired": personal(),
        "project": f"CCIPRJ_{secrets.token_urlsafe(16)}_{secrets.token_hex(20)}",
        "old_format": secrets.token_hex(20),  # 40 hex digits, the pre-2023 shape
    }
    tokens.update(given or {})
    if len(set(tokens.values())) != len(tokens):
        raise ValueError("every token kind needs its own value")
    return tokens


@dataclass(frozen=True)
class User:
    """A CircleCI user behind a personal token, with its rights per organization.

    `member_of` and `admin_of` hold lower-case organization ids; an admin is also a member.
    """

    id: str
    login: str
    name: str
    avatar_url: str | None
    member_of: frozenset[str]
    admin_of: frozenset[str]

    def __post_init__(self) -> None:
        if not self.admin_of <= self.member_of:
            raise ValueError(f"user {self.login} is admin of organizations it is no member of")

    def is_member_of(self, org: Organization) -> bool:
        return org.id.lower() in self.member_of

    def is_admin_of(self, org: Organization) -> bool:
        return org.id.lower() in self.admin_of

    def as_dict(self) -> dict[str, str | None]:
        return {
            "id": self.id,
            "login": self.login,
            "name": self.name,
            "avatar_url": self.avatar_url,
        }


def _org_ids(organizations: Sequence[Organization]) -> frozenset[str]:
    return frozenset(org.id.lower() for org in organizations)


def make_users(seed: int, organizations: Sequence[Organization]) -> dict[str, User]:
    """The users behind the generic tokens: `admin` is admin of every organization (tests
    use its one token for any of them), `non_admin` a member of every one and admin of none."""
    every = _org_ids(organizations)

    def user(login: str, name: str, admin_of: frozenset[str]) -> User:
        avatar = f"https://avatars.githubusercontent.com/{login}"
        return User(seeded_uuid(seed, "user", login), login, name, avatar, every, admin_of)

    return {
        "admin": user("ada-admin", "Ada Admin", admin_of=every),
        "non_admin": user("nico-member", "Nico Member", admin_of=frozenset()),
    }


def make_org_admin_tokens(
    organizations: Sequence[Organization], given: Mapping[str, str] | None = None
) -> dict[str, str]:
    """One admin-bot token per organization id, random unless given.

    Each token is its organization's alone: see `make_bot_users`.
    """
    tokens = {
        org.id: f"CCIPAT_{secrets.token_urlsafe(16)}_{secrets.token_hex(20)}"
        for org in organizations
    }
    # A given id matches its organization whatever its case, and is keyed by the served id.
    served_ids = {org.id.lower(): org.id for org in organizations}
    for org_id, token in (given or {}).items():
        tokens[served_ids.get(org_id.lower(), org_id.lower())] = token
    return tokens


def make_bot_users(seed: int, organizations: Sequence[Organization]) -> dict[str, User]:
    """The admin bots behind the per-organization tokens (kind `bot:<org id>`).

    A bot is admin of its own organization and member of no other, as a real admin of one
    organization is: another organization's usage export refuses its token (404).
    """
    return {
        f"bot:{org.id}": User(
            seeded_uuid(seed, "bot", org.id),
            f"{org.name}-cost-bot",
            f"{org.name} cost bot",
            None,
            member_of=_org_ids([org]),
            admin_of=_org_ids([org]),
        )
        for org in organizations
    }


@dataclass(frozen=True)
class Settings:
    job_delay: float = 0.0  # seconds of emulator clock from created to completed
    link_ttl: float = 600.0  # seconds of emulator clock a download link stays valid
    rows_per_part: int = 150


@dataclass
class ExportJob:
    id: str
    org_id: str
    window: ExportWindow
    created_at: datetime
    delay: float
    error_reason: str | None = None
    parts: list[ExportPart] | None = None

    def state_at(self, now: datetime) -> str:
        """created for the first half of the delay, processing for the second, then done."""
        elapsed = (now - self.created_at).total_seconds()
        if elapsed >= self.delay:
            return "failed" if self.error_reason else "completed"
        return "created" if elapsed < self.delay / 2 else "processing"


@dataclass
class DownloadLink:
    token: str
    job_id: str
    expires_at: datetime
    revoked: bool = False


@dataclass(frozen=True)
class _Route:
    kind: str
    method: str  # the one method this path answers
    org: str | None = None
    job: str | None = None


_API_ROUTES: Final = (
    (re.compile(r"/me"), "GET", ME),
    (re.compile(r"/me/collaborations"), "GET", COLLABORATIONS),
    (re.compile(r"/organization/(?P<org>.+)"), "GET", ORGANIZATION),
    (re.compile(r"/organizations/(?P<org>[^/]+)/usage_export_job"), "POST", USAGE_EXPORT_CREATE),
    (
        re.compile(r"/organizations/(?P<org>[^/]+)/usage_export_job/(?P<job>[^/]+)"),
        "GET",
        USAGE_EXPORT_GET,
    ),
)


def _match_route(api_path: str) -> _Route:
    for pattern, method, kind in _API_ROUTES:
        match = pattern.fullmatch(api_path)
        if match:
            return _Route(kind, method, match.groupdict().get("org"), match.groupdict().get("job"))
    return _Route(UNKNOWN, "")


_Handler = Callable[[User, _Route, HttpRequest, datetime], Response]


class EmulatorState:
    """The emulated API. Thread-safe: handler threads of the HTTP server call `api`/`download`."""

    def __init__(
        self,
        *,
        source: UsageSource,
        organizations: list[Organization],
        tokens: Mapping[str, str],
        users: Mapping[str, User],
        settings: Settings,
        quota: QuotaTracker,
        clock: EmulatorClock,
        faults: Faults,
        log: RequestLog,
    ) -> None:
        self.source = source
        self.organizations = organizations
        self._organizations_by_id = {o.id.lower(): o for o in organizations}
        self.settings = settings
        self.quota = quota
        self.clock = clock
        self.faults = faults
        self.log = log
        self.public_base = ""  # http://host:port, known once the server has bound its socket
        self._token_kinds = {value: kind for kind, value in tokens.items()}
        self._users = dict(users)
        self._lock = threading.Lock()
        self._jobs: dict[str, ExportJob] = {}
        self._links: dict[str, DownloadLink] = {}
        self._handlers: dict[str, _Handler] = {
            ME: self._me,
            COLLABORATIONS: self._collaborations,
            ORGANIZATION: self._organization,
            USAGE_EXPORT_CREATE: self._usage,
            USAGE_EXPORT_GET: self._usage,
        }

    def revoke_token(self, token: str) -> None:
        with self._lock:
            self._token_kinds.pop(token, None)

    # -- lookups ------------------------------------------------------------------------------

    def find_organization(self, id_or_slug: str) -> Organization | None:
        wanted = id_or_slug.lower()
        return next(
            (o for o in self.organizations if wanted in (o.id.lower(), o.slug.lower())), None
        )

    # -- API ----------------------------------------------------------------------------------

    def api(self, request: HttpRequest) -> Response:
        now = self.clock.now()
        route = _match_route(unquote(request.path[len(API_PREFIX) :]).rstrip("/"))
        response = self._api_response(request, route, now)
        response.delay = self.faults.slow_seconds
        org = self.find_organization(route.org) if route.org else None
        org_id = org.id if org else route.org
        self._record(now, request, route.kind, org_id, response.status)
        return response

    def _record(
        self, now: datetime, request: HttpRequest, kind: str, org_id: str | None, status: int
    ) -> None:
        record = RequestRecord(
            now, request.method, kind, org_id, status, request.path, request.carries_token
        )
        self.log.add(record)

    def _api_response(self, request: HttpRequest, route: _Route, now: datetime) -> Response:
        status = self.faults.take_server_error()
        if status is not None:
            return error_response(status, _SERVER_ERROR_MESSAGES[status])
        if self.faults.take("rate_limit_storm"):
            retry_after = str(self.faults.storm_retry_after)
            return error_response(429, RATE_LIMITED, {"Retry-After": retry_after})
        if route.kind == UNKNOWN:
            return error_response(404, "Not found.")
        if request.method != route.method:
            return error_response(405, "Method not allowed.")
        caller = self._authenticate(request)
        if isinstance(caller, Response):
            return caller
        return self._handlers[route.kind](caller, route, request, now)

    def _authenticate(self, request: HttpRequest) -> User | Response:
        if "circle-token" in request.query:
            return error_response(401, QUERY_TOKEN_MESSAGE)
        token = request.circle_token
        if token is None and request.authorization:
            scheme, _, credentials = request.authorization.partition(" ")
            token = credentials.strip() if scheme.lower() == "bearer" else None
        if not token:
            return error_response(401, "You must log in first.")
        kind = self._token_kinds.get(token)
        if kind == "old_format":
            return error_response(401, OLD_TOKEN_MESSAGE)
        user = self._users.get(kind or "")
        # Expired, project and unknown tokens all get the same answer, as on CircleCI.
        return user if user is not None else error_response(401, INVALID_TOKEN)

    def _me(self, caller: User, _route: _Route, _request: HttpRequest, _now: datetime) -> Response:
        return json_response(200, caller.as_dict())

    def _collaborations(
        self, caller: User, _route: _Route, _request: HttpRequest, _now: datetime
    ) -> Response:
        # Membership, not admin rights: the non-admin user sees every organization too, while
        # an organization's admin bot sees its own organization alone.
        payload = [
            {
                "id": o.id,
                "vcs-type": o.vcs_type,
                "name": o.name,
                "avatar_url": f"https://avatars.githubusercontent.com/{o.name}",
                "slug": o.slug,
            }
            for o in self.organizations
            if caller.is_member_of(o)
        ]
        return json_response(200, payload)

    def _organization(
        self, _caller: User, route: _Route, _request: HttpRequest, _now: datetime
    ) -> Response:
        org = self.find_organization(route.org or "")
        if org is None:
            return error_response(404, ORG_NOT_FOUND)
        payload = {"id": org.id, "name": org.name, "slug": org.slug, "vcs_type": org.vcs_type}
        return json_response(200, payload)

    # -- usage export -------------------------------------------------------------------------

    def _usage(self, caller: User, route: _Route, request: HttpRequest, now: datetime) -> Response:
        org = self._organizations_by_id.get((route.org or "").lower())
        if org is None:
            return error_response(404, ORG_NOT_FOUND)
        decision = self.quota.acquire(org.id, request.method, now)
        if not decision.allowed:
            return error_response(429, RATE_LIMITED, decision.headers())
        if not caller.is_admin_of(org):
            response = error_response(404, ORG_NOT_FOUND)
        elif route.kind == USAGE_EXPORT_CREATE:
            response = self._create_job(org, request.body, now)
        else:
            response = self._poll_job(org, route.job or "", now)
        response.headers.update(decision.headers())
        return response

    def _create_job(self, org: Organization, body: bytes, now: datetime) -> Response:
        try:
            window = parse_export_request(body, now)
        except WindowError as err:
            return error_response(400, str(err))
        reason = FAILED_JOB_REASON if self.faults.take("fail_jobs") else None
        job = ExportJob(str(uuid.uuid4()), org.id, window, now, self.settings.job_delay, reason)
        with self._lock:
            self._jobs[job.id] = job
        payload = {
            "usage_export_job_id": job.id,
            "state": "created",
            "start": rfc3339(window.start),
            "end": rfc3339(window.end),
            "download_urls": None,
        }
        return json_response(201, payload)

    def _poll_job(self, org: Organization, job_id: str, now: datetime) -> Response:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.org_id != org.id:
            return error_response(404, JOB_NOT_FOUND)
        state = job.state_at(now)
        payload: dict[str, object] = {
            "usage_export_job_id": job.id,
            "state": state,
            "download_urls": None,
        }
        if state == "failed":
            payload["error_reason"] = job.error_reason
        elif state == "completed" and not self.faults.take("null_urls_polls"):
            payload["download_urls"] = self._issue_links(job, now)
        return json_response(200, payload)

    def _parts_of(self, job: ExportJob) -> list[ExportPart]:
        """Build a job's files once, on its first completed poll, and keep them."""
        if job.parts is None:
            org_ids = list(dict.fromkeys((job.org_id, *job.window.shared_org_ids)))
            parts = self.source.export_parts(
                org_ids, job.window.start, job.window.end, self.settings.rows_per_part
            )
            with self._lock:
                if job.parts is None:
                    job.parts = parts
        assert job.parts is not None
        return job.parts

    def _issue_links(self, job: ExportJob, now: datetime) -> list[str]:
        """Every completed poll signs fresh links, as pre-signed S3 URLs are."""
        parts = self._parts_of(job)
        expires = now + timedelta(seconds=self.settings.link_ttl)
        link = DownloadLink(secrets.token_urlsafe(24), job.id, expires)
        with self._lock:
            self._links[link.token] = link
        base = f"{self.public_base}/downloads/{link.token}"
        return [f"{base}/part-{n}.csv.gz" for n in range(1, len(parts) + 1)]

    # -- downloads ----------------------------------------------------------------------------

    def download(self, request: HttpRequest) -> Response:
        now = self.clock.now()
        response, org_id = self._download_response(request, now)
        response.delay = self.faults.slow_seconds
        self._record(now, request, DOWNLOAD, org_id, response.status)
        return response

    def _download_response(
        self, request: HttpRequest, now: datetime
    ) -> tuple[Response, str | None]:
        if request.method != "GET":
            return s3_error(405, "MethodNotAllowed", "The specified method is not allowed."), None
        if request.authorization is not None:
            # S3 refuses a pre-signed URL that also carries an Authorization header.
            message = "Only one auth mechanism allowed; the URL is already signed."
            return s3_error(400, "InvalidArgument", message), None
        match = _DOWNLOAD_PATH.fullmatch(request.path)
        if match is None:
            return s3_error(404, "NoSuchKey", "The specified key does not exist."), None
        if self.faults.take("expire_links_now"):
            self.revoke_links()
        with self._lock:
            link = self._links.get(match["token"])
            job = self._jobs.get(link.job_id) if link else None
        if link is None or job is None or job.parts is None:
            return s3_error(403, "AccessDenied", "Access Denied"), None
        if link.revoked or now >= link.expires_at:
            return s3_error(403, "AccessDenied", "Request has expired", link.expires_at), job.org_id
        number = int(match["number"])
        if not 1 <= number <= len(job.parts):
            return s3_error(404, "NoSuchKey", "The specified key does not exist."), job.org_id
        payload = part_payload(job.parts[number - 1], self.faults)
        return Response(200, payload, "application/gzip"), job.org_id

    def revoke_links(self) -> None:
        """Make every link issued so far answer 403 (the `expire_links_now` fault)."""
        with self._lock:
            for link in self._links.values():
                link.revoked = True
