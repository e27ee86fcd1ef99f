"""The emulator as a Python object: configure it, start it on loopback, steer it, stop it."""

import threading
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from pathlib import Path
from types import TracebackType
from typing import Self

from circlecost_emulator.admin import AdminApi
from circlecost_emulator.clock import EmulatorClock, as_utc
from circlecost_emulator.dialect import UsageRow
from circlecost_emulator.export import UsageSource
from circlecost_emulator.faults import Faults, FaultValue
from circlecost_emulator.generator import UsageGenerator
from circlecost_emulator.organizations import Organization, default_organizations, seeded_uuid
from circlecost_emulator.quota import QuotaTracker
from circlecost_emulator.replay import ReplaySource
from circlecost_emulator.request_log import RequestLog
from circlecost_emulator.server import EmulatorHTTPServer
from circlecost_emulator.sources import GeneratedSource
from circlecost_emulator.state import (
    API_PREFIX,
    EmulatorState,
    Settings,
    make_bot_users,
    make_org_admin_tokens,
    make_tokens,
    make_users,
)

OrganizationSpec = Organization | str | Mapping[str, str]


def _organization(seed: int, spec: OrganizationSpec) -> Organization:
    """A name alone gets an id derived from the seed, like the default organizations."""
    if isinstance(spec, Organization):
        return spec
    if isinstance(spec, str):
        return Organization(seeded_uuid(seed, "organization", spec), spec)
    name = spec["name"]
    org_id = spec.get("id") or seeded_uuid(seed, "organization", name)
    return Organization(org_id, name, spec.get("vcs_type", "github"))


def _window_edge(when: datetime | date, *, end: bool) -> datetime:
    """A date stands for the whole day: its first instant as a start, its last as an end."""
    if isinstance(when, datetime):
        return as_utc(when)
    return as_utc(datetime.combine(when, time.max if end else time.min))


def _check_limit(name: str, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise ValueError(f"{name} must be >= 1, or None for no limit")
    return value


class Emulator:
    """A CircleCI API v2 emulator on a real loopback socket.

    `utilization` is the generator's utilisation profile (generator.UTILIZATION_PROFILES);
    `spikes` maps (day, project name) to a factor on that project's jobs that day (a cost spike).
    `quota_per_hour` limits usage-export POSTs and GETs per organization (None: no limit);
    `get_quota_per_hour` overrides the GET limit. `job_delay` and `link_ttl` are seconds of the
    emulator clock. With `replay_dir`, rows come from the export files in that folder and the
    organizations from their ORGANIZATION_ID/NAME columns (plus any given in `organizations`).

    Tokens: `tokens["admin"]` belongs to a user who is admin of every organization served (one
    token for all of them); `tokens["non_admin"]` to a member of every organization who is admin
    of none. `org_admin_tokens[org_id]` belongs to that organization's admin bot, which is admin
    of that organization only and member of no other: another organization's usage export
    answers it 404 and its `/me/collaborations` lists its own organization alone.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        quota_per_hour: int | None = 10,
        get_quota_per_hour: int | None = None,
        job_delay: float = 0.0,
        link_ttl: float = 600.0,
        rows_per_part: int = 150,
        jobs_per_project_per_day: int = 3,
        utilization: str = "mixed",
        spikes: Mapping[tuple[date, str], int] | None = None,
        replay_dir: str | Path | None = None,
        organizations: Sequence[OrganizationSpec] | None = None,
        tokens: Mapping[str, str] | None = None,
        org_admin_tokens: Mapping[str, str] | None = None,
    ) -> None:
        if rows_per_part < 1 or job_delay < 0 or link_ttl < 0:
            raise ValueError("rows_per_part must be >= 1, job_delay and link_ttl >= 0")
        post_limit = _check_limit("quota_per_hour", quota_per_hour)
        get_limit = _check_limit("get_quota_per_hour", get_quota_per_hour) or post_limit
        self.seed = seed
        self.clock = EmulatorClock()
        self.faults = Faults()
        self.requests = RequestLog()
        self.tokens = make_tokens(tokens)
        given = [_organization(seed, spec) for spec in organizations or ()]
        self.utilization = utilization
        self.spikes = dict(spikes or {})
        self._source, orgs = self._make_source(replay_dir, given, jobs_per_project_per_day)
        # Each organization also has an admin bot with a token of its own, so that several
        # integrations can each use a dedicated token, as circlecost's policies require. A bot
        # is admin of its own organization only; `tokens["admin"]` is admin of every one.
        self.org_admin_tokens = make_org_admin_tokens(orgs, org_admin_tokens)
        bots = {f"bot:{org_id}": token for org_id, token in self.org_admin_tokens.items()}
        self._state = EmulatorState(
            source=self._source,
            organizations=orgs,
            tokens={**self.tokens, **bots},
            users={**make_users(seed, orgs), **make_bot_users(seed, orgs)},
            settings=Settings(job_delay, link_ttl, rows_per_part),
            quota=QuotaTracker({"POST": post_limit, "GET": get_limit}),
            clock=self.clock,
            faults=self.faults,
            log=self.requests,
        )
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _make_source(
        self, replay_dir: str | Path | None, given: list[Organization], volume: int
    ) -> tuple[UsageSource, list[Organization]]:
        if replay_dir is not None:
            replay = ReplaySource.load(replay_dir)
            found = replay.organizations()
            known = {o.id for o in found}
            return replay, found + [o for o in given if o.id not in known]
        orgs = given or default_organizations(self.seed)
        generator = UsageGenerator(self.seed, volume, self.utilization, self.spikes)
        return GeneratedSource(generator, orgs), orgs

    def revoke_token(self, token: str) -> None:
        """From now on `token` gets 401, as an expired or revoked token does on CircleCI."""
        self._state.revoke_token(token)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Bind and serve in a background thread; return the API base URL."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        server = EmulatorHTTPServer(
            (host, port), self._state, AdminApi(self.clock, self.faults, self.requests)
        )
        bound_host, bound_port = server.server_address[:2]
        shown_host = "127.0.0.1" if bound_host in ("0.0.0.0", "") else str(bound_host)
        self._state.public_base = f"http://{shown_host}:{bound_port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            # stop() waits up to one poll interval; keep it short so tests stop quickly.
            kwargs={"poll_interval": 0.02},
            name=f"circlecost-emulator-{bound_port}",
            daemon=True,
        )
        self._server = server
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and release the socket and every thread; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> Self:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests and demos read ------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def root_url(self) -> str:
        """`http://host:port`, where `/_emulator/...` and `/downloads/...` live."""
        if not self._state.public_base:
            raise RuntimeError("the emulator has not been started")
        return self._state.public_base

    @property
    def base_url(self) -> str:
        """The API base URL, `http://host:port/api/v2`."""
        return self.root_url + API_PREFIX

    @property
    def organizations(self) -> list[dict[str, str]]:
        return [org.as_dict() for org in self._state.organizations]

    def set_faults(self, **changes: FaultValue) -> None:
        self.faults.set(**changes)

    def expected_rows(
        self,
        org_id: str,
        start: datetime | date,
        end: datetime | date,
        shared_org_ids: Sequence[str] = (),
    ) -> list[UsageRow]:
        """The typed rows an export job with this window returns, in file order.

        None is NULL, credits are Decimal, timestamps naive UTC datetimes. A date for `start`
        or `end` means that whole day.
        """
        org_ids = list(dict.fromkeys((org_id, *shared_org_ids)))
        lo, hi = _window_edge(start, end=False), _window_edge(end, end=True)
        return self._source.expected_rows(org_ids, lo, hi)
