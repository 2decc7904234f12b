"""Small networking helpers shared by the tools and the transports (it imports nothing of the
package, so a transport may use it)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks it; a race with other programs is
    possible but rare, and the callers' servers fail loudly if they lose it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
