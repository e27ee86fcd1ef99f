"""Running the emulator as a process: `python -m circlecost_emulator` and `circlecost emulator`."""

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from types import FrameType
from typing import Final, TextIO

import click

from circlecost.errors import CirclecostError
from circlecost_emulator.app import Emulator
from circlecost_emulator.faults import FAULT_NAMES, FaultError, FaultValue
from circlecost_emulator.generator import UTILIZATION_PROFILES
from circlecost_emulator.replay import ReplayError

DEFAULT_PORT: Final = 8765


def write_tokens_file(path: Path, emulator: Emulator) -> None:
    """Write base URL, tokens and organizations as JSON, readable by the owner only.

    The file is written beside its final name and renamed, so a reader polling for it never
    sees half of it, and it is created 0600 so the tokens are never readable by others.
    """
    payload = {
        "base_url": emulator.base_url,
        "tokens": emulator.tokens,
        "org_admin_tokens": emulator.org_admin_tokens,
        "organizations": emulator.organizations,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")
    os.chmod(scratch, 0o600)  # O_CREAT's mode does not apply to a file that already existed
    os.replace(scratch, path)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Turn SIGTERM and SIGINT into `stop.set()` while inside; only the main thread can."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_emulator(
    port: int = DEFAULT_PORT,
    seed: int = 0,
    replay_dir: str | Path | None = None,
    quota_per_hour: int | None = 10,
    job_delay: float = 0.0,
    tokens_file: str | Path | None = None,
    *,
    utilization: str = "mixed",
    spikes: Mapping[tuple[date, str], int] | None = None,
    faults: Mapping[str, FaultValue] | None = None,
    host: str = "127.0.0.1",
    stop_event: threading.Event | None = None,
    out: TextIO | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT (or `stop_event`), then stop cleanly and return 0.

    Prints the API base URL as the first line on `out` (stdout). `quota_per_hour` of 0 or None
    means no quota. `faults` are switched on before the first request. Raises ReplayError,
    FaultError or OSError (port taken) before serving.
    """
    stop = stop_event or threading.Event()
    stream = out or sys.stdout
    limit = quota_per_hour if quota_per_hour and quota_per_hour > 0 else None
    emulator = Emulator(
        seed=seed,
        replay_dir=replay_dir,
        quota_per_hour=limit,
        job_delay=job_delay,
        utilization=utilization,
        spikes=spikes,
    )
    emulator.faults.update(faults or {})
    with _stop_on_signals(stop):
        try:
            emulator.start(host, port)
        except OSError as err:
            raise PortUnavailable(host, port, err) from None
        try:
            if tokens_file is not None:
                write_tokens_file(Path(tokens_file), emulator)
            stream.write(emulator.base_url + "\n")
            stream.flush()
            # A timeout keeps the wait responsive to signals on every platform.
            while not stop.wait(0.5):
                pass
        finally:
            emulator.stop()
    return 0


class PortUnavailable(CirclecostError):
    """The emulator cannot listen where it was asked to (a port in use, say)."""

    def __init__(self, host: str, port: int, err: OSError) -> None:
        super().__init__(
            f"--port {port}: cannot listen on {host}:{port}: {err.strerror or err}",
            hint="choose another --port, or --port 0 for any free port",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m circlecost_emulator",
        description="Serve a CircleCI API v2 emulator on loopback until interrupted.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port; 0 picks one")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated usage")
    parser.add_argument("--replay", metavar="DIR", help="serve the export files in DIR instead")
    parser.add_argument(
        "--utilization",
        choices=UTILIZATION_PROFILES,
        default="mixed",
        help="how busy generated jobs keep their machines (overprovisioned: build and lint idle)",
    )
    parser.add_argument(
        "--spike",
        metavar="DAY:PROJECT:FACTOR",
        action="append",
        default=[],
        type=parse_spike,
        help="multiply a project's generated jobs on a day, e.g. 2026-10-22:billing:12",
    )
    parser.add_argument(
        "--quota-per-hour", type=int, default=10, help="usage POSTs and GETs per org; 0: no limit"
    )
    parser.add_argument(
        "--job-delay", type=float, default=0.0, help="seconds before an export job completes"
    )
    parser.add_argument(
        "--tokens-file", metavar="F", help="write base URL, tokens and orgs here (mode 0600)"
    )
    parser.add_argument(
        "--fault",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        type=parse_fault,
        help=f"switch a fault on at start, e.g. server_errors=3; names: {', '.join(FAULT_NAMES)}",
    )
    return parser


def parse_spike(text: str) -> tuple[tuple[date, str], int]:
    """`2026-10-22:billing:12`, as the `--spike` option takes it."""
    day, _, rest = text.partition(":")
    project, _, factor = rest.rpartition(":")
    try:
        parsed = (date.fromisoformat(day), project), int(factor)
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected DAY:PROJECT:FACTOR, e.g. 2026-10-22:billing:12"
        ) from err
    if not project or parsed[1] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a project and a factor >= 1")
    return parsed


def parse_fault(text: str) -> tuple[str, FaultValue]:
    """`name=3`, `name=0.5` or `name=true`, as the `--fault` option takes it."""
    name, separator, raw = text.partition("=")
    if not separator or name not in FAULT_NAMES:
        raise argparse.ArgumentTypeError(
            f"expected NAME=VALUE with NAME in {', '.join(FAULT_NAMES)}"
        )
    words: dict[str, FaultValue] = {"true": True, "false": False}
    if raw.lower() in words:
        return name, words[raw.lower()]
    try:
        return name, float(raw) if "." in raw else int(raw)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{name}: {raw!r} is not a number or true/false") from err


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_emulator(
            port=args.port,
            seed=args.seed,
            replay_dir=args.replay,
            quota_per_hour=args.quota_per_hour,
            job_delay=args.job_delay,
            tokens_file=args.tokens_file,
            utilization=args.utilization,
            spikes=dict(args.spike),
            faults=dict(args.fault),
        )
    except (ReplayError, FaultError, PortUnavailable, OSError) as err:
        sys.stderr.write(f"circlecost emulator: {err}\n")
        return 2


# --- `circlecost emulator` ---------------------------------------------------------------------


@click.command("emulator")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--utilization",
    type=click.Choice(UTILIZATION_PROFILES),
    default="mixed",
    show_default=True,
    help="How busy generated jobs keep their machines (overprovisioned: build and lint idle).",
)
@click.option(
    "--spike",
    "spikes",
    multiple=True,
    help="DAY:PROJECT:FACTOR multiplies that project's jobs that day (a cost anomaly).",
)
@click.option(
    "--replay",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Serve the rows of real export files in this folder.",
)
@click.option(
    "--quota-per-hour",
    default=10,
    show_default=True,
    type=click.IntRange(0, None),
    help="0: no quota.",
)
@click.option(
    "--job-delay", default=0.0, show_default=True, type=float, help="Seconds until a job completes."
)
@click.option(
    "--tokens-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write base URL, tokens and orgs here (JSON).",
)
@click.option("--fault", "faults", multiple=True, help="NAME=VALUE, e.g. server_errors=3.")
def command(
    port: int,
    seed: int,
    utilization: str,
    spikes: tuple[str, ...],
    replay: Path | None,
    quota_per_hour: int,
    job_delay: float,
    tokens_file: Path | None,
    faults: tuple[str, ...],
) -> None:
    """Run the bundled CircleCI API emulator until interrupted.

    \b
    Example:
      circlecost emulator --port 8765 --seed 7 --tokens-file emulator.json
    """
    try:
        parsed = dict(parse_fault(item) for item in faults)
    except Exception as error:  # argparse-style type errors: say which switch is wrong
        raise click.BadParameter(str(error), param_hint="--fault") from None
    try:
        spiked = dict(parse_spike(item) for item in spikes)
    except argparse.ArgumentTypeError as error:
        raise click.BadParameter(str(error), param_hint="--spike") from None
    code = run_emulator(
        port=port,
        seed=seed,
        replay_dir=replay,
        quota_per_hour=quota_per_hour or None,
        job_delay=job_delay,
        tokens_file=tokens_file,
        utilization=utilization,
        spikes=spiked,
        faults=parsed or None,
    )
    sys.exit(code)
