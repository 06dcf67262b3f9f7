//! The guest physical memory map Xen gives an ARM guest (`arch-arm.h`, "Virtual machine platform"), as
//! in Xen 4.17, and the interrupts it wires.
//!
//! Xen's header says guests should read these from the device tree; they are fixed for every guest built
//! by Xen's toolstack or by dom0less, and a bare-metal guest without a device-tree parser needs them.
//! The layout test compares each value with the header.
//!
//! ```
//! use xen_hypercall::xen::layout;
//! // The grant table frames a guest maps start where the tools advertise them.
//! assert_eq!(layout::GUEST_GNTTAB_BASE, 0x3800_0000);
//! assert_eq!(layout::GUEST_GNTTAB_BASE / layout::PAGE_SIZE, 0x38000);
//! assert!(layout::GUEST_RAM0_BASE + layout::GUEST_RAM0_SIZE <= layout::GUEST_RAM1_BASE);
//! ```

/// The page size of Xen's ARM ABI (`XEN_PAGE_SIZE`): every frame number counts 4 KiB pages.
pub const PAGE_SIZE: u64 = 4096;
/// `XEN_PAGE_SHIFT`.
pub const PAGE_SHIFT: u32 = 12;

/// `GUEST_VIRTIO_MMIO_BASE`: virtio-mmio devices.
pub const GUEST_VIRTIO_MMIO_BASE: u64 = 0x0200_0000;
/// `GUEST_VIRTIO_MMIO_SIZE`.
pub const GUEST_VIRTIO_MMIO_SIZE: u64 = 0x0010_0000;
/// `GUEST_GICD_BASE`: the GICv2 distributor.
pub const GUEST_GICD_BASE: u64 = 0x0300_1000;
/// `GUEST_GICD_SIZE`.
pub const GUEST_GICD_SIZE: u64 = 0x0000_1000;
/// `GUEST_GICC_BASE`: the GICv2 CPU interface.
pub const GUEST_GICC_BASE: u64 = 0x0300_2000;
/// `GUEST_GICC_SIZE`.
pub const GUEST_GICC_SIZE: u64 = 0x0000_2000;
/// `GUEST_GICV3_GICD_BASE`: the GICv3 distributor.
pub const GUEST_GICV3_GICD_BASE: u64 = 0x0300_1000;
/// `GUEST_GICV3_GICD_SIZE`.
pub const GUEST_GICV3_GICD_SIZE: u64 = 0x0001_0000;
/// `GUEST_GICV3_GICR0_BASE`: the GICv3 redistributors of vCPUs 0..127.
pub const GUEST_GICV3_GICR0_BASE: u64 = 0x0302_0000;
/// `GUEST_GICV3_GICR0_SIZE`.
pub const GUEST_GICV3_GICR0_SIZE: u64 = 0x0100_0000;
/// `GUEST_PL011_BASE`: the emulated PL011 UART (`vpl011`).
pub const GUEST_PL011_BASE: u64 = 0x2200_0000;
/// `GUEST_PL011_SIZE`.
pub const GUEST_PL011_SIZE: u64 = 0x0000_1000;
/// `GUEST_GNTTAB_BASE`: where the guest maps its grant table frames
/// ([`memory::map_grant_frame`](super::memory::map_grant_frame); the tools advertise this region in the
/// device tree's `/hypervisor` node).
pub const GUEST_GNTTAB_BASE: u64 = 0x3800_0000;
/// `GUEST_GNTTAB_SIZE`: room for 4096 grant table frames.
pub const GUEST_GNTTAB_SIZE: u64 = 0x0100_0000;
/// `GUEST_MAGIC_BASE`: the "magic pages" the toolstack sets up (console ring, xenstore ring, …; their
/// frame numbers are given by [`hvm`](super::hvm) parameters).
pub const GUEST_MAGIC_BASE: u64 = 0x3900_0000;
/// `GUEST_MAGIC_SIZE`.
pub const GUEST_MAGIC_SIZE: u64 = 0x0100_0000;
/// `GUEST_RAM_BANKS`: the guest's RAM is in at most two banks.
pub const GUEST_RAM_BANKS: usize = 2;
/// `GUEST_RAM0_BASE`: the first RAM bank (3 GiB at 1 GiB); a guest's RAM starts here.
pub const GUEST_RAM0_BASE: u64 = 0x4000_0000;
/// `GUEST_RAM0_SIZE`.
pub const GUEST_RAM0_SIZE: u64 = 0xc000_0000;
/// `GUEST_RAM1_BASE`: the second RAM bank (1016 GiB at 8 GiB).
pub const GUEST_RAM1_BASE: u64 = 0x02_0000_0000;
/// `GUEST_RAM1_SIZE`.
pub const GUEST_RAM1_SIZE: u64 = 0xfe_0000_0000;
/// `GUEST_RAM_BASE`: the lowest RAM address.
pub const GUEST_RAM_BASE: u64 = GUEST_RAM0_BASE;
/// `GUEST_RAM_MAX`: the most RAM a guest can have.
pub const GUEST_RAM_MAX: u64 = GUEST_RAM0_SIZE + GUEST_RAM1_SIZE;
/// `GUEST_RAM_BANK_BASES`.
pub const GUEST_RAM_BANK_BASES: [u64; GUEST_RAM_BANKS] = [GUEST_RAM0_BASE, GUEST_RAM1_BASE];
/// `GUEST_RAM_BANK_SIZES`.
pub const GUEST_RAM_BANK_SIZES: [u64; GUEST_RAM_BANKS] = [GUEST_RAM0_SIZE, GUEST_RAM1_SIZE];
/// `GUEST_MAX_VCPUS`.
pub const GUEST_MAX_VCPUS: u32 = 128;

/// `GUEST_TIMER_VIRT_PPI`: the virtual timer's interrupt.
pub const GUEST_TIMER_VIRT_PPI: u32 = 27;
/// `GUEST_TIMER_PHYS_S_PPI`: the secure physical timer's interrupt.
pub const GUEST_TIMER_PHYS_S_PPI: u32 = 29;
/// `GUEST_TIMER_PHYS_NS_PPI`: the non-secure physical timer's interrupt.
pub const GUEST_TIMER_PHYS_NS_PPI: u32 = 30;
/// `GUEST_EVTCHN_PPI`: the interrupt by which Xen signals pending events (the upcall). A handler for it
/// drains the pending ports with [`evtchn::Events`](super::evtchn::Events).
pub const GUEST_EVTCHN_PPI: u32 = 31;
/// `GUEST_VPL011_SPI`: the emulated PL011's interrupt.
pub const GUEST_VPL011_SPI: u32 = 32;
