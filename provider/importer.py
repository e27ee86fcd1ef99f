"""The import engine: CircleCI usage exports into the store, exactly once, within the quota.

For one integration it walks the window ledger in the store:

    planned ──POST──▶ requested ──GET…──▶ completed ──download, load──▶ loaded
                          │  failed (error_reason) ──▶ planned again (a new job)

Every CircleCI job id is written to the ledger as soon as the POST returns and before it is
polled, so a crash or Ctrl-C resumes with the same job instead of spending quota on a new one.
A window's rows are replaced in one store transaction together with marking it loaded, so a
crash at any point leaves either the previous rows or the new ones, never both or neither.
Requests are counted in the store before they are sent: every process shares one budget of
POSTs and GETs per organization per hour. A download link the client refuses (http to this
machine without the opt-in, say) holds its window until a later run: within one run the answer
cannot change, and asking again would only spend quota.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from circlecost.circleci import (
    AccessDeniedError,
    BadRequestError,
    CircleCIClient,
    CircleCIError,
    DownloadLinkExpiredError,
    InvalidTokenError,
    NotGzipError,
    RateLimitedError,
    UnsafeDownloadURLError,
    UsageExportJob,
)
from circlecost.errors import CirclecostError
from circlecost.store import Store, WindowTask
from circlecost.vocabulary import Status
from circlecost.windows import Window

log = logging.getLogger("circlecost.importer")

Clock = Callable[[], datetime]
# Seconds to hold off after a 429 that did not say how long (CircleCI usually does).
DEFAULT_RETRY_AFTER = 60.0
# How long a claim on a window keeps other runs from asking CircleCI for the same export. It
# outlasts one POST with its retries; a run that dies holding a claim delays the window that long.
CLAIM_HOLD = timedelta(minutes=2)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ImportSettings:
    """How the engine paces itself. Defaults follow CircleCI's documented limits."""

    posts_per_hour: int = 10
    gets_per_hour: int = 10
    first_poll_after: timedelta = timedelta(seconds=60)
    poll_every: timedelta = timedelta(seconds=120)
    max_job_attempts: int = 3
    retry_failed_window_after: timedelta = timedelta(minutes=5)


class ImportStoppedError(CirclecostError):
    """CircleCI refused the integration itself (token or admin rights): retrying cannot help."""

    def __init__(self, message: str, *, hint: str, status: str = Status.ERROR) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class TokenRejectedError(ImportStoppedError):
    """HTTP 401: the token is invalid, expired or revoked."""


class NotAnAdminError(ImportStoppedError):
    """HTTP 403 or 404 on a usage export: the token's user is no admin of the organization."""


@dataclass
class StepOutcome:
    """What one pass over the ledger did, and when the next useful action is allowed."""

    loaded: list[Window] = field(default_factory=list)
    failed: list[Window] = field(default_factory=list)
    # Windows whose download link this client refuses: no wait in this run can change that.
    refused_links: list[str] = field(default_factory=list)
    open_at_start: list[Window] = field(default_factory=list)
    next_action_at: datetime | None = None
    waiting_for: str = ""

    def wait_until(self, moment: datetime, reason: str) -> None:
        if self.next_action_at is None or moment < self.next_action_at:
            self.next_action_at = moment
            self.waiting_for = reason


@dataclass(frozen=True)
class ImportReport:
    status: str
    detail: str
    loaded_windows: int
    open_windows: int
    failed_windows: int
    next_action_at: datetime | None
    waiting_for: str
    refused_links: tuple[str, ...]
    missing: tuple[Window, ...]  # the windows still open after the step


class Importer:
    """Drives one integration's import. Holds no token beyond the client it is given."""

    def __init__(
        self,
        store: Store,
        client: CircleCIClient,
        integration_id: str,
        org_id: str,
        *,
        settings: ImportSettings = ImportSettings(),
        clock: Clock = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        progress: Callable[[str], None] | None = None,
        on_report: Callable[[ImportReport], None] | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.integration_id = integration_id
        self.org_id = org_id
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.progress = progress or terminal_progress()
        self.on_report = on_report or (lambda _report: None)
        # Why this client refused a window's download link. Its rules stay the same while it
        # runs, so the window waits for a later run (which asks CircleCI for fresh links).
        self.refused: dict[Window, str] = {}
        # Names this run in the ledger's claims (see Store.claim_window).
        self.claimant = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    # --- driving ------------------------------------------------------------------------------

    def run(self, deadline: datetime | None = None) -> ImportReport:
        """Import until nothing is open, nothing open can move in this run, or the next action
        falls after `deadline`; sleep between allowed actions. `on_report` hears every pass."""
        while True:
            outcome = self.step()
            report = self.report(outcome)
            self.on_report(report)
            if report.open_windows == 0 or outcome.next_action_at is None:
                return report
            if deadline is None or outcome.next_action_at > deadline:
                return report
            delay = (outcome.next_action_at - self.clock()).total_seconds()
            if delay > 0:
                self.progress(f"waiting {delay:.0f} s: {outcome.waiting_for}")
                self.sleep(delay)

    def step(self) -> StepOutcome:
        """One pass: do every action that is allowed now, without sleeping."""
        outcome = StepOutcome()
        try:
            for task in self.store.open_windows(self.integration_id):
                outcome.open_at_start.append(task.window)
                self.advance(task, outcome)
        except ImportStoppedError as stop:
            self.store.set_import_status(self.integration_id, stop.status, str(stop))
            raise
        return outcome

    def report(self, outcome: StepOutcome) -> ImportReport:
        counts = self.store.window_counts(self.integration_id)
        loaded, open_, failed = (
            counts.get("loaded", 0),
            counts.get("open", 0),
            counts.get("failed", 0),
        )
        first_failure = self.first_failure() if failed else None
        status, detail = summarize(loaded, open_, failed, outcome, first_failure)
        self.store.set_import_status(self.integration_id, status, detail)
        done = {*outcome.loaded, *outcome.failed}
        return ImportReport(
            status,
            detail,
            loaded,
            open_,
            failed,
            outcome.next_action_at,
            outcome.waiting_for,
            tuple(outcome.refused_links),
            tuple(window for window in outcome.open_at_start if window not in done),
        )

    def first_failure(self) -> str | None:
        """The oldest window that failed for good, and why: what a status detail shows."""
        return next(
            (
                f"{planned.window}: {planned.last_error or 'no reason recorded'}"
                for planned in self.store.list_windows(self.integration_id)
                if planned.state == "failed"
            ),
            None,
        )

    # --- one window ---------------------------------------------------------------------------

    def advance(self, task: WindowTask, outcome: StepOutcome) -> None:
        if task.window in self.refused:
            outcome.refused_links.append(self.refused[task.window])
            return
        if task.job_id is None or task.job_state == "failed":
            if task.job_id is not None and task.next_poll_at and task.next_poll_at > self.clock():
                outcome.wait_until(task.next_poll_at, f"retrying the export of {task.window}")
                return
            self.request_export(task, outcome)
            return
        if task.next_poll_at is not None and task.next_poll_at > self.clock():
            # A completed job waits only because its download failed; CircleCI is done with it.
            waiting_for = (
                f"retrying the download of {task.window}"
                if task.job_state == "completed"
                else f"CircleCI is preparing {task.window}"
            )
            outcome.wait_until(task.next_poll_at, waiting_for)
            return
        job = self.poll(task, outcome)
        if job is None:
            return
        if job.state == "completed" and job.download_urls:
            self.download_and_load(task, job, outcome)
        elif job.state == "failed":
            self.job_failed(task, job, outcome)
        else:
            next_poll = self.clock() + self.settings.poll_every
            self.store.update_job(task.job_id, job.state, self.clock(), next_poll)
            outcome.wait_until(next_poll, f"CircleCI is preparing {task.window}")

    def request_export(self, task: WindowTask, outcome: StepOutcome) -> None:
        if task.attempts >= self.settings.max_job_attempts:
            reason = task.error_reason or "no reason given"
            self.give_up(
                task,
                outcome,
                f"CircleCI failed the export {task.attempts} times (last reason: {reason})",
            )
            return
        held = self.store.claim_window(
            self.integration_id,
            task.window,
            self.claimant,
            self.clock(),
            CLAIM_HOLD,
            task.job_id,
            abandoned=claimant_gone,
        )
        if held is not None:
            outcome.wait_until(held, f"another run is requesting the export of {task.window}")
            return
        recorded = False
        try:
            recorded = self.post_export(task, outcome)
        finally:
            if not recorded:
                self.store.release_window(self.integration_id, task.window, self.claimant)

    def post_export(self, task: WindowTask, outcome: StepOutcome) -> bool:
        """Asks CircleCI for the window's export and records the job; True if it did."""
        if not self.slot("POST", outcome, f"a new export for {task.window}"):
            return False
        try:
            job = self.client.create_usage_export_job(
                self.org_id, task.window.start, task.window.end
            )
        except (InvalidTokenError, AccessDeniedError) as err:
            raise stopped_by(err, self.org_id) from None
        except RateLimitedError as err:
            self.rate_limited(err, outcome)
            return False
        except BadRequestError as err:
            self.give_up(task, outcome, f"CircleCI refused {task.window}: {err.circleci_message}")
            return False
        except CircleCIError as err:
            self.retry_later(task, outcome, f"creating the export failed: {err}")
            return False
        now = self.clock()
        self.store.record_job(self.integration_id, task.window, job.usage_export_job_id, now)
        self.store.crash_hook("after_job_recorded")
        self.store.update_job(
            job.usage_export_job_id, job.state, now, now + self.settings.first_poll_after
        )
        self.progress(f"export requested for {task.window} (job {job.usage_export_job_id})")
        outcome.wait_until(
            now + self.settings.first_poll_after, f"CircleCI is preparing {task.window}"
        )
        return True

    def poll(self, task: WindowTask, outcome: StepOutcome) -> UsageExportJob | None:
        assert task.job_id is not None
        if not self.slot("GET", outcome, f"checking the export of {task.window}"):
            return None
        try:
            return self.client.get_usage_export_job(self.org_id, task.job_id)
        except (InvalidTokenError, AccessDeniedError) as err:
            raise stopped_by(err, self.org_id) from None
        except RateLimitedError as err:
            self.rate_limited(err, outcome)
        except CircleCIError as err:
            next_poll = self.clock() + self.settings.poll_every
            self.store.update_job(task.job_id, task.job_state or "created", self.clock(), next_poll)
            outcome.wait_until(next_poll, f"CircleCI did not answer ({err})")
        return None

    def download_and_load(
        self, task: WindowTask, job: UsageExportJob, outcome: StepOutcome
    ) -> None:
        assert task.job_id is not None
        with tempfile.TemporaryDirectory(prefix="circlecost-parts-") as folder:
            try:
                parts = self.download(job, Path(folder))
            except DownloadLinkExpiredError:
                # Fresh links need another GET; poll again as soon as the quota allows.
                self.store.update_job(task.job_id, "completed", self.clock(), self.clock())
                outcome.wait_until(self.clock(), f"fresh download links for {task.window}")
                return
            except UnsafeDownloadURLError as err:
                self.link_refused(task, outcome, str(err))
                return
            except (NotGzipError, CircleCIError) as err:
                self.retry_later(task, outcome, f"downloading {task.window} failed: {err}")
                return
            self.store.crash_hook("after_download")
            try:
                result = self.store.load_window(
                    self.integration_id, task.window, task.job_id, parts
                )
            except CirclecostError as err:
                self.give_up(task, outcome, f"loading {task.window} failed: {err}")
                return
        self.store.update_job(task.job_id, "loaded", self.clock(), None)
        outcome.loaded.append(task.window)
        self.progress(f"loaded {task.window}: {result.rows} rows from {len(parts)} part(s)")

    def download(self, job: UsageExportJob, folder: Path) -> list[Path]:
        parts = []
        for number, url in enumerate(job.download_urls, start=1):
            target = folder / f"part-{number}.csv.gz"
            self.client.download_usage_export_part(url, target)
            parts.append(target)
            self.progress(f"downloaded part {number} of {len(job.download_urls)}")
        return parts

    def link_refused(self, task: WindowTask, outcome: StepOutcome, why: str) -> None:
        """Retrying a refused link only spends quota: the window waits for a later run, whose
        first GET brings fresh links (the job itself is done, so no new export is needed)."""
        assert task.job_id is not None
        # Only the client's first sentence, the fact: its advice is for other callers, and
        # whoever shows this status knows how to allow the link (an opt-in, a config key).
        fact = why.split(". ", 1)[0].rstrip(".")
        reason = f"download of {task.window} refused: {fact}"
        self.store.fail_window(self.integration_id, task.window, reason, final=False)
        self.store.update_job(task.job_id, "completed", self.clock(), self.clock())
        self.refused[task.window] = reason
        outcome.refused_links.append(reason)
        self.progress(reason)

    def job_failed(self, task: WindowTask, job: UsageExportJob, outcome: StepOutcome) -> None:
        assert task.job_id is not None
        reason = job.error_reason or "no reason given"
        retry_at = self.clock() + self.settings.retry_failed_window_after
        self.store.update_job(task.job_id, "failed", self.clock(), retry_at, error_reason=reason)
        self.progress(f"CircleCI failed the export of {task.window}: {reason}")
        outcome.wait_until(retry_at, f"retrying the export of {task.window}")

    # --- quota and failures -------------------------------------------------------------------

    def slot(self, kind: str, outcome: StepOutcome, purpose: str) -> bool:
        per_hour = self.settings.posts_per_hour if kind == "POST" else self.settings.gets_per_hour
        next_free = self.store.take_request_slot(self.org_id, kind, self.clock(), per_hour)
        if next_free is None:
            return True
        outcome.wait_until(next_free, f"CircleCI's {kind} quota ({per_hour}/hour) before {purpose}")
        return False

    def rate_limited(self, err: RateLimitedError, outcome: StepOutcome) -> None:
        # "Retry-After: 0" is an answer too; only a missing one means "guess". A second at
        # least keeps a server that always says 0 from being hammered in a tight loop.
        wait = DEFAULT_RETRY_AFTER if err.retry_after is None else max(err.retry_after, 1.0)
        until = self.clock() + timedelta(seconds=wait)
        self.store.block_requests(self.org_id, until)
        outcome.wait_until(until, "CircleCI asked to slow down (429)")

    def retry_later(self, task: WindowTask, outcome: StepOutcome, reason: str) -> None:
        self.store.fail_window(self.integration_id, task.window, reason, final=False)
        retry_at = self.clock() + self.settings.retry_failed_window_after
        if task.job_id is not None:
            self.store.update_job(task.job_id, task.job_state or "created", self.clock(), retry_at)
        outcome.wait_until(retry_at, reason)

    def give_up(self, task: WindowTask, outcome: StepOutcome, reason: str) -> None:
        self.store.fail_window(self.integration_id, task.window, reason, final=True)
        outcome.failed.append(task.window)
        self.progress(reason)


def claimant_gone(claimant: str) -> bool:
    """Whether a claim's holder (`host:pid:nonce`) was a process of this machine that has ended:
    a run killed mid-request (a cancelled CI job) must not hold its windows for CLAIM_HOLD."""
    host, _, rest = claimant.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def stopped_by(err: CircleCIError, org_id: str) -> ImportStoppedError:
    if isinstance(err, InvalidTokenError):
        return TokenRejectedError(
            "CircleCI rejected the token (401): it is invalid, expired or not a personal API token",
            hint="create a new personal API token in CircleCI, store it with "
            "`pulumi config set --secret`, then run `pulumi up`",
        )
    return NotAnAdminError(
        f"the token's user is not an admin of CircleCI organization {org_id} "
        "(or the organization id is wrong)",
        hint="use a token of an organization admin, and check the id in CircleCI "
        "Organization Settings → Overview",
    )


def summarize(
    loaded: int, open_: int, failed: int, outcome: StepOutcome, first_failure: str | None = None
) -> tuple[str, str]:
    """Status and a detail a person can act on; a failure names its window and reason."""
    if open_ == 0 and failed == 0:
        return Status.STABLE, f"all {loaded} window(s) imported"
    if open_ == 0:
        return (
            Status.WARNING if loaded else Status.ERROR,
            f"{failed} window(s) could not be imported, {loaded} imported "
            f"(first: {first_failure or 'no reason recorded'}); "
            "run `circlecost sync` to retry them",
        )
    refused = ""
    if outcome.refused_links:
        others = len(outcome.refused_links) - 1
        refused = f"; {outcome.refused_links[0]}" + (
            f" (and {others} more window(s) like it)" if others else ""
        )
    when = (
        f"; next step at {outcome.next_action_at:%Y-%m-%d %H:%M:%S} UTC ({outcome.waiting_for})"
        if outcome.next_action_at
        else ""
    )
    return (
        Status.IMPORTING,
        f"{loaded} of {loaded + open_ + failed} window(s) imported{refused}{when}",
    )


def terminal_progress() -> Callable[[str], None]:
    """Progress lines on a terminal, silence otherwise (CI logs, pipes, Pulumi providers)."""
    if sys.stderr.isatty():
        return lambda message: print(f"circlecost: {message}", file=sys.stderr, flush=True)  # noqa: T201
    return lambda message: log.info(message)
