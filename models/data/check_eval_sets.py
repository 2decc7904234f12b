"""Sanity check for the hand-written evaluation sets (paraphrase_dev.jsonl, out_of_scope_dev/test.txt)."""
import json, re, sys, collections, pathlib
D = pathlib.Path(__file__).resolve().parent
INTENTS = """HassTurnOn HassTurnOff HassLightSet HassClimateSetTemperature HassClimateGetTemperature
HassClimateSetFanMode HassFanSetSpeed HassSetPosition HassGetState HassGetWeather HassGetCurrentTime
HassGetCurrentDate HassStartTimer HassCancelTimer HassCancelAllTimers HassPauseTimer HassUnpauseTimer
HassIncreaseTimer HassDecreaseTimer HassTimerStatus HassMediaPause HassMediaUnpause HassMediaNext
HassMediaPrevious HassMediaPlayerMute HassMediaPlayerUnmute HassSetVolume HassSetVolumeRelative
HassMediaSearchAndPlay HassShoppingListAddItem HassListAddItem HassListCompleteItem HassListRemoveItem
HassVacuumStart HassVacuumReturnToBase HassVacuumCleanArea HassLawnMowerStartMowing HassLawnMowerDock
HassNevermind HassBroadcast HassRespond HassShoppingListCompleteItem""".split()
NUMERIC = {"brightness","temperature","position","percentage","volume_level","hours","minutes","seconds",
           "start_hours","start_minutes","start_seconds"}
try:  # allowed slot names per intent, from the installed home_assistant_intents package
    import home_assistant_intents, os
    meta = json.load(open(os.path.join(os.path.dirname(home_assistant_intents.__file__), "intents.json")))
    ALLOWED = {k: set((v.get("slots") or {})) | {"domain","device_class","state"} for k, v in meta.items()}
except Exception as e:
    print("warning: could not load intents.json:", e); ALLOWED = None

def norm(s): return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", s.lower())).strip()
errors = []
rows = []
for i, line in enumerate(open(D / "paraphrase_dev.jsonl", encoding="utf-8"), 1):
    try: o = json.loads(line)
    except Exception as e: errors.append(f"paraphrase_dev.jsonl:{i}: bad json {e}"); continue
    if set(o) != {"text","intent","slots"}: errors.append(f"paraphrase_dev.jsonl:{i}: keys {sorted(o)}")
    if o.get("intent") not in INTENTS: errors.append(f"paraphrase_dev.jsonl:{i}: unknown intent {o.get('intent')}")
    for k, v in o.get("slots", {}).items():
        if not isinstance(v, str) or v != v.lower(): errors.append(f"paraphrase_dev.jsonl:{i}: slot {k}={v!r} not lowercase str")
        if ALLOWED and o.get("intent") in ALLOWED and k not in ALLOWED[o["intent"]]:
            errors.append(f"paraphrase_dev.jsonl:{i}: slot {k} not defined for {o['intent']}")
        if k in NUMERIC and not re.fullmatch(r"-?\d+(\.\d+)?", v): errors.append(f"paraphrase_dev.jsonl:{i}: {k}={v!r} not numeric")
        if k in {"area","floor","name","item","search_query","message","color","fan_mode"} and v not in o["text"].lower():
            errors.append(f"paraphrase_dev.jsonl:{i}: {k}={v!r} not found in text")
    rows.append(o)

sets = {"paraphrase_dev.jsonl": [r["text"] for r in rows]}
for f in ["out_of_scope_dev.txt", "out_of_scope_test.txt"]:
    lines = open(D / f, encoding="utf-8").read().split("\n")
    if lines and lines[-1] == "": lines.pop()
    for i, l in enumerate(lines, 1):
        if not l.strip() or l != l.strip(): errors.append(f"{f}:{i}: empty line or stray whitespace")
    sets[f] = lines
seen = {}
for f, texts in sets.items():
    for t in texts:
        n = norm(t)
        if n in seen: errors.append(f"duplicate: {t!r} in {f} and {seen[n]}")
        else: seen[n] = f

for f, texts in sets.items(): print(f"{f}: {len(texts)} lines")
c = collections.Counter(r["intent"] for r in rows)
print("per intent:"); [print(f"  {k:30s} {v}") for k, v in sorted(c.items(), key=lambda x: -x[1])]
missing = [k for k in INTENTS if c[k] < 2]
if missing: errors.append(f"intents with <2 examples: {missing}")
groups = {"onoff/light/climate": lambda k: k in {"HassTurnOn","HassTurnOff","HassLightSet","HassClimateSetTemperature","HassClimateGetTemperature"},
          "timers": lambda k: "Timer" in k, "media/volume": lambda k: "Media" in k or "Volume" in k}
n = len(rows)
for g, fn in groups.items():
    m = sum(v for k, v in c.items() if fn(k)); print(f"group {g}: {m} ({100*m/n:.0f}%)")
print("errors:", len(errors)); [print("  " + e) for e in errors]
sys.exit(1 if errors else 0)
