//! `struct vcpu_time_info`: the time record Xen keeps in every `vcpu_info` (filled on x86-64, left zero on
//! ARM; [`time`](super::time) reads it). Its own module, below both `vcpu` (ARM's `vcpu_info`) and `x86`
//! (x86-64's), which embed it.

/// `struct vcpu_time_info` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuTimeInfo {
    /// Odd while Xen updates the record.
    pub version: u32,
    /// Padding.
    pub pad0: u32,
    /// The counter value at the last update.
    pub tsc_timestamp: u64,
    /// System time (ns) at the last update.
    pub system_time: u64,
    /// Counter-to-ns multiplier (32.32 fixed point).
    pub tsc_to_system_mul: u32,
    /// Counter shift before the multiplication.
    pub tsc_shift: i8,
    /// `XEN_PVCLOCK_*` flags.
    pub flags: u8,
    /// Padding.
    pub pad1: [u8; 2],
}

crate::impl_plain! {
    VcpuTimeInfo {
        version: u32,
        pad0: u32,
        tsc_timestamp: u64,
        system_time: u64,
        tsc_to_system_mul: u32,
        tsc_shift: i8,
        flags: u8,
        pad1: [u8; 2],
    };
}
