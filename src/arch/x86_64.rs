//! Xen's hypercall calling convention on x86-64 (`xen/include/public/arch-x86/xen-x86_64.h`), for PV and
//! for HVM/PVH guests.
//!
//! The call number goes in `rax`, the arguments in `rdi`, `rsi`, `rdx`, `r10`, `r8` (and `r9`, which Xen
//! does not read), and the result comes back in `rax`. What traps to Xen depends on the kind of guest:
//!
//! | guest | trap | bytes | also overwritten | cargo feature |
//! |---|---|---|---|---|
//! | PV (64-bit) | `syscall` | `0f 05` | `rcx` (return address), `r11` (flags) | `x86-pv` |
//! | HVM/PVH, Intel VT-x | `vmcall` | `0f 01 c1` | none | (default) |
//! | HVM/PVH, AMD SVM | `vmmcall` | `0f 01 d9` | none | `x86-hvm-amd` |
//!
//! Xen's entry code (`arch/x86/pv/hypercall.c`, `arch/x86/hvm/hypercall.c`) reads the five argument
//! registers and, in a debug build, overwrites those of the call's declared arity with
//! `0xdeadbeefdeadf00d` after a call that completed (`clobber_regs64`); `rax` holds the result.
//!
//! The trap is chosen at compile time: an inline stub stays one instruction, the set-up and the trap are
//! one `asm!` block (Xen restarts a preempted PV call by stepping `rip` back 2 bytes onto the `syscall`),
//! and a kernel knows what kind of guest it is built as. A kernel that must decide at run time uses the
//! hypercall page (`crate::outline`), where Xen writes the trap that suits the guest and the CPU.
//!
//! The raw stubs trap inline whatever the features, also with `outline`, which moves only the typed API to
//! the page: see "The raw stubs and feature `outline`" in [`crate::outline`].

#[cfg(all(feature = "x86-pv", feature = "x86-hvm-amd"))]
compile_error!(
    "xen-hypercall: features `x86-pv` (syscall) and `x86-hvm-amd` (vmmcall) choose different traps; enable \
     one of them (neither: vmcall, for HVM/PVH guests on Intel CPUs)"
);

/// Xen's calling convention for a 64-bit PV guest, handed to each generator.
#[cfg(feature = "x86-pv")]
macro_rules! xen_abi {
    ($($generator:ident)::+) => {
        $($generator)::+! {
            /// - `op` is a Xen hypercall number and this stub's arity equals the arity Xen's x86-64 hypercall
            ///   table declares for it: a debug build of Xen overwrites every argument register of the
            ///   declared arity with `0xdeadbeefdeadf00d`.
            /// - Every pointer argument is the guest virtual address of memory that is valid, suitably aligned
            ///   and laid out as Xen expects for what this call does with it.
            /// - The caller is the kernel of a 64-bit PV guest of Xen (ring 3, where `syscall` enters Xen);
            ///   elsewhere `syscall` enters whatever `IA32_LSTAR` names.
            /// - Xen reads at most five arguments; `hypercall6` passes a sixth (in `r9`) that Xen ignores.
            arch: x86_64;
            trap: "syscall";
            number: rax;
            args: [rdi, rsi, rdx, r10, r8, r9];
            ret: rax;
            clobbers: used_args;
            also_clobbers: [rcx, r11];
            page: "xen_hypercall_page", 32;
        }
    };
}

/// Xen's calling convention for an HVM or PVH guest on an AMD CPU, handed to each generator.
#[cfg(all(feature = "x86-hvm-amd", not(feature = "x86-pv")))]
macro_rules! xen_abi {
    ($($generator:ident)::+) => {
        $($generator)::+! {
            /// - `op` is a Xen hypercall number and this stub's arity equals the arity Xen's x86-64 hypercall
            ///   table declares for it: a debug build of Xen overwrites every argument register of the
            ///   declared arity with `0xdeadbeefdeadf00d`.
            /// - Every pointer argument is the guest physical address (or, with paging on, the guest virtual
            ///   address) of memory that is valid, suitably aligned and laid out as Xen expects.
            /// - The caller runs in ring 0 of an HVM or PVH guest of Xen on an AMD CPU (`vmmcall` is undefined
            ///   on Intel CPUs and outside a guest).
            /// - Xen reads at most five arguments; `hypercall6` passes a sixth (in `r9`) that Xen ignores.
            arch: x86_64;
            trap: "vmmcall";
            number: rax;
            args: [rdi, rsi, rdx, r10, r8, r9];
            ret: rax;
            clobbers: used_args;
            page: "xen_hypercall_page", 32;
        }
    };
}

/// Xen's calling convention for an HVM or PVH guest on an Intel CPU, handed to each generator.
#[cfg(not(any(feature = "x86-pv", feature = "x86-hvm-amd")))]
macro_rules! xen_abi {
    ($($generator:ident)::+) => {
        $($generator)::+! {
            /// - `op` is a Xen hypercall number and this stub's arity equals the arity Xen's x86-64 hypercall
            ///   table declares for it: a debug build of Xen overwrites every argument register of the
            ///   declared arity with `0xdeadbeefdeadf00d`.
            /// - Every pointer argument is the guest physical address (or, with paging on, the guest virtual
            ///   address) of memory that is valid, suitably aligned and laid out as Xen expects.
            /// - The caller runs in ring 0 of an HVM or PVH guest of Xen on an Intel CPU (`vmcall` is
            ///   undefined on AMD CPUs and outside a guest).
            /// - Xen reads at most five arguments; `hypercall6` passes a sixth (in `r9`) that Xen ignores.
            arch: x86_64;
            trap: "vmcall";
            number: rax;
            args: [rdi, rsi, rdx, r10, r8, r9];
            ret: rax;
            clobbers: used_args;
            page: "xen_hypercall_page", 32;
        }
    };
}
pub(crate) use xen_abi;

xen_abi!(xen_hypercall_macros::hypercall_abi);

/// What the stubs were built for: `"syscall"` (PV), `"vmcall"` (HVM/PVH on Intel) or `"vmmcall"` (HVM/PVH on
/// AMD).
pub const TRAP: &str = if cfg!(feature = "x86-pv") {
    "syscall"
} else if cfg!(feature = "x86-hvm-amd") {
    "vmmcall"
} else {
    "vmcall"
};
