"""A CircleCI API v2 emulator on loopback, for the demo and the tests.

It serves `/api/v2` like CircleCI (tokens, organizations, asynchronous usage-export jobs with
the 10/hour quotas), multi-part `.csv.gz` downloads at expiring links, seeded realistic usage
or replayed export files, a controllable clock and fault switches under `/_emulator/`.
Nothing runs at import time; see `Emulator` and `run_emulator`.
"""

from provider.emulator.app import Emulator
from provider.emulator.bulk import write_bulk_export
from provider.emulator.catalog import EXECUTOR_PROFILES
from provider.emulator.cli import run_emulator
from provider.emulator.clock import EmulatorClock
from provider.emulator.dialect import UsageRow, UsageValue
from provider.emulator.faults import FAULT_NAMES, Faults
from provider.emulator.generator import GeneratedRow, UsageGenerator
from provider.emulator.organizations import Organization, default_organizations
from provider.emulator.replay import ReplayError, ReplaySource
from provider.emulator.request_log import RequestLog, RequestRecord

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
