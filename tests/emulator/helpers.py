"""What the emulator tests share: the seed, clock and window, driving an export job and reading
its parts."""

import functools
import gzip
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from circlecost.usage_columns import COLUMN_NAMES
from circlecost_emulator import Emulator
from circlecost_emulator.dialect import UsageRow, header_names, iter_records, typed_row

SEED = 7
# Early November 2026: October is complete, within the last year, and not in the future.
NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
OCTOBER = {"start": "2026-10-01T00:00:00Z", "end": "2026-10-31T23:59:59Z"}


@functools.cache
def _tls() -> ssl.SSLContext:
    # One context for all clients: building one per client costs ~30 ms of certificate
    # loading, and plain HTTP on loopback never uses it.
    return ssl.create_default_context()


def api_client(emulator: Emulator, token_kind: str = "admin") -> httpx.Client:
    """An API client that sends the token of the given kind."""
    headers = {"Circle-Token": emulator.tokens[token_kind]}
    return httpx.Client(base_url=emulator.base_url, headers=headers, timeout=10, verify=_tls())


def org_admin_client(emulator: Emulator, org_id: str) -> httpx.Client:
    """An API client with the admin-bot token of `org_id`, admin of that organization only."""
    headers = {"Circle-Token": emulator.org_admin_tokens[org_id]}
    return httpx.Client(base_url=emulator.base_url, headers=headers, timeout=10, verify=_tls())


def plain_client() -> httpx.Client:
    """A client without a token, as downloads and admin endpoints are called."""
    return httpx.Client(timeout=10, verify=_tls())


def create_job(client: httpx.Client, org_id: str, window: Mapping[str, object]) -> str:
    response = client.post(f"/organizations/{org_id}/usage_export_job", json=window)
    assert response.status_code == 201, response.text
    job_id = response.json()["usage_export_job_id"]
    assert isinstance(job_id, str)
    return job_id


def poll(client: httpx.Client, org_id: str, job_id: str) -> httpx.Response:
    return client.get(f"/organizations/{org_id}/usage_export_job/{job_id}")


def download_urls(client: httpx.Client, org_id: str, window: Mapping[str, object]) -> list[str]:
    """Create a job and poll it once (the emulator under test has no job delay)."""
    body = poll(client, org_id, create_job(client, org_id, window)).json()
    assert body["state"] == "completed", body
    urls = body["download_urls"]
    assert isinstance(urls, list)
    return urls


def fetch(http: httpx.Client, url: str) -> bytes:
    """Download a part as a client must: a plain GET, no token."""
    response = http.get(url)
    assert response.status_code == 200, response.text
    return response.content


def split_part(content: bytes) -> tuple[str, list[str]]:
    """Header record and raw data records of a gzip part."""
    text = gzip.decompress(content).decode("utf-8")
    records = [raw for raw, _ in iter_records(text)]
    return records[0], records[1:]


def typed_rows(content: bytes) -> list[UsageRow]:
    text = gzip.decompress(content).decode("utf-8")
    records = list(iter_records(text))
    names = header_names(records[0][1])
    assert tuple(names) == COLUMN_NAMES
    return [typed_row(names, fields) for _, fields in records[1:]]


def credit(row: UsageRow, column: str) -> Decimal:
    """A credit column of a typed row, as a Decimal; an empty (NULL) credit counts as zero."""
    value = row[column]
    if value is None:
        return Decimal(0)
    assert isinstance(value, Decimal), (column, value)
    return value
