"""Whether a TCP address is already served, asked before the operator's webhook server binds it.

kopf's webhook server binds with SO_REUSEPORT, so a second operator on the same host (a stale one, or
a benchmark's beside a demo) binds the same address without an error, and the kernel then spreads
kube-apiserver's admission calls over both: the one holding another CA fails them with "x509:
certificate signed by unknown authority". A bind without SO_REUSEPORT fails while anyone listens there.
"""

import errno
import socket


def is_served(host: str, port: int) -> bool:
    """True when another socket listens on host:port (or on the wildcard address at that port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR so that connections of an operator that has just stopped, left in TIME_WAIT,
        # do not count as serving; a listening socket still makes the bind fail.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise
    return False
