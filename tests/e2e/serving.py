"""Start a ``sqlgate serve`` subprocess on a port and wait until it listens; stop it."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path


def spawn(args: list[str], port: int, log: Path, *, env: dict[str, str] | None = None,
          wait_s: float = 30) -> subprocess.Popen[bytes]:
    """Run ``args`` with output to ``log``; return once 127.0.0.1:``port`` accepts connections."""
    with log.open("wb") as sink:
        proc = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"server did not listen: {log.read_text()}")


def terminate(proc: subprocess.Popen[bytes], wait_s: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not stopped within ``wait_s``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            proc.kill()
