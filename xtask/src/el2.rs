//! The EL2 harness runner: builds `harness/` and runs it under QEMU at EL2 (not yet written).

use anyhow::Result;

/// Runs the whole EL2 matrix and its negative controls.
pub fn run() -> Result<()> {
    anyhow::bail!("the EL2 harness is not written yet")
}
