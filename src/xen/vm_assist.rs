//! `vm_assist`: optional hypervisor behaviours a guest turns on (`HYPERVISOR_vm_assist(cmd, type)`,
//! declared arity 2).
//!
//! On ARM the only type Xen accepts is [`Type::RUNSTATE_UPDATE_FLAG`] (its `arch_vm_assist_valid_mask`);
//! others fail with [`Error::EINVAL`](super::Error::EINVAL). With it enabled, Xen sets
//! `XEN_RUNSTATE_UPDATE` in a registered [`RunstateInfo`](super::vcpu::RunstateInfo) while it rewrites it,
//! which makes a consistent read possible ([`RunstateInfo::read_consistent`](super::vcpu::RunstateInfo::read_consistent)).

use super::call::{Arg, call2};
use super::{Result, nr, unit};

/// `VMASST_CMD_enable`.
pub const VMASST_CMD_ENABLE: usize = 0;
/// `VMASST_CMD_disable`.
pub const VMASST_CMD_DISABLE: usize = 1;

/// A `VMASST_TYPE_*` of `xen.h`.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Type(pub u32);

impl Type {
    /// `VMASST_TYPE_runstate_update_flag`: Xen flags a runstate area while updating it.
    pub const RUNSTATE_UPDATE_FLAG: Type = Type(5);
}

/// Issues `vm_assist(cmd, type)` as given.
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::vm_assist::{self, Type, VMASST_CMD_ENABLE};
/// vm_assist::vm_assist(VMASST_CMD_ENABLE, Type::RUNSTATE_UPDATE_FLAG)?;
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn vm_assist(cmd: usize, t: Type) -> Result<()> {
    // SAFETY: both arguments are plain values; Xen dereferences nothing.
    unit(unsafe { call2::<{ nr::VM_ASSIST }>(Arg::val(cmd), Arg::val(t.0 as usize)) })
}

/// Turns assist `t` on (`VMASST_CMD_enable`).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::vm_assist::{self, Type};
/// vm_assist::enable(Type::RUNSTATE_UPDATE_FLAG)?;
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn enable(t: Type) -> Result<()> {
    vm_assist(VMASST_CMD_ENABLE, t)
}

/// Turns assist `t` off (`VMASST_CMD_disable`).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::vm_assist::{self, Type};
/// vm_assist::disable(Type::RUNSTATE_UPDATE_FLAG)?;
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn disable(t: Type) -> Result<()> {
    vm_assist(VMASST_CMD_DISABLE, t)
}
