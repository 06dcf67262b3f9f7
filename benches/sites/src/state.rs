//! What every site works on: shared by the sites the crate root generates and by `peers`, `typed` and
//! `measured`.

/// The values a site works on.
#[repr(C)]
pub struct State {
    /// Inputs and outputs.
    pub v: [usize; 8],
}
