//! What every site works on: shared by the sites the crate root generates and by `peers`, `typed` and
//! `measured`.

/// The values a site works on.
#[repr(C)]
pub struct State {
    /// Inputs and outputs.
    pub v: [usize; 8],
}

impl State {
    /// The end of every work loop: stores `v` (the values it read at its start, kept live in registers)
    /// with the calls' `sum` folded in, and returns the loop's value.
    #[inline(always)]
    pub fn fold(&mut self, v: [usize; 8], sum: usize) -> usize {
        let [a, b, c, d, e, f, g, h] = v;
        self.v = [
            a ^ sum,
            b,
            c.wrapping_add(sum),
            d,
            e ^ sum,
            f,
            g.wrapping_add(sum),
            h,
        ];
        sum.wrapping_add(a ^ b ^ c ^ d ^ e ^ f ^ g ^ h)
    }
}
