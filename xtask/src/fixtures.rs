//! Disassembly checks of the call-site fixtures (being written).

/// Builds the fixtures and checks them.
pub fn run() -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
