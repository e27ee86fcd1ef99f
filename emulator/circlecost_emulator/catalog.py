"""What generated usage is made of: machines and their prices, names, and credit constants."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

SEAT_CREDITS: Final = Decimal(25000)  # per active user and month
DLC_CREDITS_PER_JOB: Final = Decimal(200)
PROJECT_NAMES: Final = ("api", "web", "billing", "docs", "data-pipeline", "mobile", "infra")


@dataclass(frozen=True)
class ExecutorProfile:
    """One kind of machine a job runs on, with its price and how often the demo uses it."""

    operating_system: str
    executor: str
    resource_class: str
    credits_per_minute: int
    weight: int
    can_use_dlc: bool = False


# CircleCI's cloud rates in credits per minute. Self-hosted runners cost no compute credits.
EXECUTOR_PROFILES: Final[tuple[ExecutorProfile, ...]] = (
    ExecutorProfile("linux", "docker", "small", 5, 10, True),
    ExecutorProfile("linux", "docker", "medium", 10, 30, True),
    ExecutorProfile("linux", "docker", "medium+", 15, 5, True),
    ExecutorProfile("linux", "docker", "large", 20, 12, True),
    ExecutorProfile("linux", "docker", "xlarge", 40, 5, True),
    ExecutorProfile("linux", "docker", "arm.medium", 10, 3, True),
    ExecutorProfile("linux", "machine", "medium", 10, 6, True),
    ExecutorProfile("linux", "machine", "large", 20, 4, True),
    ExecutorProfile("linux", "machine", "xlarge", 40, 2, True),
    ExecutorProfile("linux", "machine", "arm.medium", 10, 4, True),
    ExecutorProfile("linux", "machine", "arm.large", 20, 2, True),
    ExecutorProfile("macos", "machine", "macos.m1.medium.gen1", 150, 5),
    ExecutorProfile("macos", "machine", "macos.m1.large.gen1", 250, 2),
    ExecutorProfile("windows", "machine", "windows.medium", 40, 5),
    ExecutorProfile("windows", "machine", "windows.large", 120, 2),
    ExecutorProfile("linux", "runner", "{org}/linux-runner", 0, 3),
)
PROFILE_WEIGHTS: Final = [p.weight for p in EXECUTOR_PROFILES]

# Branch templates and weights: a NULL branch, delimiters, quotes and non-ASCII text on purpose.
BRANCHES: Final[tuple[tuple[str | None, int], ...]] = (
    ("main", 30),
    ("develop", 15),
    ("release/{year}.{month:02d}", 8),
    ("feature,comma", 6),
    ("déploiement-été", 6),
    ("renovate/npm-ws-8.x", 6),
    ('fix/"quoted"-name', 2),
    (None, 5),
)
JOB_NAMES: Final[tuple[tuple[str, int], ...]] = (
    ("build", 30),
    ("test", 30),
    ("lint", 10),
    ("deploy-prod", 5),
    ('integration "slow"', 5),
    ("e2e, smoke", 5),
    ("déployer-préprod", 3),
)
WORKFLOW_NAMES: Final = ("build-and-test", "deploy", "nightly")
TRIGGERS: Final = ("webhook", "api", "scheduled_pipeline")
STATUSES: Final[tuple[tuple[str, int], ...]] = (("success", 80), ("failed", 12), ("canceled", 8))
