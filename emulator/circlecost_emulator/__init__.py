"""A CircleCI API v2 emulator on loopback, for the demo and the tests.

It serves `/api/v2` like CircleCI (tokens, organizations, asynchronous usage-export jobs with
the 10/hour quotas), multi-part `.csv.gz` downloads at expiring links, seeded realistic usage
or replayed export files, a controllable clock and fault switches under `/_emulator/`.
Nothing runs at import time; see `Emulator` and `run_emulator`.
"""

from circlecost_emulator.app import Emulator
from circlecost_emulator.bulk import write_bulk_export
from circlecost_emulator.catalog import EXECUTOR_PROFILES
from circlecost_emulator.cli import run_emulator
from circlecost_emulator.clock import EmulatorClock
from circlecost_emulator.dialect import UsageRow, UsageValue
from circlecost_emulator.faults import FAULT_NAMES, Faults
from circlecost_emulator.generator import GeneratedRow, UsageGenerator
from circlecost_emulator.organizations import Organization, default_organizations
from circlecost_emulator.replay import ReplayError, ReplaySource
from circlecost_emulator.request_log import RequestLog, RequestRecord

__all__ = [
    "EXECUTOR_PROFILES",
    "FAULT_NAMES",
    "Emulator",
    "EmulatorClock",
    "Faults",
    "GeneratedRow",
    "Organization",
    "ReplayError",
    "ReplaySource",
    "RequestLog",
    "RequestRecord",
    "UsageGenerator",
    "UsageRow",
    "UsageValue",
    "default_organizations",
    "run_emulator",
    "write_bulk_export",
]
