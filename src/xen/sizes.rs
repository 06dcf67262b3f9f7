//! The sizes and alignments of Xen's structures, checked at compile time on every target: a leaf above the
//! typed API's modules, which nothing uses.

use super::{
    DomId, blkif, evtchn, grant_table, hvm, memory, multicall, netif, sched, time, vcpu, version,
};
#[cfg(not(all(any(target_arch = "arm", target_arch = "aarch64"), target_os = "none")))]
use super::{pvh, x86};

// The sizes and alignments of Xen's headers (for ARM; for x86-64 where they differ), checked on every
// target this crate is built for (the host test `tests/layout.rs` compares every field with the real
// headers for 32-bit ARM, AArch64 and x86-64).
const _: () = {
    use core::mem::{align_of, size_of};
    macro_rules! abi {
        ($($t:ty: $size:literal, $align:literal;)*) => {
            $(assert!(size_of::<$t>() == $size && align_of::<$t>() == $align);)*
        };
    }
    abi! {
        DomId: 2, 2;
        evtchn::Port: 4, 4;
        evtchn::AllocUnbound: 8, 4;
        evtchn::BindInterdomain: 12, 4;
        evtchn::BindVirq: 12, 4;
        evtchn::PortArg: 4, 4;
        evtchn::EvtchnStatus: 24, 4;
        evtchn::BindIpi: 8, 4;
        evtchn::BindVcpu: 8, 4;
        sched::SchedRemoteShutdown: 8, 4;
        sched::SchedWatchdog: 8, 4;
        memory::MemoryReservation: 32, 8;
        memory::RemoveFromPhysmap: 16, 8;
        memory::AddToPhysmapBatch: 32, 8;
        grant_table::GrantHandle: 4, 4;
        grant_table::GnttabMapGrantRef: 32, 8;
        grant_table::GnttabUnmapGrantRef: 24, 8;
        grant_table::GnttabCopyPtr: 16, 8;
        grant_table::GnttabCopy: 40, 8;
        sched::SchedShutdown: 4, 4;
        sched::SchedPoll: 24, 8;
        version::CompileInfo: 144, 1;
        version::PlatformParameters: 8, 8;
        version::FeatureInfo: 8, 4;
        memory::AddToPhysmap: 24, 8;
        grant_table::GnttabQuerySize: 16, 4;
        grant_table::GnttabSetupTable: 24, 8;
        grant_table::GnttabSetVersion: 4, 4;
        grant_table::GnttabGetVersion: 8, 4;
        grant_table::GrantEntryV1: 8, 4;
        hvm::HvmParam: 16, 8;
        vcpu::VcpuTimeInfo: 32, 8;
        vcpu::RunstateInfo: 48, 8;
        vcpu::RegisterVcpuInfo: 16, 8;
        vcpu::RegisterRunstateMemoryArea: 8, 8;
        time::VcpuSetSingleshotTimer: 16, 8;
        multicall::MulticallEntry: 64, 8;
        blkif::BlkifRequestSegment: 8, 4;
        blkif::BlkifRequest: 112, 8;
        blkif::BlkifRequestDiscard: 32, 8;
        blkif::BlkifRequestIndirect: 64, 8;
        blkif::BlkifResponse: 16, 8;
        netif::NetifTxRequest: 12, 4;
        netif::NetifTxResponse: 4, 2;
        netif::NetifRxRequest: 8, 4;
        netif::NetifRxResponse: 8, 2;
        netif::NetifExtraInfo: 8, 2;
    }
    // ARM's `vcpu_info` and `shared_info` (empty arch parts, one legacy vCPU slot); on the host the
    // typed API is ARM's.
    #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
    abi! {
        vcpu::VcpuInfo: 48, 8;
        vcpu::SharedInfo: 1088, 8;
    }
    // x86-64's (`public/arch-x86/xen.h`, `start_info.h`), wherever they are built.
    #[cfg(not(all(any(target_arch = "arm", target_arch = "aarch64"), target_os = "none")))]
    abi! {
        x86::ArchVcpuInfo: 16, 8;
        x86::VcpuInfo: 64, 8;
        x86::ArchSharedInfo: 48, 8;
        x86::SharedInfo: 3136, 8;
        pvh::HvmStartInfo: 56, 8;
        pvh::HvmModlistEntry: 32, 8;
        pvh::HvmMemmapTableEntry: 24, 8;
        x86::StartInfo: 1168, 8;
    }
};
