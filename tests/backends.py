"""Real OTLP-receiving backends on 127.0.0.1, started by the tests: Arize Phoenix and the
MLflow tracking server, each in a temporary directory with its own SQLite database.

`start_phoenix` / `start_mlflow` return a running `Server` or raise `Unavailable` with the
reason (package missing, server never answered: the tail of its log).  Readiness is
waited for generously (a cold Phoenix on a busy 2-core machine took ~80 s).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

READY_TIMEOUT = 360.0


class Unavailable(Exception):
    """The backend cannot run here (the message says why)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)  # its own session: it and workers
                self.process.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(30)


def _log_tail(log: Path, chars: int = 1500) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def _start(
    name: str, command: list[str], env: dict[str, str], url: str, health: str, cwd: Path
) -> Server:
    log = cwd / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(name, url, process, log)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Unavailable(f"{name} exited with {process.returncode}: {_log_tail(log)}")
        try:
            with urllib.request.urlopen(url + health, timeout=5) as response:
                if response.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(1.0)
    server.stop()
    raise Unavailable(
        f"{name} did not answer {health} within {READY_TIMEOUT:.0f} s: {_log_tail(log)}"
    )


def start_phoenix(workdir: Path) -> Server:
    """Arize Phoenix (``phoenix serve``) with its SQLite database in ``workdir``."""
    if find_spec("phoenix") is None:
        raise Unavailable("arize-phoenix is not installed (pip install -e '.[dev]')")
    port = free_port()
    env = {
        **os.environ,
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(free_port()),
        "PHOENIX_WORKING_DIR": str(workdir),
        "PHOENIX_SQL_DATABASE_URL": f"sqlite:///{workdir / 'phoenix.db'}",
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    command = [shutil.which("phoenix") or "phoenix", "serve"]
    if shutil.which("phoenix") is None:
        command = [sys.executable, "-m", "phoenix.server.main", "serve"]
    return _start("phoenix", command, env, f"http://127.0.0.1:{port}", "/healthz", workdir)


def start_mlflow(workdir: Path) -> Server:
    """An MLflow tracking server (OTLP at ``/v1/traces``) with a SQLite backend store."""
    if find_spec("mlflow") is None:
        raise Unavailable("mlflow is not installed (pip install -e '.[dev]')")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{workdir / 'mlflow.db'}",
        "--default-artifact-root",
        str(workdir / "artifacts"),
    ]
    env = {**os.environ, "MLFLOW_TRACKING_URI": ""}
    return _start("mlflow", command, env, f"http://127.0.0.1:{port}", "/health", workdir)


# -- reading back --------------------------------------------------------------------------------


def phoenix_graphql(url: str, query: str) -> dict[str, Any]:
    request = urllib.request.Request(
        url + "/graphql",
        json.dumps({"query": query}).encode(),
        {"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


def phoenix_costs(url: str) -> dict[str, float | None]:
    """Phoenix's own cost of every span (its price table), by span id (hex)."""
    data = phoenix_graphql(
        url,
        "{ projects { edges { node { spans(first: 1000) { edges { node "
        "{ context { spanId } costSummary { total { cost } } } } } } } } }",
    )
    costs: dict[str, float | None] = {}
    for project in data["projects"]["edges"]:
        for edge in project["node"]["spans"]["edges"]:
            summary = edge["node"]["costSummary"]
            costs[edge["node"]["context"]["spanId"]] = summary and summary["total"]["cost"]
    return costs


def wait_until(check: Any, timeout: float = 120.0, every: float = 1.0) -> Any:
    """Poll ``check()`` until it returns something other than None (backends ingest
    asynchronously); None if it never does within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None or time.monotonic() > deadline:
            return value
        time.sleep(every)
