"""End-to-end benchmark of the device path: latency over a serial line and over MQTT, and
sustained commands per second with many requests in flight (checking that none is lost).

It measures the host emulator, which runs the same C as the boards; on a board the serial
line's baud rate and the chip's speed add their own share.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass

from .resources import BENCH_DIR
from .transport import Transport, TransportError


@dataclass
class E2EResult:
    path: str  # "serial" or "MQTT"
    requests: int
    p50_ms: float
    p99_ms: float
    in_flight: int
    per_second: float
    lost: int
    duplicated: int
    device_p50_us: float


def _request_line(i: int, text: str) -> bytes:
    return json.dumps({"id": i, "text": text}).encode()


def sequential_latencies(transport: Transport, texts: list[str], timeout: float) -> tuple[list[float], list[int]]:
    """Round-trip milliseconds of one request at a time, and the device's own inference times."""
    latencies, device_us = [], []
    for text in texts:
        started = time.perf_counter()
        reply = transport.request({"text": text}, timeout)
        latencies.append(1000 * (time.perf_counter() - started))
        device_us.append(int(reply.get("time_us", 0)))
    return latencies, device_us


def pipelined(transport: Transport, texts: list[str], in_flight: int, timeout: float) -> tuple[float, int, int]:
    """Keep ``in_flight`` requests outstanding until all are sent; return (seconds, lost, duplicated)."""
    pending: set[int] = set()
    seen: set[int] = set()
    duplicated = 0
    next_id = 0
    started = time.perf_counter()
    deadline = started + timeout + len(texts) * 0.05
    while next_id < len(texts) or pending:
        while next_id < len(texts) and len(pending) < in_flight:
            transport.write_line(_request_line(next_id, texts[next_id]))
            pending.add(next_id)
            next_id += 1
        try:
            reply = json.loads(transport.read_line(max(0.1, deadline - time.perf_counter())))
        except TransportError:
            break  # deadline: what is still pending is lost
        rid = reply.get("id")
        if rid in seen:
            duplicated += 1
        elif rid in pending:
            pending.discard(rid)
            seen.add(rid)
    return time.perf_counter() - started, len(pending), duplicated


def measure(path: str, transport: Transport, texts: list[str], in_flight: int, timeout: float = 10.0) -> E2EResult:
    latencies, device_us = sequential_latencies(transport, texts, timeout)
    seconds, lost, duplicated = pipelined(transport, texts, in_flight, timeout)
    q = statistics.quantiles(latencies, n=100)
    return E2EResult(path, len(texts), statistics.median(latencies), q[98], in_flight, len(texts) / seconds, lost,
                     duplicated, statistics.median(device_us))


def run(texts: list[str], in_flight: int = 100, model=None) -> list[E2EResult]:
    """Both paths on a host emulator of ``model`` (default: the shipped model)."""
    from .engines import open_device_engine, open_mqtt_engine

    results = []
    with open_device_engine("emulator", model=model) as device:
        results.append(measure("serial (TCP socket)", device.transport, texts, in_flight))
    with open_mqtt_engine(None, "bench", model=model) as device:
        results.append(measure("MQTT (in-process amqtt)", device.transport, texts, in_flight))
    return results


def format_table(results: list[E2EResult]) -> str:
    rows = ["| path | requests | latency p50 | latency p99 | device inference p50 | commands/s with N in flight | lost | duplicated |",
            "|---|---|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r.path} | {r.requests} | {r.p50_ms:.2f} ms | {r.p99_ms:.2f} ms | {r.device_p50_us:.0f} µs | "
                    f"{r.per_second:,.0f} (N={r.in_flight}) | {r.lost} | {r.duplicated} |")
    return "\n".join(rows)


DEFAULT_OUT = BENCH_DIR / "E2E.md"
