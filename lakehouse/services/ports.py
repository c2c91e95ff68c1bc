"""Port checks done before any service starts, so a clash is reported by name, not as a crash."""

from __future__ import annotations

import socket

from lakehouse.errors import ServiceError


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR: a port left in TIME_WAIT by our own previous run is free to use.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def require_free(ports: dict[str, tuple[str, int]]) -> None:
    """Raise ServiceError naming every (label -> host, port) that another process holds."""
    taken = [f"{host}:{port} ({label})" for label, (host, port) in ports.items() if port_in_use(host, port)]
    if taken:
        raise ServiceError(
            "port already in use: " + ", ".join(taken) + ". Another process is listening there: stop it, "
            "or move the lakehouse to other ports in .env (e.g. LAKEHOUSE_S3__PORT, LAKEHOUSE_KAFKA__PORT, LAKEHOUSE_KAFKA__CONTROLLER_PORT, "
            "LAKEHOUSE_FLINK__REST_PORT, LAKEHOUSE_FLINK__RPC_PORT, "
            "LAKEHOUSE_POSTGRES__PORT, LAKEHOUSE_EMBEDDED__SEAWEEDFS_INTERNAL_PORT_BASE)"
        )


def _ephemeral_low() -> int:
    """The lowest port the kernel hands to outgoing connections (Linux; 32768 elsewhere)."""
    try:
        return int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A free port below the ephemeral range. A private stack picks its ports up front and
    binds some minutes later (Airflow, JupyterLab start last): a port from the ephemeral range
    (what binding port 0 returns) can meanwhile become the local end of an outgoing connection,
    and the service then fails to start with "port already in use"."""
    return free_port_block(1, host)


def free_port_block(count: int, host: str = "127.0.0.1", low: int = 10000, high: int | None = None) -> int:
    """The first port of `count` consecutive free ports, below the ephemeral range and never
    handed out before by this process."""
    import random

    high = min(high or 65536, _ephemeral_low())
    for _ in range(500):
        base = random.randrange(low, high - count)
        block = range(base, base + count)
        if not _handed_out.intersection(block) and not any(port_in_use(host, port) for port in block):
            _handed_out.update(block)
            return base
    raise RuntimeError(f"no block of {count} free ports found between {low} and {high}")
