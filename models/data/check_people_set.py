#!/usr/bin/env python3
"""Checker for the hand-written, evaluation-only "people" test set.

Files checked (next to this script):
  people_test.jsonl      in-scope sentences {"text", "intent", "slots"}
  people_oos_test.txt    out-of-scope lines, one per line

Run:  .venv/bin/python models/data/check_people_set.py
Exit status 1 on any error.  Uses only the stdlib plus the intents.json file
shipped with the home_assistant_intents package (intent and slot names only).
"""
import collections
import json
import os
import re
import string
import sys

import home_assistant_intents

HERE = os.path.dirname(os.path.abspath(__file__))
TEST = os.path.join(HERE, "people_test.jsonl")
OOS = os.path.join(HERE, "people_oos_test.txt")
INTENTS_JSON = os.path.join(os.path.dirname(home_assistant_intents.__file__), "intents.json")

INTENTS = """HassTurnOn HassTurnOff HassLightSet HassClimateSetTemperature
HassClimateGetTemperature HassClimateSetFanMode HassFanSetSpeed HassSetPosition
HassGetState HassGetWeather HassGetCurrentTime HassGetCurrentDate HassStartTimer
HassCancelTimer HassCancelAllTimers HassPauseTimer HassUnpauseTimer
HassIncreaseTimer HassDecreaseTimer HassTimerStatus HassMediaPause
HassMediaUnpause HassMediaNext HassMediaPrevious HassMediaPlayerMute
HassMediaPlayerUnmute HassSetVolume HassSetVolumeRelative HassMediaSearchAndPlay
HassShoppingListAddItem HassListAddItem HassListCompleteItem HassListRemoveItem
HassVacuumStart HassVacuumReturnToBase HassVacuumCleanArea
HassLawnMowerStartMowing HassLawnMowerDock HassNevermind HassBroadcast
HassRespond HassShoppingListCompleteItem""".split()

MIN_PER_INTENT = 12
MIN_IN_SCOPE = 1600
MIN_OOS = 550

EXTRA_SLOTS = {"domain", "device_class", "state"}
NUMERIC_SLOTS = {
    "brightness", "temperature", "percentage", "position", "volume_level",
    "hours", "minutes", "seconds", "start_hours", "start_minutes", "start_seconds",
}
SPAN_SLOTS = {"area", "floor", "name", "item", "search_query", "message", "color", "fan_mode"}
NUM_RE = re.compile(r"^[+-]?\d+(\.\d+)?$")
PUNCT_RE = re.compile("[" + re.escape(string.punctuation) + "\u2018\u2019\u201c\u201d]")


def normalise(text):
    text = PUNCT_RE.sub(" ", text.lower())
    return " ".join(text.split())


def main():
    errors = []
    with open(INTENTS_JSON, encoding="utf-8") as f:
        meta = json.load(f)
    allowed = {}
    for intent in INTENTS:
        if intent not in meta:
            errors.append(f"intent {intent} not in intents.json")
            allowed[intent] = set(EXTRA_SLOTS)
        else:
            allowed[intent] = set(meta[intent].get("slots", {})) | EXTRA_SLOTS

    seen = {}
    counts = collections.Counter()
    n_in = 0
    with open(TEST, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            where = f"{os.path.basename(TEST)}:{lineno}"
            if not line.strip():
                errors.append(f"{where}: blank line")
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                errors.append(f"{where}: bad JSON ({e})")
                continue
            if not isinstance(obj, dict) or set(obj) != {"text", "intent", "slots"}:
                errors.append(f"{where}: keys must be exactly text/intent/slots")
                continue
            text, intent, slots = obj["text"], obj["intent"], obj["slots"]
            if not isinstance(text, str) or not text.strip() or text != text.strip():
                errors.append(f"{where}: text empty or has outer whitespace")
                continue
            if intent not in allowed:
                errors.append(f"{where}: unknown intent {intent!r}")
                continue
            if not isinstance(slots, dict):
                errors.append(f"{where}: slots must be an object")
                continue
            low = text.lower()
            for k, v in slots.items():
                if k not in allowed[intent]:
                    errors.append(f"{where}: slot {k!r} not allowed for {intent}")
                    continue
                if not isinstance(v, str) or not v:
                    errors.append(f"{where}: slot {k!r} value must be a non-empty string")
                    continue
                if v != v.lower():
                    errors.append(f"{where}: slot {k!r} value {v!r} not lowercase")
                if k == "volume_step":
                    if v not in ("up", "down") and not NUM_RE.match(v):
                        errors.append(f"{where}: volume_step {v!r} must be up/down or signed number")
                elif k in NUMERIC_SLOTS:
                    if not NUM_RE.match(v):
                        errors.append(f"{where}: numeric slot {k!r}={v!r} not a digit string")
                if k in SPAN_SLOTS and v not in low:
                    errors.append(f"{where}: span slot {k!r}={v!r} not found in text")
            key = normalise(text)
            if key in seen:
                errors.append(f"{where}: duplicate of {seen[key]} ({text!r})")
            else:
                seen[key] = where
            counts[intent] += 1
            n_in += 1

    n_oos = 0
    with open(OOS, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            where = f"{os.path.basename(OOS)}:{lineno}"
            line = line.rstrip("\n")
            if not line.strip():
                errors.append(f"{where}: blank line")
                continue
            if line != line.strip():
                errors.append(f"{where}: leading/trailing whitespace")
            key = normalise(line)
            if key in seen:
                errors.append(f"{where}: duplicate of {seen[key]} ({line!r})")
            else:
                seen[key] = where
            n_oos += 1

    print("per-intent counts:")
    for intent in INTENTS:
        flag = "" if counts[intent] >= MIN_PER_INTENT else "   <-- too few"
        print(f"  {intent:32s} {counts[intent]:5d}{flag}")
        if counts[intent] < MIN_PER_INTENT:
            errors.append(f"{intent}: only {counts[intent]} sentences (< {MIN_PER_INTENT})")
    print(f"in-scope: {n_in}   out-of-scope: {n_oos}")
    if n_in < MIN_IN_SCOPE:
        errors.append(f"only {n_in} in-scope sentences (< {MIN_IN_SCOPE})")
    if n_oos < MIN_OOS:
        errors.append(f"only {n_oos} out-of-scope lines (< {MIN_OOS})")

    for e in errors[:200]:
        print("ERROR:", e)
    if len(errors) > 200:
        print(f"... and {len(errors) - 200} more errors")
    if errors:
        print(f"FAILED with {len(errors)} error(s)")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
