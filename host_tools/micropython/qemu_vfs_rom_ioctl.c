/*
 * This file is part of the MicroPython project, http://micropython.org/
 *
 * The MIT License (MIT)
 *
 * Copyright (c) 2025 Damien P. George
 *
 * Permission is hereby granted, free of charge, to any person obtaining a copy
 * of this software and associated documentation files (the "Software"), to deal
 * in the Software without restriction, including without limitation the rights
 * to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 * copies of the Software, and to permit persons to whom the Software is
 * furnished to do so, subject to the following conditions:
 *
 * The above copyright notice and this permission notice shall be included in
 * all copies or substantial portions of the Software.
 *
 * THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 * IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 * FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 * AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 * LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 * OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
 * THE SOFTWARE.
 */

/*
 * MODIFIED by SqueezeEdge (host_tools/micropython/qemu_vfs_rom_ioctl.c, used by ports.py): the qemu
 * port's vfs_rom_ioctl.c, which implements only GET_NUMBER_OF_SEGMENTS and GET_SEGMENT, with
 * GET_MIN_PREPARE, WRITE_PREPARE, WRITE and WRITE_COMPLETE added, with the semantics of
 * ports/stm32/vfs_rom_ioctl.c, on the RAM that backs the ROMFS partitions under QEMU. It emulates
 * NOR flash closely enough for `mpremote romfs deploy` to be tested without hardware:
 * - GET_MIN_PREPARE returns the erase size (SE_ROMFS_ERASE_SIZE), so mpremote uses the 4-arg
 *   WRITE_PREPARE(id, offset, len) in steps; the 3-arg WRITE_PREPARE(id, len) works too.
 * - WRITE_PREPARE "erases" (fills with 0xff) every erase block the range touches and returns the
 *   minimum write size (SE_ROMFS_MIN_WRITE).
 * - WRITE(id, offset, buf) copies buf (memcpy); offset and length must be multiples of the
 *   minimum write size, and every block written must have been erased by a WRITE_PREPARE since
 *   the last WRITE_COMPLETE (-EIO otherwise: on flash the data would come out corrupted).
 * - WRITE_COMPLETE(id) ends the write session (forgets the erased blocks) and returns 0.
 * Out-of-range or malformed requests return -EINVAL, like the other ports.
 */

#include <string.h>

#include "py/obj.h"
#include "py/objarray.h"
#include "py/mperrno.h"
#include "extmod/vfs.h"

#if MICROPY_VFS_ROM_IOCTL

#if MICROPY_HW_ROMFS_ENABLE_PART0 && !defined(MICROPY_HW_ROMFS_PART0_START)
#define MICROPY_HW_ROMFS_PART0_START (uintptr_t)(&_micropy_hw_romfs_part0_start)
#define MICROPY_HW_ROMFS_PART0_SIZE (uintptr_t)(&_micropy_hw_romfs_part0_size)
extern uint8_t _micropy_hw_romfs_part0_start;
extern uint8_t _micropy_hw_romfs_part0_size;
#endif

#if MICROPY_HW_ROMFS_ENABLE_PART1 && !defined(MICROPY_HW_ROMFS_PART1_START)
#define MICROPY_HW_ROMFS_PART1_START (uintptr_t)(&_micropy_hw_romfs_part1_start)
#define MICROPY_HW_ROMFS_PART1_SIZE (uintptr_t)(&_micropy_hw_romfs_part1_size)
extern uint8_t _micropy_hw_romfs_part1_start;
extern uint8_t _micropy_hw_romfs_part1_size;
#endif

#define ROMFS_MEMORYVIEW(base, size) {{&mp_type_memoryview}, 'B', 0, (size), (void *)(base)}

static const mp_obj_array_t romfs_obj_table[] = {
    #if MICROPY_HW_ROMFS_ENABLE_PART0
    ROMFS_MEMORYVIEW(MICROPY_HW_ROMFS_PART0_START, MICROPY_HW_ROMFS_PART0_SIZE),
    #endif
    #if MICROPY_HW_ROMFS_ENABLE_PART1
    ROMFS_MEMORYVIEW(MICROPY_HW_ROMFS_PART1_START, MICROPY_HW_ROMFS_PART1_SIZE),
    #endif
};

#define SE_ROMFS_ERASE_SIZE (@ERASE@)
#define SE_ROMFS_MIN_WRITE (@MIN_WRITE@)
#define SE_ROMFS_MAX_BLOCKS (8192) // partitions up to 8192 erase blocks (32 MB)

// Bit n of se_romfs_erased[id]: block n of partition id was erased since the last WRITE_COMPLETE.
static uint8_t se_romfs_erased[MP_ARRAY_SIZE(romfs_obj_table)][SE_ROMFS_MAX_BLOCKS / 8];

static bool se_romfs_blocks_erased(mp_int_t romfs_id, size_t first, size_t last) {
    for (size_t b = first; b <= last; ++b) {
        if (!(se_romfs_erased[romfs_id][b / 8] & (1 << (b % 8)))) {
            return false;
        }
    }
    return true;
}

mp_obj_t mp_vfs_rom_ioctl(size_t n_args, const mp_obj_t *args) {
    mp_int_t cmd = mp_obj_get_int(args[0]);
    if (cmd == MP_VFS_ROM_IOCTL_GET_NUMBER_OF_SEGMENTS) {
        return MP_OBJ_NEW_SMALL_INT(MP_ARRAY_SIZE(romfs_obj_table));
    }

    if (n_args < 2) {
        return MP_OBJ_NEW_SMALL_INT(-MP_EINVAL);
    }

    mp_int_t romfs_id = mp_obj_get_int(args[1]);
    if (!(0 <= romfs_id && romfs_id < MP_ARRAY_SIZE(romfs_obj_table))) {
        return MP_OBJ_NEW_SMALL_INT(-MP_EINVAL);
    }

    const mp_obj_array_t *romfs_obj = &romfs_obj_table[romfs_id];
    uint8_t *romfs_base = (uint8_t *)romfs_obj->items;
    size_t romfs_len = romfs_obj->len;

    if (cmd == MP_VFS_ROM_IOCTL_GET_SEGMENT) {
        // Return the ROMFS memoryview object.
        return MP_OBJ_FROM_PTR(romfs_obj);
    }

    if (romfs_len > (size_t)SE_ROMFS_MAX_BLOCKS * SE_ROMFS_ERASE_SIZE) {
        return MP_OBJ_NEW_SMALL_INT(-MP_EINVAL); // too big for the erase bitmap: read-only
    }

    if (cmd == MP_VFS_ROM_IOCTL_GET_MIN_PREPARE) {
        return MP_OBJ_NEW_SMALL_INT(SE_ROMFS_ERASE_SIZE);
    }

    if (cmd == MP_VFS_ROM_IOCTL_WRITE_PREPARE) {
        // Erase the blocks of the given range: rom_ioctl(3, id, len) or rom_ioctl(3, id, offset, len).
        if (n_args < 3) {
            return MP_OBJ_NEW_SMALL_INT(-MP_EINVAL);
        }
        mp_int_t offset = 0;
        mp_int_t len;
        if (n_args == 3) {
            len = mp_obj_get_int(args[2]);
        } else {
            offset = mp_obj_get_int(args[2]);
            len = mp_obj_get_int(args[3]);
        }
        if (offset < 0 || len < 0 || (size_t)offset > romfs_len || (size_t)len > romfs_len - offset) {
            return MP_OBJ_NEW_SMALL_INT(-MP_EINVAL);
        }
        if (len > 0) {
            size_t first = offset / SE_ROMFS_ERASE_SIZE;
            size_t last = (offset + len - 1) / SE_ROMFS_ERASE_SIZE;
            size_t end = (last + 1) * SE_ROMFS_ERASE_SIZE;
            if (end > romfs_len) {
                end = romfs_len;
            }
            memset(romfs_base + first * SE_ROMFS_ERASE_SIZE, 0xff, end - first * SE_ROMFS_ERASE_SIZE);
            for (size_t b = first; b <= last; ++b) {
                se_romfs_erased[romfs_id][b / 8] |= 1 << (b % 8);
            }
        }
        return MP_OBJ_NEW_SMALL_INT(SE_ROMFS_MIN_WRITE);
    }

    if (cmd == MP_VFS_ROM_IOCTL_WRITE) {
        // Write data: rom_ioctl(4, id, offset, buf), into blocks erased by WRITE_PREPARE.
        if (n_args < 4) {
            return MP_OBJ_NEW_SMALL_INT(-MP_EINVAL);
        }
        mp_int_t offset = mp_obj_get_int(args[2]);
        mp_buffer_info_t bufinfo;
        mp_get_buffer_raise(args[3], &bufinfo, MP_BUFFER_READ);
        if (offset < 0 || (size_t)offset > romfs_len || bufinfo.len > romfs_len - offset
            || offset % SE_ROMFS_MIN_WRITE != 0 || bufinfo.len % SE_ROMFS_MIN_WRITE != 0) {
            return MP_OBJ_NEW_SMALL_INT(-MP_EINVAL);
        }
        if (bufinfo.len == 0) {
            return MP_OBJ_NEW_SMALL_INT(0);
        }
        if (!se_romfs_blocks_erased(romfs_id, offset / SE_ROMFS_ERASE_SIZE,
            (offset + bufinfo.len - 1) / SE_ROMFS_ERASE_SIZE)) {
            return MP_OBJ_NEW_SMALL_INT(-MP_EIO);
        }
        memcpy(romfs_base + offset, bufinfo.buf, bufinfo.len);
        return MP_OBJ_NEW_SMALL_INT(0);
    }

    if (cmd == MP_VFS_ROM_IOCTL_WRITE_COMPLETE) {
        // End of the write session: the erased blocks must be prepared again before new writes.
        memset(se_romfs_erased[romfs_id], 0, sizeof(se_romfs_erased[romfs_id]));
        return MP_OBJ_NEW_SMALL_INT(0);
    }

    return MP_OBJ_NEW_SMALL_INT(-MP_EINVAL);
}

#endif // MICROPY_VFS_ROM_IOCTL
