"""Free TCP ports on the loopback interface.

The kernel picks a free port when we bind to port 0; we close the socket and
hand the number to the service.  There is a small window in which another
process could grab the same port; services that fail to bind show that in
their log and the readiness wait fails with a pointer to it.
"""

import contextlib
import socket

HOST = '127.0.0.1'


def free_port(host=HOST):
    """Return a TCP port on ``host`` that is free right now."""
    with contextlib.closing(socket.socket(socket.AF_INET,
                                          socket.SOCK_STREAM)) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_ports(count, host=HOST):
    """Return ``count`` distinct free ports.

    All sockets are held open until every port is known, so the kernel
    cannot hand out the same port twice.
    """
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
