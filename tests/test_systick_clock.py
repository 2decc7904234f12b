"""The STM32 port's microsecond clock (firmware/ports/stm32f4/systick_clock.h), compiled for this
host with scripted register reads: every order in which the SysTick wrap can fall between the
reads gives the right time, so the clock never goes back (QEMU shows the real thing:
tests/test_stm32.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

PORT = Path(__file__).resolve().parents[1] / "firmware" / "ports" / "stm32f4"

# A scripted SysTick at 1 MHz (1 tick per us, reload 999): each scenario lists what the reader
# sees, read by read: ms, counter, pending, [counter again if pending], ms again.
DRIVER = r"""
#include <stdio.h>
#include "systick_clock.h"
static const unsigned *script; static int at;
static uint32_t next(void) { return script[at++]; }
static uint32_t ms(void) { return next(); }
static uint32_t counter(void) { return next(); }
static int pending(void) { return (int)next(); }
int main(void) {
  static const se_systick_regs_t regs = {ms, counter, pending};
  static const unsigned cases[][8] = {
    {5, 400, 0, 5},           /* mid-millisecond: 5 ms + 599 us */
    {5, 2, 0, 5},             /* just before the wrap: 5997 */
    {5, 995, 1, 994, 5},      /* wrapped, interrupt not yet taken: 6005, not 5004 */
    {5, 1, 1, 998, 5},        /* wrapped between the counter and the pending bit: 6001 */
    {5, 3, 0, 6, 6, 990, 0, 6}, /* the interrupt ran during the read: read again, 6009 */
  };
  int k;
  for (k = 0; k < 5; ++k) { script = cases[k]; at = 0; printf("%u\n", se_systick_read_us(&regs, 999, 1)); }
  printf("%u\n", se_systick_us(5, 0, 5000, 999, 1)); /* a counter above reload counts as reload */
  return 0;
}
"""


def test_the_clock_is_right_wherever_the_wrap_falls(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "no C compiler: apt-get install -y build-essential"
    src = tmp_path / "driver.c"
    src.write_text(DRIVER)
    exe = tmp_path / "driver"
    subprocess.run([cc, "-std=c99", "-Wall", "-Werror", f"-I{PORT}", str(src), "-o", str(exe)], check=True)
    got = [int(x) for x in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]
    assert got == [5599, 5997, 6005, 6001, 6009, 5000]
    assert got[1] < got[2]  # the old reader answered 5004 here: 993 us back in time
