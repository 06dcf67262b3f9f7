//! Targets without a Xen calling convention.
//!
//! The raw stubs exist here only to turn a call into a compile error that names the supported targets:
//! their `op` parameter requires [`SupportedTarget`], a sealed trait with no implementation, whose
//! diagnostic explains what to do. Host tests of code built on this crate use the `mock` feature instead.

mod sealed {
    pub trait Sealed {}
}

/// Implemented by nothing: a bound that makes a call to a raw stub on an unsupported target fail to compile.
#[diagnostic::on_unimplemented(
    message = "xen-hypercall's raw hypercall stubs exist only for bare-metal guests: armv7a-none-eabi (A32 and \
               Thumb-2), aarch64-unknown-none and x86_64-unknown-none",
    label = "this target has no Xen hypercall instruction",
    note = "build for armv7a-none-eabi, aarch64-unknown-none or x86_64-unknown-none; for host unit tests enable \
            the `mock` feature"
)]
pub trait SupportedTarget: sealed::Sealed {
    /// Never callable: no type implements this trait.
    fn unreachable(self) -> !;
}

/// The largest arity a stub exists for (kept so code that names it compiles everywhere).
pub const MAX_ARITY: usize = 6;

macro_rules! unsupported_stubs {
    ($($n:literal: ($($a:ident),*);)*) => {
        paste::paste! {
            $(
                #[doc = concat!(" Not available on this target: calling it is a compile error (arity ", $n, ").")]
                ///
                /// # Safety
                ///
                /// Cannot be called: no type satisfies its bound.
                pub unsafe fn [<hypercall $n>](op: impl SupportedTarget $(, $a: usize)*) -> isize {
                    $(let _ = $a;)*
                    op.unreachable()
                }
            )*
        }
    };
}

super::common::with_arities!(unsupported_stubs);
