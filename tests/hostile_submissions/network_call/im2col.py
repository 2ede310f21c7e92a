"""Tries to reach the network: a port on this machine where the test suite listens."""
import socket

PORT = 0   # set by the test


def im2col(x, kh, kw, stride=1, padding=0):
    for host in ("127.0.0.1", "localhost"):
        try:
            socket.create_connection((host, PORT), timeout=1).sendall(b"leak")
        except OSError:
            pass
    raise NotImplementedError
