//! The unikernel template's identity map (`template/src/mmu.rs`), built on the host from device trees
//! written here, then walked the way the MMU walks it (4 KiB granule, levels 1 to 3, from the Arm ARM's
//! descriptor format: bit 0 valid, bit 1 table or page, AttrIndx 4:2, SH 9:8, AF 10, PXN 53, UXN 54).
//! The guests on real Xen check the same through the MMU itself (`PAR`); this covers what their boots do
//! not reach: trees without a `/hypervisor` node, no tree, malformed ones, and a pool of tables used up.

// The `xen` module (its `layout`) is on the host with the mock only.
#![cfg(all(target_arch = "x86_64", feature = "mock"))]

#[path = "../template/src/mmu.rs"]
#[allow(dead_code)]
mod mmu;

// The linker symbols the builder maps Normal (the image's bounds): a byte each, in order.
core::arch::global_asm!(
    ".data",
    ".globl _head",
    "_head: .byte 0",
    ".globl __image_end",
    "__image_end: .byte 0",
    ".text",
);

const VALID: u64 = 1 << 0;
const TABLE_OR_PAGE: u64 = 1 << 1;
const AF: u64 = 1 << 10;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const OUTPUT: u64 = 0x0000_ffff_ffff_f000;

/// A flattened device tree (version 17), built token by token.
struct Fdt {
    structs: Vec<u8>,
    strings: Vec<u8>,
}

impl Fdt {
    fn new() -> Fdt {
        Fdt {
            structs: Vec::new(),
            strings: Vec::new(),
        }
    }
    fn word(&mut self, w: u32) {
        self.structs.extend_from_slice(&w.to_be_bytes());
    }
    fn begin(&mut self, name: &str) -> &mut Fdt {
        self.word(1);
        self.structs.extend_from_slice(name.as_bytes());
        self.structs.push(0);
        while !self.structs.len().is_multiple_of(4) {
            self.structs.push(0);
        }
        self
    }
    fn end(&mut self) -> &mut Fdt {
        self.word(2);
        self
    }
    fn prop(&mut self, name: &str, cells: &[u32]) -> &mut Fdt {
        let offset = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        self.word(3);
        self.word(4 * cells.len() as u32);
        self.word(offset);
        for &c in cells {
            self.word(c);
        }
        self
    }
    /// `reg` with two address and two size cells.
    fn reg(&mut self, ranges: &[(u64, u64)]) -> &mut Fdt {
        let cells: Vec<u32> = ranges
            .iter()
            .flat_map(|&(a, s)| [(a >> 32) as u32, a as u32, (s >> 32) as u32, s as u32])
            .collect();
        self.prop("reg", &cells)
    }
    /// The blob, 8-byte aligned.
    fn finish(&mut self) -> Vec<u64> {
        self.word(9);
        let (header, reserve) = (40u32, 16u32);
        let structs = header + reserve;
        let strings = structs + self.structs.len() as u32;
        let total = strings + self.strings.len() as u32;
        let mut b = Vec::new();
        for w in [
            0xd00d_feed,
            total,
            structs,
            strings,
            header,
            17,
            16,
            0,
            self.strings.len() as u32,
            self.structs.len() as u32,
        ] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&self.structs);
        b.extend_from_slice(&self.strings);
        while !b.len().is_multiple_of(8) {
            b.push(0);
        }
        b.chunks(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
            .collect()
    }
}

/// A tree with the given `/memory` banks and, if any, a `/hypervisor` node with these regions.
fn tree(memory: &[(u64, u64)], hypervisor: Option<&[(u64, u64)]>) -> Vec<u64> {
    let mut t = Fdt::new();
    t.begin("")
        .prop("#address-cells", &[2])
        .prop("#size-cells", &[2]);
    t.begin("chosen").reg(&[(0x1234_5000, 0x1000)]).end(); // a `reg` that is not memory
    for &bank in memory {
        t.begin(&format!("memory@{:x}", bank.0)).reg(&[bank]).end();
    }
    if let Some(regions) = hypervisor {
        t.begin("hypervisor")
            .prop("compatible", &[0])
            .reg(regions)
            .end();
    }
    t.end().finish()
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Normal,
    Device,
    Unmapped,
}

/// The descriptor and level that map `va` under the level-1 table at `root` (39-bit addresses: the walk
/// starts at level 1; an address above faults).
fn walk(root: usize, va: u64) -> Option<(u64, u32)> {
    if va >> 39 != 0 {
        return None;
    }
    let mut table = root as u64;
    for level in 1..=3 {
        let index = (va >> (39 - 9 * level)) & 511;
        // SAFETY: `table` is one of the builder's tables (512 descriptors), `index` < 512.
        let d = unsafe { *((table + 8 * index) as *const u64) };
        if d & VALID == 0 {
            return None;
        }
        if level == 3 || d & TABLE_OR_PAGE == 0 {
            assert!(level < 3 || d & TABLE_OR_PAGE != 0, "a level-3 block");
            return Some((d, level));
        }
        table = d & OUTPUT;
    }
    None
}

/// What the map makes of `va`; every mapping must be an identity one with the Access Flag set, Normal
/// memory executable, Write-Back and Inner Shareable, Device memory never executable.
fn kind(root: usize, va: u64) -> (Kind, u32) {
    let Some((d, level)) = walk(root, va) else {
        return (Kind::Unmapped, 0);
    };
    let size = 1u64 << (39 - 9 * level);
    assert_eq!(
        d & OUTPUT & !(size - 1),
        va & !(size - 1),
        "{va:#x}: not identity"
    );
    assert_ne!(d & AF, 0, "{va:#x}: Access Flag clear");
    let attr = (mmu::MAIR >> (8 * ((d >> 2) & 7))) & 0xff;
    if attr >> 4 == 0 {
        assert_eq!(d & (PXN | UXN), PXN | UXN, "{va:#x}: executable Device");
        (Kind::Device, level)
    } else {
        assert_eq!(attr, 0xff, "{va:#x}: not Normal Write-Back");
        assert_eq!((d >> 8) & 3, 0b11, "{va:#x}: not Inner Shareable");
        assert_eq!(d & PXN, 0, "{va:#x}: Normal not executable");
        (Kind::Normal, level)
    }
}

fn build(blob: &[u64]) -> usize {
    mmu::mmu_build(blob.as_ptr() as usize)
}

// One test: the builder writes the image's static tables.
#[test]
fn the_identity_map_follows_the_device_tree() {
    use Kind::*;
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    // dom0 under QEMU: 64 MiB of host RAM, the grant table in Xen's image (256 KiB), an extended region.
    let dom0 = tree(
        &[(0x7800_0000, 64 * MIB)],
        Some(&[(0x4020_0000, 0x4_0000), (0x7c00_0000, 64 * MIB)]),
    );
    let root = build(&dom0);
    for (va, want) in [
        (0x7800_0000, (Normal, 2)),
        (0x7bff_f000, (Normal, 2)),
        (0x7c00_0000, (Normal, 2)),
        (0x4020_0000, (Normal, 3)),
        (0x4023_f000, (Normal, 3)),
        (0x4024_0000, (Device, 3)),
        (0x401f_f000, (Device, 2)),
        (0x4000_0000, (Device, 2)),
        (0x8000_0000, (Device, 1)),
        (0x0800_0000, (Device, 1)),
        (0x0900_0000, (Device, 1)),
        (0x1234_5000, (Device, 1)),
        // The guest layout's magic pages are host MMIO space for dom0.
        (0x3900_0000, (Device, 1)),
        (0x1_0000_0000, (Device, 1)),
        (511 * GIB, (Device, 1)),
        (512 * GIB, (Unmapped, 0)),
    ] {
        assert_eq!(kind(root, va), want, "dom0 {va:#x}");
    }

    // An xl domU: 16 MiB at GUEST_RAM0_BASE, the grant-table region then an extended region.
    let domu = tree(
        &[(0x4000_0000, 16 * MIB)],
        Some(&[(0x3800_0000, 16 * MIB), (0x4100_0000, 0xbf00_0000)]),
    );
    let root = build(&domu);
    for (va, want) in [
        (0x4000_0000, (Normal, 2)),
        (0x3800_0000, (Normal, 2)),
        (0x3900_0000, (Normal, 2)), // console ring: magic pages, from Xen's layout
        (0x3900_1000, (Normal, 2)),
        (0x39ff_f000, (Normal, 2)),
        (0x3a00_0000, (Device, 2)),
        (0x37ff_f000, (Device, 2)),
        (0x0300_1000, (Device, 2)), // GIC distributor
        (0x2200_0000, (Device, 2)), // PL011
        (0xc000_0000, (Normal, 1)),
        (0x1_0000_0000, (Device, 1)),
    ] {
        assert_eq!(kind(root, va), want, "xl domU {va:#x}");
    }

    // A dom0less domU: no `/hypervisor` node; the grant and magic regions still come from the layout.
    let root = build(&tree(&[(0x4000_0000, 64 * MIB)], None));
    assert_eq!(kind(root, 0x3800_0000), (Normal, 2));
    assert_eq!(kind(root, 0x3900_0000), (Normal, 2));
    assert_eq!(kind(root, 0x4400_0000), (Device, 2));

    // No tree, or a tree whose magic is wrong: Xen's guest layout (RAM banks, grant, magic).
    let mut bad = tree(&[(0x4000_0000, 64 * MIB)], None);
    bad[0] ^= 1;
    for blob in [None, Some(&bad)] {
        let root = mmu::mmu_build(blob.map_or(0, |b| b.as_ptr() as usize));
        assert_eq!(kind(root, 0x4000_0000), (Normal, 1));
        assert_eq!(kind(root, 0xffff_f000), (Normal, 1));
        assert_eq!(kind(root, 0x2_0000_0000), (Normal, 1)); // GUEST_RAM1_BASE
        assert_eq!(kind(root, 0x3900_0000), (Normal, 2));
        assert_eq!(kind(root, 0x0300_1000), (Device, 2));
        assert_eq!(kind(root, 0x1_0000_0000), (Device, 1));
    }
    // A tree whose total size (56 bytes: header and reservations) leaves no room for its nodes.
    let mut cut = tree(&[(0x7800_0000, 64 * MIB)], None);
    cut[0] = (cut[0] & 0xffff_ffff) | (56u32.to_be() as u64) << 32;
    let root = build(&cut);
    assert_eq!(
        kind(root, 0x7800_0000),
        (Normal, 1),
        "fell back to the layout"
    );

    // Eight unaligned banks in eight GiBs use up the pool: the last ones are mapped as whole blocks.
    let banks: Vec<(u64, u64)> = (0..8).map(|i| ((10 + i) * GIB + 0x1000, 0x1000)).collect();
    let root = build(&tree(&banks, Some(&[(0x3800_0000, 16 * MIB)])));
    let levels: Vec<(Kind, u32)> = banks.iter().map(|b| kind(root, b.0)).collect();
    assert_eq!(levels[0], (Normal, 3));
    assert_eq!(levels[7], (Normal, 1));
    assert_eq!(kind(root, 10 * GIB), (Device, 3), "beside the first bank");
}
