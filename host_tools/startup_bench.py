"""How long the ``squeezeedge`` command takes to start: each command run as a new process, wall
time from spawn to exit, median of several runs. The interpreter starting and doing nothing is
timed in the same run, as the floor every Python command pays."""

from __future__ import annotations

import datetime
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

# What issue 16 asks to start in under a second, and how each is run here.
COMMANDS = {
    "squeezeedge --help": ["--help"],
    "squeezeedge send --help": ["send", "--help"],
    "squeezeedge mqtt send --help": ["mqtt", "send", "--help"],
    "squeezeedge classify --engine reference TEXT": ["classify", "--engine", "reference", "turn off the kitchen lights"],
}
BUDGET_SECONDS = 1.0


@dataclass
class StartupResult:
    command: str
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def time_process(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def measure(runs: int = 7, progress=None) -> list[StartupResult]:
    """The bare interpreter first, then each command; runs interleaved so that load on the machine
    falls on all of them alike."""
    cases = {"python -c pass (the floor)": [sys.executable, "-c", "pass"]}
    cases.update({name: [sys.executable, "-m", "squeezeedge", *args] for name, args in COMMANDS.items()})
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, argv in cases.items():
            if progress:
                progress(name)
            times[name].append(time_process(argv))
    return [StartupResult(name, t) for name, t in times.items()]


def table(results: list[StartupResult]) -> str:
    floor = results[0].median
    rows = ["| command | median | min | max | over budget (1 s) | × the bare interpreter |", "|---|---|---|---|---|---|"]
    for r in results:
        over = "no" if r.median < BUDGET_SECONDS else "**yes**"
        rows.append(f"| `{r.command}` | {r.median:.3f} s | {min(r.seconds):.3f} s | {max(r.seconds):.3f} s | {over} | "
                    f"{r.median / floor:.1f}× |")
    return "\n".join(rows)


def report(results: list[StartupResult], machine: dict, runs: int) -> str:
    return (f"# Start-up time of the `squeezeedge` command\n\n{datetime.date.today()}, {machine['arch']} "
            f"{machine['cpu']}, {machine['cores']} cores, Python {machine['python']}; command `squeezeedge bench "
            f"--startup` ({runs} runs of each, interleaved; wall time from spawn to exit of `python -m squeezeedge "
            "...`, median). Commands that do not compile import no TVM and no torch (tests/test_layers.py checks "
            "that building the parser imports neither).\n\n" + table(results) + "\n")
