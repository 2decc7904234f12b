"""One lifecycle for the child processes the tools run (the host emulator, a board's QEMU, the
Xtensa simulator): start, wait until it is ready, keep its stderr, stop it, ``with``.

Subclasses say how to start (``start()`` calls ``launch``, then ``wait_until`` their readiness
test) and may react to stderr lines (``on_stderr_line``) or offer a gentler ending than SIGTERM
(``ends_by_itself``). It imports nothing of the package, so any layer may use it.
"""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Callable


class ManagedProcess:
    """A child process with its stderr read line by line into ``stderr_lines`` (by a thread, so
    a chatty child never blocks on a full pipe) and ``proc`` the ``subprocess.Popen``."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.stderr_lines: list[str] = []
        self._stderr_reader: threading.Thread | None = None
        self._news = threading.Event()  # set by each stderr line and at its end: wakes wait_until

    def start(self, timeout: float = 15.0) -> "ManagedProcess":
        raise NotImplementedError

    def launch(self, cmd: list[str], *, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=None) -> None:
        self.proc = subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=env)
        self._stderr_reader = threading.Thread(target=self._read_stderr, args=(self.proc.stderr,), daemon=True)
        self._stderr_reader.start()

    def _read_stderr(self, stream) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stderr_lines.append(line)
            self.on_stderr_line(line)
            self._news.set()
        self._news.set()

    def on_stderr_line(self, line: str) -> None:
        """Called (on the reader thread) for each line the process writes to stderr."""

    def wait_until(self, ready: Callable[[], bool], timeout: float, poll: float = 0.05) -> bool:
        """True as soon as ``ready()``; False when the process exits first (its stderr is then
        read to the end, so ``stderr_lines`` says why) or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                self._stderr_reader.join(1.0)
                return ready()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._news.wait(min(poll, left))
            self._news.clear()
        return True

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ends_by_itself(self, timeout: float) -> bool:
        """A gentler way to end than SIGTERM (e.g. closing its input); True if the process ended."""
        return False

    def stop(self, timeout: float = 5.0) -> int | None:
        """End the process (``ends_by_itself``, else SIGTERM, then SIGKILL after ``timeout``) and
        close its pipes; returns its exit status (None if it never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None and not self.ends_by_itself(timeout):
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f:
                try:
                    f.close()
                except OSError:
                    pass
        if self._stderr_reader is not None:
            self._stderr_reader.join(1.0)  # the rest of stderr, unless a grandchild still holds it
        return self.proc.returncode

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
