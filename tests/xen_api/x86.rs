//! The x86-64 parts of the typed API on the host: the vector callback through the mock, and the
//! `hvm_start_info` a PVH guest is entered with, read from structures laid out here by hand (their
//! addresses stand for guest physical addresses, as in an identity-mapped guest). Every expected value is
//! written out.

use std::ffi::CStr;

use xen_hypercall::mock;
use xen_hypercall::xen::pvh::{self, BadMagic, HvmMemmapTableEntry, HvmModlistEntry, HvmStartInfo};
use xen_hypercall::xen::{DomId, Error, hvm, x86};

#[test]
fn set_callback_vector_is_hvm_op_set_param_callback_irq_with_type_2() {
    mock::reset();
    mock::returns(0);
    hvm::set_callback_vector(0xf3).unwrap();
    let calls = mock::take_calls();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!((c.op, c.arity()), (34, 2));
    assert_eq!(c.args[0], 0); // HVMOP_set_param
    let p = c.read::<hvm::HvmParam>(1).unwrap();
    assert_eq!(p.domid, DomId(0x7ff0));
    assert_eq!(p.index, 0); // HVM_PARAM_CALLBACK_IRQ
    assert_eq!(p.value, 0x0200_0000_0000_00f3);
}

#[test]
fn set_callback_vector_refuses_exception_vectors_without_a_call_and_maps_xens_error() {
    mock::reset();
    for v in [0, 14, 31] {
        assert_eq!(hvm::set_callback_vector(v), Err(Error::EINVAL));
    }
    assert!(mock::take_calls().is_empty());
    // A PV guest: Xen answers -EINVAL.
    mock::returns(-22);
    assert_eq!(hvm::set_callback_vector(0x20), Err(Error::EINVAL));
    assert_eq!(
        mock::take_calls()[0]
            .read::<hvm::HvmParam>(1)
            .unwrap()
            .value,
        0x0200_0000_0000_0020
    );
}

#[test]
fn callback_values_encode_and_decode() {
    assert_eq!(hvm::callback_vector(0x20), 0x0200_0000_0000_0020);
    assert_eq!(hvm::callback_vector(0xff), 0x0200_0000_0000_00ff);
    assert_eq!(hvm::vector_of(0x0200_0000_0000_00f3), Some(0xf3));
    assert_eq!(hvm::vector_of(0x0100_0000_0000_0a01), None); // PCI INTx
    assert_eq!(hvm::vector_of(0), None);
}

#[repr(C, align(8))]
struct Guest {
    info: HvmStartInfo,
    modules: [HvmModlistEntry; 2],
    memmap: [HvmMemmapTableEntry; 3],
    cmdline: [u8; 16],
}

fn guest(version: u32) -> Box<Guest> {
    let mut g = Box::new(Guest {
        info: HvmStartInfo::default(),
        modules: [
            HvmModlistEntry {
                paddr: 0x0200_0000,
                size: 0x1_2345,
                cmdline_paddr: 0,
                reserved: 0,
            },
            HvmModlistEntry {
                paddr: 0x0300_0000,
                size: 4096,
                cmdline_paddr: 0,
                reserved: 0,
            },
        ],
        memmap: [
            HvmMemmapTableEntry {
                addr: 0,
                size: 0x9_f000,
                r#type: 1,
                reserved: 0,
            },
            HvmMemmapTableEntry {
                addr: 0xf_0000,
                size: 0x1_0000,
                r#type: 2,
                reserved: 0,
            },
            HvmMemmapTableEntry {
                addr: 0x10_0000,
                size: 0x3f0_0000,
                r#type: 1,
                reserved: 0,
            },
        ],
        cmdline: *b"console=hvc0\0\0\0\0",
    });
    g.info = HvmStartInfo {
        magic: 0x336e_c578,
        version,
        flags: 3,
        nr_modules: 2,
        modlist_paddr: g.modules.as_ptr() as u64,
        cmdline_paddr: g.cmdline.as_ptr() as u64,
        rsdp_paddr: 0xfc00_8000,
        memmap_paddr: g.memmap.as_ptr() as u64,
        memmap_entries: 3,
        reserved: 0,
    };
    g
}

#[test]
fn a_version_1_start_info_reads_with_its_modules_memmap_and_cmdline() {
    let g = guest(1);
    // SAFETY: `g` is valid and unchanged while read; its addresses stand for identity-mapped ones.
    let info = unsafe { HvmStartInfo::read(&raw const g.info) }.unwrap();
    assert!(info.is_privileged() && info.is_initial_domain());
    assert_eq!(info.rsdp_paddr, 0xfc00_8000);
    // SAFETY: as above.
    let modules = unsafe { info.modules() }.unwrap();
    assert_eq!(modules.len(), 2);
    assert_eq!((modules[0].paddr, modules[0].size), (0x0200_0000, 0x1_2345));
    assert_eq!(modules[1].paddr, 0x0300_0000);
    // SAFETY: as above.
    let memmap = unsafe { info.memmap() }.unwrap();
    let ram: u64 = memmap
        .iter()
        .filter(|e| e.r#type == pvh::XEN_HVM_MEMMAP_TYPE_RAM)
        .map(|e| e.size)
        .sum();
    assert_eq!(ram, 0x9_f000 + 0x3f0_0000);
    assert_eq!(memmap[1].r#type, 2);
    // SAFETY: as above.
    assert_eq!(unsafe { info.cmdline() }, Some(c"console=hvc0"));
}

#[test]
fn a_version_0_start_info_has_no_memmap() {
    let g = guest(0);
    // SAFETY: as above.
    let info = unsafe { HvmStartInfo::read(&raw const g.info) }.unwrap();
    assert_eq!((info.memmap_paddr, info.memmap_entries), (0, 0));
    // SAFETY: as above.
    assert_eq!(unsafe { info.memmap() }, Some(&[][..]));
    // SAFETY: as above.
    assert_eq!(unsafe { info.modules() }.map(<[_]>::len), Some(2));
}

#[test]
fn a_wrong_magic_or_a_bad_list_address_is_refused() {
    let mut g = guest(1);
    g.info.magic = 0x336e_c587;
    // SAFETY: `g` is valid and unchanged while read.
    let read = unsafe { HvmStartInfo::read(&raw const g.info) };
    assert_eq!(read, Err(BadMagic(0x336e_c587)));
    let mut g = guest(1);
    g.info.modlist_paddr = 0;
    g.info.memmap_paddr += 4; // misaligned
    g.info.cmdline_paddr = 0;
    // SAFETY: as above.
    let info = unsafe { HvmStartInfo::read(&raw const g.info) }.unwrap();
    // SAFETY: the addresses are refused before any read.
    unsafe {
        assert_eq!(info.modules(), None);
        assert_eq!(info.memmap(), None);
        assert_eq!(info.cmdline(), None::<&CStr>);
    }
}

#[test]
fn x86_shared_info_places_the_wall_clock_and_arch_part_where_xen_does() {
    use std::mem::{offset_of, size_of};
    assert_eq!(size_of::<x86::VcpuInfo>(), 64);
    assert_eq!(offset_of!(x86::VcpuInfo, evtchn_upcall_mask), 1);
    assert_eq!(offset_of!(x86::VcpuInfo, arch), 16);
    assert_eq!(offset_of!(x86::VcpuInfo, time), 32);
    assert_eq!(offset_of!(x86::SharedInfo, evtchn_pending), 2048);
    assert_eq!(offset_of!(x86::SharedInfo, evtchn_mask), 2560);
    assert_eq!(offset_of!(x86::SharedInfo, wc_version), 3072);
    assert_eq!(offset_of!(x86::SharedInfo, arch), 3088);
    assert_eq!(size_of::<x86::SharedInfo>(), 3136);
}

#[test]
fn page_table_entries_keep_the_frame_and_the_flags_apart() {
    use xen_hypercall::xen::mmu::{self, Flush, Pte};
    assert_eq!(Pte::new(0x83f5fe, 0x67).0, 0x8_3f5f_e067);
    assert_eq!(
        Pte::new(0x83f5fe, mmu::PAGE_PRESENT | mmu::PAGE_NX).0,
        0x8000_0008_3f5f_e001
    );
    // A frame beyond 40 bits does not spill into the NX bit; flags cannot change the frame.
    assert_eq!(Pte::new(1 << 40, 0).0, 0);
    assert_eq!(Pte::new(0, 0xfff0_0000_0000_0fff).0, 0xfff0_0000_0000_0fff);
    assert_eq!(Pte::new(0, 0x0000_0000_0000_f000).mfn(), 0);
    assert_eq!(Pte::writable(5), Pte(0x5067));
    assert_eq!(Pte(0x8000_0008_3f5f_e067).mfn(), 0x83f5fe);
    // update_va_mapping(va, val64, flags): UVMF_INVLPG is 2, UVMF_TLB_FLUSH 1 (`public/xen.h`).
    assert_eq!(
        mmu::update_va_mapping_args(0x40_3000, Pte(0x1234_5067), Flush::Invlpg),
        [0x40_3000, 0x1234_5067, 2]
    );
    assert_eq!(
        mmu::update_va_mapping_args(0, Pte(0), Flush::TlbFlush),
        [0, 0, 1]
    );
    assert_eq!((mmu::UVMF_NONE, mmu::UVMF_LOCAL, mmu::UVMF_ALL), (0, 0, 4));
}

#[test]
fn start_info_names_the_shared_info_page_at_offset_40() {
    use xen_hypercall::xen::x86::StartInfo;
    assert_eq!(core::mem::size_of::<StartInfo>(), 1168);
    assert_eq!(core::mem::offset_of!(StartInfo, shared_info), 40);
    assert_eq!(core::mem::offset_of!(StartInfo, pt_base), 88);
    assert_eq!(core::mem::offset_of!(StartInfo, cmd_line), 128);
    let mut page = vec![0u8; 4096];
    page[..14].copy_from_slice(b"xen-3.0-x86_64");
    page[40..48].copy_from_slice(&0x8_3f5f_e000u64.to_le_bytes());
    // SAFETY: `page` is 4096 readable bytes, as the start_info page a PV guest is given.
    let info = unsafe { StartInfo::read(page.as_ptr().cast()) }.unwrap();
    assert_eq!(info.shared_info, 0x8_3f5f_e000);
    assert_eq!(info.shared_info_mfn(), 0x83f5fe);
    page[0] = b'X';
    // SAFETY: as above.
    assert!(unsafe { StartInfo::read(page.as_ptr().cast()) }.is_none());
}

/// A PV `start_info` with `flags`, every other field zero but the magic.
fn pv_start_info(flags: u32) -> x86::StartInfo {
    let mut magic = [0u8; 32];
    magic[..x86::START_INFO_MAGIC.len()].copy_from_slice(x86::START_INFO_MAGIC);
    x86::StartInfo {
        magic,
        nr_pages: 0,
        shared_info: 0,
        flags,
        _pad0: 0,
        store_mfn: 0,
        store_evtchn: 0,
        _pad1: 0,
        console: [0; 2],
        pt_base: 0,
        nr_pt_frames: 0,
        mfn_list: 0,
        mod_start: 0,
        mod_len: 0,
        cmd_line: [0; 1024],
        first_p2m_pfn: 0,
        nr_p2m_frames: 0,
    }
}

#[test]
fn pv_start_info_flags_say_dom0_and_privileged() {
    // What Xen 4.17 gives a PV dom0: privileged and the initial domain.
    let dom0 = pv_start_info(x86::SIF_PRIVILEGED | x86::SIF_INITDOMAIN);
    assert!(dom0.is_initial_domain());
    assert!(dom0.is_privileged());
    // A privileged domain that is not dom0 (a hardware domain), and one with only other flags set.
    let hwdom = pv_start_info(x86::SIF_PRIVILEGED);
    assert!(!hwdom.is_initial_domain());
    assert!(hwdom.is_privileged());
    let domu = pv_start_info(x86::SIF_MOD_START_PFN | x86::SIF_VIRT_P2M_4TOOLS | x86::SIF_PM_MASK);
    assert!(!domu.is_initial_domain());
    assert!(!domu.is_privileged());
    // The flags are xen.h's bits (checked against the header by the layout probe too).
    assert_eq!(
        [
            x86::SIF_PRIVILEGED,
            x86::SIF_INITDOMAIN,
            x86::SIF_MULTIBOOT_MOD,
            x86::SIF_MOD_START_PFN,
            x86::SIF_VIRT_P2M_4TOOLS,
            x86::SIF_PM_MASK
        ],
        [1, 2, 4, 8, 16, 0xff00]
    );
    // `hvm_start_info` uses the same two.
    assert_eq!(
        (pvh::SIF_PRIVILEGED, pvh::SIF_INITDOMAIN),
        (x86::SIF_PRIVILEGED, x86::SIF_INITDOMAIN)
    );
}
