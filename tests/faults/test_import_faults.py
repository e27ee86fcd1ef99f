"""Every CircleCI fault during an import ends in one of two states, and nothing in between:

(a) the store holds exactly the rows CircleCI serves for the planned windows, each once; or
(b) the data that was there before is intact, and the status (or the error) says what went
    wrong and what to do.

Each test records its outcome in the table printed at the end of the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest

from circlecost import service
from circlecost.errors import CirclecostError
from circlecost.importer import Importer, ImportStoppedError
from circlecost.settings import Settings
from circlecost.store import Store
from circlecost_emulator import Emulator
from circlecost_emulator.request_log import DOWNLOAD, USAGE_EXPORT_CREATE, USAGE_EXPORT_GET
from tests.faults.support import (
    NO_ROWS,
    SCOREBOARD,
    Snapshot,
    assert_exactly_once,
    integration_inputs,
    served,
    stored,
    table_counts,
    total,
)
from tests.support import org_and_token


def start_importing(settings: Settings, emulator: Emulator) -> tuple[str, str, str]:
    """Creates the integration without waiting: its export jobs are requested, none loaded."""
    org_id, token = org_and_token(emulator)
    importing = replace(settings, create_timeout=timedelta(0))
    emulator.faults.set(null_urls_polls=2)  # CircleCI is still preparing both windows
    integration_id, outputs = service.create_integration(
        importing, integration_inputs(org_id, token)
    )
    emulator.faults.set(null_urls_polls=0)
    assert outputs["status"] == "Importing"
    assert stored(settings.store(), integration_id) == dict.fromkeys(
        (w.window.start for w in settings.store().list_windows(integration_id)), NO_ROWS
    )
    return integration_id, org_id, token


def status_of(store: Store, integration_id: str) -> tuple[str, str]:
    record = store.get_integration(integration_id)
    assert record is not None
    return record.status, record.status_detail


def loaded_windows(store: Store, integration_id: str) -> list[datetime]:
    return [w.window.start for w in store.list_windows(integration_id) if w.state == "loaded"]


def test_a_token_revoked_after_the_first_window_turns_the_status_to_error_and_keeps_that_window(
    emulator: Emulator, settings: Settings
) -> None:
    integration_id, org_id, token = start_importing(settings, emulator)
    store = settings.store()

    def revoke_after_the_first_load(message: str) -> None:
        if message.startswith("loaded "):
            emulator.revoke_token(token)  # the next window's poll gets 401

    with settings.client(token) as client:
        importer = Importer(
            store,
            client,
            integration_id,
            org_id,
            settings=settings.imports,
            progress=revoke_after_the_first_load,
        )
        with pytest.raises(ImportStoppedError, match=r"rejected the token \(401\)"):
            importer.run(emulator.clock.now() + timedelta(seconds=30))

    status, detail = status_of(store, integration_id)
    loaded = loaded_windows(store, integration_id)
    expected = total({start: served(emulator, store, integration_id)[start] for start in loaded})
    got = total(stored(store, integration_id))
    SCOREBOARD.fault(
        "401 mid-import (token revoked)", f"(b) {status}: token rejected", expected, got
    )
    assert len(loaded) == 1
    assert assert_exactly_once(emulator, store, integration_id, loaded) == got
    assert status == "Error"
    assert "401" in detail
    assert "create a new personal API token" in detail


def test_a_non_admin_token_is_refused_on_create_and_the_store_keeps_its_data(
    emulator: Emulator, settings: Settings
) -> None:
    acme, acme_token = org_and_token(emulator, 0)
    acme_id, _ = service.create_integration(settings, integration_inputs(acme, acme_token))
    store = settings.store()
    before = Snapshot.of(store, acme_id)
    counts_before = table_counts(store)
    globex = emulator.organizations[1]["id"]

    with pytest.raises(CirclecostError) as failure:
        service.create_integration(
            settings, integration_inputs(globex, emulator.tokens["non_admin"])
        )

    got = before.assert_intact(store, acme_id)
    SCOREBOARD.fault(
        "403/404 on create (non-admin token)",
        "(b) create refused: not an admin; others kept",
        total(before.rows),
        got,
    )
    assert f"not an admin of CircleCI organization {globex}" in failure.value.message
    assert "use a token of an organization admin" in failure.value.hint
    assert emulator.requests.count(org_id=globex, kind=USAGE_EXPORT_CREATE, status=404) == 1
    assert [record.id for record in store.list_integrations()] == [acme_id]
    counts_after = table_counts(store)
    assert counts_after["audit_log"] > counts_before["audit_log"]  # the attempt is on record
    assert {k: v for k, v in counts_after.items() if k != "audit_log"} == {
        k: v for k, v in counts_before.items() if k != "audit_log"
    }


@pytest.mark.parametrize("retry_after", [1, 0])
def test_a_429_storm_is_waited_out_as_retry_after_says_and_the_import_completes(
    emulator: Emulator, settings: Settings, retry_after: int, caplog: pytest.LogCaptureFixture
) -> None:
    integration_id, org_id, token = start_importing(settings, emulator)
    # More 429s in a row than the client retries, so the engine has to hold off too.
    emulator.faults.set(rate_limit_storm=5, storm_retry_after=retry_after)

    with caplog.at_level(logging.DEBUG, logger="circlecost.circleci"):
        outputs = service.sync_integrations(settings, token)

    store = settings.store()
    got = assert_exactly_once(emulator, store, integration_id)
    SCOREBOARD.fault(
        f"429 storm, Retry-After: {retry_after}",
        f"(a) {outputs['status']}, exact rows",
        total(served(emulator, store, integration_id)),
        got,
    )
    assert outputs["status"] == "Stable"
    usage = [
        record
        for record in emulator.requests.records(org_id=org_id)
        if record.kind in (USAGE_EXPORT_CREATE, USAGE_EXPORT_GET)
    ]
    storm = [index for index, record in enumerate(usage) if record.status == 429]
    assert len(storm) == 5
    waits = [usage[index + 1].at - usage[index].at for index in storm]
    # As long as CircleCI said, after every 429 the client heard. On a loaded machine a
    # response can be lost on the way back (the emulator logged a 429 the client never read,
    # and retried as a network error): that one request carried no Retry-After to obey.
    client_log = [r.getMessage() for r in caplog.records if r.name == "circlecost.circleci"]
    heard = sum(1 for line in client_log if line.endswith("-> 429"))
    short = [wait for wait in waits if wait < timedelta(seconds=retry_after * 0.99)]
    assert len(short) <= len(storm) - heard, (waits, client_log)
    assert heard >= len(storm) - 1, client_log
    assert max(waits) < timedelta(seconds=retry_after + 5)  # and not a default minute


def test_a_burst_of_server_errors_is_retried_and_the_import_completes(
    emulator: Emulator, settings: Settings
) -> None:
    integration_id, org_id, token = start_importing(settings, emulator)
    emulator.faults.set(server_errors=5)  # more in a row than the client retries one GET

    outputs = service.sync_integrations(settings, token)

    store = settings.store()
    got = assert_exactly_once(emulator, store, integration_id)
    SCOREBOARD.fault(
        "5xx burst (500/502/503 x5)",
        f"(a) {outputs['status']}, exact rows",
        total(served(emulator, store, integration_id)),
        got,
    )
    assert outputs["status"] == "Stable"
    errors = [r for r in emulator.requests.records(org_id=org_id) if r.status >= 500]
    assert len(errors) == 5
    assert emulator.requests.count(org_id=org_id, kind=USAGE_EXPORT_CREATE) == 2


def test_a_window_whose_export_fails_every_time_is_given_up_with_its_reason_and_sync_retries_it(
    emulator: Emulator, settings: Settings
) -> None:
    org_id, token = org_and_token(emulator)
    # Jobs fail in request order: the first window's three attempts and the second's first two.
    emulator.faults.set(fail_jobs=5)

    integration_id, outputs = service.create_integration(
        settings, integration_inputs(org_id, token)
    )

    store = settings.store()
    first, second = (w.window for w in store.list_windows(integration_id))
    got = total(stored(store, integration_id))
    SCOREBOARD.fault(
        "failed export job (3 times)",
        f"(b) {outputs['status']}: window given up, reason shown",
        total({second.start: served(emulator, store, integration_id)[second.start]}),
        got,
    )
    assert outputs["status"] == "Warning"
    assert str(first) in outputs["status_detail"]
    assert "Try a smaller date range" in outputs["status_detail"]
    assert "run `circlecost sync` to retry" in outputs["status_detail"]
    assert stored(store, integration_id)[first.start] == NO_ROWS
    assert_exactly_once(emulator, store, integration_id, [second.start])

    retried = service.sync_integrations(settings, token)

    assert retried["status"] == "Stable"
    assert_exactly_once(emulator, store, integration_id)


# --- faults an import gets over by itself: the integration ends Stable with the exact rows ---

Handled = Callable[[Emulator, Store, str, str], None]


def the_failure_reason_is_on_record(
    emulator: Emulator, store: Store, integration_id: str, org_id: str
) -> None:
    reasons = [job.error_reason for job in store.list_jobs(integration_id) if job.error_reason]
    assert reasons == ["The usage export query timed out. Try a smaller date range."]


def the_job_was_polled_until_it_had_links(
    emulator: Emulator, store: Store, integration_id: str, org_id: str
) -> None:
    assert emulator.requests.count(org_id=org_id, kind=USAGE_EXPORT_GET) >= 2 + 4


def the_expired_link_was_refused_once(
    emulator: Emulator, store: Store, integration_id: str, org_id: str
) -> None:
    assert emulator.requests.count(kind=DOWNLOAD, status=403) == 1


def the_part_was_downloaded_again(
    emulator: Emulator, store: Store, integration_id: str, org_id: str
) -> None:
    assert emulator.requests.count(kind=DOWNLOAD) > len(store.list_jobs(integration_id))


@dataclass(frozen=True)
class Recovered:
    """A fault set on the emulator before the create, its line in the summary table, the export
    jobs CircleCI then holds (None: not counted), and what shows it was met and handled."""

    faults: dict[str, int]
    label: str
    outcome: str
    jobs: int | None
    handled: Handled


RECOVERED = {
    "export-job-failed-once": Recovered(
        {"fail_jobs": 1},
        "failed export job (once)",
        "exact rows, 1 new job",
        jobs=3,
        handled=the_failure_reason_is_on_record,
    ),
    "completed-without-download-urls": Recovered(
        {"null_urls_polls": 4},
        "completed with null URLs (4 polls)",
        "exact rows",
        jobs=2,
        handled=the_job_was_polled_until_it_had_links,
    ),
    "expired-download-link": Recovered(
        {"expire_links_now": 1},
        "expired download link",
        "exact rows",
        jobs=2,
        handled=the_expired_link_was_refused_once,
    ),
    "part-not-gzip": Recovered(
        {"non_gzip_part": 1},
        "part that is not gzip",
        "exact rows",
        jobs=None,
        handled=the_part_was_downloaded_again,
    ),
}


@pytest.mark.parametrize("case", RECOVERED.values(), ids=RECOVERED.keys())
def test_a_fault_met_during_create_is_handled_and_the_import_completes_with_exact_rows(
    emulator: Emulator, settings: Settings, case: Recovered
) -> None:
    org_id, token = org_and_token(emulator)
    emulator.faults.set(**case.faults)

    integration_id, outputs = service.create_integration(
        settings, integration_inputs(org_id, token)
    )

    store = settings.store()
    got = assert_exactly_once(emulator, store, integration_id)
    SCOREBOARD.fault(
        case.label,
        f"(a) {outputs['status']}, {case.outcome}",
        total(served(emulator, store, integration_id)),
        got,
    )
    assert outputs["status"] == "Stable"
    if case.jobs is not None:
        assert emulator.requests.count(org_id=org_id, kind=USAGE_EXPORT_CREATE) == case.jobs
    case.handled(emulator, store, integration_id, org_id)


DAMAGED_PARTS = [
    pytest.param("truncate_gzip", "truncated gzip", "is not a complete gzip file", id="truncated"),
    pytest.param(
        "wrong_columns",
        "part with wrong/missing columns",
        "the header lacks the column(s) TOTAL_CREDITS",
        id="wrong-columns",
    ),
]


@pytest.mark.parametrize(("fault", "label", "problem"), DAMAGED_PARTS)
def test_a_damaged_part_on_the_first_import_fails_only_its_window_and_sync_retries_it(
    emulator: Emulator, settings: Settings, fault: str, label: str, problem: str
) -> None:
    org_id, token = org_and_token(emulator)
    emulator.faults.set(**{fault: 1})  # the first part downloaded: the oldest window's

    integration_id, outputs = service.create_integration(
        settings, integration_inputs(org_id, token)
    )

    store = settings.store()
    damaged, healthy = (w.window for w in store.list_windows(integration_id))
    got = total(stored(store, integration_id))
    SCOREBOARD.fault(
        f"{label} (first import)",
        f"(b) {outputs['status']}: window failed, file named",
        served(emulator, store, integration_id)[healthy.start],
        got,
    )
    assert outputs["status"] == "Warning"
    assert str(damaged) in outputs["status_detail"]
    assert problem in outputs["status_detail"]
    assert "part-1.csv.gz" in outputs["status_detail"]
    assert stored(store, integration_id)[damaged.start] == NO_ROWS
    assert_exactly_once(emulator, store, integration_id, [healthy.start])

    retried = service.sync_integrations(settings, token)

    assert retried["status"] == "Stable"
    assert_exactly_once(emulator, store, integration_id)


@pytest.mark.parametrize(("fault", "label", "problem"), DAMAGED_PARTS)
def test_a_damaged_part_on_a_refresh_keeps_the_previous_rows_of_its_window(
    emulator: Emulator, settings: Settings, fault: str, label: str, problem: str
) -> None:
    org_id, token = org_and_token(emulator)
    integration_id, _ = service.create_integration(settings, integration_inputs(org_id, token))
    store = settings.store()
    before = Snapshot.of(store, integration_id)
    emulator.clock.advance(3600)  # CircleCI has an hour more of usage
    later = replace(settings, clock=emulator.clock.now)  # and circlecost is an hour on too
    emulator.faults.set(**{fault: 1})

    outputs = service.sync_integrations(later, token)

    got = before.assert_intact(store, integration_id)
    SCOREBOARD.fault(
        f"{label} (refresh)",
        f"(b) {outputs['status']}: previous rows kept",
        total(before.rows),
        got,
    )
    assert outputs["status"] == "Warning"
    assert problem in outputs["status_detail"]

    retried = service.sync_integrations(later, token)

    assert retried["status"] == "Stable"
    assert_exactly_once(emulator, store, integration_id)


def test_download_links_to_this_machine_are_refused_unless_allowed_and_nothing_is_loaded(
    emulator: Emulator, settings: Settings
) -> None:
    org_id, token = org_and_token(emulator)
    # Time enough to see a link even on a busy machine (0.5 s once ended the create while the
    # export was still being prepared); a refused link ends the create at once.
    strict = replace(settings, allow_loopback_downloads=False, create_timeout=timedelta(seconds=15))

    integration_id, outputs = service.create_integration(strict, integration_inputs(org_id, token))

    store = settings.store()
    got = total(stored(store, integration_id))
    SCOREBOARD.fault(
        "http link to loopback, not allowed",
        f"(b) {outputs['status']}: link refused, reason shown",
        0,
        got,
    )
    assert outputs["status"] == "Importing"
    assert "Refusing download link" in outputs["status_detail"]
    assert "loopback" in outputs["status_detail"]
    assert got == NO_ROWS
    assert emulator.requests.count(kind=DOWNLOAD) == 0

    allowed = service.sync_integrations(settings, token)

    assert allowed["status"] == "Stable"
    assert_exactly_once(emulator, store, integration_id)
