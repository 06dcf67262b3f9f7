// The measurement of both bench images (`benches/insns`, `benches/insns-x86`), included in each image's
// module, where `cycles()` reads the counter as a `Ticks`.

/// The empty site the calling sequence is measured with.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn site_empty(s: &mut State) -> usize {
    core::hint::black_box(s);
    0
}

use sites::measured::Site;

static mut STATE: State = State {
    v: [1, 2, 3, 4, 5, 6, 7, 8],
};

/// Calls measured after the two warm-up calls (QEMU translates the code on first execution).
const MEASURED: usize = 8;

/// Counter delta of one call: the value most of [`MEASURED`] calls agree on (QEMU's instruction budget
/// occasionally splits the translation block of a counter read, moving one reading), or `None` when
/// no value has a majority.
fn measure(f: Site) -> Option<Ticks> {
    let mut last: [Ticks; MEASURED] = [0; MEASURED];
    for i in 0..MEASURED + 2 {
        // SAFETY: the bench state is this image's own; the site's traps return at once (to the
        // image's handler).
        let (a, b) = unsafe {
            let s = &mut *core::ptr::addr_of_mut!(STATE);
            let a = cycles();
            core::hint::black_box(f(s));
            (a, cycles())
        };
        if i >= 2 {
            last[i - 2] = b.wrapping_sub(a);
        }
    }
    last.iter()
        .copied()
        .find(|&v| last.iter().filter(|&&w| w == v).count() > MEASURED / 2)
}
