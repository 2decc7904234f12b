"""The classify contract shared by every engine: one input line in, one JSON object out.

``{"text": ..., "intent": "HassTurnOn" | null, "confidence": 0.0-1.0, "slots": {...}}``, or
``{"text": ..., "error": "..."}`` for a line that cannot be processed. The same rules hold on
the device, so that every engine answers every line alike.
"""

from __future__ import annotations

import json
from typing import BinaryIO, Iterator, Protocol, TextIO

from .models.decode import Answer

# Longest command accepted, in bytes (the device's line buffer holds this plus a newline).
MAX_TEXT_BYTES = 512


class Engine(Protocol):
    name: str

    def classify(self, data: bytes) -> Answer: ...


def check_line(data: bytes) -> str | None:
    """Why ``data`` cannot be classified, or None if it can."""
    if len(data) > MAX_TEXT_BYTES:
        return f"command too long: {len(data)} bytes, the limit is {MAX_TEXT_BYTES}"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"command is not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})"
    if not data.strip(b" \t\r\n\v\f"):
        return "empty command"
    return None


def classify_line(engine: Engine, data: bytes) -> dict:
    text = data.decode("utf-8", errors="replace")
    problem = check_line(data)
    if problem is not None:
        return {"text": text, "error": problem}
    try:
        return engine.classify(data).to_json(text)
    except Exception as e:  # one bad line must not stop the stream
        return {"text": text, "error": f"{type(e).__name__}: {e}"}


def input_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Lines of a byte stream without their newline (and without a CR before it)."""
    for raw in stream:
        line = raw[:-1] if raw.endswith(b"\n") else raw
        yield line[:-1] if line.endswith(b"\r") else line


def write_json(obj: dict, out: TextIO) -> None:
    out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    out.flush()
