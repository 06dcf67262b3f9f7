//! The arguments of a hypercall as the typed API describes them ([`Arg`]), and the types that may cross
//! to Xen as bytes ([`Plain`], [`impl_plain!`](crate::impl_plain)).
//!
//! Without the mock an `Arg` is a bare `usize`; the description exists only for the mock, which copies
//! the bytes behind each pointer into its log and lets a test's responder write the output. Both the
//! backend indirection (`call`) and the mock use this module; it uses neither.

/// Types that are plain old data in Xen's ABI: every bit pattern of the right size is a valid value, and
/// no byte of a value is padding, so every byte of a value is initialised and may be copied as a `u8`.
///
/// The mock (module `mock`, feature `mock`) copies the bytes behind every pointer argument and reads them back as `T`;
/// on hardware Xen reads and writes them. Padding would make the first read uninitialised memory (undefined
/// behaviour), and Xen may leave anything in it; hence Xen structures with holes in C declare them here as
/// explicit fields (`_pad`).
///
/// Implement it with [`impl_plain!`](crate::impl_plain), which checks both conditions at compile time
/// from the list of fields; by hand only for what the macro cannot describe (a generic structure).
///
/// # Safety
///
/// Implementors must have no padding bytes (also none inside their fields, and none at the end) and no
/// invalid bit patterns (no `bool`, `char`, enum, reference or `NonZero*` anywhere inside), so that any
/// `size_of::<Self>()` initialised bytes are a valid value and every byte of a value is initialised.
pub unsafe trait Plain: Copy + 'static {}

macro_rules! plain_ints {
    ($($t:ty),* $(,)?) => { $(
        // SAFETY: integers have neither padding nor invalid bit patterns.
        unsafe impl Plain for $t {}
    )* };
}
plain_ints!(u8, u16, u32, u64, i8, i16, i32, i64, usize, isize);
// SAFETY: an array has no padding between or after its elements (its size is exactly N times theirs), and
// plain elements have none inside and accept any bits.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}

/// Implements [`Plain`](crate::xen::raw::Plain) for structures, checked at compile time: each one is
/// named with every field and its type, `Name { field: Type, … }` (`Name { 0: Type }` for a tuple
/// structure), and the build fails unless
///
/// - every field is listed, each with its exact type (an exhaustive pattern and a type equality);
/// - each field's type is itself `Plain`;
/// - the field sizes add up to the structure's size: no padding.
///
/// Attributes before a name (such as `#[cfg(..)]`) apply to its implementation. Generic structures
/// are not accepted: implement `Plain` for them by hand, under its `# Safety` contract.
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::DomId;
///
/// /// `struct evtchn_reset`.
/// #[repr(C)]
/// #[derive(Clone, Copy)]
/// pub struct EvtchnReset {
///     pub dom: DomId,
/// }
///
/// /// `struct xen_foo`: a 16-bit field, its padding made explicit, a 32-bit one.
/// #[repr(C)]
/// #[derive(Clone, Copy)]
/// pub struct Foo {
///     pub a: u16,
///     pub _pad: u16,
///     pub b: u32,
/// }
///
/// xen_hypercall::impl_plain! {
///     EvtchnReset { dom: DomId };
///     Foo { a: u16, _pad: u16, b: u32 };
/// }
/// # }
/// ```
///
/// Padding is refused (here two bytes after `a`):
///
/// ```compile_fail
/// #[repr(C)]
/// #[derive(Clone, Copy)]
/// pub struct Holey {
///     pub a: u16,
///     pub b: u32,
/// }
/// xen_hypercall::impl_plain! { Holey { a: u16, b: u32 } }
/// ```
///
/// and so is a field left out:
///
/// ```compile_fail
/// #[repr(C)]
/// #[derive(Clone, Copy)]
/// pub struct Two {
///     pub a: u32,
///     pub b: u32,
/// }
/// xen_hypercall::impl_plain! { Two { a: u64 } }
/// ```
#[macro_export]
macro_rules! impl_plain {
    ($($(#[$attr:meta])* $name:ident { $($field:tt : $ty:ty),* $(,)? });+ $(;)?) => { $(
        $(#[$attr])*
        const _: () = {
            use $crate::xen::raw::__plain as check;
            // Never called: it compiles only if every field is listed, each with its exact type.
            #[allow(dead_code)]
            fn fields(v: &$name) {
                let $name { $($field: _),* } = v;
                $( check::is::<_, $ty>(&v.$field); )*
            }
            $( check::plain::<$ty>(); )*
            assert!(
                ::core::mem::size_of::<$name>() == 0 $(+ ::core::mem::size_of::<$ty>())*,
                concat!(
                    "`", stringify!($name), "` has padding: declare every hole as an explicit field"
                )
            );
        };
        $(#[$attr])*
        // SAFETY: checked above: every field is listed with its type, each is `Plain` (no padding, any
        // bits valid), and their sizes add up to the structure's, so it has no padding either.
        unsafe impl $crate::xen::raw::Plain for $name {}
    )+ };
}

/// The checks of [`impl_plain!`](crate::impl_plain) (not a public API).
#[doc(hidden)]
pub mod plain_check {
    /// Implemented only for `T` itself: a type equality no coercion can satisfy.
    pub trait Is<T: ?Sized> {}
    impl<T: ?Sized> Is<T> for T {}

    /// Compiles only if the referent's type is `B`.
    pub fn is<A: Is<B> + ?Sized, B: ?Sized>(_: &A) {}

    /// Compiles only if `T` is `Plain`.
    pub const fn plain<T: super::Plain>() {}
}

/// Which way the data behind a pointer argument flows.
#[cfg_attr(not(feature = "mock"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Xen only reads it.
    In,
    /// Xen reads and may write it.
    InOut,
}

/// How many guest handles inside one structure argument an [`Arg`] describes (`XENMEM_add_to_physmap_batch`
/// has three); the mock records the arrays behind the first this many.
pub const MAX_HANDLES: usize = 4;

/// An array behind a guest handle: address, size in bytes, direction.
#[cfg(feature = "mock")]
pub(crate) type Handle = (usize, usize, Dir);

/// One argument of a hypercall as the typed API describes it: a register value, and for a pointer the
/// size and direction of what it points to and of the arrays behind the guest handles inside it (kept
/// only with feature `mock`, which records those bytes).
#[derive(Clone, Copy)]
pub struct Arg {
    pub(crate) value: usize,
    #[cfg(feature = "mock")]
    pub(crate) buf: Option<(usize, Dir)>,
    #[cfg(feature = "mock")]
    pub(crate) handles: [Option<Handle>; MAX_HANDLES],
}

impl Arg {
    /// A plain value.
    #[inline(always)]
    pub const fn val(value: usize) -> Arg {
        Arg {
            value,
            #[cfg(feature = "mock")]
            buf: None,
            #[cfg(feature = "mock")]
            handles: [None; MAX_HANDLES],
        }
    }

    #[cfg(feature = "mock")]
    const fn pointer(value: usize, len: usize, dir: Dir) -> Arg {
        Arg {
            value,
            buf: Some((len, dir)),
            handles: [None; MAX_HANDLES],
        }
    }

    #[cfg(feature = "mock")]
    fn with(mut self, h: Handle) -> Arg {
        if let Some(slot) = self.handles.iter_mut().find(|s| s.is_none()) {
            *slot = Some(h);
        }
        self
    }

    /// Describes the array `s` behind a guest handle inside the structure this argument points to, which
    /// Xen only reads. The mock records it with the structure (`mock::Call::handle_bytes`);
    /// in order, up to [`MAX_HANDLES`] per argument. Without the mock this is nothing.
    #[inline(always)]
    #[must_use]
    pub fn handle_in<T: Plain>(self, s: &[T]) -> Arg {
        #[cfg(feature = "mock")]
        return self.with((s.as_ptr() as usize, core::mem::size_of_val(s), Dir::In));
        #[cfg(not(feature = "mock"))]
        {
            let _ = s;
            self
        }
    }

    /// Describes the `len` elements of `T` at `p`, behind a guest handle inside the structure this
    /// argument points to, which Xen reads and may write (see [`Arg::handle_in`]). They must be
    /// initialised when the call is made (see the `# Safety` of [`call1`](super::call::call1)).
    #[inline(always)]
    #[must_use]
    pub fn handle_inout<T: Plain>(self, p: *mut T, len: usize) -> Arg {
        #[cfg(feature = "mock")]
        return self.with((p as usize, core::mem::size_of::<T>() * len, Dir::InOut));
        #[cfg(not(feature = "mock"))]
        {
            let _ = (p, len);
            self
        }
    }

    /// A pointer to a `T` that Xen reads and may write, initialised when the call is made (see the
    /// `# Safety` of [`call1`](super::call::call1)).
    #[inline(always)]
    pub fn inout<T: Plain>(p: *mut T) -> Arg {
        #[cfg(feature = "mock")]
        return Arg::pointer(p as usize, core::mem::size_of::<T>(), Dir::InOut);
        #[cfg(not(feature = "mock"))]
        Arg::val(p as usize)
    }

    /// A pointer to a `T` that Xen only reads.
    #[inline(always)]
    pub fn input<T: Plain>(p: *const T) -> Arg {
        #[cfg(feature = "mock")]
        return Arg::pointer(p as usize, core::mem::size_of::<T>(), Dir::In);
        #[cfg(not(feature = "mock"))]
        Arg::val(p as usize)
    }

    /// A byte buffer that Xen only reads.
    #[inline(always)]
    pub fn bytes_in(b: &[u8]) -> Arg {
        #[cfg(feature = "mock")]
        return Arg::pointer(b.as_ptr() as usize, b.len(), Dir::In);
        #[cfg(not(feature = "mock"))]
        Arg::val(b.as_ptr() as usize)
    }

    /// The elements of `s`, which Xen only reads (a guest handle's array, passed here or from a field).
    #[inline(always)]
    pub fn slice_in<T: Plain>(s: &[T]) -> Arg {
        #[cfg(feature = "mock")]
        return Arg::pointer(s.as_ptr() as usize, core::mem::size_of_val(s), Dir::In);
        #[cfg(not(feature = "mock"))]
        Arg::val(s.as_ptr() as usize)
    }

    /// The register value the argument passes (the address, for a pointer).
    #[inline(always)]
    pub const fn value(&self) -> usize {
        self.value
    }

    /// A buffer of `len` elements of `T` that Xen reads and may write, initialised when the call is made
    /// (see the `# Safety` of [`call1`](super::call::call1)).
    #[inline(always)]
    pub fn slice_inout<T: Plain>(p: *mut T, len: usize) -> Arg {
        #[cfg(feature = "mock")]
        return Arg::pointer(p as usize, core::mem::size_of::<T>() * len, Dir::InOut);
        #[cfg(not(feature = "mock"))]
        {
            let _ = len;
            Arg::val(p as usize)
        }
    }
}
