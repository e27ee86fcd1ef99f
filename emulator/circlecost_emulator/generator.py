"""Seeded, realistic CircleCI usage for any organization and date range.

Determinism: every row of a day comes from a `random.Random` seeded with the text
`"{seed}:{org_id}:{YYYY-MM-DD}"`, plus a per-month seat plan seeded with
`"{seed}:{org_id}:{YYYY-MM}:seats"` and a per-organization project list seeded with
`"{seed}:{org_id}:projects"`. So the rows of a day depend only on (seed, organization id, day,
volume), never on the window that asks for them or on what was generated before. String seeds
are hashed with SHA-512 by `random`, so PYTHONHASHSEED does not matter.

Credits follow CircleCI's published rates (credits per minute, prorated per second and
rounded up per job, times parallelism), DLC is 200 credits per job that uses it, and each active
user costs 25,000 credits once a month, carried on a job row or on a row without a job.
"""

import math
import random
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Final, TypeVar

from circlecost.usage_columns import BOOLEAN_COLUMNS, COLUMN_NAMES, CREDIT_SERVICES
from circlecost_emulator.catalog import (
    BRANCHES,
    DLC_CREDITS_PER_JOB,
    EXECUTOR_PROFILES,
    JOB_NAMES,
    PROFILE_WEIGHTS,
    PROJECT_NAMES,
    SEAT_CREDITS,
    STATUSES,
    TRIGGERS,
    WORKFLOW_NAMES,
    ExecutorProfile,
)
from circlecost_emulator.clock import as_utc
from circlecost_emulator.dialect import (
    EscapeStyle,
    UsageRow,
    UsageValue,
    render_record,
    value_text,
)
from circlecost_emulator.organizations import Organization, seeded_uuid

CREDIT_COLUMNS: Final[tuple[str, ...]] = tuple(column for column, _ in CREDIT_SERVICES)
HEADER_LINE: Final[str] = ",".join(COLUMN_NAMES) + "\n"


def _rng_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


_T = TypeVar("_T")


def _weighted(rng: random.Random, table: Sequence[tuple[_T, int]]) -> _T:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def _jittered(rng: random.Random, base: datetime) -> datetime:
    """Timestamps carry milliseconds, except some that the export writes without them."""
    return base.replace(microsecond=0) if rng.random() < 0.2 else base


def _gigabytes(rng: random.Random, tenths_max: int) -> Decimal:
    return Decimal(rng.randint(1, tenths_max)) / 10


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    created: date
    vcs_url: str


@dataclass
class GeneratedRow:
    """One usage row: typed values plus how this row is spelled on its CSV line."""

    values: UsageRow
    style: EscapeStyle = "backslash"
    yes_no_columns: frozenset[str] = field(default_factory=frozenset)

    @property
    def at(self) -> datetime:
        """The instant that places the row in a window: job start, else pipeline creation."""
        moment = self.values["JOB_RUN_STARTED_AT"] or self.values["PIPELINE_CREATED_AT"]
        assert isinstance(moment, datetime)
        return moment

    def fields(self) -> list[str | None]:
        return [value_text(self.values[c], yes_no=c in self.yes_no_columns) for c in COLUMN_NAMES]

    def render(self) -> str:
        return render_record(self.fields(), self.style)


@dataclass
class _Pipeline:
    """What the jobs of one pipeline share."""

    org: Organization
    org_created: date
    project: Project
    pipeline_id: str
    created: datetime
    number: int
    branch: str | None
    trigger: str
    trigger_user: str
    utilization: str = "mixed"


class UsageGenerator:
    """Generates the usage rows of an organization, day by day, from a seed.

    `utilization` picks how busy jobs keep their machines (UTILIZATION_PROFILES); only the four
    utilisation columns differ between profiles, every other value is the same. `spikes` maps
    (day, project name) to a factor that multiplies that project's jobs on that day: a cost
    anomaly to find. Every other day is unchanged (the other projects of that day draw from
    the same day's random sequence, so their rows differ, as on another seed).
    """

    def __init__(
        self,
        seed: int = 0,
        jobs_per_project_per_day: int = 3,
        utilization: str = "mixed",
        spikes: Mapping[tuple[date, str], int] | None = None,
    ) -> None:
        if jobs_per_project_per_day < 0:
            raise ValueError("jobs_per_project_per_day must be >= 0")
        if utilization not in UTILIZATION_PROFILES:
            raise ValueError(
                f"utilization must be one of {', '.join(UTILIZATION_PROFILES)}, not {utilization!r}"
            )
        if any(factor < 1 for factor in (spikes or {}).values()):
            raise ValueError("a spike multiplies a day's jobs by a factor >= 1")
        self.seed = seed
        self.jobs_per_project_per_day = jobs_per_project_per_day
        self.utilization = utilization
        self.spikes = dict(spikes or {})

    # -- public -------------------------------------------------------------------------------

    def rows(self, org: Organization, start: datetime, end: datetime) -> list[GeneratedRow]:
        """Rows whose instant (`GeneratedRow.at`) lies in [start, end]; naive times are UTC."""
        lo, hi = _naive_utc(start), _naive_utc(end)
        return [
            row
            for day in _days(lo.date(), hi.date())
            for row in self.day_rows(org, day)
            if lo <= row.at <= hi
        ]

    def day_rows(self, org: Organization, day: date) -> list[GeneratedRow]:
        """Every row of one organization and UTC day, in time order."""
        rng = random.Random(f"{self.seed}:{org.id}:{day.isoformat()}")
        users = self.users(org)
        rows: list[GeneratedRow] = []
        projects = self.projects(org)
        for project in projects:
            rows.extend(self._project_day(rng, org, project, day, users))
        rows.sort(key=lambda r: r.at)
        rows.extend(self._place_seats(rng, org, day, rows, projects))
        rows.sort(key=lambda r: r.at)
        for row in rows:
            _finish_total(rng, row.values)
        return rows

    def projects(self, org: Organization) -> list[Project]:
        rng = random.Random(f"{self.seed}:{org.id}:projects")
        names = rng.sample(PROJECT_NAMES, rng.randint(4, 5))
        org_created = self.organization_created(org)
        return [
            Project(
                id=_rng_uuid(rng),
                name=name,
                created=org_created + timedelta(days=rng.randint(30, 900)),
                vcs_url=f"https://github.com/{org.name}/{name}",
            )
            for name in names
        ]

    def users(self, org: Organization) -> list[str]:
        return [seeded_uuid(self.seed, org.id, "user", i) for i in range(8)]

    def organization_created(self, org: Organization) -> date:
        rng = random.Random(f"{self.seed}:{org.id}:created")
        return date(2018, 1, 1) + timedelta(days=rng.randint(0, 1200))

    # -- jobs ---------------------------------------------------------------------------------

    def _job_count(self, rng: random.Random, day: date) -> int:
        # Weekends are quieter; the mean is jobs_per_project_per_day on weekdays.
        busy = self.jobs_per_project_per_day * (2 if day.weekday() < 5 else 1)
        return rng.randint(0, busy)

    def _project_day(
        self,
        rng: random.Random,
        org: Organization,
        project: Project,
        day: date,
        users: list[str],
    ) -> list[GeneratedRow]:
        count = self._job_count(rng, day)
        factor = self.spikes.get((day, project.name))
        if factor is not None:  # a spike: at least an average day's jobs, times the factor
            count = max(count, self.jobs_per_project_per_day) * factor
        rows: list[GeneratedRow] = []
        while len(rows) < count:
            pipeline = self._pipeline(rng, org, project, day, users)
            rows.extend(self._workflow_rows(rng, pipeline, count - len(rows)))
        return rows

    def _pipeline(
        self, rng: random.Random, org: Organization, project: Project, day: date, users: list[str]
    ) -> _Pipeline:
        created = datetime.combine(day, time()) + timedelta(
            seconds=rng.randint(600, 21 * 3600), milliseconds=rng.randint(0, 999)
        )
        branch = _weighted(rng, BRANCHES)
        return _Pipeline(
            org=org,
            org_created=self.organization_created(org),
            project=project,
            pipeline_id=_rng_uuid(rng),
            created=_jittered(rng, created),
            number=rng.randint(1, 9999),
            branch=None if branch is None else branch.format(year=day.year, month=day.month),
            trigger=rng.choice(TRIGGERS),
            trigger_user=rng.choice(users),
            utilization=self.utilization,
        )

    def _workflow_rows(
        self, rng: random.Random, pipeline: _Pipeline, room: int
    ) -> list[GeneratedRow]:
        """One workflow of 1-3 sequential jobs, and sometimes a re-run of a failed one."""
        name = rng.choice(WORKFLOW_NAMES)
        jobs = [_weighted(rng, JOB_NAMES) for _ in range(min(room, rng.randint(1, 3)))]
        workflow_start = pipeline.created + timedelta(seconds=10)
        rows = _workflow(rng, pipeline, _rng_uuid(rng), name, workflow_start, jobs)
        failed = [r for r in rows if r.values["JOB_BUILD_STATUS"] == "failed"]
        if failed and len(rows) < room and rng.random() < 0.5:
            # A re-run keeps the pipeline but gets a new workflow and job ids.
            rerun_name = failed[0].values["JOB_NAME"]
            assert isinstance(rerun_name, str)
            after = max(r.at for r in rows) + timedelta(minutes=31)
            rows += _workflow(rng, pipeline, _rng_uuid(rng), name, after, [rerun_name])
        return rows

    # -- seats --------------------------------------------------------------------------------

    def seat_plan(self, org: Organization, month: date) -> dict[date, list[bool]]:
        """Days of a month that carry a seat charge; True when it rides on a job row.

        The first active user's charge is always a row without a job, so every month has one.
        """
        first = month.replace(day=1)
        rng = random.Random(f"{self.seed}:{org.id}:{first:%Y-%m}:seats")
        plan: dict[date, list[bool]] = {}
        for index in range(rng.randint(3, 6)):
            day = first.replace(day=rng.randint(1, 28))
            plan.setdefault(day, []).append(index > 0 and rng.random() < 0.7)
        return plan

    def _place_seats(
        self,
        rng: random.Random,
        org: Organization,
        day: date,
        rows: list[GeneratedRow],
        projects: list[Project],
    ) -> list[GeneratedRow]:
        """Add seat credits to job rows; return the extra rows without a job."""
        free_rows = iter(rows)
        extra: list[GeneratedRow] = []
        for on_job in self.seat_plan(org, day).get(day, []):
            carrier = next(free_rows, None) if on_job else None
            if carrier is not None:
                carrier.values["USER_CREDITS"] = SEAT_CREDITS
            else:
                extra.append(
                    _seat_row(rng, org, rng.choice(projects), day, self.organization_created(org))
                )
        return extra


# ---------------------------------------------------------------------------------------------
# Row builders


def _workflow(
    rng: random.Random,
    pipeline: _Pipeline,
    workflow_id: str,
    workflow_name: str,
    queued: datetime,
    job_names: list[str],
) -> list[GeneratedRow]:
    started = queued + timedelta(seconds=10)
    moment = started
    rows: list[GeneratedRow] = []
    for job_name in job_names:
        row = _job_row(rng, pipeline, job_name, moment)
        stopped = row.values["JOB_RUN_STOPPED_AT"]
        assert isinstance(stopped, datetime)
        moment = stopped
        rows.append(row)
    successful = all(r.values["JOB_BUILD_STATUS"] == "success" for r in rows)
    for row in rows:
        row.values.update(
            WORKFLOW_ID=workflow_id,
            WORKFLOW_NAME=workflow_name,
            WORKFLOW_FIRST_JOB_QUEUED_AT=_jittered(rng, queued),
            WORKFLOW_FIRST_JOB_STARTED_AT=_jittered(rng, started),
            WORKFLOW_STOPPED_AT=_jittered(rng, moment + timedelta(seconds=5)),
            IS_WORKFLOW_SUCCESSFUL=successful,
        )
    return rows


def _job_row(
    rng: random.Random, pipeline: _Pipeline, job_name: str, after: datetime
) -> GeneratedRow:
    profile = rng.choices(EXECUTOR_PROFILES, weights=PROFILE_WEIGHTS)[0]
    parallelism = rng.choice((1, 1, 1, 1, 2, 4))
    seconds = rng.randint(5, 1800)
    queued = after + timedelta(seconds=8)
    started = queued + timedelta(seconds=2)
    stopped = started + timedelta(seconds=seconds)
    values = _base_values(pipeline)
    values.update(
        LAST_BUILD_FINISHED_AT=_jittered(rng, stopped),
        IS_UNREGISTERED_USER=rng.random() < 0.05,
        JOB_NAME=job_name,
        JOB_RUN_NUMBER=rng.randint(1, 99999),
        JOB_ID=_rng_uuid(rng),
        JOB_RUN_DATE=started.date(),
        JOB_RUN_QUEUED_AT=_jittered(rng, queued),
        JOB_RUN_STARTED_AT=started,
        JOB_RUN_STOPPED_AT=stopped,
        JOB_BUILD_STATUS=_weighted(rng, STATUSES),
        RESOURCE_CLASS=profile.resource_class.format(org=pipeline.org.name),
        OPERATING_SYSTEM=profile.operating_system,
        EXECUTOR=profile.executor,
        PARALLELISM=parallelism,
        JOB_RUN_SECONDS=float(seconds),
    )
    values.update(_utilization(rng, seconds, pipeline.utilization, job_name))
    values.update(_job_credits(rng, profile, seconds, parallelism))
    return _styled(rng, values)


def _base_values(pipeline: _Pipeline) -> UsageRow:
    values: UsageRow = dict.fromkeys(COLUMN_NAMES)
    values.update(
        ORGANIZATION_ID=pipeline.org.id,
        ORGANIZATION_NAME=pipeline.org.name,
        ORGANIZATION_CREATED_DATE=pipeline.org_created,
        PROJECT_ID=pipeline.project.id,
        PROJECT_NAME=pipeline.project.name,
        PROJECT_CREATED_DATE=pipeline.project.created,
        VCS_NAME="github",
        VCS_URL=pipeline.project.vcs_url,
        VCS_BRANCH=pipeline.branch,
        PIPELINE_ID=pipeline.pipeline_id,
        PIPELINE_CREATED_AT=pipeline.created,
        PIPELINE_NUMBER=pipeline.number,
        PIPELINE_TRIGGER_SOURCE=pipeline.trigger,
        PIPELINE_TRIGGER_USER_ID=pipeline.trigger_user,
    )
    return values


# How busy jobs keep their machines, as (low, high) percentages of the four utilisation columns:
# "mixed" draws every column anywhere in 1.0-99.9; "overprovisioned" runs the jobs in
# OVERPROVISIONED_JOBS at 5-25 % (a smaller class fits them) and every other job at 60-95 %;
# "flat" runs every job at 60-95 %, so right-sizing finds nothing.
UTILIZATION_PROFILES: Final[tuple[str, ...]] = ("mixed", "overprovisioned", "flat")
OVERPROVISIONED_JOBS: Final[frozenset[str]] = frozenset({"build", "lint"})
_MIXED, _IDLE, _BUSY = (1.0, 99.9), (5.0, 25.0), (60.0, 95.0)


def _utilization(
    rng: random.Random, seconds: int, profile: str = "mixed", job_name: str = ""
) -> dict[str, UsageValue]:
    columns = (
        "MEDIAN_CPU_UTILIZATION_PCT",
        "MAX_CPU_UTILIZATION_PCT",
        "MEDIAN_RAM_UTILIZATION_PCT",
        "MAX_RAM_UTILIZATION_PCT",
    )
    # CircleCI reports no utilization for jobs shorter than 15 seconds.
    if seconds < 15:
        return dict.fromkeys(columns)
    low, high = _MIXED
    if profile == "flat" or (profile == "overprovisioned" and job_name not in OVERPROVISIONED_JOBS):
        low, high = _BUSY
    elif profile == "overprovisioned":
        low, high = _IDLE
    # The same draws in every profile (so the rows' other values do not change); other profiles
    # move them into their range, each median at or under its maximum.
    draws = [rng.uniform(*_MIXED) for _ in columns]
    if profile != "mixed":
        span = (high - low) / (_MIXED[1] - _MIXED[0])
        cpu = sorted(low + (draw - _MIXED[0]) * span for draw in draws[:2])
        ram = sorted(low + (draw - _MIXED[0]) * span for draw in draws[2:])
        draws = [cpu[0], cpu[1], ram[0], ram[1]]
    return {c: round(value, 1) for c, value in zip(columns, draws, strict=True)}


def _job_credits(
    rng: random.Random, profile: ExecutorProfile, seconds: int, parallelism: int
) -> dict[str, UsageValue]:
    compute = math.ceil(seconds * profile.credits_per_minute * parallelism / 60)
    lease = (
        rng.randint(1000, 5000)
        if profile.operating_system == "macos" and rng.random() < 0.25
        else 0
    )
    return {
        "COMPUTE_CREDITS": Decimal(compute),
        "DLC_CREDITS": DLC_CREDITS_PER_JOB
        if profile.can_use_dlc and rng.random() < 0.15
        else Decimal(0),
        "USER_CREDITS": Decimal(0),
        "STORAGE_CREDITS": 420 * _gigabytes(rng, 20) if rng.random() < 0.02 else Decimal(0),
        # Network overage is charged for traffic to self-hosted runners.
        "NETWORK_CREDITS": 420 * _gigabytes(rng, 10)
        if profile.executor == "runner"
        else Decimal(0),
        "LEASE_CREDITS": Decimal(lease),
        "LEASE_OVERAGE_CREDITS": Decimal(rng.randint(100, 500))
        if lease and rng.random() < 0.3
        else Decimal(0),
        "IPRANGES_CREDITS": 450 * _gigabytes(rng, 9)
        if profile.executor == "docker" and rng.random() < 0.03
        else Decimal(0),
    }


def _seat_row(
    rng: random.Random, org: Organization, project: Project, day: date, org_created: date
) -> GeneratedRow:
    """A seat charge without a job: only organization, project and a pipeline date are known."""
    values: UsageRow = dict.fromkeys(COLUMN_NAMES)
    values.update(
        ORGANIZATION_ID=org.id,
        ORGANIZATION_NAME=org.name,
        ORGANIZATION_CREATED_DATE=org_created,
        PROJECT_ID=project.id,
        PROJECT_NAME=project.name,
        PIPELINE_CREATED_AT=datetime.combine(day, time(8)),
    )
    values.update(dict.fromkeys(CREDIT_COLUMNS, Decimal(0)))
    values["USER_CREDITS"] = SEAT_CREDITS
    return _styled(rng, values)


def _styled(rng: random.Random, values: UsageRow) -> GeneratedRow:
    # Both escaping styles and both boolean spellings occur in real files, even within one.
    style: EscapeStyle = "quote" if rng.random() < 0.3 else "backslash"
    yes_no = frozenset(c for c in sorted(BOOLEAN_COLUMNS) if rng.random() < 0.4)
    return GeneratedRow(values, style, yes_no)


def _finish_total(rng: random.Random, values: UsageRow) -> None:
    """TOTAL_CREDITS is the sum of the parts, except now and then, as in real exports."""
    total = sum((v for c in CREDIT_COLUMNS if isinstance(v := values[c], Decimal)), Decimal(0))
    if rng.random() < 1 / 150:
        total += rng.choice((Decimal(1), Decimal(100)))
    values["TOTAL_CREDITS"] = total


def _naive_utc(when: datetime) -> datetime:
    return as_utc(when).replace(tzinfo=None)


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)
