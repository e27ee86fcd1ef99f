"""CircleCI API v2 client: identity look-ups, usage export jobs and part downloads.

The facts this module relies on are in the shared "CircleCI API v2" notes. Three rules shape it:

- The token is a secret. It stays in a `SecretStr`, goes out only in the `Circle-Token` header of
  API requests (never to download links), and is scrubbed from every message this module builds,
  including the text of transport exceptions, which may quote request headers.
- Only safe calls are retried. GETs are idempotent; the usage-export POST creates a job and spends
  a scarce hourly quota, so it is retried only when the request surely never left this machine.
- Nothing happens at import time. Pulumi pickles providers into state, so callers create a client
  inside each provider method and close it there; pickling a client is refused outright.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Final, Literal, NoReturn, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from circlecost.errors import CirclecostError
from circlecost.retry import (
    DEFAULT_RETRY_POLICY,
    RateLimitInfo,
    RetryPolicy,
    parse_rate_limit_headers,
    parse_retry_after,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_RETRY_POLICY",
    "DEFAULT_TIMEOUT",
    "AccessDeniedError",
    "BadRequestError",
    "CircleCIClient",
    "CircleCIConnectionError",
    "CircleCIError",
    "CircleCIStatusError",
    "CircleCITimeoutError",
    "CircleCITransportError",
    "Collaboration",
    "DownloadLinkExpiredError",
    "InvalidTokenError",
    "NotFoundError",
    "NotGzipError",
    "Organization",
    "RateLimitInfo",
    "RateLimitedError",
    "RetryPolicy",
    "ServerError",
    "UnexpectedResponseError",
    "UnsafeDownloadURLError",
    "UsageExportJob",
    "UsageExportState",
    "User",
    "check_base_url",
    "parse_rate_limit_headers",
    "parse_retry_after",
]

logger = logging.getLogger("circlecost.circleci")

DEFAULT_BASE_URL: Final = "https://circleci.com/api/v2"
# The read timeout bounds the silence between two chunks, not a whole download, so it also
# suits parts of a few hundred MB.
DEFAULT_TIMEOUT: Final = httpx.Timeout(connect=10.0, read=60.0, write=30.0, pool=10.0)

GZIP_MAGIC: Final = b"\x1f\x8b"
REDACTED: Final = "[redacted]"
_MAX_SHOWN_BODY_CHARS: Final = 200

_T = TypeVar("_T")


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class CircleCIError(CirclecostError):
    """Base of every error this client raises; its message already says what to do."""


class CircleCIStatusError(CircleCIError):
    """CircleCI (or a download host) answered with an error status.

    The httpx response is deliberately not kept: its request still holds the token header.
    """

    default_hint: ClassVar[str] = "Check the request; retry later if the problem persists."

    def __init__(
        self,
        *,
        status_code: int,
        method: str,
        path: str,
        circleci_message: str,
        hint: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.method = method
        self.path = path
        self.circleci_message = circleci_message
        said = f": {circleci_message.rstrip('.')}" if circleci_message else ""
        super().__init__(
            f"CircleCI {method} {path} failed with HTTP {status_code}{said}",
            hint=hint or self.default_hint,
        )

    def __str__(self) -> str:
        # The hint is a sentence of its own (and logs have always read it so).
        return f"{self.message}. {self.hint}"


class BadRequestError(CircleCIStatusError):
    default_hint = (
        "CircleCI rejected the request body; for a usage export check that the window is at most "
        "31 days, starts no more than a year ago and does not end in the future."
    )


class InvalidTokenError(CircleCIStatusError):
    default_hint = (
        "The CircleCI token is invalid, expired, or not a personal API token (project tokens and "
        "tokens made before 2023-06-23 do not work on API v2); create a new personal API token."
    )


class AccessDeniedError(CircleCIStatusError):
    default_hint = (
        "The token's user lacks access to this resource; use a token of a user who has it."
    )


class NotFoundError(CircleCIStatusError):
    default_hint = "Nothing exists at this id or slug; check it for typos."


class RateLimitedError(CircleCIStatusError):
    """HTTP 429. `retry_after` is in seconds when CircleCI said how long to wait."""

    default_hint = (
        "CircleCI's rate limit was hit (usage exports allow 10 calls per hour); retry later."
    )

    def __init__(
        self,
        *,
        retry_after: float | None,
        rate_limit: RateLimitInfo | None,
        status_code: int,
        method: str,
        path: str,
        circleci_message: str,
        hint: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        self.rate_limit = rate_limit
        if hint is None:
            wait = "retry later" if retry_after is None else f"retry in {math.ceil(retry_after)} s"
            hint = f"CircleCI's rate limit was hit (usage exports allow 10 calls per hour); {wait}."
        super().__init__(
            status_code=status_code,
            method=method,
            path=path,
            circleci_message=circleci_message,
            hint=hint,
        )


class ServerError(CircleCIStatusError):
    default_hint = "CircleCI had a server error; retry later and check https://status.circleci.com."


class DownloadLinkExpiredError(CircleCIStatusError):
    default_hint = (
        "The pre-signed download link has expired; GET the usage export job for fresh links."
    )


class CircleCITransportError(CircleCIError):
    """The request failed below HTTP. `request_never_sent` is True only when that is certain."""

    def __init__(self, message: str, *, method: str, path: str, request_never_sent: bool) -> None:
        self.method = method
        self.path = path
        self.request_never_sent = request_never_sent
        super().__init__(message)


class CircleCIConnectionError(CircleCITransportError):
    pass


class CircleCITimeoutError(CircleCITransportError):
    pass


class UnexpectedResponseError(CircleCIError):
    """A success response whose body does not have the documented shape."""


class UnsafeDownloadURLError(CircleCIError):
    """A download link that is not https to a public host.

    Loopback links are allowed when the client has `allow_insecure_loopback_downloads`.
    """


class NotGzipError(CircleCIError):
    """A downloaded usage export part that does not start with the gzip magic bytes."""


_ERROR_BY_STATUS: Final[dict[int, type[CircleCIStatusError]]] = {
    400: BadRequestError,
    401: InvalidTokenError,
    403: AccessDeniedError,
    404: NotFoundError,
    429: RateLimitedError,
}

# These exceptions are raised before any byte of the request is written.
_NEVER_SENT_ERRORS: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


# ---------------------------------------------------------------------------------------------
# Response models
# ---------------------------------------------------------------------------------------------


class _ResponseModel(BaseModel):
    # CircleCI adds fields without notice; unknown ones must not break an import.
    model_config = ConfigDict(extra="ignore", frozen=True)


class User(_ResponseModel):
    id: str
    login: str
    name: str
    avatar_url: str | None = None


class Collaboration(_ResponseModel):
    id: str | None = None
    # /me/collaborations spells it "vcs-type"; accept the underscore too in case that is fixed.
    vcs_type: str = Field(validation_alias=AliasChoices("vcs-type", "vcs_type"))
    name: str
    avatar_url: str | None = None
    slug: str


class Organization(_ResponseModel):
    id: str
    name: str
    slug: str
    vcs_type: str


UsageExportState = Literal["created", "processing", "completed", "failed"]


class UsageExportJob(_ResponseModel):
    usage_export_job_id: str
    state: UsageExportState
    start: datetime | None = None
    end: datetime | None = None
    download_urls: list[str] = Field(default_factory=list)
    error_reason: str | None = None

    @field_validator("download_urls", mode="before")
    @classmethod
    def _null_means_no_urls_yet(cls, value: object) -> object:
        return [] if value is None else value


# Built once so every response is validated against the same compiled schema.
_USER: Final = TypeAdapter(User)
_COLLABORATIONS: Final = TypeAdapter(list[Collaboration])
_ORGANIZATION: Final = TypeAdapter(Organization)
_USAGE_EXPORT_JOB: Final = TypeAdapter(UsageExportJob)


# ---------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------


class CircleCIClient:
    """A synchronous CircleCI API v2 client. Use it as a context manager, or call `close()`."""

    def __init__(
        self,
        token: str | SecretStr,
        *,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        sleep: Callable[[float], None] = time.sleep,
        allow_insecure_loopback_downloads: bool = False,
    ) -> None:
        self._token = _checked_token(token)
        self._retry = retry
        self._sleep = sleep
        self._allow_insecure_loopback_downloads = allow_insecure_loopback_downloads
        self.last_rate_limit: RateLimitInfo | None = None
        self._http = httpx.Client(
            base_url=_checked_base_url(base_url),
            transport=transport,
            timeout=timeout,
            # A redirect could carry the token to another host; CircleCI's API does not redirect.
            follow_redirects=False,
            headers={"User-Agent": "circlecost"},
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"CircleCIClient(base_url={str(self._http.base_url)!r})"

    def __getstate__(self) -> NoReturn:
        # Pickling would write the token into Pulumi state; providers must build clients per call.
        raise TypeError("CircleCIClient cannot be pickled; create one where it is used")

    # --- identity and organizations ----------------------------------------------------------

    def get_current_user(self) -> User:
        response = self._api_call("GET", "/me")
        return _parse(_USER, response, "GET", "/me")

    def list_collaborations(self) -> list[Collaboration]:
        response = self._api_call("GET", "/me/collaborations")
        return _parse(_COLLABORATIONS, response, "GET", "/me/collaborations")

    def get_organization(self, org_id_or_slug: str) -> Organization:
        """Look up an organization by id or by slug such as 'gh/acme'."""
        path = f"/organization/{_path_segment(org_id_or_slug, allow_slash=True)}"
        return _parse(_ORGANIZATION, self._api_call("GET", path), "GET", path)

    # --- usage export ----------------------------------------------------------------------

    def create_usage_export_job(
        self,
        org_id: str,
        start: datetime,
        end: datetime,
        shared_org_ids: Sequence[str] = (),
    ) -> UsageExportJob:
        """Start a usage export for [start, end] (both inclusive, timezone-aware datetimes).

        Each call spends one of the organization's 10 POSTs per hour, so it is never retried
        unless the request surely did not reach CircleCI.
        """
        path = f"/organizations/{_path_segment(org_id)}/usage_export_job"
        body = {
            "start": _rfc3339_utc(start, "start"),
            "end": _rfc3339_utc(end, "end"),
            "shared_org_ids": list(shared_org_ids),
        }
        response = self._api_call("POST", path, body=body, usage_export_org_id=org_id)
        return _parse(_USAGE_EXPORT_JOB, response, "POST", path)

    def get_usage_export_job(self, org_id: str, job_id: str) -> UsageExportJob:
        path = f"/organizations/{_path_segment(org_id)}/usage_export_job/{_path_segment(job_id)}"
        response = self._api_call("GET", path, usage_export_org_id=org_id, job_id=job_id)
        return _parse(_USAGE_EXPORT_JOB, response, "GET", path)

    def download_usage_export_part(self, url: str, destination: Path | str) -> int:
        """Stream one gzip part from a pre-signed link to `destination`; return the bytes written.

        The part lands in `<destination>.partial` first and is renamed when complete, so a failed
        download never leaves a truncated file under the final name.
        """
        checked_url = self._checked_download_url(url)
        shown = _without_query(checked_url)
        target = Path(destination)
        return self._with_retries(
            lambda: self._download_once(checked_url, shown, target), idempotent=True
        )

    # --- requests ------------------------------------------------------------------------------

    def _api_call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        usage_export_org_id: str | None = None,
        job_id: str | None = None,
    ) -> httpx.Response:
        def attempt() -> httpx.Response:
            request = self._http.build_request(
                method, path, json=body, headers={"Circle-Token": self._token.get_secret_value()}
            )
            response = self._send(request, method, path, stream=False)
            self.last_rate_limit = parse_rate_limit_headers(response.headers)
            if response.is_success:
                return response
            raise self._status_error(response, method, path, usage_export_org_id, job_id)

        return self._with_retries(attempt, idempotent=method == "GET")

    def _download_once(self, url: httpx.URL, shown: str, destination: Path) -> int:
        # The part is already gzip; "identity" keeps the host from compressing it again.
        request = self._http.build_request("GET", url, headers={"Accept-Encoding": "identity"})
        response = self._send(request, "GET", shown, stream=True)
        try:
            if not response.is_success:
                raise self._download_status_error(response, shown)
            with self._transport_errors_wrapped("GET", shown):
                return _write_gzip_part(response.iter_raw(), destination, shown)
        finally:
            response.close()

    def _send(
        self, request: httpx.Request, method: str, path: str, *, stream: bool
    ) -> httpx.Response:
        with self._transport_errors_wrapped(method, path):
            response = self._http.send(request, stream=stream)
        logger.debug("CircleCI %s %s -> %d", method, path, response.status_code)
        return response

    @contextmanager
    def _transport_errors_wrapped(self, method: str, path: str) -> Iterator[None]:
        """The one place where httpx transport errors become CircleCI errors."""
        try:
            yield
        except httpx.TransportError as err:
            raise self._transport_error(err, method, path) from err

    def _transport_error(
        self, err: httpx.TransportError, method: str, path: str
    ) -> CircleCITransportError:
        # The original exception stays attached as __cause__, so its text is scrubbed in place.
        err.args = tuple(self._redact(str(arg)) for arg in err.args)
        never_sent = isinstance(err, _NEVER_SENT_ERRORS)
        timed_out = isinstance(err, httpx.TimeoutException)
        what = "timed out" if timed_out else "hit a network error"
        when = "before it was sent" if never_sent else "after it may have been sent"
        message = (
            f"CircleCI {method} {path} {what} {when} ({type(err).__name__}: {err}). "
            "Check the network, proxy and base URL, then retry."
        )
        logger.debug("CircleCI %s %s failed: %s", method, path, type(err).__name__)
        error_class = CircleCITimeoutError if timed_out else CircleCIConnectionError
        return error_class(message, method=method, path=path, request_never_sent=never_sent)

    def _status_error(
        self,
        response: httpx.Response,
        method: str,
        path: str,
        usage_export_org_id: str | None,
        job_id: str | None,
    ) -> CircleCIStatusError:
        status = response.status_code
        hint = None
        error_class = ServerError if status >= 500 else _ERROR_BY_STATUS.get(status)
        if usage_export_org_id is not None and status in (403, 404):
            # CircleCI's answer to a non-admin is not documented as 403 or 404, so both mean this.
            error_class = AccessDeniedError
            hint = _not_admin_hint(usage_export_org_id, job_id)
        return _status_error_from(
            error_class or CircleCIStatusError,
            response,
            method,
            path,
            hint=hint,
            circleci_message=self._redact(_circleci_message(response)),
        )

    def _download_status_error(self, response: httpx.Response, shown: str) -> CircleCIStatusError:
        status = response.status_code
        if status == 403:
            error_class: type[CircleCIStatusError] = DownloadLinkExpiredError
        elif status >= 500:
            error_class = ServerError
        elif status == 429:
            error_class = RateLimitedError
        else:
            error_class = CircleCIStatusError
        hint = (
            None
            if error_class is not CircleCIStatusError
            else DownloadLinkExpiredError.default_hint
        )
        # The body is the storage host's XML, not a CircleCI message; it is not worth reading.
        return _status_error_from(
            error_class, response, "GET", shown, hint=hint, circleci_message=""
        )

    # --- retries -------------------------------------------------------------------------------

    def _with_retries(self, attempt: Callable[[], _T], *, idempotent: bool) -> _T:
        for attempt_number in range(1, self._retry.max_attempts + 1):
            try:
                return attempt()
            except (CircleCIStatusError, CircleCITransportError) as error:
                delay = self._retry_delay(error, attempt_number, idempotent=idempotent)
                if delay is None:
                    raise
                logger.debug(
                    "CircleCI %s %s: %s, retrying in %.2f s (attempt %d of %d)",
                    error.method,
                    error.path,
                    type(error).__name__,
                    delay,
                    attempt_number + 1,
                    self._retry.max_attempts,
                )
                self._sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _retry_delay(
        self, error: CircleCIError, attempt_number: int, *, idempotent: bool
    ) -> float | None:
        """Seconds to wait before trying again, or None when the error must be raised."""
        if attempt_number >= self._retry.max_attempts:
            return None
        backoff = self._retry.backoff_delay(attempt_number, random.random())
        if isinstance(error, CircleCITransportError):
            return backoff if idempotent or error.request_never_sent else None
        if not idempotent:
            return None
        if isinstance(error, RateLimitedError):
            if error.retry_after is None:
                return backoff
            return error.retry_after if error.retry_after <= self._retry.max_retry_after else None
        return backoff if isinstance(error, ServerError) else None

    # --- secrets and URLs ------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        # The second place the token is unwrapped: it has to be known to be removed.
        return text.replace(self._token.get_secret_value(), REDACTED)

    def _checked_download_url(self, url: str) -> httpx.URL:
        shown = url.split("?", 1)[0]
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            # The parser's message would repeat the link's signature, so it is not chained.
            raise UnsafeDownloadURLError(
                f"Refusing download link {shown}: not a valid URL."
            ) from None
        reason = _download_url_problem(parsed, self._allow_insecure_loopback_downloads)
        if reason is not None:
            raise UnsafeDownloadURLError(
                f"Refusing download link {_without_query(parsed)}: {reason}. Usage export links "
                "must be https to a public host; GET the job again, and report the link if it "
                "persists."
            )
        return parsed


# ---------------------------------------------------------------------------------------------
# Helpers without state
# ---------------------------------------------------------------------------------------------


def _checked_token(token: str | SecretStr) -> SecretStr:
    # Tokens are often pasted with a trailing newline; anything else odd would break the header.
    raw = (token.get_secret_value() if isinstance(token, SecretStr) else token).strip()
    if not raw or not raw.isascii() or not raw.isprintable() or " " in raw:
        raise ValueError(
            "The CircleCI token is empty or contains spaces, control or non-ASCII characters."
        )
    return SecretStr(raw)


def check_base_url(base_url: str) -> str:
    """The API base URL if the token may travel to it; else ValueError saying why not."""
    return str(_checked_base_url(base_url))


def _checked_base_url(base_url: str) -> httpx.URL:
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL:
        raise ValueError(f"base_url {base_url.split('?', 1)[0]!r} is not a valid URL") from None
    if url.host and (
        url.scheme == "https" or (url.scheme == "http" and _is_loopback_host(url.host))
    ):
        return url
    raise ValueError(
        f"base_url {_without_query(url) or repr(base_url)} must be https with a host (plain http "
        "only to a loopback emulator), since the token travels in every request."
    )


def _path_segment(value: str, *, allow_slash: bool = False) -> str:
    # Ids come from configuration; "../" must not steer an admin token to another endpoint.
    parts = value.split("/") if allow_slash else [value]
    if any(part in ("", ".", "..") for part in parts) or (not allow_slash and "/" in value):
        raise ValueError(f"{value!r} is not a valid CircleCI id")
    return quote(value, safe="/" if allow_slash else "")


def _rfc3339_utc(moment: datetime, name: str) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"{name} must be a timezone-aware datetime, got naive {moment.isoformat()}"
        )
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status_error_from(
    error_class: type[CircleCIStatusError],
    response: httpx.Response,
    method: str,
    path: str,
    *,
    hint: str | None,
    circleci_message: str,
) -> CircleCIStatusError:
    if issubclass(error_class, RateLimitedError):
        return RateLimitedError(
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            rate_limit=parse_rate_limit_headers(response.headers),
            status_code=response.status_code,
            method=method,
            path=path,
            circleci_message=circleci_message,
            hint=hint,
        )
    return error_class(
        status_code=response.status_code,
        method=method,
        path=path,
        circleci_message=circleci_message,
        hint=hint,
    )


def _circleci_message(response: httpx.Response) -> str:
    """CircleCI's `{"message": ...}`, else the start of the raw body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    text = response.text.strip()
    if len(text) > _MAX_SHOWN_BODY_CHARS:
        return text[:_MAX_SHOWN_BODY_CHARS] + "..."
    return text


def _not_admin_hint(org_id: str, job_id: str | None) -> str:
    job = f" (or usage export job {job_id} does not exist)" if job_id else ""
    return (
        f"The token's user is not an admin of organization {org_id}, or the organization id is "
        f"wrong{job}. Use a token of an organization admin and check the id under Organization "
        "Settings > Overview."
    )


def _parse(adapter: TypeAdapter[_T], response: httpx.Response, method: str, path: str) -> _T:
    try:
        return adapter.validate_json(response.content)
    except ValidationError as err:
        # Only the locations: the values may include pre-signed links.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in err.errors()
        )
        raise UnexpectedResponseError(
            f"CircleCI {method} {path} returned an unexpected body ({problems}). The API may have "
            "changed; report this with the circlecost version."
        ) from None


def _without_query(url: httpx.URL) -> str:
    # Pre-signed links carry their signature in the query string; it must not reach any message.
    return str(url.copy_with(query=None, fragment=None))


def _is_loopback_host(host: str) -> bool:
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    address = _ip_address(host)
    return address is not None and address.is_loopback


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _download_url_problem(url: httpx.URL, allow_insecure_loopback: bool) -> str | None:
    """Why this download link must not be fetched, or None if it is fine."""
    if _is_loopback_host(url.host):
        if allow_insecure_loopback and url.scheme in ("http", "https"):
            return None
        return "it points at this machine (loopback)"
    if url.scheme != "https":
        return f"the scheme is {url.scheme or 'missing'}, not https"
    address = _ip_address(url.host)
    if address is not None and (not address.is_global or address.is_multicast):
        return "it points at a private, link-local or reserved address"
    last_label = url.host.rstrip(".").rsplit(".", 1)[-1].lower()
    if address is None and (last_label.isdigit() or last_label.startswith("0x")):
        # Resolvers read "2130706433" or "0x7f.1" as IPv4 addresses that the check above missed.
        return "its host is a numeric address in an unusual notation"
    return None


def _write_gzip_part(chunks: Iterator[bytes], destination: Path, shown_url: str) -> int:
    partial = destination.with_name(destination.name + ".partial")
    try:
        with partial.open("wb") as out:
            written = _copy_checking_gzip_magic(chunks, out.write, shown_url)
        partial.replace(destination)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    logger.debug("CircleCI downloaded %d bytes from %s", written, shown_url)
    return written


def _copy_checking_gzip_magic(
    chunks: Iterator[bytes], write: Callable[[bytes], object], shown_url: str
) -> int:
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(GZIP_MAGIC):
            break
    if not head.startswith(GZIP_MAGIC):
        raise NotGzipError(
            f"The usage export part at {shown_url} is not gzip (it starts with {head[:8]!r}). "
            "Do not import it; GET the job again and report the part if it persists."
        )
    write(head)
    written = len(head)
    for chunk in chunks:
        write(chunk)
        written += len(chunk)
    return written
