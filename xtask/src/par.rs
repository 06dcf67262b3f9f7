//! The MMU attribute checks: is a guest's stage-1 MMU on, with shared memory Normal Write-Back
//! Inner Shareable and devices Device, as Xen's ARM guest ABI requires (`public/arch-arm.h`, "Memory
//! attributes")?
//!
//! The guest asks its MMU itself and prints the raw answer, one line per address: `PAR_<NAME> = 0x…`,
//! the 64-bit `PAR_EL1` after `AT S1E1R` (AArch64), or the 64-bit `PAR` after `ATS1CPR` (32-bit ARM with
//! long descriptors, `PAR.LPAE` = 1, the same fields). This module decodes it with the layout and the
//! encodings of the Arm Architecture Reference Manual (DDI 0487: `PAR_EL1`, `MAIR_EL1`), written here as
//! constants: nothing is taken from the guest's own code.
//!
//! ```
//! use xtask::par::{Expect, judge};
//! // ATTR 0xff (Normal, Write-Back), SH 0b11 (Inner Shareable), PA 0x78017000.
//! assert_eq!(judge(0xff00_0000_7801_7b80, Expect::Shared, Some(0x7801_7000)), Ok(()));
//! // ATTR 0x04: Device-nGnRE.
//! assert_eq!(judge(0x0400_0000_0800_0a00, Expect::Device, None), Ok(()));
//! assert!(judge(0x0400_0000_0800_0a00, Expect::Shared, None).is_err());
//! ```

/// `PAR.F` (bit 0): 1 when the translation failed (the other fields are then a fault report).
pub const PAR_F: u64 = 1 << 0;
/// `PAR.SH` (bits 8:7, F = 0): the shareability.
pub const PAR_SH_SHIFT: u32 = 7;
/// `PAR.SH` = 0b11: Inner Shareable.
pub const SH_INNER: u64 = 0b11;
/// `PAR.PA` (bits 47:12, F = 0): the output address.
pub const PAR_PA: u64 = 0x0000_ffff_ffff_f000;
/// `PAR.ATTR` (bits 63:56, F = 0): the memory attributes, encoded as a `MAIR` attribute field.
pub const PAR_ATTR_SHIFT: u32 = 56;

/// `MAIR` attribute, bits 7:4 = 0b0000: Device memory; bits 3:0 then give its type.
pub const MAIR_DEVICE: u64 = 0b0000;
/// The Device types (bits 3:0 of a Device attribute): nGnRnE 0b0000, nGnRE 0b0100, nGRE 0b1000,
/// GRE 0b1100.
pub const DEVICE_TYPES: [(u64, &str); 4] = [
    (0b0000, "Device-nGnRnE"),
    (0b0100, "Device-nGnRE"),
    (0b1000, "Device-nGRE"),
    (0b1100, "Device-GRE"),
];
/// A Normal memory nibble (outer: bits 7:4, inner: bits 3:0) that is Write-Back: `0b11RW`
/// (Write-Back Non-transient), or `0b01RW` with RW ≠ 0b00 (Write-Back Transient; `0b0100` is
/// Non-cacheable). RW are allocation hints, which Xen accepts whatever they are.
pub fn write_back(nibble: u64) -> bool {
    nibble & 0b1100 == 0b1100 || (nibble & 0b1100 == 0b0100 && nibble & 0b0011 != 0)
}

/// What an address must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Memory shared with Xen or another domain (and the guest's RAM): Normal, Inner and Outer
    /// Write-Back, Inner Shareable.
    Shared,
    /// A device: any Device type.
    Device,
}

/// What `par` says, for people: `Device-nGnRE`, `Normal outer WB / inner WB, Inner Shareable`, or the
/// fault.
pub fn describe(par: u64) -> String {
    if par & PAR_F != 0 {
        return format!("translation fault (PAR {par:#x})");
    }
    let attr = par >> PAR_ATTR_SHIFT;
    if attr >> 4 == MAIR_DEVICE {
        return DEVICE_TYPES
            .iter()
            .find(|(t, _)| *t == attr & 0xf)
            .map_or(format!("Device, unknown type {attr:#04x}"), |(_, n)| {
                n.to_string()
            });
    }
    let kind = |n: u64| {
        if write_back(n) {
            "WB"
        } else if n == 0b0100 {
            "NC"
        } else {
            "WT"
        }
    };
    let sh = match (par >> PAR_SH_SHIFT) & 0b11 {
        0b00 => "Non-shareable",
        0b10 => "Outer Shareable",
        0b11 => "Inner Shareable",
        _ => "reserved shareability",
    };
    format!(
        "Normal outer {} / inner {} (attributes {attr:#04x}), {sh}",
        kind(attr >> 4),
        kind(attr & 0xf)
    )
}

/// Whether `par` is what `expect` requires (and, for a known `address`, an identity mapping of it);
/// else what is wrong.
pub fn judge(par: u64, expect: Expect, address: Option<u64>) -> Result<(), String> {
    let attr = par >> PAR_ATTR_SHIFT;
    let good = par & PAR_F == 0
        && match expect {
            Expect::Device => attr >> 4 == MAIR_DEVICE,
            Expect::Shared => {
                attr >> 4 != MAIR_DEVICE
                    && write_back(attr >> 4)
                    && write_back(attr & 0xf)
                    && (par >> PAR_SH_SHIFT) & 0b11 == SH_INNER
            }
        };
    let wanted = match expect {
        Expect::Device => "Device",
        Expect::Shared => "Normal Write-Back Inner Shareable",
    };
    if !good {
        return Err(format!(
            "{}, expected {wanted} (PAR {par:#x})",
            describe(par)
        ));
    }
    match address {
        Some(a) if par & PAR_PA != a & PAR_PA => Err(format!(
            "mapped to {:#x}, not to itself ({a:#x}; PAR {par:#x})",
            par & PAR_PA
        )),
        _ => Ok(()),
    }
}

/// The value of `PAR_<name> = 0x…` among a guest's console `lines`.
pub fn value(lines: &[&str], name: &str) -> Option<u64> {
    let tag = format!("PAR_{name} = 0x");
    lines.iter().find_map(|l| {
        let at = l.find(&tag)?;
        u64::from_str_radix(l[at + tag.len()..].trim(), 16).ok()
    })
}

/// The problems of a guest's `PAR_…` lines against `expected` (name, what it must be, and the address
/// it must map to itself when the harness knows it): one line per missing or wrong value, each starting
/// `PAR_<NAME>: `.
pub fn problems(lines: &[&str], expected: &[(&str, Expect, Option<u64>)]) -> Vec<String> {
    let mut out = Vec::new();
    for &(name, expect, address) in expected {
        match value(lines, name) {
            None => out.push(format!("PAR_{name}: no `PAR_{name} = 0x…` line")),
            Some(par) => {
                if let Err(e) = judge(par, expect, address) {
                    out.push(format!("PAR_{name}: {e}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // PAR values as the Arm ARM lays them out: ATTR in 63:56, PA in 47:12, bit 11 RES1 (LPAE on
    // AArch32), bit 9 NS, SH in 8:7, F in bit 0.
    const NORMAL_WB_INNER: u64 = 0xff00_0000_4000_0b80;
    const DEVICE_NGNRE: u64 = 0x0400_0000_0900_0a00;

    #[test]
    fn shared_memory_must_be_normal_write_back_inner_shareable() {
        assert_eq!(judge(NORMAL_WB_INNER, Expect::Shared, None), Ok(()));
        assert_eq!(
            judge(NORMAL_WB_INNER, Expect::Shared, Some(0x4000_0123)),
            Ok(())
        );
        // Write-Back transient, read-allocate only: still Write-Back.
        assert_eq!(judge(0x5500_0000_4000_0b80, Expect::Shared, None), Ok(()));
        // Non-cacheable (0x44), Write-Through (0xbb), Outer Shareable (SH 0b10), Device, a fault.
        for (par, what) in [
            (0x4400_0000_4000_0b80, "Normal outer NC / inner NC"),
            (0xbb00_0000_4000_0b80, "Normal outer WT / inner WT"),
            (0xff00_0000_4000_0b00, "Outer Shareable"),
            (0xf400_0000_4000_0b80, "inner NC"),
            (DEVICE_NGNRE, "Device-nGnRE"),
            (0x0000_0000_0000_0809, "translation fault"),
        ] {
            let e = judge(par, Expect::Shared, None).unwrap_err();
            assert!(e.contains(what), "{par:#x}: {e}");
        }
        // Not an identity mapping.
        let e = judge(NORMAL_WB_INNER, Expect::Shared, Some(0x3900_0000)).unwrap_err();
        assert!(e.starts_with("mapped to 0x40000000"), "{e}");
    }

    #[test]
    fn devices_must_be_device() {
        assert_eq!(judge(DEVICE_NGNRE, Expect::Device, None), Ok(()));
        assert_eq!(judge(0x0000_0000_0900_0a00, Expect::Device, None), Ok(()));
        let e = judge(NORMAL_WB_INNER, Expect::Device, None).unwrap_err();
        assert!(e.starts_with("Normal outer WB / inner WB"), "{e}");
    }

    #[test]
    fn lines_are_found_and_judged() {
        let lines = [
            "xl-domu: PAR_RING = 0xff00000039000b80",
            "xl-domu: PAR_GIC = 0x400000003001a00",
        ];
        assert_eq!(value(&lines, "RING"), Some(0xff00_0000_3900_0b80));
        let expected = [
            ("RING", Expect::Shared, Some(0x3900_0000)),
            ("GIC", Expect::Device, None),
            ("STACK", Expect::Shared, None),
        ];
        assert_eq!(
            problems(&lines, &expected),
            vec!["PAR_STACK: no `PAR_STACK = 0x…` line".to_string()]
        );
        let wrong = [
            "PAR_RING = 0x400000039000a00",
            "PAR_GIC = 0xff00000003001b80",
        ];
        let p = problems(&wrong, &expected[..2]);
        assert!(
            p[0].starts_with("PAR_RING: Device-nGnRE, expected Normal"),
            "{p:?}"
        );
        assert!(p[1].starts_with("PAR_GIC: Normal outer WB"), "{p:?}");
    }
}
