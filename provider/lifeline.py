"""Ends a process whose Pulumi CLI has died.

The Pulumi CLI starts the language host, the program and the dynamic provider as child
processes (the provider behind a shell wrapper). When the CLI is killed (`kill -9`, a CI job
cancelled), those processes are not told: they used to go on importing for minutes, writing to
the store behind the back of the `pulumi up` that replaced the killed one. Everything circlecost
writes is crash-safe (the ledger, one-transaction window loads), so a process whose CLI is gone
ends at once and the next run resumes where it stopped.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

CHECK_EVERY_SECONDS = 0.5
CLI_NAME = "pulumi"
_started = threading.Event()


def end_with_pulumi_cli() -> None:
    """Watch the nearest `pulumi` ancestor (else the parent) from a daemon thread and exit when
    it is gone. Idempotent; does nothing where no such ancestor can be found or read."""
    if _started.is_set():
        return
    _started.set()
    cli = nearest_ancestor_named(CLI_NAME)
    watched = cli if cli is not None else os.getppid()
    threading.Thread(
        target=_watch, args=(watched, cli is not None), name="circlecost-lifeline", daemon=True
    ).start()


def nearest_ancestor_named(name: str) -> int | None:
    """The pid of the closest ancestor whose command name is `name` (Linux /proc), or None."""
    pid = os.getppid()
    for _ in range(32):  # a process tree is never this deep; stops a loop on odd /proc data
        if pid <= 1:
            return None
        stat = _stat(pid)
        if stat is None:
            return None
        command, parent = stat
        if command == name:
            return pid
        pid = parent
    return None


def _stat(pid: int) -> tuple[str, int] | None:
    """(command name, parent pid) of a process, from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (command) state ppid ...": the command may itself hold spaces and parentheses.
    command = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return command, int(fields[1])


def _alive(pid: int, is_cli: bool) -> bool:
    if not is_cli:
        return os.getppid() == pid
    stat = _stat(pid)
    return stat is not None and stat[0] == CLI_NAME  # gone, or its pid taken by another


def _watch(pid: int, is_cli: bool) -> None:
    stop = threading.Event()
    while not stop.wait(CHECK_EVERY_SECONDS):
        if not _alive(pid, is_cli):
            os._exit(70)  # EX_SOFTWARE; nothing to flush: every store write is transactional
