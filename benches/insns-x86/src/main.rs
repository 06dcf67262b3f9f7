//! Counts the guest instructions each bench call site executes (`benches/sites/`) on x86-64,
//! deterministically: the x86-64 counterpart of `benches/insns`.
//!
//! QEMU's `-kernel` enters the image at its PVH entry point (the `PHYS32_ENTRY` ELF note) in 32-bit mode:
//! the example x86-64 guest's entry code (`guests-x86/src/pvh.rs`) identity-maps the first 4 GiB, enters
//! long mode and calls `guest_main`, which sets up the traps and enters `bench_main` in ring 0. The traps
//! return at once with result 0 (success: the typed API's success path is what is measured), the trap's
//! own cost being a fixed number of handler instructions that the runner (`xtask/src/bench_x86.rs`) takes
//! off per trap:
//!
//! - feature `pv`: the inline sites trap with `syscall`; `LSTAR` points at `xor %eax,%eax; jmp *%rcx` (two
//!   instructions; `STAR` gives ring-0 selectors, `FMASK` 0, so no `sysret` to ring 3 is needed).
//! - feature `amd`: the inline sites trap with `vmmcall`, which outside an SVM guest raises `#UD`; the
//!   handler is `xor %eax,%eax; addq $3,(%rsp); iretq` (three instructions).
//!
//! The hypercall page (`xen_hypercall_page`, the library's) is filled with the entries Xen 4.17 writes:
//! `pv_ring3_init_hypercall_page` (`xen/arch/x86/pv/hypercall.c`) with `pv`,
//! `svm_init_hypercall_page` (`xen/arch/x86/hvm/svm/svm.c`) with `amd`.
//!
//! Under QEMU with `-icount shift=0` the TSC advances once per executed instruction, and `rdtsc` ends its
//! translation block (it is an I/O instruction under icount), so every reading is exact. For each site:
//! two warm-up calls, then eight measured calls, of which a majority must agree. Output on COM1:
//! `<site> <delta>` lines, `site_empty` first, then `errno work_checked <n>` (as `benches/insns`), then
//! `done`; the exit code (isa-debug-exit) is 0 unless a measurement was not repeatable. A line `insns-x86` comes first (the firmware prints before it).

#![no_std]
#![no_main]

#[cfg(not(target_arch = "x86_64"))]
compile_error!("the x86-64 bench image builds for x86_64-unknown-none only");

#[cfg(all(target_arch = "x86_64", not(any(feature = "pv", feature = "amd"))))]
compile_error!("build the x86-64 bench image with feature `pv` or `amd`");

// The PVH entry of the example x86-64 guest: its long-mode set-up, then `guest_main` (below).
#[cfg(target_arch = "x86_64")]
#[path = "../../../guests-x86/src/entry.rs"]
mod entry;
#[path = "../../../guests-x86/src/pvh.rs"]
#[allow(dead_code)]
mod pvh;

#[cfg(target_arch = "x86_64")]
mod image {
    use xen_hypercall_bench_sites::{self as sites, State};

    // `guest_main`, called in long mode on the stack by the PVH entry: `EFER.SCE`, `STAR`/`LSTAR`/`FMASK`
    // for `syscall`, IDT entry 6 (#UD) for `vmmcall`, then `bench_main` (a tail call: the stack as the
    // entry set it).
    core::arch::global_asm!(
        r#"
    .pushsection .text.entry, "ax"
    .code64
    .globl guest_main
guest_main:
    mov $0xc0000080, %ecx
    rdmsr
    or $0x1, %eax            /* EFER.SCE */
    wrmsr
    /* STAR: syscall enters with CS 0x08, SS 0x10; LSTAR: the handler; FMASK: no flag cleared. */
    mov $0xc0000081, %ecx
    xor %eax, %eax
    mov $0x00000008, %edx
    wrmsr
    mov $0xc0000082, %ecx
    lea bench_syscall(%rip), %rax
    mov %rax, %rdx
    shr $32, %rdx
    wrmsr
    mov $0xc0000084, %ecx
    xor %eax, %eax
    xor %edx, %edx
    wrmsr
    /* IDT entry 6 (#UD): a 64-bit interrupt gate to bench_ud. */
    lea bench_idt(%rip), %rdi
    lea bench_ud(%rip), %rax
    mov %ax, 6*16(%rdi)
    movw $0x08, 6*16+2(%rdi)
    movw $0x8e00, 6*16+4(%rdi)
    shr $16, %rax
    mov %ax, 6*16+6(%rdi)
    shr $16, %rax
    mov %eax, 6*16+8(%rdi)
    lidt bench_idt_ptr(%rip)
    jmp bench_main

    .balign 16
    .globl bench_syscall
bench_syscall:
    xor %eax, %eax
    jmp *%rcx

    .balign 16
    .globl bench_ud
bench_ud:
    xor %eax, %eax
    addq $3, (%rsp)
    iretq

    .balign 8
bench_idt_ptr:
    .word 256*16 - 1
    .quad bench_idt
    .popsection

    .pushsection .data.pagetables, "aw"
    .balign 4096
bench_idt:  .fill 4096, 1, 0
    .popsection
"#,
        options(att_syntax)
    );

    unsafe extern "C" {
        static mut xen_hypercall_page: [u8; 4096];
    }

    /// `__HYPERVISOR_iret`, whose entry Xen writes differently (never called here).
    const IRET: usize = 23;

    /// Fills the hypercall page as Xen 4.17 does for this build's guest type.
    fn fill_page() {
        // SAFETY: the page is this image's own (identity-mapped, writable) and nothing runs it yet.
        let page = unsafe { &mut *core::ptr::addr_of_mut!(xen_hypercall_page) };
        for (i, e) in page.chunks_exact_mut(32).enumerate() {
            if i == IRET {
                continue;
            }
            let nr = (i as u32).to_le_bytes();
            #[cfg(feature = "pv")]
            {
                // push %rcx; push %r11; mov $i,%eax; syscall; pop %r11; pop %rcx; ret
                e[..4].copy_from_slice(&[0x51, 0x41, 0x53, 0xb8]);
                e[4..8].copy_from_slice(&nr);
                e[8..14].copy_from_slice(&[0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3]);
            }
            #[cfg(all(feature = "amd", not(feature = "pv")))]
            {
                // mov $i,%eax; vmmcall; ret
                e[0] = 0xb8;
                e[1..5].copy_from_slice(&nr);
                e[5..9].copy_from_slice(&[0x0f, 0x01, 0xd9, 0xc3]);
            }
        }
    }

    fn outb(port: u16, v: u8) {
        // SAFETY: a port write to COM1 or the exit device; this image owns the machine.
        unsafe { core::arch::asm!("out dx, al", in("dx") port, in("al") v, options(nostack)) };
    }

    fn write(s: &[u8]) {
        for &b in s {
            outb(0x3f8, b);
        }
    }

    fn exit(code: u32) -> ! {
        // SAFETY: QEMU's isa-debug-exit device at 0xf4 ends QEMU with status (code << 1) | 1.
        unsafe {
            core::arch::asm!("out dx, eax", in("dx") 0xf4u16, in("eax") code, options(nostack))
        };
        loop {
            core::hint::spin_loop();
        }
    }

    /// What `cycles` reads (the type `measure` counts in).
    type Ticks = u64;

    #[inline(always)]
    fn cycles() -> Ticks {
        let (lo, hi): (u32, u32);
        // SAFETY: reads the TSC (CR4.TSD is clear).
        unsafe { core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nostack)) };
        u64::from(hi) << 32 | u64::from(lo)
    }

    // `site_empty` and `measure`, shared with the ARM image (`benches/insns`).
    include!("../../insns/src/measure.rs");

    fn number(mut v: u64, out: &mut [u8; 24]) -> &[u8] {
        let mut i = out.len();
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
        fill_page();
        write(b"\ninsns-x86\n");
        let mut bad = 0;
        let list = sites::measured::ALL.iter().flat_map(|l| l.iter().copied());
        let all = core::iter::once(("site_empty \0", site_empty as Site)).chain(list);
        for (name, f) in all {
            write(name.trim_end_matches('\0').as_bytes());
            match measure(f) {
                Some(d) => {
                    let mut buf = [0u8; 24];
                    write(number(d, &mut buf));
                    write(b"\n");
                }
                None => {
                    bad += 1;
                    write(b"not-repeatable\n");
                }
            }
        }
        // The errno of any failed call of the `?` work loop (0: none), measured with the others above.
        let mut buf = [0u8; 24];
        let errno = sites::peers::WORK_CHECKED_ERRNO.load(core::sync::atomic::Ordering::Relaxed);
        write(b"errno work_checked ");
        write(number(u64::from(errno as u32), &mut buf));
        write(b"\n");
        write(b"done\n");
        exit(bad)
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        write(b"panic\n");
        exit(2)
    }
}
