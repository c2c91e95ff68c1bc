"""supervisord runs the embedded services: restarts crashed ones, owns their logs, stops them in order."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

from supervisor.xmlrpc import SupervisorTransport

from lakehouse.errors import ServiceError
from lakehouse.services.embedded import Service


def environment_line(env: dict[str, str]) -> str:
    """supervisord's `environment=` syntax: KEY="value" pairs, quotes and percent signs escaped."""
    return ",".join(
        f'{key}="{value.replace(chr(34), chr(92) + chr(34))}"'.replace("%", "%%") for key, value in env.items()
    )


class Supervisor:
    def __init__(self, state_dir: Path):
        self.folder = state_dir / "supervisor"
        self.logs = state_dir / "logs"
        self.config = self.folder / "supervisord.conf"
        self.socket = self.folder / "supervisor.sock"
        self.pidfile = self.folder / "supervisord.pid"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    @property
    def rpc(self):
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def running(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return self.rpc.getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Fault):
            return False

    def write_config(self, programs: list[Service]) -> None:
        """Every program the stack may run, in start order; none starts on its own."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        lines = [
            "[unix_http_server]",
            f"file={self.socket}",
            "chmod=0700",
            "",
            "[supervisord]",
            f"logfile={self.log_file('supervisord')}",
            f"pidfile={self.pidfile}",
            f"childlogdir={self.logs}",
            "identifier=lakehouse",
            *(["user=root"] if os.geteuid() == 0 else []),
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]",
            f"serverurl=unix://{self.socket}",
        ]
        for priority, service in enumerate(programs, start=1):
            lines += [
                "",
                f"[program:{service.name}]",
                # supervisor expands %(...)s in values: escape literal percent signs
                "command=" + shlex.join(service.command).replace("%", "%%"),
                f"priority={priority * 10}",
                "autostart=false",
                "autorestart=true",
                "startsecs=2",
                "startretries=3",
                f"stopsignal={service.stopsignal}",
                f"stopwaitsecs={service.stop_wait_s}",
                "redirect_stderr=true",
                f"stdout_logfile={self.log_file(service.name)}",
                "stdout_logfile_maxbytes=50MB",
                "stdout_logfile_backups=2",
                # the whole process tree: the Flink job's JVM and Python workers go with it
                "stopasgroup=true",
                "killasgroup=true",
                *([f"user={service.user}"] if service.user else []),
                *([f"environment={environment_line(service.env)}"] if service.env else []),
            ]
        self.config.write_text("\n".join(lines) + "\n")
        self.config.chmod(0o600)

    def add_missing(self, programs: list[Service]) -> None:
        """Rewrite the configuration and add to the running daemon the programs it lacks;
        running programs are left untouched."""
        known = {info["name"] for info in self.rpc.getAllProcessInfo()}
        if all(p.name in known for p in programs):
            return
        self.write_config(programs)
        [[added, _changed, _removed]] = self.rpc.reloadConfig()
        for name in added:
            self.rpc.addProcessGroup(name)

    def start_daemon(self, env: dict[str, str]) -> None:
        # Children inherit supervisord's environment: credentials travel there, never in a file.
        result = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.config)],
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ServiceError(f"supervisord did not start: {result.stderr.strip() or result.stdout.strip()}")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.running():
                return
            time.sleep(0.2)
        raise ServiceError(f"supervisord did not come up; see {self.log_file('supervisord')}")

    def process(self, name: str) -> dict:
        return self.rpc.getProcessInfo(name)

    def start(self, name: str) -> None:
        if self.process(name)["statename"] == "RUNNING":
            return
        try:
            self.rpc.startProcess(name, True)
        except xmlrpc.client.Fault as fault:
            raise ServiceError(f"{name} failed to start ({fault.faultString}):\n{self.tail(name)}") from fault

    def stop(self, name: str) -> None:
        """Stop the program if it is running, starting or retrying; otherwise do nothing."""
        if self.process(name)["statename"] in ("RUNNING", "STARTING", "BACKOFF"):
            self.rpc.stopProcess(name, True)

    def tail(self, name: str, lines: int = 15) -> str:
        path = self.log_file(name)
        if not path.exists():
            return f"(no log at {path})"
        text = path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"  {line}" for line in text) + f"\n  (full log: {path})"

    def shutdown(self, layers: list[list[str]] = (), timeout_s: float = 180) -> None:
        """Stop every service and supervisord itself. `layers` are stopped first, one after the
        other (the programs of a layer together), so that a stream job can take its savepoint
        while the Flink cluster still runs; the rest then in reverse start order."""
        if not self.running():
            return
        deadline = time.monotonic() + timeout_s
        for layer in layers:
            self.stop_together(layer, deadline)
        self.rpc.stopAllProcesses(True)
        pid = int(self.pidfile.read_text()) if self.pidfile.exists() else None
        self.rpc.shutdown()
        while pid and time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        if pid:
            raise ServiceError(f"supervisord (pid {pid}) did not exit within {timeout_s:.0f}s")

    def stop_together(self, names: list[str], deadline: float) -> None:
        """Send the stop signal to every running one of `names`, then wait until all have stopped."""
        stopping = []
        for info in self.rpc.getAllProcessInfo():
            if info["name"] in names and info["statename"] in ("RUNNING", "STARTING", "BACKOFF"):
                self.rpc.stopProcess(info["name"], False)
                stopping.append(info["name"])
        while stopping and time.monotonic() < deadline:
            stopping = [n for n in stopping if self.process(n)["statename"] not in ("STOPPED", "EXITED", "FATAL")]
            time.sleep(0.3)
