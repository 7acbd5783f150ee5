"""The API's listening socket: what it accepts answers without waiting on Nagle's algorithm."""

from __future__ import annotations

import socket

from producer.api.server import listening_socket


def test_accepted_connections_have_nagle_off():
    listener = listening_socket("127.0.0.1", 0)
    try:
        assert listener.proto == socket.IPPROTO_TCP, "asyncio sets TCP_NODELAY only on TCP-proto sockets"
        client = socket.create_connection(listener.getsockname()[:2])
        accepted, _ = listener.accept()
        try:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            accepted.close()
            client.close()
    finally:
        listener.close()
