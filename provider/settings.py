"""circlecost's settings: one model, read once, in one order of precedence.

    command-line flag  >  stack config `circlecost:<key>`  >  environment variable  >  default

`SettingSources` is the pydantic-settings model: it reads the CIRCLECOST_* variables (and
CIRCLECI_URL) and takes stack config and flags as its explicit values, which pydantic-settings
puts above the environment. `load_settings` turns it into `Settings`, what the service layer
runs with: the store's location, timeouts, and the clock, sleep and crash hook that tests and
the demo replace. Nothing below the service layer reads the environment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from circlecost import faultpoints
from circlecost.circleci import (
    DEFAULT_BASE_URL,
    DEFAULT_RETRY_POLICY,
    CircleCIClient,
    check_base_url,
)
from circlecost.engine import SharedStore, parse_location
from circlecost.errors import CirclecostError
from circlecost.faultpoints import CrashHook, never_crash
from circlecost.importer import ImportSettings
from circlecost.store import Store

DEFAULT_STORE: Final = Path(".circlecost") / "costs.duckdb"
REFRESH_INTERVAL: Final = timedelta(hours=24)
# Moves circlecost's clock (the provider's and the policy pack's), so that the demo and the
# tests can run circlecost at the emulator's time, e.g. a day later to exercise the refresh.
CLOCK_OFFSET_VARIABLE: Final = "CIRCLECOST_CLOCK_OFFSET_SECONDS"

Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class SettingSources(BaseSettings):
    """Every setting, by its stack-config key (camelCase) or variable (CIRCLECOST_ + UPPER_CASE).

    Explicit values (stack config, then flags over it) win over the environment; an empty or
    absent value counts as not given.
    """

    model_config = SettingsConfigDict(
        env_prefix="CIRCLECOST_", extra="forbid", frozen=True, env_ignore_empty=True
    )

    # Set by stack config, flags or variables.
    actor: str | None = None
    store: str | None = None
    store_data_path: str | None = None
    # CircleCI's own variable name, without circlecost's prefix.
    circleci_url: str = Field(
        DEFAULT_BASE_URL, validation_alias=AliasChoices("circleci_url", "CIRCLECI_URL")
    )
    allow_loopback_downloads: bool = False
    create_timeout_seconds: Seconds = 600.0
    binding_timeout_seconds: Seconds = 120.0
    # Variables only: the store's lock, the import's pacing (the demo and tests shorten it),
    # the clock offset and the crash point.
    lock_timeout_seconds: Seconds = 10.0
    first_poll_seconds: Seconds | None = None
    poll_seconds: Seconds | None = None
    retry_seconds: Seconds | None = None
    quota_per_hour: Annotated[int, Field(ge=1)] | None = None
    clock_offset_seconds: Annotated[float, Field(allow_inf_nan=False)] = 0.0
    crash_at: str | None = None

    def store_location(self) -> Path | SharedStore:
        if not self.store:
            return DEFAULT_STORE
        return parse_location(self.store, self.store_data_path)

    def clock(self) -> Clock:
        """UTC now, moved by CIRCLECOST_CLOCK_OFFSET_SECONDS."""
        if not self.clock_offset_seconds:
            return utc_now
        offset = timedelta(seconds=self.clock_offset_seconds)
        return lambda: utc_now() + offset

    def crash_hook(self) -> CrashHook:
        return never_crash if self.crash_at is None else faultpoints.crash_at(self.crash_at)

    def settings(self, process_kind: str = "circlecost") -> Settings:
        """What the service layer runs with, `process_kind` naming this process to the store."""
        return Settings(
            store_location=self.store_location(),
            circleci_url=self.circleci_url,
            actor=self.actor,
            allow_loopback_downloads=self.allow_loopback_downloads,
            process_kind=process_kind,
            create_timeout=timedelta(seconds=self.create_timeout_seconds),
            binding_timeout=timedelta(seconds=self.binding_timeout_seconds),
            lock_timeout=self.lock_timeout_seconds,
            imports=self.import_settings(),
            clock=self.clock(),
            crash_hook=self.crash_hook(),
        )

    def import_settings(self) -> ImportSettings:
        changes: dict[str, Any] = {}
        for name, seconds in (
            ("first_poll_after", self.first_poll_seconds),
            ("poll_every", self.poll_seconds),
            ("retry_failed_window_after", self.retry_seconds),
        ):
            if seconds is not None:
                changes[name] = timedelta(seconds=seconds)
        if self.quota_per_hour is not None:
            changes["posts_per_hour"] = changes["gets_per_hour"] = self.quota_per_hour
        return replace(ImportSettings(), **changes)


# The keys a stack may set in the `circlecost` namespace, and the settings they set.
CONFIG_KEYS: Final = {
    "actor": "actor",
    "store": "store",
    "storeDataPath": "store_data_path",
    "circleciUrl": "circleci_url",
    "allowLoopbackDownloads": "allow_loopback_downloads",
    "createTimeoutSeconds": "create_timeout_seconds",
    "bindingTimeoutSeconds": "binding_timeout_seconds",
}
# The stack-config key of each setting that has one.
CONFIG_KEY_OF: Final = {field: key for key, field in CONFIG_KEYS.items()}
# How a setting is named to the person who gave it, by where it came from.
FLAG_NAMES: Final = {"actor": "--actor", "store": "--store", "circleci_url": "--circleci-url"}


def read_sources(
    config: Mapping[str, Any] | None = None, flags: Mapping[str, Any] | None = None
) -> SettingSources:
    """The settings from `flags` (by field name) over `config` (stack config, by camelCase key,
    with or without the `circlecost:` namespace) over the environment; errors name the source."""
    given_config = {
        key.removeprefix("circlecost:"): value
        for key, value in (config or {}).items()
        if value not in (None, "") and key.removeprefix("circlecost:") in CONFIG_KEYS
    }
    given_flags = {key: value for key, value in (flags or {}).items() if value not in (None, "")}
    try:
        return SettingSources(**{**_by_field(given_config), **given_flags})
    except ValidationError as err:
        raise _setting_error(err, given_config, given_flags) from None


def load_settings(
    config: Mapping[str, Any] | None = None,
    flags: Mapping[str, Any] | None = None,
    *,
    process_kind: str = "circlecost",
) -> Settings:
    """The service layer's `Settings`, from the one model."""
    return read_sources(config, flags).settings(process_kind)


def _by_field(config: Mapping[str, Any]) -> dict[str, Any]:
    return {CONFIG_KEYS[key]: value for key, value in config.items()}


def _setting_error(
    err: ValidationError, config: Mapping[str, Any], flags: Mapping[str, Any]
) -> CirclecostError:
    problem = err.errors()[0]
    name = str(problem["loc"][0]) if problem["loc"] else ""
    config_key = CONFIG_KEY_OF.get(name)
    if name in flags:
        source = FLAG_NAMES.get(name, f"--{name.replace('_', '-')}")
    elif config_key is not None and config_key in config:
        source = f"circlecost:{config_key}"
    else:
        source = "CIRCLECI_URL" if name == "circleci_url" else f"CIRCLECOST_{name.upper()}"
    value = problem.get("input")
    example = _EXAMPLES.get(name, "5")
    if source.startswith("circlecost:"):
        hint = f"run `pulumi config set {source} {example}`, or `pulumi config rm {source}`"
    else:
        hint = f"set {source} to a value such as {example}, or unset it"
    return CirclecostError(f"{source}: {value!r} is not valid: {problem['msg']}", hint=hint)


# What a good value looks like, for the settings that are not a number of seconds.
_EXAMPLES: Final = {
    "quota_per_hour": "10 (a whole number)",
    "allow_loopback_downloads": "true",
    "circleci_url": DEFAULT_BASE_URL,
    "clock_offset_seconds": "-3600",
}


@dataclass(frozen=True)
class Settings:
    """Where circlecost works and who acts, with the clock, sleep and crash hook it runs with.

    Built by `load_settings`; tests build it directly.
    """

    # An embedded store's file, or a shared store (`ducklake:postgres:...`, see circlecost.engine).
    store_location: Path | SharedStore = DEFAULT_STORE
    circleci_url: str = DEFAULT_BASE_URL
    actor: str | None = None
    allow_loopback_downloads: bool = False
    process_kind: str = "circlecost"
    create_timeout: timedelta = timedelta(minutes=10)
    binding_timeout: timedelta = timedelta(minutes=2)
    refresh_interval: timedelta = REFRESH_INTERVAL
    lock_timeout: float = 10.0
    imports: ImportSettings = field(default_factory=ImportSettings)
    clock: Clock = utc_now
    sleep: Callable[[float], None] = time.sleep
    crash_hook: CrashHook = never_crash

    def store(self) -> Store:
        """The store, migrated to the current schema (creating it on first use)."""
        store = self.reader()
        key = store.shared or store.path
        if key not in _MIGRATED or (store.shared is None and not store.path.exists()):
            store.migrate()
            _MIGRATED.add(key)
        return store

    def reader(self) -> Store:
        """The store for reading only: never created, never migrated."""
        return self.store_at(self.store_location)

    def store_at(self, location: Path | SharedStore) -> Store:
        """Another store (`circlecost store copy`'s source, say), opened as this process."""
        return Store(
            location,
            writer_kind=self.process_kind,
            lock_timeout=self.lock_timeout,
            crash_hook=self.crash_hook,
        )

    @property
    def store_name(self) -> str:
        """The store as messages name it (a shared store's catalog without its password)."""
        return str(self.store_location)

    def store_exists(self) -> bool:
        return self.reader().exists()

    def client(self, token: str, *, wait_at_most: timedelta | None = None) -> CircleCIClient:
        """A client that waits (429 Retry-After, backoff) with the same `sleep` as the engine,
        so that a simulated clock moves for both. A Retry-After longer than `wait_at_most` is
        raised instead, for the engine to hold off within its own time budget."""
        try:
            base_url = check_base_url(self.circleci_url)
        except ValueError as err:
            raise CirclecostError(
                f"circleciUrl: {err}",
                hint="set `circlecost:circleciUrl` (or CIRCLECI_URL) to an https URL such as "
                f"{DEFAULT_BASE_URL}",
            ) from None
        retry = DEFAULT_RETRY_POLICY
        if wait_at_most is not None:
            longest = min(retry.max_retry_after, wait_at_most.total_seconds())
            retry = replace(retry, max_retry_after=longest)
        try:
            return CircleCIClient(
                token,
                base_url=base_url,
                allow_insecure_loopback_downloads=self.allow_loopback_downloads,
                sleep=self.sleep,
                retry=retry,
            )
        except ValueError as err:
            raise CirclecostError(
                f"token: {err}",
                hint="paste the CircleCI personal API token exactly as CircleCI showed it",
            ) from None


# Stores this process has already migrated (a migration check is a write transaction).
_MIGRATED: set[Path | SharedStore] = set()
