//! The one path from the typed API to a hypercall: the backend indirection.
//!
//! Every wrapper calls [`call1`] … [`call5`] with the hypercall number as a const generic; a `const`
//! assertion checks at compile time that the stub's arity is the arity Xen's table declares for that
//! number on the architecture and guest type being built ([`nr::arity`]: ARM's, or x86-64's PV64 or
//! HVM64 column). The backend is chosen once, here:
//!
//! - feature `mock`: the recording mock ([`crate::mock`]), on any target;
//! - feature `outline`: the out-of-line stubs ([`crate::outline`]);
//! - otherwise: the inline stubs ([`crate::arch`]).
//!
//! Arguments are described by [`Arg`] (module `arg`, below this one and the mock): a value, or a pointer
//! with the size and direction of what it points to.
//!
//! The same items are public as [`xen::raw`](super::raw), for wrappers of structures this crate does not
//! cover.

use super::nr;

pub use super::arg::{Arg, MAX_HANDLES, Plain, plain_check};

/// The compile-time arity check every `callN` performs.
const fn arity_is(nr: usize, n: usize) -> bool {
    matches!(nr::arity(nr), Some(a) if a == n)
}

macro_rules! calls {
    ($($name:ident / $stub:ident: $n:literal ($($a:ident),*);)*) => { $(
        #[doc = concat!("Issues hypercall `NR`, whose declared arity ([`nr::arity`]) must be ", $n, ", through the backend.")]
        ///
        /// # Safety
        ///
        /// The contract of the raw stubs (`crate::hypercall1` …): every pointer argument refers to memory
        /// valid and laid out as Xen expects for this operation, for as long as Xen uses it, and each
        /// [`Arg`] describes truthfully the size of what it points to. What an `Arg` describes (behind a
        /// pointer or a handle) is initialised, output buffers included (zero them first): the mock
        /// copies every described byte.
        #[inline(always)]
        pub unsafe fn $name<const NR: usize>($($a: Arg),*) -> isize {
            const {
                assert!(
                    arity_is(NR, $n),
                    "the stub's arity differs from the arity Xen's hypercall table declares for this call \
                     on this architecture and guest type (xen::nr::arity)"
                )
            };
            #[cfg(feature = "mock")]
            {
                // SAFETY: forwarded from this function's contract.
                unsafe { crate::mock::dispatch(NR, &[$($a),*]) }
            }
            #[cfg(all(not(feature = "mock"), feature = "outline"))]
            {
                // SAFETY: forwarded from this function's contract; the arity was checked above. The
                // per-hypercall stub has `NR` built in (every Xen number fits its `mov`).
                unsafe { crate::outline::per_call::$stub::<NR>($($a.value),*) }
            }
            #[cfg(all(not(feature = "mock"), not(feature = "outline")))]
            {
                // SAFETY: forwarded from this function's contract; the arity was checked above.
                unsafe { crate::arch::$stub(NR, $($a.value),*) }
            }
        }
    )* };
}

calls! {
    call1 / hypercall1: 1 (a1);
    call2 / hypercall2: 2 (a1, a2);
    call3 / hypercall3: 3 (a1, a2, a3);
    call5 / hypercall5: 5 (a1, a2, a3, a4, a5);
}
