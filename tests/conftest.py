"""Shared test setup: unit tests must never reach the network.

An autouse fixture makes every socket connection fail unless it goes to this
machine (loopback or a Unix socket), so a test that would silently download a
model or page fails loudly instead.
"""

from __future__ import annotations

import socket

import pytest

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class NetworkAccessInTest(RuntimeError):
    """Raised when a test tries to open a connection to another machine."""


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect

    def guarded_connect(sock: socket.socket, address: object) -> object:
        is_unix = getattr(socket, "AF_UNIX", None) is not None and sock.family == socket.AF_UNIX
        host = address[0] if isinstance(address, tuple) else None
        if is_unix or host in _LOCAL_HOSTS:
            return real_connect(sock, address)
        raise NetworkAccessInTest(f"network access in a unit test: connect to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
