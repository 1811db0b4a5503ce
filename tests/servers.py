"""What the tests that run real servers share: a socket to hand them, and a POST to them."""

from __future__ import annotations

import http.client
import importlib
import socket


def listening_socket(backlog: int = 64) -> socket.socket:
    """A socket on a free port of 127.0.0.1, handed to the server as an open descriptor.

    Passing the socket itself, rather than a port number, leaves no moment in which
    another process could take the port.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def gunicorn_has_control_socket() -> bool:
    """Whether this gunicorn opens a control socket (in $HOME) unless told not to."""
    config = importlib.import_module("gunicorn.config")  # gunicorn ships no type hints
    return "control_socket_disable" in config.Config().settings


def post(port: int, path: str, body: bytes, headers: dict[str, str], *, timeout: float) -> int:
    """POST ``body`` to ``path`` on 127.0.0.1:``port``; the status, once the answer is read."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()
