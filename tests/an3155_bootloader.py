"""An emulation of the STM32 system-memory UART bootloader (ST AN3155) on a pty, enough for
stm32flash: autobaud 0x7F -> ACK; Get (0x00), Get Version (0x01), Get ID (0x02), Read Memory
(0x11), Go (0x21), Write Memory (0x31), Erase (0x43) and Extended Erase (0x44), each command
byte followed by its complement, addresses and data protected by XOR checksums, NACK (0x1F) on
a bad checksum or an unknown command. It holds a 1 MiB flash (0xFF erased) at 0x08000000 with
the STM32F4 sector layout (4 x 16 KiB, 64 KiB, 7 x 128 KiB) and 128 KiB of SRAM.

    with An3155Bootloader(pid=0x0413) as bl:   # bl.port: the pty slave path stm32flash opens
        ...
        bl.flash[:n]                             # what was written
"""

from __future__ import annotations

import os
import select
import threading
import tty

ACK, NACK = 0x79, 0x1F
FLASH_BASE, FLASH_SIZE = 0x08000000, 1024 * 1024
SRAM_BASE, SRAM_SIZE = 0x20000000, 128 * 1024
F4_SECTORS = [16 * 1024] * 4 + [64 * 1024] + [128 * 1024] * 7
COMMANDS = [0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x44, 0x63, 0x73, 0x82, 0x92]


def _xor(data) -> int:
    x = 0
    for b in data:
        x ^= b
    return x


class _Closed(Exception):
    pass


class An3155Bootloader:
    def __init__(self, pid: int = 0x0413, version: int = 0x31, extended_erase: bool = True):
        self.pid = pid
        self.version = version
        self.extended_erase = extended_erase
        self.flash = bytearray(b"\xff" * FLASH_SIZE)
        self.sram = bytearray(SRAM_SIZE)
        self.log: list[str] = []          # the commands served, for the tests
        self.go_address: int | None = None
        self.synced = False
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self._stop = threading.Event()
        self._buf = bytearray()
        self._thread = threading.Thread(target=self._run, daemon=True)

    # ---- lifecycle ----
    def start(self) -> "An3155Bootloader":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- byte I/O on the master side ----
    def _read(self, n: int) -> bytes:
        while len(self._buf) < n:
            if self._stop.is_set():
                raise _Closed
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # no slave open right now (EIO): wait for the next opener
                self._stop.wait(0.02)
                continue
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _send(self, data) -> None:
        os.write(self.master, bytes(data))

    # ---- memory ----
    def _region(self, addr: int, n: int):
        if FLASH_BASE <= addr and addr + n <= FLASH_BASE + FLASH_SIZE:
            return self.flash, addr - FLASH_BASE
        if SRAM_BASE <= addr and addr + n <= SRAM_BASE + SRAM_SIZE:
            return self.sram, addr - SRAM_BASE
        return None, 0

    def _erase_sector(self, n: int) -> bool:
        if not 0 <= n < len(F4_SECTORS):
            return False
        start = sum(F4_SECTORS[:n])
        self.flash[start:start + F4_SECTORS[n]] = b"\xff" * F4_SECTORS[n]
        return True

    def _address(self):
        raw = self._read(5)
        if _xor(raw[:4]) != raw[4]:
            self._send([NACK])
            return None
        return int.from_bytes(raw[:4], "big")

    # ---- the protocol ----
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._serve_one()
        except _Closed:
            pass

    def _serve_one(self) -> None:
        cmd = self._read(1)[0]
        if cmd == 0x7F:  # autobaud; once synced the ROM treats it as a bad command
            self._send([NACK if self.synced else ACK])
            self.synced = True
            return
        if not self.synced:
            return  # the ROM ignores everything before autobaud
        comp = self._read(1)[0]
        if comp != cmd ^ 0xFF:
            self._send([NACK])
            return
        handler = {0x00: self._get, 0x01: self._get_version, 0x02: self._get_id, 0x11: self._read_memory,
                   0x21: self._go, 0x31: self._write_memory, 0x43: self._erase,
                   0x44: self._extended_erase}.get(cmd)
        if handler is None or (cmd == 0x43 and self.extended_erase) or (cmd == 0x44 and not self.extended_erase):
            self._send([NACK])
            return
        self.log.append(handler.__name__.lstrip("_"))
        handler()

    def _get(self):
        cmds = [c if not (c == 0x44 and not self.extended_erase) else 0x43 for c in COMMANDS]
        self._send([ACK, len(cmds), self.version, *cmds, ACK])

    def _get_version(self):
        self._send([ACK, self.version, 0x00, 0x00, ACK])

    def _get_id(self):
        self._send([ACK, 1, (self.pid >> 8) & 0xFF, self.pid & 0xFF, ACK])

    def _read_memory(self):
        self._send([ACK])
        addr = self._address()
        if addr is None:
            return
        self._send([ACK])
        n, c = self._read(2)
        mem, off = self._region(addr, n + 1)
        if c != n ^ 0xFF or mem is None:
            self._send([NACK])
            return
        self._send([ACK, *mem[off:off + n + 1]])

    def _go(self):
        self._send([ACK])
        addr = self._address()
        if addr is None:
            return
        self._send([ACK])
        self.go_address = addr
        self.synced = False  # the application runs now; a new session needs a reset + autobaud

    def _write_memory(self):
        self._send([ACK])
        addr = self._address()
        if addr is None:
            return
        self._send([ACK])
        n = self._read(1)[0]
        data = self._read(n + 1)
        chk = self._read(1)[0]
        mem, off = self._region(addr, n + 1)
        if chk != _xor([n, *data]) or mem is None:
            self._send([NACK])
            return
        if mem is self.flash:  # flash programming can only clear bits
            mem[off:off + n + 1] = bytes(a & b for a, b in zip(mem[off:off + n + 1], data))
        else:
            mem[off:off + n + 1] = data
        self._send([ACK])

    def _erase(self):
        self._send([ACK])
        n = self._read(1)[0]
        if n == 0xFF:  # global erase
            if self._read(1)[0] != 0x00:
                self._send([NACK])
                return
            self.flash[:] = b"\xff" * FLASH_SIZE
            self._send([ACK])
            return
        pages = self._read(n + 1)
        chk = self._read(1)[0]
        if chk != _xor([n, *pages]) or not all(self._erase_sector(p) for p in pages):
            self._send([NACK])
            return
        self._send([ACK])

    def _extended_erase(self):
        self._send([ACK])
        head = self._read(2)
        n = int.from_bytes(head, "big")
        if n >= 0xFFF0:  # 0xFFFF mass erase, 0xFFFE bank 1, 0xFFFD bank 2
            if self._read(1)[0] != _xor(head):
                self._send([NACK])
                return
            self.flash[:] = b"\xff" * FLASH_SIZE
            self._send([ACK])
            return
        raw = self._read(2 * (n + 1))
        chk = self._read(1)[0]
        pages = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]
        if chk != _xor([*head, *raw]) or not all(self._erase_sector(p) for p in pages):
            self._send([NACK])
            return
        self._send([ACK])
