"""A local fleet for tests and bench/bench_fleet.py: nginx (deploy/nginx/*.template, rendered
into a temp prefix, root-less) in front of N ``sqlgate serve --transport streamable-http``
workers on loopback ports, all writing to one audit sink."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SQLGATE = str(Path(sys.executable).parent / "sqlgate")


def nginx_binary() -> str | None:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def render(template: Path, values: dict[str, str]) -> str:
    """envsubst with a variable list: only ``${NAME}`` for the given names is replaced."""
    text = template.read_text()
    return re.sub(r"\$\{([A-Z_]+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


def upstream_values(workers: list[tuple[str, str]]) -> dict[str, str]:
    """The template's per-worker placeholders for (worker_id, host:port) pairs."""
    return {
        "SQLGATE_WORKERS": " ".join(f"server {addr} max_fails=1 fail_timeout=5s;" for _, addr in workers),
        "SQLGATE_WORKER_UPSTREAMS": "\n".join(
            f"upstream sqlgate_{wid} {{ server {addr}; keepalive 8; }}" for wid, addr in workers
        ),
        "SQLGATE_SESSION_ROUTES": " ".join(f"~^{wid}\\. sqlgate_{wid};" for wid, _ in workers),
    }


def render_nginx(prefix: Path, listen: str, workers: list[int]) -> Path:
    """The nginx.conf (and its included sqlgate.conf) for workers w1..wN on ``workers`` ports."""
    prefix.mkdir(parents=True, exist_ok=True)
    pairs = [(f"w{i + 1}", f"127.0.0.1:{port}") for i, port in enumerate(workers)]
    (prefix / "sqlgate.conf").write_text(
        render(DEPLOY / "nginx" / "sqlgate.conf.template", {"SQLGATE_LISTEN": listen, **upstream_values(pairs)})
    )
    conf = prefix / "nginx.conf"
    conf.write_text(render(DEPLOY / "nginx" / "main.conf.template", {"NGINX_PREFIX": str(prefix)}))
    return conf


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 40) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited early: {log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"did not listen on {port}: {log.read_text()[-3000:]}")


@dataclass
class Fleet:
    tmp: Path
    database_url: str
    audit_url: str
    size: int = 3
    extra: tuple[str, ...] = ()
    port: int = 0
    worker_ports: list[int] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    nginx: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> Fleet:
        nginx = nginx_binary()
        if nginx is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx; .ci/apt-packages)")
        subprocess.run(
            [SQLGATE, "migrate", "upgrade", "--audit", "--audit-database-url", self.audit_url,
             "--database-url", self.database_url, "--data-dir", str(self.tmp)],
            check=True, capture_output=True, timeout=60,
        )
        self.worker_ports = [free_port() for _ in range(self.size)]
        for index, port in enumerate(self.worker_ports):
            data = self.tmp / f"worker{index}"
            data.mkdir(exist_ok=True)
            log = self.tmp / f"worker{index}.log"
            with log.open("wb") as sink:
                self.workers.append(subprocess.Popen(
                    [SQLGATE, "serve", "--transport", "streamable-http", "--port", str(port),
                     "--database-url", self.database_url, "--audit-database-url", self.audit_url,
                     "--data-dir", str(data), "--worker-id", f"w{index + 1}", "--log-level", "WARNING",
                     *self.extra],
                    stdout=sink, stderr=subprocess.STDOUT, env=os.environ.copy(),
                ))
        self.port = free_port()
        prefix = self.tmp / "nginx"
        conf = render_nginx(prefix, f"127.0.0.1:{self.port}", self.worker_ports)
        subprocess.run([nginx, "-t", "-q", "-p", str(prefix), "-c", str(conf)], check=True,
                       capture_output=True, timeout=30)
        for index, (port, proc) in enumerate(zip(self.worker_ports, self.workers, strict=True)):
            wait_listening(port, proc, self.tmp / f"worker{index}.log")
        log = prefix / "error.log"
        self.nginx = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        log.touch()
        wait_listening(self.port, self.nginx, log)
        return self

    def kill_worker(self, index: int) -> str:
        """SIGKILL one worker (a crash: no graceful shutdown); its address as nginx names it."""
        self.workers[index].send_signal(signal.SIGKILL)
        self.workers[index].wait(timeout=10)
        return f"127.0.0.1:{self.worker_ports[index]}"

    def stop(self) -> None:
        """Workers first (SIGTERM: in-flight calls finish, the audit queue is flushed), then nginx."""
        for proc in self.workers:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.workers:
            try:
                proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.terminate()  # nginx: SIGTERM is a fast shutdown
            try:
                self.nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
