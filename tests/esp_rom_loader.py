"""An emulation of the ESP32 / ESP32-S3 / ESP32-C3 ROM serial bootloader ("UART download mode"),
enough for esptool 5.x to detect the chip, attach the SPI flash, write, verify and reset, with or
without its flasher stub. On a pty (``bl.port`` is the slave path) or on a TCP socket
(``transport="tcp"``, ``bl.port`` is ``socket://127.0.0.1:N``).

It follows Espressif's published serial protocol,
https://docs.espressif.com/projects/esptool/en/latest/advanced-topics/serial-protocol.html
(source: espressif/esptool docs/en/advanced-topics/serial-protocol.rst), and the installed
esptool's loader.py / targets/*.py where the page leaves a detail open:

- SLIP framing: every packet between 0xC0 bytes, 0xC0 -> 0xDB 0xDC, 0xDB -> 0xDB 0xDD.
- Request ``<BBHI`` (0x00, command, size, checksum) + data; response ``<BBHI`` (0x01, command,
  size, value) + data + status. The ROM ends every response with 4 status bytes (status,
  error, 0, 0); the stub with 2. ROM errors: 0x05 invalid message, 0x06 failed to act,
  0x07 bad checksum, 0x08 flash write error (the block read back differs), 0x0B deflate error.
- The checksum of FLASH_DATA / FLASH_DEFL_DATA / MEM_DATA is 0xEF XOR every data byte; a
  wrong one is answered with error 0x07 and nothing is written.
- SYNC (0x07 0x07 0x12 0x20 + 32 x 0x55) is answered 8 times; the ROM's value is non-zero,
  the stub's is 0 (that is how esptool tells them apart). Nothing is answered before SYNC:
  the ROM has not detected the baud rate yet.
- Chip detection: GET_SECURITY_INFO (20 bytes: flags, flash_crypt_cnt, 7 key purposes,
  chip_id, api_version) on the ESP32-S3 (chip id 9) and ESP32-C3 (chip id 5); the ESP32's
  ROM does not know the command (error 0x05), so esptool falls back to READ_REG of the magic
  word at 0x40001000 (0x00F01D83).
- READ_REG / WRITE_REG on a register file (0 unless written); esptool's flash-id and SFDP
  probes drive the SPI0 controller's "user command" registers, so a WRITE_REG that sets
  SPI_CMD_USR runs the command against an emulated SPI NOR chip (RDID 0x9F -> JEDEC id,
  RDSFDP 0x5A -> "SFDP") and clears the bit, as the hardware does.
- SPI_ATTACH (8 bytes on the ROM, 4 on the stub), SPI_SET_PARAMS (24 bytes).
- FLASH_BEGIN / FLASH_DATA / FLASH_END and FLASH_DEFL_BEGIN / _DATA / _END (zlib stream):
  the ROM erases the whole region on BEGIN (the ESP32 ROM takes 16 parameter bytes, the
  newer ROMs 20 with an "encrypted" word); the stub erases as it writes. Programming only
  clears bits, as on NOR flash. Blocks must arrive in sequence.
- SPI_FLASH_MD5: the ROM answers with 32 hex ASCII characters, the stub with 16 raw bytes.
- CHANGE_BAUDRATE is acknowledged and recorded (a pty or socket has no line rate).
- MEM_BEGIN / MEM_DATA / MEM_END load RAM; when MEM_END jumps to the entry point of the
  flasher stub esptool ships for this chip, and the RAM holds exactly that stub's text and
  data, the emulation "runs" it: it sends the unsolicited OHAI packet and from then on
  speaks the stub's dialect. Any other code "runs" as an application and stops answering.
- FLASH_END / FLASH_DEFL_END asking to leave the loader (ROM), or to reboot (stub), start the
  "application": nothing more is answered until the next ``reset_to_bootloader()``.

    with EspRomLoader("esp32c3") as bl:          # bl.port: what esptool opens
        ...
        bl.flash[0x10000:0x10000 + n]            # what was written
        bl.log                                   # the commands served, by name
        bl.reads                                 # the registers esptool read
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import select
import socket
import struct
import threading
import tty
import zlib
from dataclasses import dataclass
from pathlib import Path

ROM_INVALID, ROM_FAILED, ROM_BAD_CRC, ROM_FLASH_WRITE, ROM_DEFLATE = 0x05, 0x06, 0x07, 0x08, 0x0B
STUB_UNIMPLEMENTED, STUB_BAD_DATA, STUB_BAD_CRC, STUB_DEFLATE = 0xFF, 0xC1, 0xC2, 0xC5
CHECKSUM_MAGIC = 0xEF
SECTOR = 0x1000
SYNC_DATA = b"\x07\x07\x12\x20" + b"\x55" * 32
MAGIC_REG = 0x40001000
SPI_CMD_USR = 1 << 18

NAMES = {0x02: "FLASH_BEGIN", 0x03: "FLASH_DATA", 0x04: "FLASH_END", 0x05: "MEM_BEGIN", 0x06: "MEM_END",
         0x07: "MEM_DATA", 0x08: "SYNC", 0x09: "WRITE_REG", 0x0A: "READ_REG", 0x0B: "SPI_SET_PARAMS",
         0x0D: "SPI_ATTACH", 0x0F: "CHANGE_BAUDRATE", 0x10: "FLASH_DEFL_BEGIN", 0x11: "FLASH_DEFL_DATA",
         0x12: "FLASH_DEFL_END", 0x13: "SPI_FLASH_MD5", 0x14: "GET_SECURITY_INFO"}


@dataclass(frozen=True)
class Chip:
    name: str                # esptool's CHIP_NAME
    magic: int               # the word at 0x40001000
    chip_id: int | None      # GET_SECURITY_INFO's chip id; None: the ROM has no such command
    spi_base: int            # SPI0/SPI1 controller ("SPI_REG_BASE")
    usr: int                 # register offsets: SPI_USR, SPI_USR2, SPI_MISO_DLEN, SPI_W0
    usr2: int
    miso_dlen: int
    w0: int
    long_flash_begin: bool   # FLASH_BEGIN carries the 5th "encrypted" word


CHIPS = {
    "esp32": Chip("ESP32", 0x00F01D83, None, 0x3FF42000, 0x1C, 0x24, 0x2C, 0x80, False),
    "esp32s3": Chip("ESP32-S3", 0x00000009, 9, 0x60002000, 0x18, 0x20, 0x28, 0x58, True),
    "esp32c3": Chip("ESP32-C3", 0x1B31506F, 5, 0x60002000, 0x18, 0x20, 0x28, 0x58, True),
}


def checksum(data: bytes) -> int:
    c = CHECKSUM_MAGIC
    for b in data:
        c ^= b
    return c


def slip_encode(packet: bytes) -> bytes:
    return b"\xc0" + packet.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


def _known_stubs(chip: str) -> list[dict]:
    """The flasher stubs the installed esptool uploads for ``chip`` (each version it ships)."""
    import esptool

    out = []
    for sub in ("2", "1"):
        p = Path(esptool.__file__).parent / "targets" / "stub_flasher" / sub / f"{chip}.json"
        if p.is_file():
            j = json.loads(p.read_text())
            out.append({"entry": j["entry"], "text_start": j["text_start"], "text": base64.b64decode(j["text"]),
                        "data_start": j.get("data_start"),
                        "data": base64.b64decode(j["data"]) if "data" in j else None})
    return out


class _Closed(Exception):
    pass


class EspRomLoader:
    def __init__(self, chip: str = "esp32c3", flash_size: int = 4 * 1024 * 1024, transport: str = "pty",
                 jedec_id: int = 0x16405E, stuck_erased: int | None = None):
        if chip not in CHIPS:
            raise ValueError(f"unknown chip {chip!r}; one of {', '.join(CHIPS)}")
        self.chip_key = chip
        self.chip = CHIPS[chip]
        self.flash = bytearray(b"\xff" * flash_size)
        self.jedec_id = jedec_id              # 0x5E vendor, 0x40 type, 0x16 = 4 MB (esptool's size table)
        self.stuck_erased = stuck_erased      # a worn-out flash byte that stays 0xFF whatever is written
        self.regs: dict[int, int] = {MAGIC_REG: self.chip.magic}
        self.ram: dict[int, bytearray] = {}   # MEM_BEGIN address -> bytes loaded there
        self.log: list[str] = []
        self.reads: list[int] = []            # READ_REG addresses, in order
        self.baud_changes: list[int] = []
        self.stub_running = False
        self.app_running = False
        self.synced = False
        self.attached = False
        self.transport = transport
        self._stop = threading.Event()
        self._buf = bytearray()
        self._write: dict | None = None       # the FLASH_/FLASH_DEFL_ download in progress
        self._mem: dict | None = None
        if transport == "pty":
            self.master, self.slave = os.openpty()
            tty.setraw(self.slave)
            self.port = os.ttyname(self.slave)
            self._server = None
        elif transport == "tcp":
            self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._server.bind(("127.0.0.1", 0))
            self._server.listen(1)
            self.port = f"socket://127.0.0.1:{self._server.getsockname()[1]}"
            self.master = self.slave = None
            self._conn: socket.socket | None = None
        else:
            raise ValueError("transport is pty or tcp")
        self._thread = threading.Thread(target=self._run, daemon=True)

    # ---- lifecycle ----
    def start(self) -> "EspRomLoader":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for fd in (self.master, self.slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        for s in (getattr(self, "_conn", None), self._server):
            if s is not None:
                s.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def reset_to_bootloader(self) -> None:
        """What EN + BOOT low does: the ROM loader again, RAM and the stub gone, flash kept."""
        self.stub_running = self.app_running = self.synced = self.attached = False
        self.ram.clear()
        self._write = self._mem = None

    def written(self, offset: int, n: int) -> bytes:
        return bytes(self.flash[offset:offset + n])

    # ---- bytes in and out ----
    def _read_some(self) -> bytes:
        while not self._stop.is_set():
            if self._server is not None:
                if self._conn is None:
                    r, _, _ = select.select([self._server], [], [], 0.05)
                    if r:
                        self._conn, _ = self._server.accept()
                    continue
                r, _, _ = select.select([self._conn], [], [], 0.05)
                if not r:
                    continue
                chunk = self._conn.recv(65536)
                if not chunk:  # the host closed the socket: wait for the next one
                    self._conn.close()
                    self._conn = None
                    continue
                return chunk
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                return os.read(self.master, 65536)
            except OSError:  # no slave open right now (EIO): wait for the next opener
                self._stop.wait(0.02)
        raise _Closed

    def _send(self, data: bytes) -> None:
        if self._server is not None:
            if self._conn is not None:
                self._conn.sendall(data)
        else:
            os.write(self.master, data)

    def _packets(self):
        """SLIP frames from the line; a frame with a bad escape is dropped, as the ROM does."""
        frame, inside, esc = bytearray(), False, False
        while True:
            for b in self._read_some():
                if b == 0xC0:
                    if inside and frame:
                        yield bytes(frame)
                    frame, inside, esc = bytearray(), True, False
                elif not inside:
                    continue
                elif esc:
                    esc = False
                    if b == 0xDC:
                        frame.append(0xC0)
                    elif b == 0xDD:
                        frame.append(0xDB)
                    else:
                        frame, inside = bytearray(), False
                elif b == 0xDB:
                    esc = True
                else:
                    frame.append(b)

    # ---- responses ----
    def _respond(self, op: int, value: int = 0, data: bytes = b"", error: int = 0) -> None:
        status = bytes([1 if error else 0, error])
        if not self.stub_running:
            status += b"\x00\x00"
        payload = data + status
        self._send(slip_encode(struct.pack("<BBHI", 0x01, op, len(payload), value) + payload))

    def _fail(self, op: int, rom_error: int, stub_error: int) -> None:
        self._respond(op, error=stub_error if self.stub_running else rom_error)

    # ---- the protocol ----
    def _run(self) -> None:
        try:
            for pkt in self._packets():
                self._serve(pkt)
        except _Closed:
            pass

    def _serve(self, pkt: bytes) -> None:
        if self.app_running or len(pkt) < 8:
            return
        direction, op, size, chk = struct.unpack("<BBHI", pkt[:8])
        data = pkt[8:]
        if direction != 0x00:
            return
        if op == 0x08:
            self._sync(data)
            return
        if not self.synced:
            return
        self.log.append(NAMES.get(op, f"0x{op:02x}"))
        if len(data) != size:
            self._fail(op, ROM_INVALID, STUB_BAD_DATA)
            return
        handler = {0x02: self._flash_begin, 0x03: self._flash_data, 0x04: self._flash_end,
                   0x05: self._mem_begin, 0x06: self._mem_end, 0x07: self._mem_data, 0x09: self._write_reg,
                   0x0A: self._read_reg, 0x0B: self._spi_set_params, 0x0D: self._spi_attach,
                   0x0F: self._change_baud, 0x10: self._flash_begin, 0x11: self._flash_data,
                   0x12: self._flash_end, 0x13: self._md5, 0x14: self._security_info}.get(op)
        if handler is None or (op == 0x14 and self.chip.chip_id is None and not self.stub_running):
            self._fail(op, ROM_INVALID, STUB_UNIMPLEMENTED)
            return
        handler(op, data, chk)

    def _sync(self, data: bytes) -> None:
        if data != SYNC_DATA:
            return
        self.synced = True
        self.log.append("SYNC")
        value = 0 if self.stub_running else 0x55201207
        for _ in range(8):
            self._respond(0x08, value)

    def _security_info(self, op, data, chk):
        info = struct.pack("<IB7B", 0, 0, *([0] * 7))
        if self.chip.chip_id is not None:
            info += struct.pack("<II", self.chip.chip_id, 0)
        self._respond(op, data=info)

    def _read_reg(self, op, data, chk):
        if len(data) != 4:
            self._fail(op, ROM_INVALID, STUB_BAD_DATA)
            return
        (addr,) = struct.unpack("<I", data)
        self.reads.append(addr)
        self._respond(op, value=self.regs.get(addr, 0))

    def _write_reg(self, op, data, chk):
        if len(data) == 0 or len(data) % 16:
            self._fail(op, ROM_INVALID, STUB_BAD_DATA)
            return
        for i in range(0, len(data), 16):
            addr, value, mask, _delay = struct.unpack("<IIII", data[i:i + 16])
            self.regs[addr] = (self.regs.get(addr, 0) & ~mask | value & mask) & 0xFFFFFFFF
            if addr == self.chip.spi_base and self.regs[addr] & SPI_CMD_USR:
                self._spi_user_command()
        self._respond(op)

    def _spi_user_command(self) -> None:
        """The SPI controller's user command: command byte from USR2, result into W0."""
        c = self.chip
        cmd = self.regs.get(c.spi_base + c.usr2, 0) & 0xFF
        miso_bits = (self.regs.get(c.spi_base + c.miso_dlen, 0) & 0x3FF) + 1
        if cmd == 0x9F:       # RDID: manufacturer, memory type, capacity
            result = self.jedec_id
        elif cmd == 0x5A:     # RDSFDP at address 0: the "SFDP" signature
            result = 0x50444653
        elif cmd in (0x05, 0x35, 0x15):  # status registers: idle, unprotected
            result = 0
        else:                 # 0x66/0x99 reset and the like: no data phase
            result = 0
        if miso_bits < 32:
            result &= (1 << miso_bits) - 1
        self.regs[c.spi_base + c.w0] = result
        self.regs[c.spi_base] &= ~SPI_CMD_USR

    def _spi_attach(self, op, data, chk):
        if len(data) != (4 if self.stub_running else 8):
            self._fail(op, ROM_INVALID, STUB_BAD_DATA)
            return
        self.attached = True
        self._respond(op)

    def _spi_set_params(self, op, data, chk):
        if len(data) != 24:
            self._fail(op, ROM_INVALID, STUB_BAD_DATA)
            return
        _id, total, _block, sector, page, _mask = struct.unpack("<6I", data)
        if total == 0 or total > len(self.flash) or sector != SECTOR or page != 256:
            self._fail(op, ROM_FAILED, STUB_BAD_DATA)
            return
        self._respond(op)

    def _change_baud(self, op, data, chk):
        if len(data) != 8:
            self._fail(op, ROM_INVALID, STUB_BAD_DATA)
            return
        self.baud_changes.append(struct.unpack("<II", data)[0])
        self._respond(op)

    def _erase(self, start: int, end: int) -> None:
        start -= start % SECTOR
        end = min(len(self.flash), -(-end // SECTOR) * SECTOR)
        self.flash[start:end] = b"\xff" * (end - start)

    def _flash_begin(self, op, data, chk):
        n = 20 if (self.stub_running or self.chip.long_flash_begin) else 16
        if len(data) != n or not (self.attached or self.stub_running):
            self._fail(op, ROM_INVALID if len(data) != n else ROM_FAILED, STUB_BAD_DATA)
            return
        size, blocks, block_size, offset = struct.unpack("<IIII", data[:16])
        if (offset % SECTOR and not self.stub_running) or offset + size > len(self.flash) or \
                (n == 20 and data[16:20] != b"\0\0\0\0"):  # no encrypted writes here
            self._fail(op, ROM_FAILED, STUB_BAD_DATA)
            return
        if not self.stub_running:
            self._erase(offset, offset + size)   # the ROM erases everything up front
        self._write = {"deflate": op == 0x10, "size": size, "blocks": blocks, "block_size": block_size,
                       "offset": offset, "pos": offset, "seq": 0, "erased": offset,
                       "z": zlib.decompressobj() if op == 0x10 else None}
        self._respond(op)

    def _program(self, data: bytes) -> int:
        """Write at the download's position; 0, or the ROM error code."""
        w = self._write
        start, end = w["pos"], w["pos"] + len(data)
        region_end = w["offset"] + w["size"]
        if end > len(self.flash) or (not self.stub_running and end > region_end
                                     and data[region_end - start:].strip(b"\xff")):
            return ROM_FAILED  # past the region FLASH_BEGIN erased (only 0xFF padding may go there)
        if self.stub_running and end > w["erased"]:  # the stub erases just in time
            self._erase(w["erased"], end)
            w["erased"] = -(-end // SECTOR) * SECTOR
        self.flash[start:end] = bytes(a & b for a, b in zip(self.flash[start:end], data))  # NOR: clear bits only
        w["pos"] += len(data)
        if self.stuck_erased is not None and start <= self.stuck_erased < end:
            self.flash[self.stuck_erased] = 0xFF
            # The ROM reads every block back and compares (error 0x08); the stub does not, so
            # only esptool's MD5 afterwards can notice.
            if not self.stub_running and data[self.stuck_erased - start] != 0xFF:
                return ROM_FLASH_WRITE
        return 0

    def _flash_data(self, op, data, chk):
        w = self._write
        if w is None or w["deflate"] != (op == 0x11) or len(data) < 16:
            self._fail(op, ROM_INVALID, STUB_BAD_DATA)
            return
        n, seq, _, _ = struct.unpack("<IIII", data[:16])
        body = data[16:]
        if n != len(body) or seq != w["seq"] or seq >= w["blocks"]:
            self._fail(op, ROM_INVALID, STUB_BAD_DATA)
            return
        if checksum(body) != chk:
            self._fail(op, ROM_BAD_CRC, STUB_BAD_CRC)
            return
        if w["deflate"]:
            try:
                body = w["z"].decompress(body)
            except zlib.error:
                self._fail(op, ROM_DEFLATE, STUB_DEFLATE)
                return
        else:  # a block sent again after an error lands where it did the first time
            w["pos"] = w["offset"] + seq * w["block_size"]
        error = self._program(body)
        if error:
            self._fail(op, error, STUB_BAD_DATA)
            return
        w["seq"] += 1
        self._respond(op)

    def _flash_end(self, op, data, chk):
        if len(data) != 4:
            self._fail(op, ROM_INVALID, STUB_BAD_DATA)
            return
        (stay,) = struct.unpack("<I", data)  # 0: reboot; 1: run the app (ROM) / stay (stub)
        self._write = None
        self._respond(op)
        if not self.stub_running or stay == 0:
            self.app_running = True

    def _md5(self, op, data, chk):
        if len(data) != 16:
            self._fail(op, ROM_INVALID, STUB_BAD_DATA)
            return
        addr, size, _, _ = struct.unpack("<IIII", data)
        if addr + size > len(self.flash):
            self._fail(op, ROM_FAILED, STUB_BAD_DATA)
            return
        digest = hashlib.md5(self.flash[addr:addr + size])
        self._respond(op, data=digest.digest() if self.stub_running else digest.hexdigest().encode())

    def _mem_begin(self, op, data, chk):
        if len(data) != 16:
            self._fail(op, ROM_INVALID, STUB_BAD_DATA)
            return
        size, blocks, block_size, addr = struct.unpack("<IIII", data)
        self.ram[addr] = bytearray()
        self._mem = {"addr": addr, "size": size, "blocks": blocks, "seq": 0}
        self._respond(op)

    def _mem_data(self, op, data, chk):
        m = self._mem
        if m is None or len(data) < 16:
            self._fail(op, ROM_INVALID, STUB_BAD_DATA)
            return
        n, seq, _, _ = struct.unpack("<IIII", data[:16])
        body = data[16:]
        if n != len(body) or seq != m["seq"] or len(self.ram[m["addr"]]) + n > m["size"]:
            self._fail(op, ROM_INVALID, STUB_BAD_DATA)
            return
        if checksum(body) != chk:
            self._fail(op, ROM_BAD_CRC, STUB_BAD_CRC)
            return
        self.ram[m["addr"]] += body
        m["seq"] += 1
        self._respond(op)

    def _mem_end(self, op, data, chk):
        if len(data) != 8:
            self._fail(op, ROM_INVALID, STUB_BAD_DATA)
            return
        no_entry, entry = struct.unpack("<II", data)
        self._mem = None
        self._respond(op)
        if no_entry:
            return
        for stub in _known_stubs(self.chip_key):
            if entry == stub["entry"] and bytes(self.ram.get(stub["text_start"], b"")) == stub["text"] and (
                    stub["data"] is None or bytes(self.ram.get(stub["data_start"], b"")) == stub["data"]):
                self.stub_running = True
                self.log.append("stub started")
                self._send(slip_encode(b"OHAI"))
                return
        self.app_running = True  # unknown code: it runs, the loader is gone
