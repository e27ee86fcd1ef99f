"""A minimal Pulumi language host for Python programs and Python policy packs.

Why this exists: the Pulumi CLI itself is built from the Go module proxy, but the official
Python language host (`github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3`) is a
nested Go module without release tags, and the module proxy reachable from circlecost's build
machines refuses every version of it. The bootstrap therefore installs this host beside the
CLI only when the official one cannot be built and none is on PATH.

It speaks the `LanguageRuntime` gRPC protocol from the Pulumi SDK's own protobuf stubs and does
what the engine needs for `pulumi up/preview/refresh/destroy` and `--policy-pack`:
- `Run` starts the program with the SDK's own `pulumi-language-python-exec` script (shipped in
  the Go SDK module and placed beside this file), exactly as the official host does;
- `RunPlugin` starts a Python policy pack and streams its output back to the engine.
Everything else answers with empty, valid responses. Dependencies are never installed here:
circlecost's bootstrap owns the virtualenv.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2

HOST_VERSION = "3.274.1"
EXEC_SCRIPT = Path(__file__).resolve().parent / "pulumi-language-python-exec"
# Exit code the exec script uses after it has shown an actionable message to the user.
EXIT_AFTER_USER_MESSAGE = 32


def python_for(info: Any) -> str:
    """The interpreter of the program's virtualenv, else the one named by CIRCLECOST_PYTHON."""
    options = dict(info.options) if info is not None and info.HasField("options") else {}
    venv = options.get("virtualenv")
    if venv:
        root = Path(info.root_directory or info.program_directory or ".")
        candidate = (root / str(venv)).resolve() / "bin" / "python"
        if candidate.exists():
            return str(candidate)
    return os.environ.get("CIRCLECOST_PYTHON") or sys.executable


def program_path(request: Any) -> str:
    info = request.info
    if info is not None and info.program_directory:
        return str(Path(info.program_directory) / (info.entry_point or "."))
    return request.program or "."


class LanguageHost(language_pb2_grpc.LanguageRuntimeServicer):  # type: ignore[misc]
    def __init__(self, engine_address: str) -> None:
        self.engine_address = engine_address

    def Handshake(self, request: Any, context: Any) -> Any:
        if request.engine_address:
            self.engine_address = request.engine_address
        return language_pb2.LanguageHandshakeResponse()

    def GetPluginInfo(self, request: Any, context: Any) -> Any:
        return plugin_pb2.PluginInfo(version=HOST_VERSION)

    def GetRequiredPlugins(self, request: Any, context: Any) -> Any:
        return language_pb2.GetRequiredPluginsResponse()

    def GetRequiredPackages(self, request: Any, context: Any) -> Any:
        return language_pb2.GetRequiredPackagesResponse()

    def GetProgramDependencies(self, request: Any, context: Any) -> Any:
        return language_pb2.GetProgramDependenciesResponse()

    def About(self, request: Any, context: Any) -> Any:
        return language_pb2.AboutResponse(executable=sys.executable, version=sys.version.split()[0])

    def InstallDependencies(self, request: Any, context: Any) -> Any:
        return iter(())

    def Run(self, request: Any, context: Any) -> Any:
        env = dict(os.environ)
        env["PULUMI_CONFIG"] = json.dumps(dict(request.config))
        env["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(list(request.configSecretKeys))
        command = [
            python_for(request.info),
            "-u",
            str(EXEC_SCRIPT),
            "--monitor", request.monitor_address,
            "--engine", self.engine_address,
            "--project", request.project,
            "--stack", request.stack,
            "--pwd", request.pwd,
            "--dry_run", "true" if request.dryRun else "false",
            "--parallel", str(request.parallel),
            "--organization", request.organization,
            "--root_directory", request.info.root_directory if request.info else request.pwd,
            program_path(request),
            *request.args,
        ]  # fmt: skip
        with subprocess.Popen(command, env=env, cwd=request.pwd or None) as program:
            PROGRAMS.add(program)
            code = program.wait()
            PROGRAMS.discard(program)
        if code == 0:
            return language_pb2.RunResponse()
        if code == EXIT_AFTER_USER_MESSAGE:
            return language_pb2.RunResponse(bail=True)
        return language_pb2.RunResponse(error=f"Program exited with non-zero exit code: {code}")

    def RunPlugin(self, request: Any, context: Any) -> Any:
        env = dict(os.environ)
        env.update(item.split("=", 1) for item in request.env if "=" in item)
        command = [python_for(request.info), "-u", program_path(request), *request.args]
        process = subprocess.Popen(
            command,
            cwd=request.pwd or None,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        context.add_callback(process.kill)
        PROGRAMS.add(process)
        chunks: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        readers = [
            threading.Thread(target=pump, args=(process.stdout, "stdout", chunks), daemon=True),
            threading.Thread(target=pump, args=(process.stderr, "stderr", chunks), daemon=True),
        ]
        for reader in readers:
            reader.start()
        finished = 0
        while finished < len(readers):
            item = chunks.get()
            if item is None:
                finished += 1
                continue
            stream, data = item
            yield language_pb2.RunPluginResponse(**{stream: data})
        code = process.wait()
        PROGRAMS.discard(process)
        yield language_pb2.RunPluginResponse(exitcode=code)


# Programs running now: they end with this host, which ends with the CLI that started it.
PROGRAMS: set[subprocess.Popen[bytes]] = set()  # and policy packs


def watch_parent(stop: threading.Event) -> None:
    """A killed CLI does not tell its plugins: notice it by being re-parented, and stop."""
    parent = os.getppid()
    while not stop.wait(0.5):
        if os.getppid() != parent:
            stop.set()


def pump(pipe: Any, stream: str, chunks: queue.Queue[tuple[str, bytes] | None]) -> None:
    for data in iter(lambda: pipe.read1(65536), b""):
        chunks.put((stream, data))
    chunks.put(None)


def main(argv: list[str]) -> int:
    engine_address = argv[-1] if argv else ""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(LanguageHost(engine_address), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=watch_parent, args=(stop,), daemon=True).start()
    stop.wait()
    for program in list(PROGRAMS):
        program.terminate()
    server.stop(grace=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
