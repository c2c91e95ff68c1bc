"""Ports for private stacks: chosen up front, bound minutes later, so never from the range the
kernel gives outgoing connections, and never the same one twice."""

import socket

from lakehouse.services.ports import _ephemeral_low, _handed_out, free_port, free_port_block, port_in_use


def test_free_ports_are_distinct_free_and_below_the_ephemeral_range():
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(10000 <= port < _ephemeral_low() for port in ports)
    assert not any(port_in_use("127.0.0.1", port) for port in ports)


def test_a_port_another_process_holds_is_never_handed_out():
    import random

    while True:  # a free pair of ports below the ephemeral range, neither handed out yet
        held = random.randrange(10000, _ephemeral_low() - 2)
        pair = {held, held + 1}
        if not pair & _handed_out and not any(port_in_use("127.0.0.1", port) for port in pair):
            break
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", held))
        taken.listen()
        # the only candidates are `held` (in use) and the port after it
        assert {free_port_block(1, low=held, high=held + 2 + 1)} == {held + 1}
