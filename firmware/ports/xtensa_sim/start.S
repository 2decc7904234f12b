/* SqueezeEdge Xtensa sim port: reset entry and exception vectors (LX106, call0 ABI).
 * QEMU's lx106 core resets to 0x50000000 (its sysrom; an ESP8266 boots from its mask ROM
 * instead) with PS.EXCM set and VECBASE at 0x40000000, where nothing is loaded. se_reset jumps
 * to _start, which installs our own vectors, clears PS.EXCM, sets the stack and calls se_start
 * (main.c). Any exception lands in se_fault, which reports
 * the cause and exits QEMU, so a bad access is an error line instead of a silent hang. */

    .section .vectors, "ax"
    .align 1024
    .global se_vectors
se_vectors:
.Lfault_lit:                /* offset 0x00 is not a vector on the LX106: literals for l32r */
    .word se_fault
.Lfault_sp:
    .word _stack_top
    .org 0x10               /* debug / level-2 interrupt */
    j .Ltrap
    .org 0x20               /* NMI / level-3 interrupt */
    j .Ltrap
    .org 0x30               /* kernel exception */
    j .Ltrap
    .org 0x50               /* user exception */
    j .Ltrap
    .org 0x70               /* double exception */
    j .Ltrap
    .org 0x80
.Ltrap:
    rsr.exccause a2
    rsr.epc1 a3
    rsr.excvaddr a4
    l32r a1, .Lfault_sp
    l32r a0, .Lfault_lit
    callx0 a0               /* se_fault(cause, pc, address): does not return */
1:  j 1b

    .section .reset, "ax"
    .global se_reset
se_reset:
    j 1f
    .align 4
.Lentry:
    .word _start
1:
    l32r a0, .Lentry
    jx a0

    .section .text.start, "ax"
    .global _start
    .align 4
_start:
    j 1f
    .align 4
.Lsp:
    .word _stack_top
.Lvec:
    .word se_vectors
.Lmain:
    .word se_start
1:
    l32r a1, .Lsp
    l32r a2, .Lvec
    wsr.vecbase a2
    movi a2, 0x2F           /* PS: UM=1 (exceptions use the user vector), EXCM=0, INTLEVEL=15 */
    wsr.ps a2
    rsync
    movi a0, 0
    l32r a2, .Lmain
    callx0 a2               /* se_start: does not return */
2:  j 2b
