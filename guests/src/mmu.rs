//! The stage-1 MMU: the unikernel template's identity map (`template/src/mmu.rs`, turned on by the entry
//! code), and [`translate`], which asks the MMU how it maps an address.
//!
//! With the guests' feature `wrong-attributes` (a negative control) the template's code is included with
//! one line changed by `build.rs`: the regions Xen maps shared pages into (grant table, magic pages) are
//! mapped Device instead of Normal, which the attribute checks of `cargo xtask xl` must catch.

#[cfg(not(feature = "wrong-attributes"))]
include!("../../template/src/mmu.rs");
#[cfg(feature = "wrong-attributes")]
include!(concat!(env!("OUT_DIR"), "/mmu-wrong-attributes.rs"));

/// The MMU's translation of `address` for a read at EL1, stage 1 only: the 64-bit `PAR_EL1` after
/// `AT S1E1R` (AArch64), or the LPAE-format `PAR` after `ATS1CPR` (32-bit ARM). Bit 0 set: the address
/// is not mapped; else bits 63:56 are the memory attributes (`MAIR` encoding), bits 8:7 the
/// shareability, bits 47:12 (39:12) the output address.
pub fn translate(address: usize) -> u64 {
    #[cfg(target_arch = "aarch64")]
    {
        let par: u64;
        // SAFETY: an address translation only writes PAR_EL1; it accesses no memory of the program.
        unsafe {
            core::arch::asm!("at s1e1r, {a}", "isb", "mrs {p}, par_el1", a = in(reg) address,
                p = out(reg) par, options(nostack, preserves_flags))
        };
        par
    }
    #[cfg(target_arch = "arm")]
    {
        let (lo, hi): (u32, u32);
        // SAFETY: as above, with the 32-bit operation and register (64-bit with long descriptors).
        unsafe {
            core::arch::asm!("mcr p15, 0, {a}, c7, c8, 0", "isb", "mrrc p15, 0, {lo}, {hi}, c7",
                a = in(reg) address, lo = out(reg) lo, hi = out(reg) hi, options(nostack, preserves_flags))
        };
        (u64::from(hi) << 32) | u64::from(lo)
    }
}

/// The line `PAR_<name> = 0x…`: how the MMU maps `address` ([`translate`]), for the harness to judge
/// against the Arm ARM's encodings (`xtask/src/par.rs`).
pub fn par_line(name: &str, address: usize) -> crate::common::Line {
    crate::common::Line::new()
        .s("PAR_")
        .s(name)
        .s(" = ")
        .hex(translate(address))
}

/// The start of the grant-table region the device tree's `/hypervisor` node gives (its first `reg`
/// entry), read the way the identity map reads it.
#[allow(dead_code)] // the dom0 example's
pub fn grant_table_region(device_tree: usize) -> Option<u64> {
    let mut region = None;
    device_tree_regions(device_tree, &mut |base, _, hypervisor, first| {
        if hypervisor && first {
            region = Some(base);
        }
    });
    region
}
