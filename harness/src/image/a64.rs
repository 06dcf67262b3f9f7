//! The AArch64 image: entry at EL2, the EL2 vectors and trap entry, and the AArch64 guest's entry at EL1.
//!
//! QEMU (`-M virt,virtualization=on`, no EL3) starts the image at EL2. If the 32-bit image is loaded at
//! `GUEST32_BASE` (its header carries `GUEST32_MAGIC`), EL1 is set to AArch32 and that image runs as the
//! guest, in SVC mode: a 32-bit guest under a 64-bit hypervisor, as 32-bit guests run on Xen for arm64.
//! Otherwise this image's own AArch64 guest runs.

use core::arch::{asm, global_asm};

use crate::monitor::{self, Regs};

/// Where the 32-bit image is linked (`link-a32.x`).
pub const GUEST32_BASE: u64 = 0x4800_0000;

global_asm!(
    r#"
    .section .text.start, "ax"
    .global _start
_start:
    ldr x0, =__el2_stack_top
    mov sp, x0
    ldr x0, =__bss_start
    ldr x1, =__bss_end
0:  cmp x0, x1
    b.hs 1f
    str xzr, [x0], #8
    b 0b
1:  mov x0, #0x33ff
    msr cptr_el2, x0            // FP/SIMD not trapped to EL2
    msr hstr_el2, xzr
    ldr x0, =el2_vectors
    msr vbar_el2, x0
    mov x0, #(3 << 20)
    msr cpacr_el1, x0           // FP/SIMD enabled at EL1
    ldr x0, ={base}
    ldr w1, [x0, #4]
    ldr w2, ={magic}
    cmp w1, w2
    b.eq 2f
    // AArch64 guest: EL1h, interrupts masked, MMU off.
    mov x0, #(1 << 31)          // HCR_EL2.RW: EL1 is AArch64; no traps
    msr hcr_el2, x0
    ldr x0, =0x30d00800
    msr sctlr_el1, x0
    ldr x0, =__guest_stack_top
    msr sp_el1, x0
    ldr x0, =harness_guest64_entry
    msr elr_el2, x0
    mov x0, #0x3c5
    msr spsr_el2, x0
    isb
    eret
2:  // AArch32 guest: SVC mode, A32 state, interrupts masked, MMU off, at the 32-bit image's header.
    msr hcr_el2, xzr            // HCR_EL2.RW = 0: EL1 is AArch32
    ldr x0, =0x00c50078
    msr sctlr_el1, x0
    ldr x0, ={base}
    msr elr_el2, x0
    mov x0, #0x1d3
    msr spsr_el2, x0
    isb
    eret

    .text
    .global harness_guest64_entry
harness_guest64_entry:
    ldr x0, =guest_vectors
    msr vbar_el1, x0
    isb
    bl harness_guest_main
3:  b 3b

    // EL1 vectors of the AArch64 guest: any exception is reported to the monitor.
    .balign 2048
guest_vectors:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    .balign 128
    mov x1, #\n
    mrs x2, esr_el1
    orr x1, x1, x2, lsl #8
    mrs x2, elr_el1
    mrs x3, far_el1
    mov x0, #{svc_fault}
    hvc #{service}
    b .
    .endr

    // EL2 vectors: HVCs from the lower EL (AArch64 at 0x400, AArch32 at 0x600) go to the trap entry.
    .balign 2048
el2_vectors:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    .balign 128
    .if \n == 8 || \n == 12
    b el2_trap
    .else
    mov x0, #\n
    mrs x1, esr_el2
    mrs x2, elr_el2
    b harness_el2_unexpected
    .endif
    .endr

el2_trap:
    sub sp, sp, #784
    stp x0, x1, [sp, #0]
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    stp x6, x7, [sp, #48]
    stp x8, x9, [sp, #64]
    stp x10, x11, [sp, #80]
    stp x12, x13, [sp, #96]
    stp x14, x15, [sp, #112]
    stp x16, x17, [sp, #128]
    stp x18, x19, [sp, #144]
    stp x20, x21, [sp, #160]
    stp x22, x23, [sp, #176]
    stp x24, x25, [sp, #192]
    stp x26, x27, [sp, #208]
    stp x28, x29, [sp, #224]
    mrs x0, elr_el2
    stp x30, x0, [sp, #240]
    mrs x0, spsr_el2
    str x0, [sp, #256]
    add x1, sp, #272
    stp q0, q1, [x1, #0]
    stp q2, q3, [x1, #32]
    stp q4, q5, [x1, #64]
    stp q6, q7, [x1, #96]
    stp q8, q9, [x1, #128]
    stp q10, q11, [x1, #160]
    stp q12, q13, [x1, #192]
    stp q14, q15, [x1, #224]
    stp q16, q17, [x1, #256]
    stp q18, q19, [x1, #288]
    stp q20, q21, [x1, #320]
    stp q22, q23, [x1, #352]
    stp q24, q25, [x1, #384]
    stp q26, q27, [x1, #416]
    stp q28, q29, [x1, #448]
    stp q30, q31, [x1, #480]
    mov x0, sp
    mrs x1, esr_el2
    bl harness_el2_trap
    add x1, sp, #272
    ldp q0, q1, [x1, #0]
    ldp q2, q3, [x1, #32]
    ldp q4, q5, [x1, #64]
    ldp q6, q7, [x1, #96]
    ldp q8, q9, [x1, #128]
    ldp q10, q11, [x1, #160]
    ldp q12, q13, [x1, #192]
    ldp q14, q15, [x1, #224]
    ldp q16, q17, [x1, #256]
    ldp q18, q19, [x1, #288]
    ldp q20, q21, [x1, #320]
    ldp q22, q23, [x1, #352]
    ldp q24, q25, [x1, #384]
    ldp q26, q27, [x1, #416]
    ldp q28, q29, [x1, #448]
    ldp q30, q31, [x1, #480]
    ldr x0, [sp, #256]
    msr spsr_el2, x0
    ldp x30, x0, [sp, #240]
    msr elr_el2, x0
    ldp x0, x1, [sp, #0]
    ldp x2, x3, [sp, #16]
    ldp x4, x5, [sp, #32]
    ldp x6, x7, [sp, #48]
    ldp x8, x9, [sp, #64]
    ldp x10, x11, [sp, #80]
    ldp x12, x13, [sp, #96]
    ldp x14, x15, [sp, #112]
    ldp x16, x17, [sp, #128]
    ldp x18, x19, [sp, #144]
    ldp x20, x21, [sp, #160]
    ldp x22, x23, [sp, #176]
    ldp x24, x25, [sp, #192]
    ldp x26, x27, [sp, #208]
    ldp x28, x29, [sp, #224]
    add sp, sp, #784
    eret

    .section .bss.stacks, "aw", %nobits
    .balign 16
    .space 32768
__el2_stack_top:
    .space 65536
__guest_stack_top:
"#,
    base = const GUEST32_BASE,
    magic = const crate::proto::GUEST32_MAGIC,
    svc_fault = const crate::proto::SVC_FAULT,
    service = const crate::proto::SERVICE_TAG,
);

/// The registers saved by `el2_trap` (x0..x30, ELR_EL2, SPSR_EL2; the SIMD registers follow).
#[repr(C)]
pub struct Frame {
    x: [u64; 31],
    elr: u64,
    spsr: u64,
}

impl Regs for Frame {
    fn get(&self, r: usize) -> u64 {
        self.x[r]
    }
    fn set(&mut self, r: usize, v: u64) {
        self.x[r] = v;
    }
    fn set_spsr(&mut self, v: u64) {
        self.spsr = v;
    }
}

/// The Rust side of `el2_trap`.
#[unsafe(no_mangle)]
extern "C" fn harness_el2_trap(frame: &mut Frame, esr: u64) {
    let ec = esr >> 26;
    let abi = match ec {
        0x16 => monitor::AARCH64,
        0x12 => monitor::AARCH32,
        _ => monitor::unexpected("from the guest (not an HVC)", esr, frame.elr),
    };
    let mut elr = frame.elr;
    monitor::hvc(frame, abi, (esr & 0xffff) as u32, &mut elr, "aarch64-el2");
    frame.elr = elr;
}

#[unsafe(no_mangle)]
extern "C" fn harness_el2_unexpected(vector: u64, esr: u64, elr: u64) -> ! {
    let what = match vector {
        0..=3 => "at EL2 (SP_EL0)",
        4..=7 => "at EL2",
        8..=11 => "from AArch64 EL1",
        _ => "from AArch32 EL1",
    };
    monitor::unexpected(what, esr | vector << 32, elr)
}

/// A service call to the monitor (see `proto::SERVICE_TAG`).
pub fn service(svc: usize, arg: usize) -> usize {
    let r: usize;
    // SAFETY: the monitor's service calls change only x0 (and may read memory the guest registered).
    unsafe {
        asm!("hvc #{t}", t = const crate::proto::SERVICE_TAG, inout("x0") svc => r, in("x1") arg,
             options(nostack));
    }
    r
}

/// The monitor's verdict on the calls since the last query (a service call that uses only x0, so that
/// it does not disturb where the compiler keeps values across the calls under test).
pub fn verdict() -> u32 {
    let r: usize;
    // SAFETY: the verdict service changes only x0 and touches no guest memory.
    unsafe {
        asm!("hvc #{t}", t = const crate::proto::SERVICE_TAG,
             inout("x0") crate::proto::SVC_VERDICT => r, options(nostack, nomem));
    }
    r as u32
}

/// Where the guest runs: exception level and register width.
pub fn guest_state() -> &'static str {
    let el: u64;
    // SAFETY: reading CurrentEL has no side effect.
    unsafe { asm!("mrs {}, CurrentEL", out(reg) el, options(nomem, nostack)) };
    if el >> 2 == 1 {
        "aarch64-el1"
    } else {
        "aarch64-not-el1"
    }
}

/// Calls the out-of-line stub `table[7]` with the C calling convention (call number `table[0]`,
/// arguments `table[1..7]`) from a frame of its own in which every callee-saved register x19–x28 holds
/// a sentinel ([`sentinel`]), and records what the stub left: x19–x28 in `table[8..18]`, the stack
/// pointer before and after the call in `table[18]` and `table[19]`, the return value in `table[20]`.
/// The caller's registers are saved and restored around it all, so a stub that breaks the calling
/// convention is reported rather than corrupting the caller.
///
/// # Safety
/// `table[7]` is a function with the C calling convention taking seven words, and the call it makes is
/// one the monitor implements.
pub unsafe fn probe_outline(table: &mut [usize; 24]) {
    // SAFETY: the block saves every callee-saved register it writes and restores the stack pointer; the
    // caller-saved registers the called function may change are declared by `clobber_abi("C")`.
    unsafe {
        asm!(
            "stp x29, x30, [sp, #-112]!",
            "stp x19, x20, [sp, #16]",
            "stp x21, x22, [sp, #32]",
            "stp x23, x24, [sp, #48]",
            "stp x25, x26, [sp, #64]",
            "stp x27, x28, [sp, #80]",
            "str x0, [sp, #96]",
            "movz x19, #19",
            "movz x20, #20",
            "movz x21, #21",
            "movz x22, #22",
            "movz x23, #23",
            "movz x24, #24",
            "movz x25, #25",
            "movz x26, #26",
            "movz x27, #27",
            "movz x28, #28",
            "movk x19, #0x5ead, lsl #16",
            "movk x20, #0x5ead, lsl #16",
            "movk x21, #0x5ead, lsl #16",
            "movk x22, #0x5ead, lsl #16",
            "movk x23, #0x5ead, lsl #16",
            "movk x24, #0x5ead, lsl #16",
            "movk x25, #0x5ead, lsl #16",
            "movk x26, #0x5ead, lsl #16",
            "movk x27, #0x5ead, lsl #16",
            "movk x28, #0x5ead, lsl #16",
            "movk x19, #0x5ead, lsl #32",
            "movk x20, #0x5ead, lsl #32",
            "movk x21, #0x5ead, lsl #32",
            "movk x22, #0x5ead, lsl #32",
            "movk x23, #0x5ead, lsl #32",
            "movk x24, #0x5ead, lsl #32",
            "movk x25, #0x5ead, lsl #32",
            "movk x26, #0x5ead, lsl #32",
            "movk x27, #0x5ead, lsl #32",
            "movk x28, #0x5ead, lsl #32",
            "mov x9, sp",
            "str x9, [x0, #144]",
            "ldr x9, [x0, #56]",
            "ldp x1, x2, [x0, #8]",
            "ldp x3, x4, [x0, #24]",
            "ldp x5, x6, [x0, #40]",
            "ldr x0, [x0]",
            "blr x9",
            "mov x1, x0",
            "mov x2, sp",
            "ldr x0, [sp, #96]",
            "str x1, [x0, #160]",
            "str x2, [x0, #152]",
            "stp x19, x20, [x0, #64]",
            "stp x21, x22, [x0, #80]",
            "stp x23, x24, [x0, #96]",
            "stp x25, x26, [x0, #112]",
            "stp x27, x28, [x0, #128]",
            "ldp x19, x20, [sp, #16]",
            "ldp x21, x22, [sp, #32]",
            "ldp x23, x24, [sp, #48]",
            "ldp x25, x26, [sp, #64]",
            "ldp x27, x28, [sp, #80]",
            "ldp x29, x30, [sp], #112",
            inout("x0") table.as_mut_ptr() => _,
            clobber_abi("C"),
        );
    }
}

/// The callee-saved registers [`probe_outline`] checks: their number and the first one's.
pub const PROBED: (usize, usize) = (10, 19);
/// The sentinel [`probe_outline`] puts in register `n`.
pub const fn sentinel(n: usize) -> usize {
    0x5ead_5ead_0000 | n
}

/// A service call with three arguments (x1, x2, x3).
pub fn service3(svc: usize, arg: usize, arg2: usize, arg3: usize) -> usize {
    let r: usize;
    // SAFETY: the monitor's service calls change only x0 (and may read memory the guest registered).
    unsafe {
        asm!("hvc #{t}", t = const crate::proto::SERVICE_TAG, inout("x0") svc => r, in("x1") arg,
             in("x2") arg2, in("x3") arg3, options(nostack));
    }
    r
}
