//! The typed API's structures against Xen's own public headers (Debian's `libxen-dev`), compiled by clang
//! for 32-bit ARM (`armv7a-none-eabi`), AArch64 (`aarch64-none-elf`) and x86-64 (`x86_64-none-elf`).
//!
//! The structures shared by both architectures are compared on all three targets; ARM's `vcpu_info`,
//! `shared_info` and guest memory map on the ARM ones; x86-64's (`xen::x86`, `xen::pvh`, the callback
//! types of `xen::hvm`) on x86-64.
//!
//! A C probe lists, for every structure the API uses, its size, alignment and every field's offset and
//! size, plus the constants the API hard-codes (hypercall and sub-operation numbers), as one array of
//! `unsigned long long`. Clang lowers it to LLVM IR for each target, whose constant initialiser is read back
//! and compared value by value with what Rust computes for the same items. The Rust structures use only
//! fixed-width fields, so their layout is the same on the host as on the ARM targets (the crate also
//! asserts their sizes when built for ARM).
//!
//! Missing clang or headers make the test fail with the command that installs them.

#![cfg(feature = "mock")]
#![allow(unused_unsafe)]

use std::fmt::Write as _;
use std::mem::{align_of, offset_of, size_of};
use std::process::Command;

use xen_hypercall::xen::{
    self, DomId, evtchn, grant_table as gt, hvm, layout as guest, memory, multicall, nr, pvh,
    sched, time, vcpu, version, vm_assist, x86,
};

/// One value the C side computes and the Rust side knows.
struct Check {
    what: String,
    c_expr: String,
    rust: u64,
}

/// The checks of one structure: size, alignment, every field's offset and size.
struct Layout {
    rust: &'static str,
    c_type: &'static str,
    /// For a member of an anonymous type (a member of a union), its path inside `c_type`.
    c_member: &'static str,
    size: usize,
    align: usize,
    fields: Vec<(&'static str, usize, usize)>,
}

fn pointee_size<F>(_: *const F) -> usize {
    size_of::<F>()
}

macro_rules! layout {
    ($t:ty => $c:literal $(in $member:literal)? { $($rf:ident $(. $rg:tt)* => $cf:literal),* $(,)? }) => {{
        let u = std::mem::MaybeUninit::<$t>::uninit();
        let p = u.as_ptr();
        let _ = p;
        Layout {
            rust: stringify!($t),
            c_type: $c,
            c_member: ["" $(, $member)?][["" $(, $member)?].len() - 1],
            size: size_of::<$t>(),
            align: align_of::<$t>(),
            fields: vec![$((
                $cf,
                offset_of!($t, $rf $(. $rg)*),
                // SAFETY: only the address of the field is formed, never read.
                pointee_size(unsafe { &raw const (*p).$rf $(. $rg)* }),
            )),*],
        }
    }};
}

/// Every structure the typed API passes to Xen or maps from it, with the same layout on ARM and x86-64.
fn layouts() -> Vec<Layout> {
    let mut all = vec![
        layout!(DomId => "domid_t" {}),
        layout!(evtchn::Port => "evtchn_port_t" {}),
        layout!(gt::GrantRef => "grant_ref_t" {}),
        layout!(sched::SchedShutdown => "struct sched_shutdown" { reason => "reason" }),
        layout!(sched::SchedPoll => "struct sched_poll" {
            ports => "ports", nr_ports => "nr_ports", timeout => "timeout",
        }),
        layout!(evtchn::AllocUnbound => "struct evtchn_alloc_unbound" {
            dom => "dom", remote_dom => "remote_dom", port => "port",
        }),
        layout!(evtchn::BindInterdomain => "struct evtchn_bind_interdomain" {
            remote_dom => "remote_dom", remote_port => "remote_port", local_port => "local_port",
        }),
        layout!(evtchn::BindVirq => "struct evtchn_bind_virq" {
            virq => "virq", vcpu => "vcpu", port => "port",
        }),
        layout!(evtchn::PortArg => "struct evtchn_send" { port => "port" }),
        layout!(evtchn::PortArg => "struct evtchn_close" { port => "port" }),
        layout!(evtchn::PortArg => "struct evtchn_unmask" { port => "port" }),
        layout!(evtchn::EvtchnStatus => "struct evtchn_status" {
            dom => "dom", port => "port", status => "status", vcpu => "vcpu", u => "u",
        }),
        layout!(version::ExtraVersion => "xen_extraversion_t" {}),
        layout!(version::Capabilities => "xen_capabilities_info_t" {}),
        layout!(version::Changeset => "xen_changeset_info_t" {}),
        layout!(version::DomainHandle => "xen_domain_handle_t" {}),
        layout!(version::CompileInfo => "struct xen_compile_info" {
            compiler => "compiler", compile_by => "compile_by",
            compile_domain => "compile_domain", compile_date => "compile_date",
        }),
        layout!(version::PlatformParameters => "struct xen_platform_parameters" {
            virt_start => "virt_start",
        }),
        layout!(version::FeatureInfo => "struct xen_feature_info" {
            submap_idx => "submap_idx", submap => "submap",
        }),
        layout!(memory::AddToPhysmap => "struct xen_add_to_physmap" {
            domid => "domid", size => "size", space => "space", idx => "idx", gpfn => "gpfn",
        }),
        layout!(gt::GnttabQuerySize => "struct gnttab_query_size" {
            dom => "dom", nr_frames => "nr_frames", max_nr_frames => "max_nr_frames",
            status => "status",
        }),
        layout!(gt::GnttabSetupTable => "struct gnttab_setup_table" {
            dom => "dom", nr_frames => "nr_frames", status => "status", frame_list => "frame_list",
        }),
        layout!(gt::GnttabSetVersion => "struct gnttab_set_version" { version => "version" }),
        layout!(gt::GnttabGetVersion => "struct gnttab_get_version" {
            dom => "dom", pad => "pad", version => "version",
        }),
        layout!(gt::GrantEntryV1 => "struct grant_entry_v1" {
            flags => "flags", domid => "domid", frame => "frame",
        }),
        layout!(hvm::HvmParam => "struct xen_hvm_param" {
            domid => "domid", pad => "pad", index => "index", value => "value",
        }),
        layout!(vcpu::VcpuTimeInfo => "struct vcpu_time_info" {
            version => "version", pad0 => "pad0", tsc_timestamp => "tsc_timestamp",
            system_time => "system_time", tsc_to_system_mul => "tsc_to_system_mul",
            tsc_shift => "tsc_shift", flags => "flags", pad1 => "pad1",
        }),
        layout!(vcpu::RunstateInfo => "struct vcpu_runstate_info" {
            state => "state", state_entry_time => "state_entry_time", time => "time",
        }),
        layout!(vcpu::RegisterVcpuInfo => "struct vcpu_register_vcpu_info" {
            mfn => "mfn", offset => "offset", rsvd => "rsvd",
        }),
        layout!(vcpu::RegisterRunstateMemoryArea => "struct vcpu_register_runstate_memory_area" {
            addr => "addr",
        }),
        layout!(time::VcpuSetSingleshotTimer => "struct vcpu_set_singleshot_timer" {
            timeout_abs_ns => "timeout_abs_ns", flags => "flags",
        }),
        layout!(multicall::MulticallEntry => "struct multicall_entry" {
            op => "op", result => "result", args => "args",
        }),
        layout!(evtchn::BindIpi => "struct evtchn_bind_ipi" { vcpu => "vcpu", port => "port" }),
        layout!(evtchn::BindVcpu => "struct evtchn_bind_vcpu" { port => "port", vcpu => "vcpu" }),
        layout!(sched::SchedRemoteShutdown => "struct sched_remote_shutdown" {
            domain_id => "domain_id", reason => "reason",
        }),
        layout!(sched::SchedWatchdog => "struct sched_watchdog" { id => "id", timeout => "timeout" }),
        layout!(memory::MemoryReservation => "struct xen_memory_reservation" {
            extent_start => "extent_start", nr_extents => "nr_extents",
            extent_order => "extent_order", mem_flags => "mem_flags", domid => "domid",
        }),
        layout!(memory::RemoveFromPhysmap => "struct xen_remove_from_physmap" {
            domid => "domid", gpfn => "gpfn",
        }),
        layout!(memory::AddToPhysmapBatch => "struct xen_add_to_physmap_batch" {
            domid => "domid", space => "space", size => "size",
            foreign_domid => "u.foreign_domid", foreign_domid => "u.res0", foreign_domid => "u",
            idxs => "idxs", gpfns => "gpfns", errs => "errs",
        }),
        layout!(gt::GrantHandle => "grant_handle_t" {}),
        layout!(gt::GnttabMapGrantRef => "struct gnttab_map_grant_ref" {
            host_addr => "host_addr", flags => "flags", r#ref => "ref", dom => "dom",
            status => "status", handle => "handle", dev_bus_addr => "dev_bus_addr",
        }),
        layout!(gt::GnttabUnmapGrantRef => "struct gnttab_unmap_grant_ref" {
            host_addr => "host_addr", dev_bus_addr => "dev_bus_addr", handle => "handle",
            status => "status",
        }),
        layout!(gt::GnttabCopyPtr => "struct gnttab_copy_ptr" {
            u => "u", domid => "domid", offset => "offset",
        }),
        layout!(gt::GnttabCopy => "struct gnttab_copy" {
            source => "source", source.u => "source.u", source.domid => "source.domid",
            source.offset => "source.offset", dest => "dest", dest.u => "dest.u",
            dest.domid => "dest.domid", dest.offset => "dest.offset", len => "len",
            flags => "flags", status => "status",
        }),
    ];
    // `GnttabCopyPtr::u` is the C union `{ ref; gmfn; }` as one 64-bit word: `ref` is its low half.
    let copy_ptr = all
        .iter_mut()
        .find(|l| l.c_type == "struct gnttab_copy_ptr")
        .unwrap();
    copy_ptr.fields.extend([("u.ref", 0, 4), ("u.gmfn", 0, 8)]);
    // `EvtchnStatus::u` is the C union as two words: its members are where `decode` reads them.
    let u = offset_of!(evtchn::EvtchnStatus, u);
    let status = all
        .iter_mut()
        .find(|l| l.c_type == "struct evtchn_status")
        .unwrap();
    status.fields.extend([
        ("u.unbound.dom", u, 2),
        ("u.interdomain.dom", u, 2),
        ("u.interdomain.port", u + 4, 4),
        ("u.pirq", u, 4),
        ("u.virq", u, 4),
    ]);
    all
}

/// ARM's `vcpu_info` and `shared_info` (empty arch parts, one legacy slot).
fn arm_layouts() -> Vec<Layout> {
    vec![
        layout!(vcpu::VcpuInfo => "struct vcpu_info" {
            evtchn_upcall_pending => "evtchn_upcall_pending",
            pad0 => "pad0",
            evtchn_pending_sel => "evtchn_pending_sel", time => "time",
        }),
        layout!(vcpu::SharedInfo => "struct shared_info" {
            vcpu_info => "vcpu_info", evtchn_pending => "evtchn_pending",
            evtchn_mask => "evtchn_mask", wc_version => "wc_version", wc_sec => "wc_sec",
            wc_nsec => "wc_nsec", wc_sec_hi => "wc_sec_hi",
        }),
    ]
}

/// x86-64's `vcpu_info` and `shared_info` with their arch parts, and what a PVH guest is entered with.
fn x86_layouts() -> Vec<Layout> {
    vec![
        layout!(x86::ArchVcpuInfo => "struct arch_vcpu_info" { cr2 => "cr2", pad => "pad" }),
        layout!(x86::VcpuInfo => "struct vcpu_info" {
            evtchn_upcall_pending => "evtchn_upcall_pending",
            evtchn_upcall_mask => "evtchn_upcall_mask",
            evtchn_pending_sel => "evtchn_pending_sel", arch => "arch", arch.cr2 => "arch.cr2",
            time => "time",
        }),
        layout!(x86::ArchSharedInfo => "struct arch_shared_info" {
            max_pfn => "max_pfn", pfn_to_mfn_frame_list_list => "pfn_to_mfn_frame_list_list",
            nmi_reason => "nmi_reason", p2m_cr3 => "p2m_cr3", p2m_vaddr => "p2m_vaddr",
            p2m_generation => "p2m_generation",
        }),
        layout!(x86::SharedInfo => "struct shared_info" {
            vcpu_info => "vcpu_info", evtchn_pending => "evtchn_pending",
            evtchn_mask => "evtchn_mask", wc_version => "wc_version", wc_sec => "wc_sec",
            wc_nsec => "wc_nsec", wc_sec_hi => "wc_sec_hi", arch => "arch",
            arch.max_pfn => "arch.max_pfn", arch.p2m_generation => "arch.p2m_generation",
        }),
        layout!(pvh::HvmStartInfo => "struct hvm_start_info" {
            magic => "magic", version => "version", flags => "flags", nr_modules => "nr_modules",
            modlist_paddr => "modlist_paddr", cmdline_paddr => "cmdline_paddr",
            rsdp_paddr => "rsdp_paddr", memmap_paddr => "memmap_paddr",
            memmap_entries => "memmap_entries", reserved => "reserved",
        }),
        layout!(pvh::HvmModlistEntry => "struct hvm_modlist_entry" {
            paddr => "paddr", size => "size", cmdline_paddr => "cmdline_paddr", reserved => "reserved",
        }),
        layout!(pvh::HvmMemmapTableEntry => "struct hvm_memmap_table_entry" {
            addr => "addr", size => "size", r#type => "type", reserved => "reserved",
        }),
        layout!(x86::StartInfo => "struct start_info" {
            magic => "magic", nr_pages => "nr_pages", shared_info => "shared_info", flags => "flags",
            store_mfn => "store_mfn", store_evtchn => "store_evtchn", console => "console",
            pt_base => "pt_base", nr_pt_frames => "nr_pt_frames", mfn_list => "mfn_list",
            mod_start => "mod_start", mod_len => "mod_len", cmd_line => "cmd_line",
            first_p2m_pfn => "first_p2m_pfn", nr_p2m_frames => "nr_p2m_frames",
        }),
    ]
}

/// Constants only ARM's headers define the way the API uses them: the legacy vCPU slots and the guest
/// memory map.
fn arm_constants() -> Vec<(&'static str, u64)> {
    vec![
        ("XEN_LEGACY_MAX_VCPUS", vcpu::XEN_LEGACY_MAX_VCPUS as u64),
        ("GUEST_VIRTIO_MMIO_BASE", guest::GUEST_VIRTIO_MMIO_BASE),
        ("GUEST_VIRTIO_MMIO_SIZE", guest::GUEST_VIRTIO_MMIO_SIZE),
        ("GUEST_GICD_BASE", guest::GUEST_GICD_BASE),
        ("GUEST_GICD_SIZE", guest::GUEST_GICD_SIZE),
        ("GUEST_GICC_BASE", guest::GUEST_GICC_BASE),
        ("GUEST_GICC_SIZE", guest::GUEST_GICC_SIZE),
        ("GUEST_GICV3_GICD_BASE", guest::GUEST_GICV3_GICD_BASE),
        ("GUEST_GICV3_GICD_SIZE", guest::GUEST_GICV3_GICD_SIZE),
        ("GUEST_GICV3_GICR0_BASE", guest::GUEST_GICV3_GICR0_BASE),
        ("GUEST_GICV3_GICR0_SIZE", guest::GUEST_GICV3_GICR0_SIZE),
        ("GUEST_PL011_BASE", guest::GUEST_PL011_BASE),
        ("GUEST_PL011_SIZE", guest::GUEST_PL011_SIZE),
        ("GUEST_GNTTAB_BASE", guest::GUEST_GNTTAB_BASE),
        ("GUEST_GNTTAB_SIZE", guest::GUEST_GNTTAB_SIZE),
        ("GUEST_MAGIC_BASE", guest::GUEST_MAGIC_BASE),
        ("GUEST_MAGIC_SIZE", guest::GUEST_MAGIC_SIZE),
        ("GUEST_RAM_BANKS", guest::GUEST_RAM_BANKS as u64),
        ("GUEST_RAM0_BASE", guest::GUEST_RAM0_BASE),
        ("GUEST_RAM0_SIZE", guest::GUEST_RAM0_SIZE),
        ("GUEST_RAM1_BASE", guest::GUEST_RAM1_BASE),
        ("GUEST_RAM1_SIZE", guest::GUEST_RAM1_SIZE),
        ("GUEST_RAM_BASE", guest::GUEST_RAM_BASE),
        ("GUEST_RAM_MAX", guest::GUEST_RAM_MAX),
        (
            "((uint64_t[])GUEST_RAM_BANK_BASES)[0]",
            guest::GUEST_RAM_BANK_BASES[0],
        ),
        (
            "((uint64_t[])GUEST_RAM_BANK_BASES)[1]",
            guest::GUEST_RAM_BANK_BASES[1],
        ),
        (
            "((uint64_t[])GUEST_RAM_BANK_SIZES)[0]",
            guest::GUEST_RAM_BANK_SIZES[0],
        ),
        (
            "((uint64_t[])GUEST_RAM_BANK_SIZES)[1]",
            guest::GUEST_RAM_BANK_SIZES[1],
        ),
        ("GUEST_MAX_VCPUS", guest::GUEST_MAX_VCPUS.into()),
        ("GUEST_TIMER_VIRT_PPI", guest::GUEST_TIMER_VIRT_PPI.into()),
        (
            "GUEST_TIMER_PHYS_S_PPI",
            guest::GUEST_TIMER_PHYS_S_PPI.into(),
        ),
        (
            "GUEST_TIMER_PHYS_NS_PPI",
            guest::GUEST_TIMER_PHYS_NS_PPI.into(),
        ),
        ("GUEST_EVTCHN_PPI", guest::GUEST_EVTCHN_PPI.into()),
        ("GUEST_VPL011_SPI", guest::GUEST_VPL011_SPI.into()),
    ]
}

/// x86-64's constants: the legacy vCPU slots, `hvm_start_info`'s, the callback types, the PV guest's
/// `update_va_mapping` flush flags.
fn x86_constants() -> Vec<(&'static str, u64)> {
    vec![
        ("XEN_LEGACY_MAX_VCPUS", x86::XEN_LEGACY_MAX_VCPUS as u64),
        ("UVMF_NONE", xen::mmu::UVMF_NONE as u64),
        ("UVMF_TLB_FLUSH", xen::mmu::UVMF_TLB_FLUSH as u64),
        ("UVMF_INVLPG", xen::mmu::UVMF_INVLPG as u64),
        ("UVMF_LOCAL", xen::mmu::UVMF_LOCAL as u64),
        ("UVMF_ALL", xen::mmu::UVMF_ALL as u64),
        (
            "XEN_HVM_START_MAGIC_VALUE",
            pvh::XEN_HVM_START_MAGIC_VALUE.into(),
        ),
        (
            "XEN_HVM_MEMMAP_TYPE_RAM",
            pvh::XEN_HVM_MEMMAP_TYPE_RAM.into(),
        ),
        (
            "XEN_HVM_MEMMAP_TYPE_RESERVED",
            pvh::XEN_HVM_MEMMAP_TYPE_RESERVED.into(),
        ),
        (
            "XEN_HVM_MEMMAP_TYPE_ACPI",
            pvh::XEN_HVM_MEMMAP_TYPE_ACPI.into(),
        ),
        (
            "XEN_HVM_MEMMAP_TYPE_NVS",
            pvh::XEN_HVM_MEMMAP_TYPE_NVS.into(),
        ),
        (
            "XEN_HVM_MEMMAP_TYPE_UNUSABLE",
            pvh::XEN_HVM_MEMMAP_TYPE_UNUSABLE.into(),
        ),
        (
            "XEN_HVM_MEMMAP_TYPE_DISABLED",
            pvh::XEN_HVM_MEMMAP_TYPE_DISABLED.into(),
        ),
        (
            "XEN_HVM_MEMMAP_TYPE_PMEM",
            pvh::XEN_HVM_MEMMAP_TYPE_PMEM.into(),
        ),
        ("SIF_PRIVILEGED", pvh::SIF_PRIVILEGED.into()),
        ("SIF_INITDOMAIN", pvh::SIF_INITDOMAIN.into()),
        ("SIF_PRIVILEGED", x86::SIF_PRIVILEGED.into()),
        ("SIF_INITDOMAIN", x86::SIF_INITDOMAIN.into()),
        ("SIF_MULTIBOOT_MOD", x86::SIF_MULTIBOOT_MOD.into()),
        ("SIF_MOD_START_PFN", x86::SIF_MOD_START_PFN.into()),
        ("SIF_VIRT_P2M_4TOOLS", x86::SIF_VIRT_P2M_4TOOLS.into()),
        ("SIF_PM_MASK", x86::SIF_PM_MASK.into()),
        (
            "HVM_PARAM_CALLBACK_TYPE_GSI",
            hvm::HVM_PARAM_CALLBACK_TYPE_GSI,
        ),
        (
            "HVM_PARAM_CALLBACK_TYPE_PCI_INTX",
            hvm::HVM_PARAM_CALLBACK_TYPE_PCI_INTX,
        ),
        (
            "HVM_PARAM_CALLBACK_TYPE_VECTOR",
            hvm::HVM_PARAM_CALLBACK_TYPE_VECTOR,
        ),
        // The value `callback_vector` builds: the type where the header's type mask starts (its lowest
        // set bit), the vector in the low bits.
        (
            "HVM_PARAM_CALLBACK_TYPE_VECTOR * (HVM_PARAM_CALLBACK_IRQ_TYPE_MASK & \
             -HVM_PARAM_CALLBACK_IRQ_TYPE_MASK) | 0xf3",
            hvm::callback_vector(0xf3),
        ),
    ]
}

/// Constants the typed API hard-codes, against the headers' macros (the same on ARM and x86-64).
fn constants() -> Vec<(&'static str, u64)> {
    let mut c: Vec<(&'static str, u64)> = vec![
        // `xen_pfn_t` and `xen_ulong_t` are the API's `u64` on every target.
        ("sizeof(xen_pfn_t)", size_of::<u64>() as u64),
        ("sizeof(xen_ulong_t)", size_of::<u64>() as u64),
        ("DOMID_SELF", DomId::SELF.0.into()),
        ("DOMID_IO", DomId::IO.0.into()),
        ("DOMID_XEN", DomId::XEN.0.into()),
        ("DOMID_COW", DomId::COW.0.into()),
        ("DOMID_INVALID", DomId::INVALID.0.into()),
        ("DOMID_IDLE", DomId::IDLE.0.into()),
        ("CONSOLEIO_write", xen::console::CONSOLEIO_WRITE as u64),
        ("CONSOLEIO_read", xen::console::CONSOLEIO_READ as u64),
        ("SCHEDOP_yield", sched::SCHEDOP_YIELD as u64),
        ("SCHEDOP_block", sched::SCHEDOP_BLOCK as u64),
        ("SCHEDOP_shutdown", sched::SCHEDOP_SHUTDOWN as u64),
        ("SCHEDOP_poll", sched::SCHEDOP_POLL as u64),
        (
            "SCHEDOP_remote_shutdown",
            sched::SCHEDOP_REMOTE_SHUTDOWN as u64,
        ),
        ("SCHEDOP_shutdown_code", sched::SCHEDOP_SHUTDOWN_CODE as u64),
        ("SCHEDOP_watchdog", sched::SCHEDOP_WATCHDOG as u64),
        ("SHUTDOWN_poweroff", sched::ShutdownReason::Poweroff as u64),
        ("SHUTDOWN_reboot", sched::ShutdownReason::Reboot as u64),
        ("SHUTDOWN_suspend", sched::ShutdownReason::Suspend as u64),
        ("SHUTDOWN_crash", sched::ShutdownReason::Crash as u64),
        ("SHUTDOWN_watchdog", sched::ShutdownReason::Watchdog as u64),
        (
            "SHUTDOWN_soft_reset",
            sched::ShutdownReason::SoftReset as u64,
        ),
        (
            "EVTCHNOP_bind_interdomain",
            evtchn::EVTCHNOP_BIND_INTERDOMAIN as u64,
        ),
        ("EVTCHNOP_bind_virq", evtchn::EVTCHNOP_BIND_VIRQ as u64),
        ("EVTCHNOP_close", evtchn::EVTCHNOP_CLOSE as u64),
        ("EVTCHNOP_send", evtchn::EVTCHNOP_SEND as u64),
        ("EVTCHNOP_status", evtchn::EVTCHNOP_STATUS as u64),
        (
            "EVTCHNOP_alloc_unbound",
            evtchn::EVTCHNOP_ALLOC_UNBOUND as u64,
        ),
        ("EVTCHNOP_bind_ipi", evtchn::EVTCHNOP_BIND_IPI as u64),
        ("EVTCHNOP_bind_vcpu", evtchn::EVTCHNOP_BIND_VCPU as u64),
        ("EVTCHNOP_unmask", evtchn::EVTCHNOP_UNMASK as u64),
        ("EVTCHNSTAT_closed", evtchn::EVTCHNSTAT_CLOSED.into()),
        ("EVTCHNSTAT_unbound", evtchn::EVTCHNSTAT_UNBOUND.into()),
        (
            "EVTCHNSTAT_interdomain",
            evtchn::EVTCHNSTAT_INTERDOMAIN.into(),
        ),
        ("EVTCHNSTAT_pirq", evtchn::EVTCHNSTAT_PIRQ.into()),
        ("EVTCHNSTAT_virq", evtchn::EVTCHNSTAT_VIRQ.into()),
        ("EVTCHNSTAT_ipi", evtchn::EVTCHNSTAT_IPI.into()),
        ("VIRQ_TIMER", evtchn::Virq::TIMER.0.into()),
        ("VIRQ_DEBUG", evtchn::Virq::DEBUG.0.into()),
        ("VIRQ_CONSOLE", evtchn::Virq::CONSOLE.0.into()),
        ("VIRQ_DOM_EXC", evtchn::Virq::DOM_EXC.0.into()),
        ("VIRQ_TBUF", evtchn::Virq::TBUF.0.into()),
        ("VIRQ_DEBUGGER", evtchn::Virq::DEBUGGER.0.into()),
        ("VIRQ_XENOPROF", evtchn::Virq::XENOPROF.0.into()),
        ("VIRQ_CON_RING", evtchn::Virq::CON_RING.0.into()),
        ("VIRQ_PCPU_STATE", evtchn::Virq::PCPU_STATE.0.into()),
        ("VIRQ_MEM_EVENT", evtchn::Virq::MEM_EVENT.0.into()),
        ("VIRQ_ARGO", evtchn::Virq::ARGO.0.into()),
        ("VIRQ_ENOMEM", evtchn::Virq::ENOMEM.0.into()),
        ("VIRQ_XENPMU", evtchn::Virq::XENPMU.0.into()),
        ("XENVER_version", version::XENVER_VERSION as u64),
        ("XENVER_extraversion", version::XENVER_EXTRAVERSION as u64),
        ("XENVER_compile_info", version::XENVER_COMPILE_INFO as u64),
        ("XENVER_capabilities", version::XENVER_CAPABILITIES as u64),
        ("XENVER_changeset", version::XENVER_CHANGESET as u64),
        (
            "XENVER_platform_parameters",
            version::XENVER_PLATFORM_PARAMETERS as u64,
        ),
        ("XENVER_get_features", version::XENVER_GET_FEATURES as u64),
        ("XENVER_pagesize", version::XENVER_PAGESIZE as u64),
        ("XENVER_guest_handle", version::XENVER_GUEST_HANDLE as u64),
        (
            "XENMEM_current_reservation",
            memory::XENMEM_CURRENT_RESERVATION as u64,
        ),
        (
            "XENMEM_maximum_reservation",
            memory::XENMEM_MAXIMUM_RESERVATION as u64,
        ),
        (
            "XENMEM_add_to_physmap",
            memory::XENMEM_ADD_TO_PHYSMAP as u64,
        ),
        ("XENMEM_maximum_gpfn", memory::XENMEM_MAXIMUM_GPFN as u64),
        (
            "XENMAPSPACE_shared_info",
            memory::Space::SHARED_INFO.0.into(),
        ),
        (
            "XENMAPSPACE_grant_table",
            memory::Space::GRANT_TABLE.0.into(),
        ),
        ("XENMAPSPACE_gmfn", memory::Space::GMFN.0.into()),
        ("XENMAPSPACE_gmfn_range", memory::Space::GMFN_RANGE.0.into()),
        (
            "XENMAPSPACE_gmfn_foreign",
            memory::Space::GMFN_FOREIGN.0.into(),
        ),
        ("XENMAPSPACE_dev_mmio", memory::Space::DEV_MMIO.0.into()),
        (
            "XENMAPIDX_grant_table_status",
            memory::XENMAPIDX_GRANT_TABLE_STATUS,
        ),
        ("GNTTABOP_setup_table", gt::GNTTABOP_SETUP_TABLE as u64),
        ("GNTTABOP_query_size", gt::GNTTABOP_QUERY_SIZE as u64),
        ("GNTTABOP_set_version", gt::GNTTABOP_SET_VERSION as u64),
        ("GNTTABOP_get_version", gt::GNTTABOP_GET_VERSION as u64),
        ("GTF_invalid", gt::GTF_INVALID.into()),
        ("GTF_permit_access", gt::GTF_PERMIT_ACCESS.into()),
        ("GTF_accept_transfer", gt::GTF_ACCEPT_TRANSFER.into()),
        ("GTF_type_mask", gt::GTF_TYPE_MASK.into()),
        ("GTF_readonly", gt::GTF_READONLY.into()),
        ("GTF_reading", gt::GTF_READING.into()),
        ("GTF_writing", gt::GTF_WRITING.into()),
        ("HVMOP_set_param", hvm::HVMOP_SET_PARAM as u64),
        ("HVMOP_get_param", hvm::HVMOP_GET_PARAM as u64),
        ("HVM_PARAM_CALLBACK_IRQ", hvm::Param::CALLBACK_IRQ.0.into()),
        ("HVM_PARAM_STORE_PFN", hvm::Param::STORE_PFN.0.into()),
        ("HVM_PARAM_STORE_EVTCHN", hvm::Param::STORE_EVTCHN.0.into()),
        ("HVM_PARAM_CONSOLE_PFN", hvm::Param::CONSOLE_PFN.0.into()),
        (
            "HVM_PARAM_CONSOLE_EVTCHN",
            hvm::Param::CONSOLE_EVTCHN.0.into(),
        ),
        ("VCPUOP_is_up", vcpu::VCPUOP_IS_UP as u64),
        (
            "VCPUOP_register_runstate_memory_area",
            vcpu::VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA as u64,
        ),
        (
            "VCPUOP_register_vcpu_info",
            vcpu::VCPUOP_REGISTER_VCPU_INFO as u64,
        ),
        (
            "VCPUOP_set_singleshot_timer",
            time::VCPUOP_SET_SINGLESHOT_TIMER as u64,
        ),
        (
            "VCPUOP_stop_singleshot_timer",
            time::VCPUOP_STOP_SINGLESHOT_TIMER as u64,
        ),
        (
            "VCPU_SSHOTTMR_future",
            u64::from(time::VCPU_SSHOTTMR_FUTURE),
        ),
        ("GNTTABOP_map_grant_ref", gt::GNTTABOP_MAP_GRANT_REF as u64),
        (
            "GNTTABOP_unmap_grant_ref",
            gt::GNTTABOP_UNMAP_GRANT_REF as u64,
        ),
        ("GNTTABOP_copy", gt::GNTTABOP_COPY as u64),
        (
            "GNTTAB_NR_RESERVED_ENTRIES",
            gt::GNTTAB_NR_RESERVED_ENTRIES.into(),
        ),
        ("GNTMAP_device_map", gt::GntMap::DEVICE_MAP.bits().into()),
        ("GNTMAP_host_map", gt::GntMap::HOST_MAP.bits().into()),
        ("GNTMAP_readonly", gt::GntMap::READONLY.bits().into()),
        (
            "GNTMAP_application_map",
            gt::GntMap::APPLICATION_MAP.bits().into(),
        ),
        (
            "GNTMAP_contains_pte",
            gt::GntMap::CONTAINS_PTE.bits().into(),
        ),
        ("GNTCOPY_source_gref", gt::GNTCOPY_SOURCE_GREF.into()),
        ("GNTCOPY_dest_gref", gt::GNTCOPY_DEST_GREF.into()),
        (
            "XENMEM_increase_reservation",
            memory::XENMEM_INCREASE_RESERVATION as u64,
        ),
        (
            "XENMEM_decrease_reservation",
            memory::XENMEM_DECREASE_RESERVATION as u64,
        ),
        (
            "XENMEM_populate_physmap",
            memory::XENMEM_POPULATE_PHYSMAP as u64,
        ),
        (
            "XENMEM_remove_from_physmap",
            memory::XENMEM_REMOVE_FROM_PHYSMAP as u64,
        ),
        (
            "XENMEM_add_to_physmap_batch",
            memory::XENMEM_ADD_TO_PHYSMAP_BATCH as u64,
        ),
        ("EVTCHN_2L_NR_CHANNELS", evtchn::NR_PORTS_2L.into()),
        ("VMASST_CMD_enable", vm_assist::VMASST_CMD_ENABLE as u64),
        ("VMASST_CMD_disable", vm_assist::VMASST_CMD_DISABLE as u64),
        (
            "VMASST_TYPE_runstate_update_flag",
            vm_assist::Type::RUNSTATE_UPDATE_FLAG.0.into(),
        ),
        ("XEN_RUNSTATE_UPDATE", vcpu::XEN_RUNSTATE_UPDATE),
        ("RUNSTATE_running", vcpu::RUNSTATE_RUNNING as u64),
        ("RUNSTATE_runnable", vcpu::RUNSTATE_RUNNABLE as u64),
        ("RUNSTATE_blocked", vcpu::RUNSTATE_BLOCKED as u64),
        ("RUNSTATE_offline", vcpu::RUNSTATE_OFFLINE as u64),
    ];
    // Grant statuses are negative: compare them as the two's-complement of the 64-bit C value.
    for s in gt::GrantStatus::ALL {
        c.push((s.c_name(), s.code() as i64 as u64));
    }
    c
}

fn checks(layouts: &[Layout], constants: &[(&'static str, u64)]) -> (String, Vec<Check>) {
    let mut prelude = String::new();
    let mut out = Vec::new();
    for (i, l) in layouts.iter().enumerate() {
        let t = format!("probe_t{i}");
        if l.c_member.is_empty() {
            writeln!(prelude, "typedef {} {t};", l.c_type).unwrap();
        } else {
            writeln!(
                prelude,
                "typedef __typeof__((({}*)0)->{}) {t};",
                l.c_type, l.c_member
            )
            .unwrap();
        }
        let name = if l.c_member.is_empty() {
            l.c_type.to_string()
        } else {
            format!("{}.{}", l.c_type, l.c_member)
        };
        let mut push = |what: String, c_expr: String, rust: usize| {
            out.push(Check {
                what: format!("{} vs {name}: {what}", l.rust),
                c_expr,
                rust: rust as u64,
            })
        };
        push("size".into(), format!("sizeof({t})"), l.size);
        push("align".into(), format!("_Alignof({t})"), l.align);
        for &(f, off, size) in &l.fields {
            push(format!("offset of {f}"), format!("offsetof({t}, {f})"), off);
            push(
                format!("size of {f}"),
                format!("sizeof((({t}*)0)->{f})"),
                size,
            );
        }
    }
    for &(name, v) in constants {
        out.push(Check {
            what: format!("constant {name}"),
            c_expr: format!("(unsigned long long)(long long)({name})"),
            rust: v,
        });
    }
    for &(n, name) in nr::ALL.iter() {
        out.push(Check {
            what: format!("hypercall number __HYPERVISOR_{name}"),
            c_expr: format!("__HYPERVISOR_{name}"),
            rust: n as u64,
        });
    }
    (prelude, out)
}

const HEADERS: [&str; 10] = [
    "xen.h",
    "sched.h",
    "event_channel.h",
    "version.h",
    "memory.h",
    "grant_table.h",
    "hvm/params.h",
    "hvm/hvm_op.h",
    "vcpu.h",
    "errno.h",
];

/// x86-64 only.
const X86_HEADERS: [&str; 1] = ["arch-x86/hvm/start_info.h"];

const INCLUDE: &str = "/usr/include/xen";

/// The files whose presence shows the tools are there (`cargo xtask test` installs them first).
const TOOLS: [(&str, &str); 2] = [
    ("/usr/bin/clang", "clang"),
    ("/usr/include/xen/xen.h", "libxen-dev"),
];

fn require_tools() {
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(file, _)| !std::path::Path::new(file).exists())
        .map(|(_, package)| *package)
        .collect();
    assert!(
        missing.is_empty(),
        "the layout test needs clang and Xen's public headers; install them with\n  \
         apt-get install -y {} (cargo xtask test does)",
        missing.join(" ")
    );
}

/// Compiles the probe for `target` and returns the values of its array, in order.
fn probe(target: &str, prelude: &str, exprs: &[String]) -> Vec<u64> {
    let mut src = String::from(
        "#include <stdint.h>\n#include <stddef.h>\n\
         #define __XEN_INTERFACE_VERSION__ __XEN_LATEST_INTERFACE_VERSION__\n\
         #define __XEN_TOOLS__ 1\n",
    );
    for h in HEADERS {
        writeln!(src, "#include \"{INCLUDE}/{h}\"").unwrap();
    }
    if target.starts_with("x86_64") {
        for h in X86_HEADERS {
            writeln!(src, "#include \"{INCLUDE}/{h}\"").unwrap();
        }
    }
    src.push_str(prelude);
    src.push_str("const unsigned long long xen_layout[] = {\n");
    for e in exprs {
        writeln!(src, "    {e},").unwrap();
    }
    src.push_str("};\n");
    // Tests run in parallel threads: one directory per probe.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("xen-layout-{}-{n}-{target}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = dir.join("probe.c");
    std::fs::write(&c, &src).unwrap();
    let out = Command::new("clang")
        .args([
            &format!("--target={target}"),
            "-ffreestanding",
            "-std=gnu11",
            "-S",
            "-emit-llvm",
            "-o",
            "-",
        ])
        .arg(&c)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run clang ({e}); install it with: apt-get install clang libxen-dev")
        });
    assert!(
        out.status.success(),
        "clang --target={target} failed on {}:\n{}",
        c.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let ir = String::from_utf8(out.stdout).unwrap();
    let line = ir
        .lines()
        .find(|l| l.starts_with("@xen_layout = "))
        .unwrap_or_else(|| panic!("no @xen_layout in the IR for {target}"));
    let body = &line[line.find("] [").expect("array initialiser") + 3..];
    let body = &body[..body.find(']').expect("end of initialiser")];
    let values: Vec<u64> = body
        .split(',')
        .map(|v| {
            let v = v.trim().strip_prefix("i64 ").expect("i64 element");
            v.parse::<i64>().expect("integer") as u64
        })
        .collect();
    assert_eq!(values.len(), exprs.len(), "one value per probe expression");
    std::fs::remove_dir_all(&dir).ok();
    values
}

/// The mismatches between the C values for `target` and the Rust ones.
fn compare(target: &str, layouts: &[Layout], constants: &[(&'static str, u64)]) -> Vec<String> {
    let (prelude, checks) = checks(layouts, constants);
    let exprs: Vec<String> = checks.iter().map(|c| c.c_expr.clone()).collect();
    let values = probe(target, &prelude, &exprs);
    checks
        .iter()
        .zip(values)
        .filter(|(c, v)| c.rust != *v)
        .map(|(c, v)| format!("{target}: {}: C {v}, Rust {}", c.what, c.rust))
        .collect()
}

const TARGETS: [&str; 2] = ["armv7a-none-eabi", "aarch64-none-elf"];

const X86_64: &str = "x86_64-none-elf";

/// The shared structures and constants and an architecture's own (`arch_layouts`, `arch_constants`) match
/// the headers on every one of `targets`, and more than 300 values were compared on each.
fn assert_headers_match(
    targets: &[&str],
    arch_layouts: Vec<Layout>,
    arch_constants: Vec<(&'static str, u64)>,
) {
    require_tools();
    let mut layouts = layouts();
    layouts.extend(arch_layouts);
    let mut constants = constants();
    constants.extend(arch_constants);
    let mut mismatches = Vec::new();
    for t in targets {
        mismatches.extend(compare(t, &layouts, &constants));
    }
    assert!(
        mismatches.is_empty(),
        "layouts or constants differ from Xen's headers:\n{}",
        mismatches.join("\n")
    );
    // Every structure was compared on every target: count what was checked.
    let (_, checks) = checks(&layouts, &constants);
    assert!(checks.len() > 300, "only {} checks", checks.len());
}

#[test]
fn layouts_match_xens_headers_on_arm32_and_aarch64() {
    assert_headers_match(&TARGETS, arm_layouts(), arm_constants());
}

#[test]
fn layouts_match_xens_headers_on_x86_64() {
    assert_headers_match(&[X86_64], x86_layouts(), x86_constants());
}

#[test]
fn the_probe_really_compiles_for_three_different_architectures() {
    require_tools();
    let exprs = [
        "sizeof(void *)".to_string(),
        "sizeof(long)".to_string(),
        "sizeof(struct vcpu_info)".to_string(),
    ];
    assert_eq!(probe("armv7a-none-eabi", "", &exprs), [4, 4, 48]);
    assert_eq!(probe("aarch64-none-elf", "", &exprs), [8, 8, 48]);
    assert_eq!(probe(X86_64, "", &exprs), [8, 8, 64]);
}

/// `hvm_start_info` with the version 1 count taken as 64 bits: the comparison must notice.
#[repr(C)]
struct BrokenStartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u64,
}

#[test]
fn arm_structures_on_x86_64_and_a_wrong_x86_layout_are_caught() {
    require_tools();
    // ARM's `vcpu_info` and `shared_info` (no arch parts, one slot) are not x86-64's (which names
    // ARM's `pad0` `evtchn_upcall_mask`: that field is left out).
    let mut arm = arm_layouts();
    for l in &mut arm {
        l.fields.retain(|f| f.0 != "pad0");
    }
    let m = compare(X86_64, &arm, &arm_constants()[..1]);
    for what in [
        "vcpu::VcpuInfo vs struct vcpu_info: size",
        "vcpu::SharedInfo vs struct shared_info: size",
        "offset of evtchn_pending",
        "constant XEN_LEGACY_MAX_VCPUS",
    ] {
        assert!(
            m.iter().any(|s| s.contains(what)),
            "{what} not caught: {m:?}"
        );
    }
    // Nor x86-64's ARM's (the fields ARM lacks left out).
    let mut x86 = vec![x86_layouts().swap_remove(1)];
    x86[0]
        .fields
        .retain(|f| !f.0.starts_with("arch") && f.0 != "evtchn_upcall_mask");
    for t in TARGETS {
        let m = compare(t, &x86, &x86_constants()[..1]);
        assert!(
            m.iter()
                .any(|s| s.contains("x86::VcpuInfo vs struct vcpu_info: size")),
            "{t}: not caught: {m:?}"
        );
        assert!(
            m.iter()
                .any(|s| s.contains("constant XEN_LEGACY_MAX_VCPUS")),
            "{t}: not caught: {m:?}"
        );
    }
    let broken = vec![layout!(BrokenStartInfo => "struct hvm_start_info" {
        magic => "magic", memmap_entries => "memmap_entries",
    })];
    let m = compare(
        X86_64,
        &broken,
        &[
            ("XEN_HVM_START_MAGIC_VALUE", 0x336e_c587),
            ("HVM_PARAM_CALLBACK_TYPE_VECTOR", 1),
        ],
    );
    for what in [
        "size of memmap_entries",
        "constant XEN_HVM_START_MAGIC_VALUE",
        "constant HVM_PARAM_CALLBACK_TYPE_VECTOR",
    ] {
        assert!(
            m.iter().any(|s| s.contains(what)),
            "{what} not caught: {m:?}"
        );
    }
}

/// `gnttab_query_size` declared wrongly (a 32-bit status): the comparison must notice.
#[repr(C)]
struct BrokenQuerySize {
    dom: u16,
    nr_frames: u32,
    max_nr_frames: u32,
    status: i32,
}

/// A guest handle declared as a pointer: 4 bytes on arm32, which the comparison must notice there only.
#[repr(C)]
struct PointerHandleSetupTable {
    dom: u16,
    nr_frames: u32,
    status: i16,
    frame_list: u64,
}

/// `gnttab_copy_ptr` with the union taken as the 32-bit `ref` only: the comparison must notice.
#[repr(C)]
struct BrokenCopyPtr {
    u: u32,
    domid: u16,
    offset: u16,
}

#[test]
fn a_wrong_inter_domain_layout_or_guest_address_is_caught() {
    require_tools();
    let broken = vec![layout!(BrokenCopyPtr => "struct gnttab_copy_ptr" {
        u => "u", domid => "domid", offset => "offset",
    })];
    for t in TARGETS {
        let m = compare(
            t,
            &broken,
            &[("GUEST_GNTTAB_BASE", 0x3900_0000), ("GUEST_EVTCHN_PPI", 27)],
        );
        for what in [
            "size of u",
            "offset of domid",
            "constant GUEST_GNTTAB_BASE",
            "constant GUEST_EVTCHN_PPI",
        ] {
            assert!(
                m.iter().any(|s| s.contains(what)),
                "{t}: {what} not caught: {m:?}"
            );
        }
    }
}

#[test]
fn a_wrong_layout_is_caught() {
    require_tools();
    let broken = vec![layout!(BrokenQuerySize => "struct gnttab_query_size" {
        dom => "dom", nr_frames => "nr_frames", max_nr_frames => "max_nr_frames", status => "status",
    })];
    for t in TARGETS {
        let m = compare(t, &broken, &[("SCHEDOP_poll", 4)]);
        assert!(
            m.iter().any(|s| s.contains("size of status")),
            "{t}: not caught: {m:?}"
        );
        assert!(
            m.iter().any(|s| s.contains("constant SCHEDOP_poll")),
            "{t}: wrong constant not caught: {m:?}"
        );
    }
    // Correct on both: no mismatch (the frame_list slot is 64-bit whatever the pointer size).
    let fine = vec![
        layout!(PointerHandleSetupTable => "struct gnttab_setup_table" {
            dom => "dom", nr_frames => "nr_frames", status => "status", frame_list => "frame_list",
        }),
    ];
    for t in TARGETS {
        assert_eq!(compare(t, &fine, &[]), Vec::<String>::new());
    }
}

/// `Error` has exactly the codes of `errno.h` (aliases as constants), by name and value.
#[test]
fn errors_are_exactly_xens_errno_h() {
    require_tools();
    let text = std::fs::read_to_string(format!("{INCLUDE}/errno.h")).unwrap();
    let mut header: Vec<(String, i32)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("XEN_ERRNO(") else {
            continue;
        };
        let Some((name, rest)) = rest.split_once(',') else {
            continue;
        };
        let value: String = rest.chars().take_while(|&c| c != ')').collect();
        let Ok(value) = value.trim().parse::<i32>() else {
            continue;
        };
        header.push((name.trim().to_string(), value));
    }
    assert!(header.len() >= 50, "parsed only {} codes", header.len());
    for (name, value) in &header {
        let e = xen::Error::from_errno(*value);
        match name.as_str() {
            "EWOULDBLOCK" => assert_eq!(xen::Error::EWOULDBLOCK, e),
            "EDEADLOCK" => assert_eq!(xen::Error::EDEADLOCK, e),
            _ => assert_eq!(e.name(), Some(name.as_str()), "errno {value}"),
        }
        assert_eq!(e.errno(), *value);
    }
    let distinct: Vec<_> = header
        .iter()
        .filter(|(n, _)| n != "EWOULDBLOCK" && n != "EDEADLOCK")
        .collect();
    assert_eq!(xen::Error::ALL.len(), distinct.len());
}

/// `nr::ALL` lists every `__HYPERVISOR_*` number of `xen.h` (the probe above checks the values).
#[test]
fn every_hypercall_number_of_xen_h_is_listed() {
    require_tools();
    let text = std::fs::read_to_string(format!("{INCLUDE}/xen.h")).unwrap();
    let mut names = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("#define __HYPERVISOR_") else {
            continue;
        };
        let mut it = rest.split_whitespace();
        let (Some(name), Some(value)) = (it.next(), it.next()) else {
            continue;
        };
        if value.parse::<u32>().is_ok() {
            names.push(name.to_string());
        }
    }
    assert!(names.len() >= 50, "parsed only {}", names.len());
    for n in &names {
        assert!(
            nr::ALL.iter().any(|(_, m)| m == n),
            "__HYPERVISOR_{n} is missing from nr::ALL"
        );
    }
}

/// Every structure the API declares as Xen ABI data (`impl_plain!` or `unsafe impl Plain for …` in
/// `src/xen/`) is in `layouts()`: a new structure cannot be added without its comparison.
#[test]
fn every_abi_structure_is_compared() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/xen");
    let compared: Vec<String> = layouts()
        .iter()
        .chain(&arm_layouts())
        .chain(&x86_layouts())
        .chain(&io_layouts())
        .chain(&netif_layouts())
        .map(|l| l.rust.rsplit("::").next().unwrap().trim().to_string())
        .collect();
    // The files of `src/xen/` and of its subdirectories (a module's children, `sched/poll.rs`).
    let mut files = Vec::new();
    let mut dirs = vec![dir];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let mut declared = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let mut in_macro = false;
        for line in text.lines() {
            // `crate::impl_plain! { Name { field: Type, … }; … }`: one structure per line that opens one.
            if line.trim_start().starts_with("crate::impl_plain! {") {
                in_macro = true;
                continue;
            }
            if in_macro {
                if line == "}" {
                    in_macro = false;
                } else if let Some((name, _)) = line.trim().split_once(" {")
                    && name.chars().all(|c| c.is_alphanumeric() || c == '_')
                {
                    declared.push(name.to_string());
                }
                continue;
            }
            let Some(rest) = line.trim().strip_prefix("unsafe impl Plain for ") else {
                continue;
            };
            if rest.starts_with('$') {
                continue; // the integer impls of `call.rs`' macro
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            declared.push(name);
        }
    }
    assert!(declared.len() >= 25, "found only {declared:?}");
    for name in &declared {
        assert!(
            compared.contains(name),
            "{name} is Xen ABI data but has no layout comparison"
        );
    }
    // `FixedStr<N>` (generic) is compared through its three instances.
    for alias in ["ExtraVersion", "Capabilities", "Changeset"] {
        assert!(compared.iter().any(|c| c == alias));
    }
}

// ---------------------------------------------------------------- io/ring.h, io/console.h, io/xs_wire.h

use xen_hypercall::xen::blkif;
use xen_hypercall::xen::ring::{
    self, Slot, SringHeader, XenconsInterface, XenstoreDomainInterface,
};
use xen_hypercall::xen::xenstore::{self, XsdSockmsg};

/// The ring protocol headers, after `HEADERS` (they need `grant_ref_t`), and a ring of 24-byte requests
/// and 8-byte responses (whose entry count, 168 rounded down to 128, is no other ring's).
const IO_PRELUDE: &str = "#include \"/usr/include/xen/io/ring.h\"\n\
    #include \"/usr/include/xen/io/console.h\"\n\
    #include \"/usr/include/xen/io/xs_wire.h\"\n\
    #include \"/usr/include/xen/io/blkif.h\"\n\
    #include \"/usr/include/xen/io/netif.h\"\n\
    struct probe_req24 { uint32_t w[6]; };\n\
    struct probe_rsp8 { uint64_t x; };\n\
    DEFINE_RING_TYPES(probe24, struct probe_req24, struct probe_rsp8);\n";

/// `blkif_request`'s size and alignment (the ring only needs those).
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct BlkReq([u8; 112]);
/// `blkif_response`'s.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct BlkRsp([u8; 16]);
/// `netif_tx_request`'s, `netif_tx_response`'s, `netif_rx_request`'s, `netif_rx_response`'s.
#[repr(C, align(4))]
#[derive(Clone, Copy)]
struct TxReq([u8; 12]);
#[repr(C, align(2))]
#[derive(Clone, Copy)]
struct TxRsp([u8; 4]);
#[repr(C, align(4))]
#[derive(Clone, Copy)]
struct RxReq([u8; 8]);
#[repr(C, align(2))]
#[derive(Clone, Copy)]
struct RxRsp([u8; 8]);

/// `struct blkif_sring`, as the ring sees it: the header, then the slots.
#[repr(C)]
struct BlkSring {
    h: SringHeader,
    ring: [Slot<BlkReq, BlkRsp>; 1],
}
#[repr(C)]
struct TxSring {
    h: SringHeader,
    ring: [Slot<TxReq, TxRsp>; 1],
}

fn io_layouts() -> Vec<Layout> {
    vec![
        layout!(BlkSring => "struct blkif_sring" {
            h.req_prod => "req_prod", h.req_event => "req_event", h.rsp_prod => "rsp_prod",
            h.rsp_event => "rsp_event", h.pvt => "pvt", h.pad => "__pad", ring => "ring",
        }),
        layout!(TxSring => "struct netif_tx_sring" {
            h.req_prod => "req_prod", h.rsp_event => "rsp_event", h.pvt => "pvt",
            h.pad => "__pad", ring => "ring",
        }),
        layout!(Slot<BlkReq, BlkRsp> => "union blkif_sring_entry" {}),
        layout!(Slot<RxReq, RxRsp> => "union netif_rx_sring_entry" {}),
        layout!(XenconsInterface => "struct xencons_interface" {
            r#in => "in", out => "out", in_cons => "in_cons", in_prod => "in_prod",
            out_cons => "out_cons", out_prod => "out_prod",
        }),
        layout!(XenstoreDomainInterface => "struct xenstore_domain_interface" {
            req => "req", rsp => "rsp", req_cons => "req_cons", req_prod => "req_prod",
            rsp_cons => "rsp_cons", rsp_prod => "rsp_prod", server_features => "server_features",
            connection => "connection", error => "error",
        }),
        layout!(XsdSockmsg => "struct xsd_sockmsg" {
            r#type => "type", req_id => "req_id", tx_id => "tx_id", len => "len",
        }),
        layout!(blkif::BlkifRequestSegment => "struct blkif_request_segment" {
            gref => "gref", first_sect => "first_sect", last_sect => "last_sect",
        }),
        layout!(blkif::BlkifRequest => "struct blkif_request" {
            operation => "operation", nr_segments => "nr_segments", handle => "handle", id => "id",
            sector_number => "sector_number", seg => "seg",
        }),
        layout!(blkif::BlkifRequestDiscard => "struct blkif_request_discard" {
            operation => "operation", flag => "flag", handle => "handle", id => "id",
            sector_number => "sector_number", nr_sectors => "nr_sectors",
        }),
        layout!(blkif::BlkifRequestIndirect => "struct blkif_request_indirect" {
            operation => "operation", indirect_op => "indirect_op", nr_segments => "nr_segments",
            id => "id", sector_number => "sector_number", handle => "handle",
            indirect_grefs => "indirect_grefs",
        }),
        layout!(blkif::BlkifResponse => "struct blkif_response" {
            id => "id", operation => "operation", status => "status",
        }),
        layout!(Slot<blkif::BlkifRequest, blkif::BlkifResponse> => "union blkif_sring_entry" {}),
    ]
}

/// `io/blkif.h`'s constants, and the ring's entries for 1, 2, 4, 8 and 16 pages with the real request and
/// response types (`blkif::ring_entries`).
fn blkif_constants() -> Vec<(&'static str, u64)> {
    let e = |order| blkif::ring_entries(order).into();
    vec![
        ("BLKIF_OP_READ", blkif::BLKIF_OP_READ.into()),
        ("BLKIF_OP_WRITE", blkif::BLKIF_OP_WRITE.into()),
        (
            "BLKIF_OP_WRITE_BARRIER",
            blkif::BLKIF_OP_WRITE_BARRIER.into(),
        ),
        (
            "BLKIF_OP_FLUSH_DISKCACHE",
            blkif::BLKIF_OP_FLUSH_DISKCACHE.into(),
        ),
        ("BLKIF_OP_RESERVED_1", blkif::BLKIF_OP_RESERVED_1.into()),
        ("BLKIF_OP_DISCARD", blkif::BLKIF_OP_DISCARD.into()),
        ("BLKIF_OP_INDIRECT", blkif::BLKIF_OP_INDIRECT.into()),
        (
            "BLKIF_MAX_SEGMENTS_PER_REQUEST",
            blkif::BLKIF_MAX_SEGMENTS_PER_REQUEST as u64,
        ),
        (
            "BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST",
            blkif::BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST as u64,
        ),
        (
            "(1 << XEN_PAGE_SHIFT) / sizeof(struct blkif_request_segment)",
            blkif::SEGMENTS_PER_INDIRECT_PAGE as u64,
        ),
        ("BLKIF_DISCARD_SECURE", blkif::BLKIF_DISCARD_SECURE.into()),
        (
            "BLKIF_RSP_EOPNOTSUPP",
            blkif::BLKIF_RSP_EOPNOTSUPP as i64 as u64,
        ),
        ("BLKIF_RSP_ERROR", blkif::BLKIF_RSP_ERROR as i64 as u64),
        ("BLKIF_RSP_OKAY", blkif::BLKIF_RSP_OKAY as i64 as u64),
        ("VDISK_CDROM", blkif::VDISK_CDROM.into()),
        ("VDISK_REMOVABLE", blkif::VDISK_REMOVABLE.into()),
        ("VDISK_READONLY", blkif::VDISK_READONLY.into()),
        ("__CONST_RING_SIZE(blkif, 1 << XEN_PAGE_SHIFT)", e(0)),
        ("__CONST_RING_SIZE(blkif, (1 << XEN_PAGE_SHIFT) << 1)", e(1)),
        ("__CONST_RING_SIZE(blkif, (1 << XEN_PAGE_SHIFT) << 2)", e(2)),
        ("__CONST_RING_SIZE(blkif, (1 << XEN_PAGE_SHIFT) << 3)", e(3)),
        ("__CONST_RING_SIZE(blkif, (1 << XEN_PAGE_SHIFT) << 4)", e(4)),
    ]
}

#[test]
fn blkif_layouts_and_ring_sizes_match_io_blkif_h() {
    require_tools();
    let constants = blkif_constants();
    let mut mismatches = Vec::new();
    for t in TARGETS.iter().chain([&X86_64]) {
        mismatches.extend(io_compare(t, &io_layouts(), &constants));
    }
    assert!(
        mismatches.is_empty(),
        "blkif layouts or constants differ from io/blkif.h:\n{}",
        mismatches.join("\n")
    );
    // The values the comparison confirmed, written out: 36 slots fit in a page, rounded to 32, and so on.
    let sizes: Vec<u32> = (0..=4).map(blkif::ring_entries).collect();
    assert_eq!(sizes, [32, 64, 128, 256, 512]);
    assert_eq!(blkif::ring_entries(5), 0);
}

/// An indirect request laid out as i386 packs it (`id` at 4, no 8-byte alignment) and a response whose
/// status sits after a 16-bit operation: the comparison must notice both.
#[repr(C, packed(4))]
struct I386Indirect {
    operation: u8,
    indirect_op: u8,
    nr_segments: u16,
    id: u64,
}

#[repr(C)]
struct WideOpResponse {
    id: u64,
    operation: u16,
    status: i16,
}

#[test]
fn a_wrong_blkif_layout_is_caught() {
    require_tools();
    let broken = vec![
        layout!(I386Indirect => "struct blkif_request_indirect" { id => "id" }),
        layout!(WideOpResponse => "struct blkif_response" { operation => "operation", status => "status" }),
    ];
    let wrong = [
        ("__CONST_RING_SIZE(blkif, (1 << XEN_PAGE_SHIFT) << 1)", 72),
        ("BLKIF_RSP_ERROR", 1),
    ];
    for t in TARGETS.iter().chain([&X86_64]) {
        let m = io_compare(t, &broken, &wrong);
        for what in [
            "I386Indirect vs struct blkif_request_indirect: offset of id",
            "I386Indirect vs struct blkif_request_indirect: align",
            "WideOpResponse vs struct blkif_response: size of operation",
            "constant __CONST_RING_SIZE(blkif, (1 << XEN_PAGE_SHIFT) << 1)",
            "constant BLKIF_RSP_ERROR",
        ] {
            assert!(
                m.iter().any(|s| s.contains(what)),
                "{t}: {what} not caught: {m:?}"
            );
        }
    }
}

/// The entries of a ring of `Req`/`Rsp` slots in `pages` pages, as `FrontRing` computes them.
fn entries<Req: Copy, Rsp: Copy>(pages: usize) -> u64 {
    ring::ring_size(pages * ring::PAGE_SIZE, size_of::<Slot<Req, Rsp>>()).into()
}

fn io_constants() -> Vec<(&'static str, u64)> {
    vec![
        (
            "offsetof(struct blkif_sring, ring)",
            ring::HEADER_SIZE as u64,
        ),
        (
            "__CONST_RING_SIZE(blkif, 4096)",
            entries::<BlkReq, BlkRsp>(1),
        ),
        (
            "__RING_SIZE((struct blkif_sring *)0, 4096)",
            entries::<BlkReq, BlkRsp>(1),
        ),
        // ring-page-order 1 to 4 (blkback's maximum).
        (
            "__CONST_RING_SIZE(blkif, 4096 << 1)",
            entries::<BlkReq, BlkRsp>(2),
        ),
        (
            "__CONST_RING_SIZE(blkif, 4096 << 2)",
            entries::<BlkReq, BlkRsp>(4),
        ),
        (
            "__CONST_RING_SIZE(blkif, 4096 << 3)",
            entries::<BlkReq, BlkRsp>(8),
        ),
        (
            "__CONST_RING_SIZE(blkif, 4096 << 4)",
            entries::<BlkReq, BlkRsp>(16),
        ),
        (
            "__CONST_RING_SIZE(netif_tx, 4096)",
            entries::<TxReq, TxRsp>(1),
        ),
        (
            "__CONST_RING_SIZE(netif_rx, 4096)",
            entries::<RxReq, RxRsp>(1),
        ),
        (
            "__CONST_RING_SIZE(probe24, 4096)",
            entries::<[u32; 6], u64>(1),
        ),
        (
            "__CONST_RING_SIZE(probe24, 3 * 4096)",
            entries::<[u32; 6], u64>(3),
        ),
        ("sizeof(struct blkif_request)", size_of::<BlkReq>() as u64),
        (
            "_Alignof(struct blkif_request)",
            align_of::<BlkReq>() as u64,
        ),
        ("sizeof(struct blkif_response)", size_of::<BlkRsp>() as u64),
        ("sizeof(struct netif_tx_request)", size_of::<TxReq>() as u64),
        (
            "sizeof(struct netif_tx_response)",
            size_of::<TxRsp>() as u64,
        ),
        ("sizeof(struct netif_rx_request)", size_of::<RxReq>() as u64),
        (
            "sizeof(struct netif_rx_response)",
            size_of::<RxRsp>() as u64,
        ),
        ("XENSTORE_RING_SIZE", ring::XENSTORE_RING_SIZE as u64),
        ("XEN_PAGE_SHIFT", ring::PAGE_SIZE.trailing_zeros().into()),
        // The masks the byte rings apply: the size minus one.
        (
            "MASK_XENSTORE_IDX(0xffffffffu)",
            ring::XENSTORE_RING_SIZE as u64 - 1,
        ),
        (
            "MASK_XENCONS_IDX(0xffffffffu, ((struct xencons_interface *)0)->out)",
            size_of::<[u8; 2048]>() as u64 - 1,
        ),
        (
            "MASK_XENCONS_IDX(0xffffffffu, ((struct xencons_interface *)0)->in)",
            size_of::<[u8; 1024]>() as u64 - 1,
        ),
        (
            "XENSTORE_PAYLOAD_MAX",
            xenstore::XENSTORE_PAYLOAD_MAX as u64,
        ),
        ("XS_CONTROL", xenstore::XS_CONTROL.into()),
        ("XS_DIRECTORY", xenstore::XS_DIRECTORY.into()),
        ("XS_READ", xenstore::XS_READ.into()),
        ("XS_GET_PERMS", xenstore::XS_GET_PERMS.into()),
        ("XS_WATCH", xenstore::XS_WATCH.into()),
        ("XS_UNWATCH", xenstore::XS_UNWATCH.into()),
        (
            "XS_TRANSACTION_START",
            xenstore::XS_TRANSACTION_START.into(),
        ),
        ("XS_TRANSACTION_END", xenstore::XS_TRANSACTION_END.into()),
        ("XS_INTRODUCE", xenstore::XS_INTRODUCE.into()),
        ("XS_RELEASE", xenstore::XS_RELEASE.into()),
        ("XS_GET_DOMAIN_PATH", xenstore::XS_GET_DOMAIN_PATH.into()),
        ("XS_WRITE", xenstore::XS_WRITE.into()),
        ("XS_MKDIR", xenstore::XS_MKDIR.into()),
        ("XS_RM", xenstore::XS_RM.into()),
        ("XS_SET_PERMS", xenstore::XS_SET_PERMS.into()),
        ("XS_WATCH_EVENT", xenstore::XS_WATCH_EVENT.into()),
        ("XS_ERROR", xenstore::XS_ERROR.into()),
        (
            "XS_IS_DOMAIN_INTRODUCED",
            xenstore::XS_IS_DOMAIN_INTRODUCED.into(),
        ),
        ("XS_RESUME", xenstore::XS_RESUME.into()),
        ("XS_SET_TARGET", xenstore::XS_SET_TARGET.into()),
        ("XS_RESET_WATCHES", xenstore::XS_RESET_WATCHES.into()),
        ("XS_DIRECTORY_PART", xenstore::XS_DIRECTORY_PART.into()),
    ]
}

/// As `compare`, with the ring protocol headers included.
fn io_compare(target: &str, layouts: &[Layout], constants: &[(&'static str, u64)]) -> Vec<String> {
    let (prelude, checks) = checks(layouts, constants);
    let exprs: Vec<String> = checks.iter().map(|c| c.c_expr.clone()).collect();
    let values = probe(target, &format!("{IO_PRELUDE}{prelude}"), &exprs);
    checks
        .iter()
        .zip(values)
        .filter(|(c, v)| c.rust != *v)
        .map(|(c, v)| format!("{target}: {}: C {v}, Rust {}", c.what, c.rust))
        .collect()
}

#[test]
fn ring_console_and_xenstore_layouts_match_xens_io_headers() {
    require_tools();
    let (layouts, constants) = (io_layouts(), io_constants());
    let mut mismatches = Vec::new();
    for t in TARGETS.iter().chain([&X86_64]) {
        mismatches.extend(io_compare(t, &layouts, &constants));
    }
    assert!(
        mismatches.is_empty(),
        "ring layouts or sizes differ from Xen's io headers:\n{}",
        mismatches.join("\n")
    );
    // The hand-computed values the comparison confirmed (blkif 36 -> 32, netif 336 -> 256 and
    // 504 -> 256, 24-byte slots 168 -> 128 and 510 -> 256, blkif order 2 145 -> 128).
    let c: Vec<u64> = constants.iter().map(|c| c.1).collect();
    assert_eq!(
        &c[..11],
        [64, 32, 32, 64, 128, 256, 512, 256, 256, 128, 256]
    );
    let (_, checks) = checks(&layouts, &constants);
    assert!(
        checks.len() > 60 + nr::ALL.len(),
        "only {} checks",
        checks.len()
    );
}

/// A header with 36 bytes of padding (slots at 56), a ring size not rounded down, console directions
/// swapped: the comparison must notice each.
#[repr(C)]
struct BrokenSring {
    req_prod: u32,
    req_event: u32,
    rsp_prod: u32,
    rsp_event: u32,
    pvt: [u8; 4],
    pad: [u8; 36],
    ring: [BlkReq; 1],
}

#[repr(C)]
struct SwappedConsole {
    out: [u8; 2048],
    r#in: [u8; 1024],
    in_cons: u32,
    in_prod: u32,
    out_cons: u32,
    out_prod: u32,
}

#[test]
fn a_wrong_ring_layout_or_size_is_caught() {
    require_tools();
    let broken = vec![
        layout!(BrokenSring => "struct blkif_sring" { pad => "__pad", ring => "ring" }),
        layout!(SwappedConsole => "struct xencons_interface" { r#in => "in", out => "out" }),
    ];
    // (4096 - 64) / 112 without the rounding.
    let unrounded = [
        ("__CONST_RING_SIZE(blkif, 4096)", 36),
        ("XENSTORE_RING_SIZE", 2048),
    ];
    for t in TARGETS.iter().chain([&X86_64]) {
        let m = io_compare(t, &broken, &unrounded);
        for what in [
            "BrokenSring vs struct blkif_sring: size",
            "size of __pad",
            "offset of ring",
            "SwappedConsole vs struct xencons_interface: offset of in",
            "offset of out",
            "constant __CONST_RING_SIZE(blkif, 4096)",
            "constant XENSTORE_RING_SIZE",
        ] {
            assert!(
                m.iter().any(|s| s.contains(what)),
                "{t}: {what} not caught: {m:?}"
            );
        }
    }
}

// ---------------------------------------------------------------- io/netif.h

use xen_hypercall::xen::netif;

/// `io/netif.h`'s structures (the ring slots of both rings with the real types included).
fn netif_layouts() -> Vec<Layout> {
    vec![
        layout!(netif::NetifTxRequest => "struct netif_tx_request" {
            gref => "gref", offset => "offset", flags => "flags", id => "id", size => "size",
        }),
        layout!(netif::NetifTxResponse => "struct netif_tx_response" {
            id => "id", status => "status",
        }),
        layout!(netif::NetifRxRequest => "struct netif_rx_request" {
            id => "id", _pad => "pad", gref => "gref",
        }),
        layout!(netif::NetifRxResponse => "struct netif_rx_response" {
            id => "id", offset => "offset", flags => "flags", status => "status",
        }),
        layout!(netif::NetifExtraInfo => "struct netif_extra_info" {
            r#type => "type", flags => "flags", u => "u",
        }),
        layout!(Slot<netif::NetifTxRequest, netif::NetifTxResponse> => "union netif_tx_sring_entry" {}),
        layout!(Slot<netif::NetifRxRequest, netif::NetifRxResponse> => "union netif_rx_sring_entry" {}),
    ]
}

/// `io/netif.h`'s constants, the offsets of the extra-info union's members the accessors read, and the
/// ring sizes with the real types.
fn netif_constants() -> Vec<(&'static str, u64)> {
    let neg = |v: i16| v as i64 as u64;
    vec![
        (
            "XEN_NETIF_NR_SLOTS_MIN",
            netif::XEN_NETIF_NR_SLOTS_MIN as u64,
        ),
        ("XEN_NETIF_MAX_TX_SIZE", netif::XEN_NETIF_MAX_TX_SIZE as u64),
        ("NETTXF_csum_blank", netif::NETTXF_CSUM_BLANK.into()),
        ("NETTXF_data_validated", netif::NETTXF_DATA_VALIDATED.into()),
        ("NETTXF_more_data", netif::NETTXF_MORE_DATA.into()),
        ("NETTXF_extra_info", netif::NETTXF_EXTRA_INFO.into()),
        ("NETRXF_data_validated", netif::NETRXF_DATA_VALIDATED.into()),
        ("NETRXF_csum_blank", netif::NETRXF_CSUM_BLANK.into()),
        ("NETRXF_more_data", netif::NETRXF_MORE_DATA.into()),
        ("NETRXF_extra_info", netif::NETRXF_EXTRA_INFO.into()),
        ("NETRXF_gso_prefix", netif::NETRXF_GSO_PREFIX.into()),
        (
            "XEN_NETIF_EXTRA_TYPE_NONE",
            netif::XEN_NETIF_EXTRA_TYPE_NONE.into(),
        ),
        (
            "XEN_NETIF_EXTRA_TYPE_GSO",
            netif::XEN_NETIF_EXTRA_TYPE_GSO.into(),
        ),
        (
            "XEN_NETIF_EXTRA_TYPE_MCAST_ADD",
            netif::XEN_NETIF_EXTRA_TYPE_MCAST_ADD.into(),
        ),
        (
            "XEN_NETIF_EXTRA_TYPE_MCAST_DEL",
            netif::XEN_NETIF_EXTRA_TYPE_MCAST_DEL.into(),
        ),
        (
            "XEN_NETIF_EXTRA_TYPE_HASH",
            netif::XEN_NETIF_EXTRA_TYPE_HASH.into(),
        ),
        (
            "XEN_NETIF_EXTRA_TYPE_MAX",
            netif::XEN_NETIF_EXTRA_TYPE_MAX.into(),
        ),
        (
            "XEN_NETIF_EXTRA_FLAG_MORE",
            netif::XEN_NETIF_EXTRA_FLAG_MORE.into(),
        ),
        (
            "XEN_NETIF_GSO_TYPE_NONE",
            netif::XEN_NETIF_GSO_TYPE_NONE.into(),
        ),
        (
            "XEN_NETIF_GSO_TYPE_TCPV4",
            netif::XEN_NETIF_GSO_TYPE_TCPV4.into(),
        ),
        (
            "XEN_NETIF_GSO_TYPE_TCPV6",
            netif::XEN_NETIF_GSO_TYPE_TCPV6.into(),
        ),
        ("NETIF_RSP_DROPPED", neg(netif::NETIF_RSP_DROPPED)),
        ("NETIF_RSP_ERROR", neg(netif::NETIF_RSP_ERROR)),
        ("NETIF_RSP_OKAY", neg(netif::NETIF_RSP_OKAY)),
        ("NETIF_RSP_NULL", neg(netif::NETIF_RSP_NULL)),
        // The union members `NetifExtraInfo`'s accessors read: gso.size in u[0], gso.type in the low
        // byte of u[1], gso.features in u[2], mcast.addr over all three.
        ("offsetof(struct netif_extra_info, u.gso.size)", 2),
        ("offsetof(struct netif_extra_info, u.gso.type)", 4),
        ("offsetof(struct netif_extra_info, u.gso.features)", 6),
        ("offsetof(struct netif_extra_info, u.mcast.addr)", 2),
        ("sizeof(((struct netif_extra_info *)0)->u)", 6),
        (
            "__CONST_RING_SIZE(netif_tx, 1 << XEN_PAGE_SHIFT)",
            netif::TX_RING_SIZE.into(),
        ),
        (
            "__CONST_RING_SIZE(netif_rx, 1 << XEN_PAGE_SHIFT)",
            netif::RX_RING_SIZE.into(),
        ),
    ]
}

#[test]
fn netif_layouts_and_constants_match_io_netif_h() {
    require_tools();
    let constants = netif_constants();
    let mut mismatches = Vec::new();
    for t in TARGETS.iter().chain([&X86_64]) {
        mismatches.extend(io_compare(t, &netif_layouts(), &constants));
    }
    assert!(
        mismatches.is_empty(),
        "netif layouts or constants differ from io/netif.h:\n{}",
        mismatches.join("\n")
    );
    // The values the comparison confirmed, written out: 336 and 504 slots fit, both rounded to 256.
    assert_eq!((netif::TX_RING_SIZE, netif::RX_RING_SIZE), (256, 256));
    // The accessors read the union as C lays it out: a GSO extra written byte by byte as C would.
    let bytes: [u8; 8] = [1, 0, 0xaa, 0x05, 1, 0, 0x34, 0x12];
    let e = netif::NetifExtraInfo {
        r#type: bytes[0],
        flags: bytes[1],
        u: [
            u16::from_le_bytes([bytes[2], bytes[3]]),
            u16::from_le_bytes([bytes[4], bytes[5]]),
            u16::from_le_bytes([bytes[6], bytes[7]]),
        ],
    };
    assert_eq!(
        (e.gso_size(), e.gso_type(), e.gso_features()),
        (0x05aa, netif::XEN_NETIF_GSO_TYPE_TCPV4, 0x1234)
    );
}

/// A transmit request with `size` and `id` swapped, a receive response whose status is 32-bit: the
/// comparison must notice both, and wrong flag values.
#[repr(C)]
struct SwappedTxRequest {
    gref: u32,
    offset: u16,
    flags: u16,
    size: u16,
    id: u16,
}

#[repr(C)]
struct WideStatusRxResponse {
    id: u16,
    offset: u16,
    flags: u16,
    status: i32,
}

#[test]
fn a_wrong_netif_layout_is_caught() {
    require_tools();
    let broken = vec![
        layout!(SwappedTxRequest => "struct netif_tx_request" { id => "id", size => "size" }),
        layout!(WideStatusRxResponse => "struct netif_rx_response" { status => "status" }),
    ];
    // The receive flags numbered as the transmit ones (csum_blank and data_validated swapped).
    let wrong = [
        ("NETRXF_csum_blank", 1),
        ("__CONST_RING_SIZE(netif_tx, 1 << XEN_PAGE_SHIFT)", 336),
    ];
    for t in TARGETS.iter().chain([&X86_64]) {
        let m = io_compare(t, &broken, &wrong);
        for what in [
            "SwappedTxRequest vs struct netif_tx_request: offset of id",
            "offset of size",
            "WideStatusRxResponse vs struct netif_rx_response: size",
            "size of status",
            "constant NETRXF_csum_blank",
            "constant __CONST_RING_SIZE(netif_tx, 1 << XEN_PAGE_SHIFT)",
        ] {
            assert!(
                m.iter().any(|s| s.contains(what)),
                "{t}: {what} not caught: {m:?}"
            );
        }
    }
}
