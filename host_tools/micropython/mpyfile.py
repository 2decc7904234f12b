"""What an .mpy file needs and what a MicroPython offers, and whether the two match.

An .mpy file starts with 4 bytes (py/persistentcode.h, tools/mpy-tool.py ``read_mpy``)::

    b"M", MPY_VERSION, feature byte, small-int bits

where the feature byte is ``sub_version | arch << 2 | 0x40 if arch flags follow`` (arch 0 = none:
bytecode only). Arch flags (only RV32 uses them: its ISA extensions, e.g. Zba) follow as a varuint.
A MicroPython reports the same for itself in ``sys.implementation._mpy``: ``MPY_VERSION |
(sub_version | arch << 2) << 8 | rv32_extensions << 16``.

The firmware's own check (py/persistentcode.c ``mp_raw_code_load``), mirrored by ``refusal``:
the version must be equal; a native .mpy (arch != none) also needs the same sub-version, an arch
the firmware runs (ARM: any of armv6m..its own arch, e.g. an armv7emdp Cortex-M7 runs armv6m,
armv7m, armv7em, armv7emsp and armv7emdp code; others: exactly its own) and RV32 extensions it has.
"""

from __future__ import annotations

from dataclasses import dataclass
# MP_NATIVE_ARCH_* in py/persistentcode.h, in order.
ARCHS = ("none", "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
         "xtensa", "xtensawin", "rv32imc", "rv64imc")
_ARM_M = ("armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp")
FLAGS_PRESENT = 0x40


def _arch_name(code: int) -> str:
    return ARCHS[code] if code < len(ARCHS) else f"arch {code}"


@dataclass(frozen=True)
class MpyFormat:
    """The .mpy format of a file (``from_file``) or of a running MicroPython (``from_sys_mpy``)."""
    version: int
    sub_version: int
    arch: str
    arch_flags: int = 0

    @property
    def version_pair(self) -> tuple[int, int]:
        return (self.version, self.sub_version)

    def describe(self) -> str:
        flags = f" (arch flags 0x{self.arch_flags:x})" if self.arch_flags else ""
        return f".mpy {self.version}.{self.sub_version}, {self.arch}{flags}"

    @classmethod
    def from_header(cls, data: bytes, name: str = ".mpy file") -> "MpyFormat":
        if len(data) < 4 or data[0:1] != b"M":
            raise ValueError(f"{name} is not an .mpy file (it does not start with b'M')")
        feat = data[2]
        flags = 0
        if feat & FLAGS_PRESENT:
            i = 4
            while True:  # a varuint, most significant group first
                b = data[i]
                flags = (flags << 7) | (b & 0x7F)
                i += 1
                if not b & 0x80:
                    break
        return cls(data[1], feat & 3, _arch_name((feat >> 2) & 0x0F), flags)

    @classmethod
    def from_file(cls, path) -> "MpyFormat":
        with open(path, "rb") as f:
            return cls.from_header(f.read(16), str(path))

    @classmethod
    def from_sys_mpy(cls, value: int) -> "MpyFormat":
        """From ``sys.implementation._mpy`` of a running MicroPython."""
        feat = (value >> 8) & 0xFF
        return cls(value & 0xFF, feat & 3, _arch_name((feat >> 2) & 0x0F), value >> 16)


def runs_arch(board_arch: str, mpy_arch: str) -> bool:
    """Whether firmware of ``board_arch`` runs native code for ``mpy_arch`` (MPY_FEATURE_ARCH_TEST)."""
    if board_arch in _ARM_M and mpy_arch in _ARM_M:
        return _ARM_M.index(mpy_arch) <= _ARM_M.index(board_arch)
    return board_arch == mpy_arch


def refusal(board: MpyFormat, mpy: MpyFormat, what: str = "the module") -> str | None:
    """None when ``board`` loads ``mpy``; else one sentence saying why not and what to do."""
    if mpy.version != board.version or (mpy.arch != "none" and mpy.sub_version != board.sub_version):
        return (f"the board runs a MicroPython with {board.describe().split(',')[0]}, but {what} is "
                f"{mpy.describe().split(',')[0]}: update the board's MicroPython to a release with "
                f".mpy {mpy.version}.{mpy.sub_version} (or rebuild {what} for its version)")
    if mpy.arch != "none" and board.arch == "none":
        return f"the board's MicroPython cannot load native code (its .mpy arch is none), and {what} is native {mpy.arch} code"
    if mpy.arch != "none" and not runs_arch(board.arch, mpy.arch):
        return (f"the board's MicroPython runs {board.arch} native code, but {what} is built for {mpy.arch}: "
                f"rebuild it with --arch {board.arch}")
    if mpy.arch_flags & ~board.arch_flags:
        return (f"{what} uses RV32 extensions 0x{mpy.arch_flags:x}, the board's MicroPython offers only "
                f"0x{board.arch_flags:x}: rebuild it without them")
    return None
