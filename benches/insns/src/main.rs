//! Counts the guest instructions each bench call site executes (`benches/sites/`), deterministically.
//!
//! The image runs at the hypervisor level itself (AArch64 EL2; HYP mode on 32-bit ARM), so an `hvc` traps to
//! its own vector, whose handler is one `eret`. Under QEMU with `-icount shift=0` the PMU cycle counter
//! advances once per executed instruction; each read is fenced by `isb` on both sides, so that it ends its
//! own translation block. For each site: two warm-up calls (QEMU translates the code), then eight measured
//! calls, of which a majority must agree. The image prints raw counter deltas; the runner
//! (`xtask/src/insns.rs`) computes `delta(site) − delta(site_empty) + instructions(site_empty) − hvcs(site)`: the
//! calling sequence and the counter reads cancel against an empty function of the same signature (whose
//! instructions it counts in the ELF), and the handler's `eret` (the trap's own fixed cost) is taken off
//! once per `hvc` the site executes. The functions measured are listed in `benches/sites` (`measured`).
//! The `hvc` itself counts, as one guest instruction.
//!
//! Output (semihosting): `<site> <delta>` lines, `site_empty` first, then `errno work_checked <n>` (the
//! errno of any call of the `?` work loop that failed, 0 when none did), then `done`; the exit status is
//! 0 unless a measurement was not repeatable.

#![no_std]
#![no_main]

mod image {
    use xen_hypercall_bench_sites::{self as sites, State};

    // AArch64, EL2: stack, vectors (every entry `eret`), FP/SIMD untrapped, then `bench_main`.
    #[cfg(target_arch = "aarch64")]
    core::arch::global_asm!(
        ".section .text.start, \"ax\"",
        ".global _start",
        "_start:",
        "    ldr     x0, =__stack_top",
        "    mov     sp, x0",
        "    adr     x0, 2f",
        "    msr     vbar_el2, x0",
        "    mov     x0, #0x33ff", // CPTR_EL2: RES1 bits only, no FP/SIMD trap
        "    msr     cptr_el2, x0",
        "    isb",
        "    bl      bench_main",
        "1:  wfi",
        "    b       1b",
        ".balign 2048",
        "2:",
        ".rept 16",
        "    eret",
        ".balign 128",
        ".endr",
        ".ltorg",
    );

    // 32-bit ARM, HYP mode: stack, HVBAR (every entry `eret`, in A32), then `bench_main` (A32 or Thumb).
    #[cfg(target_arch = "arm")]
    core::arch::global_asm!(
        ".section .text.start, \"ax\"",
        ".arm",
        ".arch_extension virt",
        ".global _start",
        "_start:",
        "    ldr     sp, =__stack_top",
        "    adr     r0, 2f",
        "    mcr     p15, 4, r0, c12, c0, 0", // HVBAR
        "    isb",
        "    bl      bench_main",
        "1:  wfi",
        "    b       1b",
        ".balign 32",
        "2:",
        ".rept 8",
        "    eret",
        ".endr",
        ".ltorg",
        // Semihosting, from A32 state whatever the caller's: r0 = operation, r1 = argument.
        ".global semihost",
        ".type semihost, %function",
        "semihost:",
        "    svc     0x123456",
        "    bx      lr",
    );

    #[cfg(target_arch = "arm")]
    unsafe extern "C" {
        fn semihost(op: usize, arg: usize) -> usize;
    }

    #[cfg(target_arch = "aarch64")]
    unsafe fn semihost(op: usize, arg: usize) -> usize {
        let ret: usize;
        // SAFETY: QEMU's semihosting trap; the argument is valid for the operation.
        unsafe {
            core::arch::asm!("hlt #0xf000", inout("x0") op => ret, in("x1") arg, options(nostack))
        };
        ret
    }

    fn write0(s: &[u8]) {
        // SAFETY: SYS_WRITE0 reads the NUL-terminated string; every caller passes one.
        unsafe { semihost(0x04, s.as_ptr() as usize) };
    }

    fn exit(code: usize) -> ! {
        #[cfg(target_arch = "aarch64")]
        {
            let block = [0x20026usize, code];
            // SAFETY: SYS_EXIT with the {reason, code} block AArch64 semihosting takes.
            unsafe { semihost(0x18, block.as_ptr() as usize) };
        }
        #[cfg(target_arch = "arm")]
        {
            let block = [0x20026usize, code];
            // SAFETY: SYS_EXIT_EXTENDED with the {reason, code} block.
            unsafe { semihost(0x20, block.as_ptr() as usize) };
        }
        loop {
            core::hint::spin_loop();
        }
    }

    /// Enables the cycle counter, counting at the hypervisor level too.
    fn pmu_init() {
        // SAFETY: PMU configuration registers; this image owns the machine.
        unsafe {
            #[cfg(target_arch = "aarch64")]
            core::arch::asm!(
                "mrs {t}, pmcr_el0", "orr {t}, {t}, #7", "msr pmcr_el0, {t}",
                "mov {t}, #(1 << 27)", "msr pmccfiltr_el0, {t}",
                "mov {t}, #(1 << 31)", "msr pmcntenset_el0, {t}", "isb",
                t = out(reg) _,
            );
            #[cfg(target_arch = "arm")]
            core::arch::asm!(
                "mrc p15, 0, {t}, c9, c12, 0", "orr {t}, {t}, #7", "mcr p15, 0, {t}, c9, c12, 0",
                "mov {t}, #(1 << 27)", "mcr p15, 0, {t}, c14, c15, 7",
                "mov {t}, #(1 << 31)", "mcr p15, 0, {t}, c9, c12, 1", "isb",
                t = out(reg) _,
            );
        }
    }

    /// What `cycles` reads (the type `measure` counts in).
    type Ticks = usize;

    #[inline(always)]
    fn cycles() -> Ticks {
        let v: usize;
        // SAFETY: reads the cycle counter.
        unsafe {
            #[cfg(target_arch = "aarch64")]
            core::arch::asm!("isb", "mrs {}, pmccntr_el0", "isb", out(reg) v, options(nostack));
            #[cfg(target_arch = "arm")]
            core::arch::asm!("isb", "mrc p15, 0, {}, c9, c13, 0", "isb", out(reg) v, options(nostack));
        }
        v
    }

    // `site_empty` and `measure`, shared with the x86-64 image (`benches/insns-x86`).
    include!("measure.rs");

    fn number(mut v: usize, out: &mut [u8; 24]) -> &[u8] {
        let mut i = out.len() - 1;
        out[i] = 0;
        loop {
            i -= 1;
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        &out[i..]
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn bench_main() -> ! {
        pmu_init();
        let mut bad = 0;
        let list = sites::measured::ALL.iter().flat_map(|l| l.iter().copied());
        let all = core::iter::once(("site_empty \0", site_empty as Site)).chain(list);
        for (name, f) in all {
            write0(name.as_bytes());
            match measure(f) {
                Some(d) => {
                    let mut buf = [0u8; 24];
                    write0(number(d, &mut buf));
                    write0(b"\n\0");
                }
                None => {
                    bad += 1;
                    write0(b"not-repeatable\n\0");
                }
            }
        }
        // The errno of any failed call of the `?` work loop (0: none), measured with the others above.
        let mut buf = [0u8; 24];
        let errno = sites::peers::WORK_CHECKED_ERRNO.load(core::sync::atomic::Ordering::Relaxed);
        write0(b"errno work_checked \0");
        write0(number(errno as u32 as usize, &mut buf));
        write0(b"\n\0");
        write0(b"done\n\0");
        exit(bad)
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        write0(b"panic\n\0");
        exit(2)
    }
}
