"""Running the emulator as a process, as `circlecost emulator` and the demo do."""

import argparse
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from circlecost_emulator import run_emulator
from circlecost_emulator.cli import PortUnavailable, main, parse_fault

REPO = Path(__file__).resolve().parents[2]


def wait_for(path: Path, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    content = json.loads(path.read_text())
    assert isinstance(content, dict)
    return content


def test_the_module_writes_its_tokens_answers_and_exits_0_on_sigterm(
    tmp_path: Path, http: httpx.Client
) -> None:
    tokens_file = tmp_path / "emulator.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "circlecost_emulator",
            "--port",
            "0",
            "--tokens-file",
            str(tokens_file),
            "--fault",
            "server_errors=1",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info = wait_for(tokens_file)
        assert stat.S_IMODE(os.stat(tokens_file).st_mode) == 0o600
        tokens = info["tokens"]
        assert isinstance(tokens, dict)
        assert set(tokens) == {"admin", "non_admin", "expired", "project", "old_format"}
        assert [o["name"] for o in info["organizations"]] == ["acme", "globex"]
        me = f"{info['base_url']}/me"
        statuses = [
            http.get(me, headers={"Circle-Token": tokens["admin"]}).status_code for _ in "12"
        ]
        assert statuses == [500, 200]  # the --fault given on the command line, then healthy
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert stdout.splitlines()[0] == info["base_url"]


def test_run_emulator_serves_until_its_stop_event(tmp_path: Path, http: httpx.Client) -> None:
    stop = threading.Event()
    out = io.StringIO()
    tokens_file = tmp_path / "sub" / "tokens.json"
    result: list[int] = []
    worker = threading.Thread(
        target=lambda: result.append(
            run_emulator(
                0, seed=2, quota_per_hour=0, tokens_file=tokens_file, stop_event=stop, out=out
            )
        )
    )
    worker.start()
    try:
        info = wait_for(tokens_file)
        base_url = str(info["base_url"])
        admin = info["tokens"]["admin"]
        assert http.get(f"{base_url}/me", headers={"Circle-Token": admin}).status_code == 200
    finally:
        stop.set()
        worker.join(10)
    assert result == [0]
    assert out.getvalue().splitlines()[0] == base_url


def test_main_reports_a_bad_replay_folder_and_returns_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--port", "0", "--replay", str(tmp_path / "missing")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("server_errors=3", ("server_errors", 3)),
        ("slow_seconds=0.5", ("slow_seconds", 0.5)),
        ("truncate_gzip=true", ("truncate_gzip", True)),
    ],
)
def test_fault_options_are_parsed(text: str, parsed: tuple[str, object]) -> None:
    assert parse_fault(text) == parsed


@pytest.mark.parametrize("text", ["explode=1", "server_errors", "server_errors=lots"])
def test_bad_fault_options_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_fault(text)


def test_a_busy_port_is_refused_in_one_line_naming_the_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortUnavailable) as refused:
            run_emulator(port=port, seed=1)
    assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in refused.value.message
    assert "--port 0" in refused.value.hint
