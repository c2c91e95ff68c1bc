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


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def free_port_block(count: int, host: str = "127.0.0.1", low: int = 20000, high: int = 60000) -> int:
    """The first port of `count` consecutive free ports (for SeaweedFS's internal ports in tests)."""
    import random

    for _ in range(200):
        base = random.randrange(low, high - count)
        if not any(port_in_use(host, base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no block of {count} free ports found between {low} and {high}")
