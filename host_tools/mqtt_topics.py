"""The MQTT topic layout and the Home Assistant discovery payload: their one definition.

The host tools (``mqtt``, ``bridge``, ``mqtt_acl``) use this module; the C devices
(firmware/ports/host/mqtt.c, firmware/ports/esp32/main/mqtt_link.c) use the header it writes,
``firmware/core/se_mqtt_topics.h`` (printf formats), which is committed because the ESP32 app
is built by ESP-IDF without our Python. After a change here, regenerate it with::

    python -m squeezeedge.mqtt_topics --write-header

(tests/test_mqtt_topics.py fails while the committed header differs). For a device id ``ID``
and a topic prefix ``P`` (``squeezeedge``; only the ESP32 app lets it be changed)::

    P/ID/cmd      requests, QoS 1
    P/ID/result   answers, QoS 1
    P/ID/status   retained "online" / "offline" (the last will)
    homeassistant/sensor/squeezeedge_ID/intent/config   retained discovery

Imports only the standard library (no paho), so anything may use it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

PREFIX = "squeezeedge"
PREFIX_MAX = 63  # the ESP32 app's configurable prefix (NVS/menuconfig), in bytes
DEVICE_MAX = 64
DEVICE_RE = re.compile(r"^[A-Za-z0-9_-]{1,%d}$" % DEVICE_MAX)  # also a Home Assistant id part: no escaping
ONLINE = "online"
OFFLINE = "offline"

# name → template over {prefix} and {device}; the discovery topic is Home Assistant's, so it keeps
# "squeezeedge_" (an id namespace, not the topic prefix) whatever the prefix is
TOPICS = {
    "cmd": "{prefix}/{device}/cmd",
    "result": "{prefix}/{device}/result",
    "status": "{prefix}/{device}/status",
    "discovery": "homeassistant/sensor/squeezeedge_{device}/intent/config",
}
CLIENT_ID = "squeezeedge-{device}"  # the devices' MQTT client id (persistent session)
ROLES = {  # for the header's comments
    "cmd": "requests to the device (QoS 1; one payload = one request line)",
    "result": "the device's answers (QoS 1, not retained; one JSON line, no newline)",
    "status": "retained SE_MQTT_ONLINE after each connect; the last will: SE_MQTT_OFFLINE",
    "discovery": "Home Assistant discovery (retained): SE_MQTT_DISCOVERY",
}

HEADER_PATH = Path(__file__).resolve().parent.parent / "firmware" / "core" / "se_mqtt_topics.h"
REGENERATE = "python -m squeezeedge.mqtt_topics --write-header"


def topics(device: str, prefix: str = PREFIX) -> dict[str, str]:
    """The topics of ``device`` by name (``cmd``, ``result``, ``status``, ``discovery``); no
    validation here (``mqtt.topics`` checks the id and allows the ``+`` wildcard)."""
    return {name: t.format(prefix=prefix, device=device) for name, t in TOPICS.items()}


def _discovery(device: str, result_topic: str, status_topic: str, model: str, sw_version: str) -> dict:
    """Home Assistant's MQTT discovery of one sensor: state = the last answer's intent, attributes
    = the whole answer, available while the device's status is online."""
    return {"name": "Intent", "unique_id": f"squeezeedge_{device}_intent",
            "object_id": f"squeezeedge_{device}_intent",
            "state_topic": result_topic, "value_template": "{{ value_json.intent }}",
            "json_attributes_topic": result_topic, "availability_topic": status_topic,
            "payload_available": ONLINE, "payload_not_available": OFFLINE,
            "icon": "mdi:microphone-message",
            "device": {"identifiers": [f"squeezeedge_{device}"], "name": f"SqueezeEdge {device}",
                       "manufacturer": "SqueezeEdge", "model": model, "sw_version": sw_version}}


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def discovery_config(device: str, model: str, sw_version: str, prefix: str = PREFIX) -> bytes:
    """The retained discovery payload: byte for byte what the C devices publish for the same
    strings (model and sw_version needing no JSON escaping there: theirs are constants)."""
    t = topics(device, prefix)
    return _json(_discovery(device, t["result"], t["status"], model, sw_version)).encode("utf-8")


# ---- the C header: the same definitions as printf formats ----

# A field of a template becomes a marker that neither JSON nor the constant text changes
# (private-use characters pass json.dumps(ensure_ascii=False) untouched), then a "%s".
_MARK = re.compile("\ue000([a-z_]+)\ue001")


def printf_format(text: str) -> tuple[str, list[str]]:
    """(a printf format, the fields its %s stand for, in order) of a text with markers."""
    fields = _MARK.findall(text)
    return _MARK.sub("%s", text.replace("%", "%%")), fields


# the parameters of each format, as its C _ARGS macro takes them
FORMAT_PARAMS = {**{name: ["prefix", "device"] for name in TOPICS}, "client_id": ["prefix", "device"],
                 "discovery_config": ["device", "result_topic", "status_topic", "model", "sw_version"]}


def printf_formats(prefix: str | None = None) -> dict[str, tuple[str, list[str]]]:
    """Each topic's, the client id's and the discovery payload's (``discovery_config``) printf
    format with its fields in order; ``prefix`` given, it is filled in instead of being a field."""
    m = {n: f"\ue000{n}\ue001" for n in ("prefix", "device", "result_topic", "status_topic", "model", "sw_version")}
    if prefix is not None:
        m["prefix"] = prefix
    texts = {name: t.format(**m) for name, t in TOPICS.items()}
    texts["client_id"] = CLIENT_ID.format(**m)
    texts["discovery_config"] = _json(_discovery(*(m[f] for f in FORMAT_PARAMS["discovery_config"])))
    return {name: printf_format(text) for name, text in texts.items()}


def c_string(text: str, width: int = 88) -> str:
    """A C string literal of printable ASCII text (all these definitions are), split after commas
    into adjacent literals of about ``width`` characters, one per line, when it is longer."""
    assert all(" " <= ch <= "~" for ch in text) and "??" not in text, text  # no trigraphs under -std=c99
    pieces, line = [], ""
    for part in re.findall(r"[^,]*,?", text)[:-1]:  # "a,b" -> "a,", "b"
        if line and len(line) + len(part) > width:
            pieces.append(line)
            line = ""
        line += part
    pieces.append(line)
    quoted = ['"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in pieces]
    return " \\\n    ".join(quoted)


def _define_format(name: str, fmt: str, fields: list[str], params: list[str], doc: str) -> list[str]:
    """NAME (a printf format) and NAME_ARGS(params...), which lists the arguments in the format's
    order: callers name what they pass and never count %s."""
    assert set(fields) <= set(params), (name, fields)
    args = ", ".join(f"({f})" for f in fields)
    signature = f"#define {name}_ARGS({', '.join(params)})"
    return [f"/* {doc} */", f"#define {name} {c_string(fmt)}",
            f"{signature} {args}" if len(signature) + len(args) < 110 else f"{signature} \\\n    {args}"]


def header_text() -> str:
    """The generated header, as committed at firmware/core/se_mqtt_topics.h."""
    formats = printf_formats()
    docs = {**ROLES, "client_id": "the MQTT client id",
            "discovery_config": "the retained discovery payload (JSON); model and sw_version must need no JSON escaping"}
    macros = {**{name: f"SE_MQTT_TOPIC_{name.upper()}" for name in TOPICS}, "client_id": "SE_MQTT_CLIENT_ID",
              "discovery_config": "SE_MQTT_DISCOVERY"}
    defines: list[str] = []
    for name, (fmt, fields) in formats.items():
        defines += _define_format(macros[name], fmt, fields, FORMAT_PARAMS[name], docs[name])
    longest = max(len(t.format(prefix="p" * PREFIX_MAX, device="d" * DEVICE_MAX)) for t in [*TOPICS.values(), CLIENT_ID])
    lines = [
        f"/* Generated by `{REGENERATE}` from host_tools/mqtt_topics.py: do not edit. */",
        "/* SqueezeEdge over MQTT: the topic layout and the Home Assistant discovery payload, for the C",
        " * devices (firmware/ports/host/mqtt.c, firmware/ports/esp32/main/mqtt_link.c). Each format",
        " * comes with NAME_ARGS(...), which puts the named values in the format's order:",
        " *   snprintf(buf, sizeof buf, SE_MQTT_TOPIC_CMD, SE_MQTT_TOPIC_CMD_ARGS(prefix, device)); */",
        "#ifndef SE_MQTT_TOPICS_H",
        "#define SE_MQTT_TOPICS_H",
        "",
        f"#define SE_MQTT_PREFIX {c_string(PREFIX)} /* the topic prefix the host tools use */",
        f"#define SE_MQTT_PREFIX_MAX {PREFIX_MAX}",
        f"#define SE_MQTT_DEVICE_MAX {DEVICE_MAX} /* a device id: 1..SE_MQTT_DEVICE_MAX of [A-Za-z0-9_-] */",
        "/* a buffer for any topic or client id of a prefix and device id within those limits */",
        f"#define SE_MQTT_TOPIC_CAP {longest + 1}",
        "/* the status payloads (retained): after each connect; on a clean stop and as the last will */",
        f"#define SE_MQTT_ONLINE {c_string(ONLINE)}",
        f"#define SE_MQTT_OFFLINE {c_string(OFFLINE)}",
        "",
        *defines,
        "",
        "#endif /* SE_MQTT_TOPICS_H */",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m squeezeedge.mqtt_topics",
                                description=f"Print (or --write-header: write {HEADER_PATH.name}) the C header of "
                                            "the MQTT topic layout and discovery payload.")
    p.add_argument("--write-header", action="store_true", help=f"write {HEADER_PATH}")
    args = p.parse_args(argv)
    text = header_text()
    if args.write_header:
        HEADER_PATH.write_text(text)
        print(f"wrote {HEADER_PATH}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
