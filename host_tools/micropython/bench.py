"""``squeezeedge bench --micropython``: the native module per arch — .mpy and weights sizes, heap
used by ``import squeezeedge``, instructions per command on QEMU boards — beside the bare-metal C
firmware of the same model on the same ISA. Writes benchmarks/MICROPYTHON.md.

Instructions are counted with QEMU's ``-icount shift=0`` (one instruction = 1 ns of virtual
time), read on the board as ``time.ticks_us()`` around ``squeezeedge.classify`` (so they include
the call from Python and building the result dict; resolution 1,000 instructions). The C
firmware's counts come from ``icount.count_firmware_instructions`` (unicorn, exact), for the same
sentences.
"""

from __future__ import annotations

import datetime
import json
import statistics
import subprocess
import sys
from pathlib import Path

from ..resources import BENCH_DIR
from .board import BOARD_ARCH, IMPORT_REPORT, ImportReport, QemuModuleBoard
from .natmod import ARCHES, build_native_module

DEFAULT_OUT = BENCH_DIR / "MICROPYTHON.md"
# The C firmware board that runs the same ISA (the reference for instructions per command).
C_BOARD = {"armv7emsp": "stm32f405", "rv32imc": "rv32-virt"}

def _unix_heap(module_dir: Path) -> int:
    from . import ports

    r = subprocess.run([str(ports.unix()), "-c", "import json\n" + IMPORT_REPORT], env=ports.unix_env(first=[module_dir]),
                       capture_output=True, text=True, check=True, timeout=60)
    return ImportReport(**json.loads(r.stdout)).heap_used


def _c_firmware_instructions(board: str, texts) -> list[int] | None:
    from .. import boards, icount

    try:
        fw = boards.build_board(board)
        return [r["se_classify"] for r in icount.count_firmware_instructions(fw.elf, texts, board)]
    except Exception as e:  # noqa: BLE001 - the comparison column is optional; say why it is empty
        print(f"bench: no C firmware count for {board}: {e}", file=sys.stderr)
        return None


def run(out: Path | None = DEFAULT_OUT, progress=None) -> str:
    from ..bench import machine
    from ..icount import ICOUNT_SENTENCES

    say = progress or (lambda s: None)
    rows = []
    for arch in ARCHES:
        say(f"{arch}: building the native module")
        mod = build_native_module(None, arch, progress=say)
        m = mod.manifest
        row = {"arch": arch, "runs_on": ARCHES[arch][2], "mpy": m["mpy_bytes"], "text": m.get("text_bytes"),
               "bss": m.get("bss_bytes"), "weights": m["weights_bytes"], "board": None, "heap": None,
               "instr": None, "c_instr": None}
        if arch == "x64":
            row["board"] = "unix port (no ROMFS: weights read into the heap)"
            row["heap"] = _unix_heap(mod.directory)
        board = next((b for b, a in BOARD_ARCH.items() if a == arch), None)
        if board:
            say(f"{arch}: {board} in QEMU (-icount shift=0)")
            with QemuModuleBoard(board, arch, icount=True, progress=say) as b:
                row["board"] = f"{board} ({b.import_report.machine})"
                row["heap"] = b.import_report.heap_used
                b.classify(ICOUNT_SENTENCES[:1])  # first call: caches warmed like on the C board
                row["instr"] = [r["ticks_us"] * 1000 for r in b.classify(ICOUNT_SENTENCES)]
            if arch in C_BOARD:
                say(f"{arch}: the C firmware ({C_BOARD[arch]}) for comparison")
                row["c_instr"] = _c_firmware_instructions(C_BOARD[arch], ICOUNT_SENTENCES)
        rows.append(row)
    say("user C module: MPS2_AN500 firmware with squeezeedge built in")
    um = _usermod_row(say)
    text = report(rows, machine(), um)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
    return text


def _elf_size(elf: Path) -> tuple[int, int]:
    """(flash: text + data, static RAM: data + bss) of an ARM ELF."""
    out = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(x) for x in out.splitlines()[1].split()[:3])
    return text + data, data + bss


def _usermod_row(say) -> dict:
    from . import ports
    from ..icount import ICOUNT_SENTENCES

    with QemuModuleBoard("MPS2_AN500", usermod=True, icount=True, progress=say) as b:
        heap = b.import_report.heap_used
        b.classify(ICOUNT_SENTENCES[:1])
        instr = [r["ticks_us"] * 1000 for r in b.classify(ICOUNT_SENTENCES)]
        elf = b.qemu.elf
    flash, ram = _elf_size(elf)
    flash0, ram0 = _elf_size(ports.qemu("MPS2_AN500"))
    return {"flash": flash - flash0, "ram": ram - ram0, "heap": heap, "instr": instr}


def _m(v) -> str:
    return "–" if v is None else f"{v / 1e6:.2f} M"


def report(rows: list[dict], mach: dict, usermod: dict | None = None) -> str:
    day = datetime.date.today().isoformat()
    lines = [
        "# SqueezeEdge on MicroPython",
        "",
        f"`squeezeedge bench --micropython`, {day}, {mach['arch']} {mach['cpu']} ({mach['cores']} cores); "
        "the shipped model; MicroPython v1.29.0-preview (.mpy 6.3) built from the pinned tree; QEMU 7.2.",
        "",
        "| arch | .mpy (code + tables) | of it: text / RAM (bss) | weights blob | board measured | heap used by "
        "`import squeezeedge` | instructions per command (MicroPython) | same ISA, bare-metal C firmware |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        instr, c = r["instr"], r["c_instr"]
        heap = f"{r['heap']:,} B" if r["heap"] is not None else "–"
        mpy_instr = f"{_m(min(instr))}–{_m(max(instr))}" if instr else "–"
        c_instr = f"{_m(min(c))}–{_m(max(c))} ({C_BOARD[r['arch']]})" if c else "–"
        lines.append(f"| {r['arch']} | {r['mpy']:,} B | {r['text'] or 0:,} / {r['bss'] or 0:,} B | "
                     f"{r['weights']:,} B | {r['board'] or 'none here (build only)'} | {heap} | {mpy_instr} | "
                     f"{c_instr} |")
    if usermod:
        u = usermod
        lines += ["", "The user C module (`squeezeedge build --micropython-usermod --arch armv7emsp`) built into the "
                  "MPS2_AN500 firmware, against the same firmware without it:", "",
                  "| firmware | flash added | static RAM added | heap used by `import squeezeedge` | instructions per command |",
                  "|---|---|---|---|---|",
                  f"| MPS2_AN500 + user C module | {u['flash']:,} B (code, weights, tables) | {u['ram']:,} B (arena, "
                  f"tokens, names table, protocol buffers) | {u['heap']:,} B | {_m(min(u['instr']))}–{_m(max(u['instr']))} |"]
    ratio = [statistics.median(i / j for i, j in zip(r["instr"], r["c_instr"]))
             for r in rows if r["instr"] and r["c_instr"]]
    lines += [
        "",
        "- Heap: `gc.mem_free()` after `gc.collect()` before and after the import; it holds the .mpy's code "
        "and tables (copied from ROMFS at import, as MicroPython does for every native module) and the module's "
        "RAM (arena, token buffers, the home's names table: 600 names). The weights stay in the ROMFS file "
        "(`info()['weights_address']` lies in the ROMFS partition; tested).",
        "- Instructions: the sentences of `squeezeedge build --icount` (\"turn off the kitchen lights\", "
        "\"set the thermostat to 21 degrees\", \"could you dim the bedroom lights to 30 percent please\", "
        "\"tell me a joke\"), min–max over the four, no home names. The C column is `se_classify` of the "
        "firmware (checks, tokenizer, model, decoding: the same work as `squeezeedge.classify`).",
    ]
    if ratio:
        lines.append("- MicroPython ÷ bare-metal C on the same ISA, median over sentences: "
                     + ", ".join(f"{x:.2f}×" for x in ratio) + " (the C firmware's count is unicorn's, exact; "
                     "the MicroPython count includes the Python call and the result dict).")
    return "\n".join(lines) + "\n"
