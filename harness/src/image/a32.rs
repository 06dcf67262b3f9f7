//! The 32-bit image: a header, the entry, the HYP-mode monitor's vectors and trap entry, and the guest's
//! entry in SVC mode.
//!
//! Started by `qemu-system-arm -M virt,virtualization=on` the image is in HYP mode: it installs its own
//! HVC vector (HVBAR) and drops to SVC mode to run the guest. Loaded next to the AArch64 image, it is
//! entered by that image's EL2 monitor in SVC mode (AArch32 EL1) and runs only the guest.
//!
//! All assembly here is A32 (`.arm`), also in the Thumb build, where the Rust code it calls is T32: the
//! linker makes those calls interworking.

use core::arch::{asm, global_asm};

use crate::monitor::{self, Regs};

global_asm!(
    r#"
    .arch_extension virt
    .section .text.head, "ax"
    .arm
    .global _start
    .type _start, %function
_start:
    b 0f
    .word {magic}
0:  ldr r0, =__bss_start
    ldr r1, =__bss_end
    mov r2, #0
1:  cmp r0, r1
    strlo r2, [r0], #4
    blo 1b
    mrs r0, cpsr
    and r0, r0, #0x1f
    cmp r0, #0x1a
    bne harness_guest32_entry   @ not HYP: entered by the AArch64 monitor at EL1
    ldr sp, =__hyp_stack_top
    ldr r0, =hyp_vectors
    mcr p15, 4, r0, c12, c0, 0  @ HVBAR
    mov r0, #0
    mcr p15, 4, r0, c1, c1, 0   @ HCR: no traps
    mcr p15, 4, r0, c1, c1, 3   @ HSTR
    ldr r0, =0x00c50078
    mcr p15, 0, r0, c1, c0, 0   @ SCTLR for SVC mode: MMU off, exceptions in A32
    ldr r0, =harness_guest32_entry
    msr elr_hyp, r0
    mov r0, #0x1d3              @ SVC mode, A32, interrupts masked
    msr spsr_cxsf, r0           @ SPSR_hyp (the banked form is undefined in HYP mode)
    isb
    eret

    .text
    .arm
    .global harness_guest32_entry
    .type harness_guest32_entry, %function
harness_guest32_entry:
    ldr sp, =__guest_stack_top
    ldr r0, =guest_vectors
    mcr p15, 0, r0, c12, c0, 0  @ VBAR
    isb
    ldr r0, =harness_guest_main
    blx r0
    b .

    @ The guest's vectors: any exception is reported to the monitor.
    .balign 32
guest_vectors:
    .irp n, 0,1,2,3,4,5,6,7
    b guest_fault_\n
    .endr
    .irp n, 0,1,2,3,4,5,6,7
guest_fault_\n:
    mov r1, #\n
    b guest_fault
    .endr
guest_fault:
    mov r2, lr
    mrc p15, 0, r3, c6, c0, 0   @ DFAR
    mov r0, #{svc_fault}
    hvc #{service}
    b .

    .balign 32
hyp_vectors:
    .irp n, 0,1,2,3,4
    b hyp_unexpected_\n
    .endr
    b hyp_trap                  @ 0x14: HVC from a non-HYP mode
    .irp n, 6,7
    b hyp_unexpected_\n
    .endr
    .irp n, 0,1,2,3,4,6,7
hyp_unexpected_\n:
    mov r0, #\n
    b hyp_unexpected
    .endr

hyp_unexpected:
    mrc p15, 4, r1, c5, c2, 0   @ HSR
    mrs r2, elr_hyp
    ldr r3, =harness_hyp_unexpected
    bx r3

hyp_trap:
    sub sp, sp, #64
    stm sp, {{r0-r12, lr}}
    mrs r0, elr_hyp
    str r0, [sp, #56]
    mrs r0, spsr
    str r0, [sp, #60]
    mov r0, sp
    mrc p15, 4, r1, c5, c2, 0   @ HSR
    ldr r2, =harness_hyp_trap
    blx r2
    ldr r0, [sp, #60]
    msr spsr_cxsf, r0           @ SPSR_hyp (the banked form is undefined in HYP mode)
    ldr r0, [sp, #56]
    msr elr_hyp, r0
    ldm sp, {{r0-r12, lr}}
    add sp, sp, #64
    eret

    .global harness_semihost
    .type harness_semihost, %function
harness_semihost:
    svc 0x123456
    bx lr

    .section .bss.stacks, "aw", %nobits
    .balign 16
    .space 16384
__hyp_stack_top:
    .space 65536
__guest_stack_top:
"#,
    magic = const crate::proto::GUEST32_MAGIC,
    svc_fault = const crate::proto::SVC_FAULT,
    service = const crate::proto::SERVICE_TAG,
);

/// The registers saved by `hyp_trap`: r0..r12, LR (the User/System LR: HYP mode has no banked LR, the
/// guest's SVC-mode SP and LR are banked and untouched), ELR_hyp, SPSR_hyp.
#[repr(C)]
pub struct Frame {
    r: [u32; 14],
    elr: u32,
    spsr: u32,
}

impl Regs for Frame {
    fn get(&self, r: usize) -> u64 {
        u64::from(self.r[r])
    }
    fn set(&mut self, r: usize, v: u64) {
        self.r[r] = v as u32;
    }
    fn set_spsr(&mut self, v: u64) {
        self.spsr = v as u32;
    }
}

#[unsafe(no_mangle)]
extern "C" fn harness_hyp_trap(frame: &mut Frame, hsr: u32) {
    if hsr >> 26 != 0x12 {
        monitor::unexpected(
            "in HYP mode (not an HVC)",
            u64::from(hsr),
            u64::from(frame.elr),
        );
    }
    let mut elr = u64::from(frame.elr);
    monitor::hvc(
        frame,
        monitor::AARCH32,
        hsr & 0xffff,
        &mut elr,
        "aarch32-hyp",
    );
    frame.elr = elr as u32;
}

#[unsafe(no_mangle)]
extern "C" fn harness_hyp_unexpected(vector: u32, hsr: u32, elr: u32) -> ! {
    monitor::unexpected(
        "in HYP mode",
        u64::from(hsr) | u64::from(vector) << 32,
        u64::from(elr),
    )
}

/// A service call to the monitor (see `proto::SERVICE_TAG`).
pub fn service(svc: usize, arg: usize) -> usize {
    let r: usize;
    // SAFETY: the monitor's service calls change only r0 (and may read memory the guest registered).
    unsafe {
        asm!(".arch_extension virt", "hvc #{t}", t = const crate::proto::SERVICE_TAG,
             inout("r0") svc => r, in("r1") arg, options(nostack));
    }
    r
}

/// The monitor's verdict on the calls since the last query (a service call that uses only r0, so that
/// it does not disturb where the compiler keeps values across the calls under test).
pub fn verdict() -> u32 {
    let r: usize;
    // SAFETY: the verdict service changes only r0 and touches no guest memory.
    unsafe {
        asm!(".arch_extension virt", "hvc #{t}", t = const crate::proto::SERVICE_TAG,
             inout("r0") crate::proto::SVC_VERDICT => r, options(nostack, nomem));
    }
    r as u32
}

/// Where the guest runs: processor mode and instruction set of the test code.
pub fn guest_state() -> &'static str {
    let cpsr: u32;
    // SAFETY: reading CPSR has no side effect.
    unsafe { asm!("mrs {}, cpsr", out(reg) cpsr, options(nomem, nostack)) };
    // A T32 function's address has bit 0 set.
    let thumb = guest_state as fn() -> &'static str as usize & 1 == 1;
    match (cpsr & 0x1f == 0x13, thumb) {
        (true, true) => "aarch32-svc-t32",
        (true, false) => "aarch32-svc-a32",
        _ => "aarch32-not-svc",
    }
}

/// Calls the out-of-line stub `table[7]` with the C calling convention (call number `table[0]`,
/// arguments `table[1..7]`) from a frame of its own in which every callee-saved register r4–r11 holds a
/// sentinel (`0x5ead0000 | n` in rN), and records what the stub left: r4–r11 in `table[8..16]`, the
/// stack pointer before and after the call in `table[18]` and `table[19]`, the return value in
/// `table[20]`. The caller's registers are saved and restored around it all, so a stub that breaks the
/// calling convention is reported rather than corrupting the caller.
///
/// # Safety
/// `table[7]` is a function with the C calling convention taking seven words, and the call it makes is
/// one the monitor implements.
pub unsafe fn probe_outline(table: &mut [usize; 24]) {
    // SAFETY: the block saves every callee-saved register it writes and restores the stack pointer; the
    // caller-saved core registers the called function may change are declared (the image has no
    // floating point: the soft-float target passes nothing in VFP registers and the stubs touch none).
    unsafe {
        asm!(
            "push {{r4-r11, lr}}",
            "sub sp, sp, #4",
            "str r0, [sp]",
            "ldr r1, [r0, #16]",
            "ldr r2, [r0, #20]",
            "ldr r3, [r0, #24]",
            "sub sp, sp, #16",
            "str r1, [sp]",
            "str r2, [sp, #4]",
            "str r3, [sp, #8]",
            "movw r4, #4",
            "movt r4, #0x5ead",
            "movw r5, #5",
            "movt r5, #0x5ead",
            "movw r6, #6",
            "movt r6, #0x5ead",
            "movw r7, #7",
            "movt r7, #0x5ead",
            "movw r8, #8",
            "movt r8, #0x5ead",
            "movw r9, #9",
            "movt r9, #0x5ead",
            "movw r10, #10",
            "movt r10, #0x5ead",
            "movw r11, #11",
            "movt r11, #0x5ead",
            "mov r1, sp",
            "str r1, [r0, #72]",
            "ldr r12, [r0, #28]",
            "ldr r1, [r0, #4]",
            "ldr r2, [r0, #8]",
            "ldr r3, [r0, #12]",
            "ldr r0, [r0]",
            "blx r12",
            "mov r1, r0",
            "mov r2, sp",
            "add sp, sp, #16",
            "ldr r0, [sp]",
            "str r1, [r0, #80]",
            "str r2, [r0, #76]",
            "str r4, [r0, #32]",
            "str r5, [r0, #36]",
            "str r6, [r0, #40]",
            "str r7, [r0, #44]",
            "str r8, [r0, #48]",
            "str r9, [r0, #52]",
            "str r10, [r0, #56]",
            "str r11, [r0, #60]",
            "add sp, sp, #4",
            "pop {{r4-r11, lr}}",
            inout("r0") table.as_mut_ptr() => _,
            out("r1") _,
            out("r2") _,
            out("r3") _,
            out("r12") _,
            out("lr") _,
        );
    }
}

/// The callee-saved registers [`probe_outline`] checks: their number and the first one's.
pub const PROBED: (usize, usize) = (8, 4);
/// The sentinel [`probe_outline`] puts in register `n`.
pub const fn sentinel(n: usize) -> usize {
    0x5ead_0000 | n
}

/// A service call with three arguments (r1, r2, r3).
pub fn service3(svc: usize, arg: usize, arg2: usize, arg3: usize) -> usize {
    let r: usize;
    // SAFETY: the monitor's service calls change only r0 (and may read memory the guest registered).
    unsafe {
        asm!(".arch_extension virt", "hvc #{t}", t = const crate::proto::SERVICE_TAG,
             inout("r0") svc => r, in("r1") arg, in("r2") arg2, in("r3") arg3, options(nostack));
    }
    r
}
