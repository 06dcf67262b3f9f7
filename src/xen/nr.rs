//! Hypercall numbers (`__HYPERVISOR_*` in Xen's public `xen.h`) and the argument count Xen's hypercall
//! tables declare for each: ARM's ([`arm_arity`]) and x86-64's for PV and for HVM/PVH guests
//! ([`x86_pv64_arity`], [`x86_hvm64_arity`]).
//!
//! The arity matters: after a hypercall that was not preempted, a debug build of Xen overwrites every
//! argument register of the *declared* arity (except `r0`/`x0`, the result) with `0xDEADBEEF` (x86-64:
//! `0xDEADBEEFDEADF00D`). A stub with fewer arguments would tell the compiler that registers stay intact
//! which do not. Every typed wrapper of this crate calls the stub of the arity [`arity`] gives for the
//! architecture and guest type being built, checked at compile time.
//!
//! ```
//! use xen_hypercall::xen::nr;
//! assert_eq!(nr::arm_arity(nr::CONSOLE_IO), Some(3));
//! ```

/// `__HYPERVISOR_set_trap_table` (x86 PV only).
pub const SET_TRAP_TABLE: usize = 0;
/// `__HYPERVISOR_mmu_update` (x86 PV only).
pub const MMU_UPDATE: usize = 1;
/// `__HYPERVISOR_set_gdt` (x86 PV only).
pub const SET_GDT: usize = 2;
/// `__HYPERVISOR_stack_switch` (x86 PV only).
pub const STACK_SWITCH: usize = 3;
/// `__HYPERVISOR_set_callbacks` (x86 PV only).
pub const SET_CALLBACKS: usize = 4;
/// `__HYPERVISOR_fpu_taskswitch` (x86 PV only).
pub const FPU_TASKSWITCH: usize = 5;
/// `__HYPERVISOR_sched_op_compat`: deprecated since 0x00030101; on ARM it returns `-ENOSYS`.
pub const SCHED_OP_COMPAT: usize = 6;
/// `__HYPERVISOR_platform_op` (formerly `dom0_op`).
pub const PLATFORM_OP: usize = 7;
/// `__HYPERVISOR_set_debugreg` (x86 PV only).
pub const SET_DEBUGREG: usize = 8;
/// `__HYPERVISOR_get_debugreg` (x86 PV only).
pub const GET_DEBUGREG: usize = 9;
/// `__HYPERVISOR_update_descriptor` (x86 PV only).
pub const UPDATE_DESCRIPTOR: usize = 10;
/// `__HYPERVISOR_memory_op`.
pub const MEMORY_OP: usize = 12;
/// `__HYPERVISOR_multicall`.
pub const MULTICALL: usize = 13;
/// `__HYPERVISOR_update_va_mapping` (x86 PV only).
pub const UPDATE_VA_MAPPING: usize = 14;
/// `__HYPERVISOR_set_timer_op` (x86 only).
pub const SET_TIMER_OP: usize = 15;
/// `__HYPERVISOR_event_channel_op_compat`: deprecated since 0x00030202; on ARM it returns `-ENOSYS`.
pub const EVENT_CHANNEL_OP_COMPAT: usize = 16;
/// `__HYPERVISOR_xen_version`.
pub const XEN_VERSION: usize = 17;
/// `__HYPERVISOR_console_io`.
pub const CONSOLE_IO: usize = 18;
/// `__HYPERVISOR_physdev_op_compat`: deprecated since 0x00030202; on ARM it returns `-ENOSYS`.
pub const PHYSDEV_OP_COMPAT: usize = 19;
/// `__HYPERVISOR_grant_table_op`.
pub const GRANT_TABLE_OP: usize = 20;
/// `__HYPERVISOR_vm_assist`.
pub const VM_ASSIST: usize = 21;
/// `__HYPERVISOR_update_va_mapping_otherdomain` (x86 PV only).
pub const UPDATE_VA_MAPPING_OTHERDOMAIN: usize = 22;
/// `__HYPERVISOR_iret` (x86 PV only).
pub const IRET: usize = 23;
/// `__HYPERVISOR_vcpu_op`.
pub const VCPU_OP: usize = 24;
/// `__HYPERVISOR_set_segment_base` (x86-64 PV only).
pub const SET_SEGMENT_BASE: usize = 25;
/// `__HYPERVISOR_mmuext_op` (x86 only).
pub const MMUEXT_OP: usize = 26;
/// `__HYPERVISOR_xsm_op`.
pub const XSM_OP: usize = 27;
/// `__HYPERVISOR_nmi_op` (x86 PV only).
pub const NMI_OP: usize = 28;
/// `__HYPERVISOR_sched_op`.
pub const SCHED_OP: usize = 29;
/// `__HYPERVISOR_callback_op` (x86 PV only).
pub const CALLBACK_OP: usize = 30;
/// `__HYPERVISOR_xenoprof_op` (x86 PV only).
pub const XENOPROF_OP: usize = 31;
/// `__HYPERVISOR_event_channel_op`.
pub const EVENT_CHANNEL_OP: usize = 32;
/// `__HYPERVISOR_physdev_op`.
pub const PHYSDEV_OP: usize = 33;
/// `__HYPERVISOR_hvm_op`.
pub const HVM_OP: usize = 34;
/// `__HYPERVISOR_sysctl`.
pub const SYSCTL: usize = 35;
/// `__HYPERVISOR_domctl`.
pub const DOMCTL: usize = 36;
/// `__HYPERVISOR_kexec_op` (x86 only).
pub const KEXEC_OP: usize = 37;
/// `__HYPERVISOR_tmem_op` (removed; no architecture serves it).
pub const TMEM_OP: usize = 38;
/// `__HYPERVISOR_argo_op` (with `CONFIG_ARGO`).
pub const ARGO_OP: usize = 39;
/// `__HYPERVISOR_xenpmu_op` (x86 only).
pub const XENPMU_OP: usize = 40;
/// `__HYPERVISOR_dm_op` (with `CONFIG_IOREQ_SERVER`).
pub const DM_OP: usize = 41;
/// `__HYPERVISOR_hypfs_op` (with `CONFIG_HYPFS`).
pub const HYPFS_OP: usize = 42;
/// `__HYPERVISOR_arch_0`: architecture-specific (x86: `mca`; unused on ARM).
pub const ARCH_0: usize = 48;
/// `__HYPERVISOR_arch_1`: architecture-specific (x86: `paging_domctl_cont`; unused on ARM).
pub const ARCH_1: usize = 49;
/// `__HYPERVISOR_arch_2`: architecture-specific, unused.
pub const ARCH_2: usize = 50;
/// `__HYPERVISOR_arch_3`: architecture-specific, unused.
pub const ARCH_3: usize = 51;
/// `__HYPERVISOR_arch_4`: architecture-specific, unused.
pub const ARCH_4: usize = 52;
/// `__HYPERVISOR_arch_5`: architecture-specific, unused.
pub const ARCH_5: usize = 53;
/// `__HYPERVISOR_arch_6`: architecture-specific, unused.
pub const ARCH_6: usize = 54;
/// `__HYPERVISOR_arch_7`: architecture-specific, unused.
pub const ARCH_7: usize = 55;

/// Every hypercall number `xen.h` defines, with its name there (without `__HYPERVISOR_`; the alias
/// `dom0_op` of old interface versions is `platform_op`).
pub const ALL: [(usize, &str); 50] = [
    (SET_TRAP_TABLE, "set_trap_table"),
    (MMU_UPDATE, "mmu_update"),
    (SET_GDT, "set_gdt"),
    (STACK_SWITCH, "stack_switch"),
    (SET_CALLBACKS, "set_callbacks"),
    (FPU_TASKSWITCH, "fpu_taskswitch"),
    (SCHED_OP_COMPAT, "sched_op_compat"),
    (PLATFORM_OP, "platform_op"),
    (SET_DEBUGREG, "set_debugreg"),
    (GET_DEBUGREG, "get_debugreg"),
    (UPDATE_DESCRIPTOR, "update_descriptor"),
    (MEMORY_OP, "memory_op"),
    (MULTICALL, "multicall"),
    (UPDATE_VA_MAPPING, "update_va_mapping"),
    (SET_TIMER_OP, "set_timer_op"),
    (EVENT_CHANNEL_OP_COMPAT, "event_channel_op_compat"),
    (XEN_VERSION, "xen_version"),
    (CONSOLE_IO, "console_io"),
    (PHYSDEV_OP_COMPAT, "physdev_op_compat"),
    (GRANT_TABLE_OP, "grant_table_op"),
    (VM_ASSIST, "vm_assist"),
    (
        UPDATE_VA_MAPPING_OTHERDOMAIN,
        "update_va_mapping_otherdomain",
    ),
    (IRET, "iret"),
    (VCPU_OP, "vcpu_op"),
    (SET_SEGMENT_BASE, "set_segment_base"),
    (MMUEXT_OP, "mmuext_op"),
    (XSM_OP, "xsm_op"),
    (NMI_OP, "nmi_op"),
    (SCHED_OP, "sched_op"),
    (CALLBACK_OP, "callback_op"),
    (XENOPROF_OP, "xenoprof_op"),
    (EVENT_CHANNEL_OP, "event_channel_op"),
    (PHYSDEV_OP, "physdev_op"),
    (HVM_OP, "hvm_op"),
    (SYSCTL, "sysctl"),
    (DOMCTL, "domctl"),
    (KEXEC_OP, "kexec_op"),
    (TMEM_OP, "tmem_op"),
    (ARGO_OP, "argo_op"),
    (XENPMU_OP, "xenpmu_op"),
    (DM_OP, "dm_op"),
    (HYPFS_OP, "hypfs_op"),
    (ARCH_0, "arch_0"),
    (ARCH_1, "arch_1"),
    (ARCH_2, "arch_2"),
    (ARCH_3, "arch_3"),
    (ARCH_4, "arch_4"),
    (ARCH_5, "arch_5"),
    (ARCH_6, "arch_6"),
    (ARCH_7, "arch_7"),
];

/// The number of arguments Xen's ARM hypercall table (`xen/include/hypercall-defs.c`, column `arm`)
/// declares for hypercall `nr`, or `None` where ARM has no handler (the call returns `-ENOSYS`).
///
/// The three deprecated calls (`sched_op_compat`, `event_channel_op_compat`, `physdev_op_compat`) have
/// entries whose handler only returns `-ENOSYS`; they keep their declared arity, since a debug Xen still
/// poisons that many registers after them.
pub const fn arm_arity(nr: usize) -> Option<usize> {
    match nr {
        SCHED_OP_COMPAT => Some(2),
        PLATFORM_OP => Some(1),
        MEMORY_OP => Some(2),
        MULTICALL => Some(2),
        EVENT_CHANNEL_OP_COMPAT => Some(1),
        XEN_VERSION => Some(2),
        CONSOLE_IO => Some(3),
        PHYSDEV_OP_COMPAT => Some(1),
        GRANT_TABLE_OP => Some(3),
        VM_ASSIST => Some(2),
        VCPU_OP => Some(3),
        XSM_OP => Some(1),
        SCHED_OP => Some(2),
        EVENT_CHANNEL_OP => Some(2),
        PHYSDEV_OP => Some(2),
        HVM_OP => Some(2),
        SYSCTL => Some(1),
        DOMCTL => Some(1),
        ARGO_OP => Some(5),
        DM_OP => Some(3),
        HYPFS_OP => Some(5),
        _ => None,
    }
}

/// The number of arguments Xen's x86 hypercall table (`xen/include/hypercall-defs.c`, column `pv64`)
/// declares for hypercall `nr` made by a 64-bit PV guest, or `None` where that column has no handler.
///
/// `arch_0` is x86's `mca` and `arch_1` its `paging_domctl_cont`. PV64 and HVM64 ([`x86_hvm64_arity`])
/// agree on every call both serve; they differ in which calls they serve.
///
/// ```
/// use xen_hypercall::xen::nr;
/// assert_eq!(nr::x86_pv64_arity(nr::MMU_UPDATE), Some(4));
/// assert_eq!(nr::x86_pv64_arity(nr::IRET), Some(0));
/// ```
pub const fn x86_pv64_arity(nr: usize) -> Option<usize> {
    match nr {
        SET_TRAP_TABLE => Some(1),
        MMU_UPDATE => Some(4),
        SET_GDT => Some(2),
        STACK_SWITCH => Some(2),
        SET_CALLBACKS => Some(3),
        FPU_TASKSWITCH => Some(1),
        SCHED_OP_COMPAT => Some(2),
        PLATFORM_OP => Some(1),
        SET_DEBUGREG => Some(2),
        GET_DEBUGREG => Some(1),
        UPDATE_DESCRIPTOR => Some(2),
        MEMORY_OP => Some(2),
        MULTICALL => Some(2),
        UPDATE_VA_MAPPING => Some(3),
        SET_TIMER_OP => Some(1),
        EVENT_CHANNEL_OP_COMPAT => Some(1),
        XEN_VERSION => Some(2),
        CONSOLE_IO => Some(3),
        PHYSDEV_OP_COMPAT => Some(1),
        GRANT_TABLE_OP => Some(3),
        VM_ASSIST => Some(2),
        UPDATE_VA_MAPPING_OTHERDOMAIN => Some(4),
        IRET => Some(0),
        VCPU_OP => Some(3),
        SET_SEGMENT_BASE => Some(2),
        MMUEXT_OP => Some(4),
        XSM_OP => Some(1),
        NMI_OP => Some(2),
        SCHED_OP => Some(2),
        CALLBACK_OP => Some(2),
        XENOPROF_OP => Some(2),
        EVENT_CHANNEL_OP => Some(2),
        PHYSDEV_OP => Some(2),
        HVM_OP => Some(2),
        SYSCTL => Some(1),
        DOMCTL => Some(1),
        KEXEC_OP => Some(2),
        ARGO_OP => Some(5),
        XENPMU_OP => Some(2),
        DM_OP => Some(3),
        HYPFS_OP => Some(5),
        ARCH_0 => Some(1),
        ARCH_1 => Some(1),
        _ => None,
    }
}

/// The number of arguments Xen's x86 hypercall table (`xen/include/hypercall-defs.c`, column `hvm64`)
/// declares for hypercall `nr` made by a 64-bit HVM or PVH guest, or `None` where that column has no
/// handler (the PV-only calls: page tables, descriptors, callbacks, `iret`, …).
///
/// ```
/// use xen_hypercall::xen::nr;
/// assert_eq!(nr::x86_hvm64_arity(nr::HVM_OP), Some(2));
/// assert_eq!(nr::x86_hvm64_arity(nr::MMU_UPDATE), None);
/// ```
pub const fn x86_hvm64_arity(nr: usize) -> Option<usize> {
    match nr {
        PLATFORM_OP => Some(1),
        MEMORY_OP => Some(2),
        MULTICALL => Some(2),
        SET_TIMER_OP => Some(1),
        XEN_VERSION => Some(2),
        CONSOLE_IO => Some(3),
        GRANT_TABLE_OP => Some(3),
        VM_ASSIST => Some(2),
        VCPU_OP => Some(3),
        MMUEXT_OP => Some(4),
        XSM_OP => Some(1),
        SCHED_OP => Some(2),
        EVENT_CHANNEL_OP => Some(2),
        PHYSDEV_OP => Some(2),
        HVM_OP => Some(2),
        SYSCTL => Some(1),
        DOMCTL => Some(1),
        ARGO_OP => Some(5),
        XENPMU_OP => Some(2),
        DM_OP => Some(3),
        HYPFS_OP => Some(5),
        ARCH_1 => Some(1),
        _ => None,
    }
}

/// The arity table of the guest being built, which the typed API's compile-time check uses:
///
/// - bare-metal x86-64 with feature `x86-pv` (a 64-bit PV guest): [`x86_pv64_arity`];
/// - bare-metal x86-64 with feature `outline` and no `x86-pv` (the hypercall page, which serves PV and
///   PVH guests from one ELF): [`x86_hvm64_arity`], else [`x86_pv64_arity`] (the two agree where both
///   declare a call);
/// - other bare-metal x86-64 builds (an HVM/PVH guest): [`x86_hvm64_arity`];
/// - everything else (ARM, and the host with the mock): [`arm_arity`].
pub const fn arity(nr: usize) -> Option<usize> {
    if cfg!(all(target_arch = "x86_64", target_os = "none")) {
        if cfg!(feature = "x86-pv") {
            x86_pv64_arity(nr)
        } else if cfg!(feature = "outline") {
            match x86_hvm64_arity(nr) {
                Some(a) => Some(a),
                None => x86_pv64_arity(nr),
            }
        } else {
            x86_hvm64_arity(nr)
        }
    } else {
        arm_arity(nr)
    }
}
