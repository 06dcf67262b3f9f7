//! Xen's error codes (`xen/include/public/errno.h`) and the conversion from a raw hypercall result.

use core::fmt;

macro_rules! errnos {
    ($($name:ident = $value:literal, $text:literal;)*) => {
        /// A failed hypercall: Xen's positive error code (`xen/include/public/errno.h`), one register wide.
        ///
        /// Hypercalls return `-errno` on failure. Every code of `errno.h` is an associated constant by its
        /// name there (`Error::EINVAL`), usable in patterns; codes `errno.h` does not define are kept as
        /// they came, and equal codes compare equal however they were made. A full
        /// [`multicall`](super::multicall) batch is [`Error::ENOBUFS`]. Grant-table per-operation statuses
        /// (`GNTST_*`) are no errnos: they have their own type,
        /// [`GrantStatus`](super::grant_table::GrantStatus).
        ///
        /// ```
        /// use xen_hypercall::xen::Error;
        /// assert_eq!(Error::from_errno(22), Error::EINVAL);
        /// assert_eq!(Error::EINVAL.errno(), 22);
        /// assert_eq!(Error::EINVAL.to_string(), "EINVAL (22): Invalid argument");
        /// assert_eq!(Error::from_errno(200).name(), None);
        /// assert!(matches!(Error::check(-22), Err(Error::EINVAL)));
        /// ```
        #[repr(transparent)]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct Error(i32);

        impl Error {
            $(
                #[doc = concat!("`", stringify!($name), "` = ", stringify!($value), ": ", $text, ".")]
                pub const $name: Error = Error($value);
            )*

            /// Every error code of Xen's public `errno.h`, in its order (aliases excluded).
            pub const ALL: &'static [Error] = &[$(Error::$name),*];

            /// The name of the code in `errno.h` (`"EINVAL"`), if it is one.
            pub const fn name(&self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// What the code means, from the comments of `errno.h` (`"unknown error"` for other codes).
            pub const fn description(&self) -> &'static str {
                match self.0 {
                    $($value => $text,)*
                    _ => "unknown error",
                }
            }
        }
    };
}

errnos! {
    EPERM = 1, "Operation not permitted";
    ENOENT = 2, "No such file or directory";
    ESRCH = 3, "No such process";
    EINTR = 4, "Interrupted system call";
    EIO = 5, "I/O error";
    ENXIO = 6, "No such device or address";
    E2BIG = 7, "Arg list too long";
    ENOEXEC = 8, "Exec format error";
    EBADF = 9, "Bad file number";
    ECHILD = 10, "No child processes";
    EAGAIN = 11, "Try again";
    ENOMEM = 12, "Out of memory";
    EACCES = 13, "Permission denied";
    EFAULT = 14, "Bad address";
    EBUSY = 16, "Device or resource busy";
    EEXIST = 17, "File exists";
    EXDEV = 18, "Cross-device link";
    ENODEV = 19, "No such device";
    ENOTDIR = 20, "Not a directory";
    EISDIR = 21, "Is a directory";
    EINVAL = 22, "Invalid argument";
    ENFILE = 23, "File table overflow";
    EMFILE = 24, "Too many open files";
    ENOSPC = 28, "No space left on device";
    EROFS = 30, "Read-only file system";
    EMLINK = 31, "Too many links";
    EDOM = 33, "Math argument out of domain of func";
    ERANGE = 34, "Math result not representable";
    EDEADLK = 35, "Resource deadlock would occur";
    ENAMETOOLONG = 36, "File name too long";
    ENOLCK = 37, "No record locks available";
    ENOSYS = 38, "Function not implemented";
    ENOTEMPTY = 39, "Directory not empty";
    ENODATA = 61, "No data available";
    ETIME = 62, "Timer expired";
    EBADMSG = 74, "Not a data message";
    EOVERFLOW = 75, "Value too large for defined data type";
    EILSEQ = 84, "Illegal byte sequence";
    ERESTART = 85, "Interrupted system call should be restarted";
    ENOTSOCK = 88, "Socket operation on non-socket";
    EMSGSIZE = 90, "Message too large";
    EOPNOTSUPP = 95, "Operation not supported on transport endpoint";
    EADDRINUSE = 98, "Address already in use";
    EADDRNOTAVAIL = 99, "Cannot assign requested address";
    ENOBUFS = 105, "No buffer space available";
    EISCONN = 106, "Transport endpoint is already connected";
    ENOTCONN = 107, "Transport endpoint is not connected";
    ETIMEDOUT = 110, "Connection timed out";
    ECONNREFUSED = 111, "Connection refused";
}

impl Error {
    /// `EWOULDBLOCK`, an alias of [`Error::EAGAIN`] in `errno.h`.
    pub const EWOULDBLOCK: Error = Error::EAGAIN;
    /// `EDEADLOCK`, an alias of [`Error::EDEADLK`] in `errno.h`.
    pub const EDEADLOCK: Error = Error::EDEADLK;

    /// The error for a positive Xen errno value. Any value is kept as it is, defined by `errno.h` or not.
    #[inline(always)]
    pub const fn from_errno(errno: i32) -> Error {
        Error(errno)
    }

    /// The positive Xen errno value.
    #[inline(always)]
    pub const fn errno(&self) -> i32 {
        self.0
    }

    /// The largest errno a hypercall result can carry (Linux's `MAX_ERRNO`): [`Error::check`] reads only
    /// `-MAX_ERRNO..=-1` as failures. Xen's `errno.h` codes are all far below it.
    pub const MAX_ERRNO: i32 = 4095;

    /// Interprets a raw hypercall result whose success value is a count or a number (frames, pages,
    /// bytes, a version): only `-MAX_ERRNO..=-1` is `-errno` ([`Error::MAX_ERRNO`], Linux's
    /// `IS_ERR_VALUE`); every other value is success, read as unsigned.
    ///
    /// Xen returns these values as a `long`, one register wide: on 32-bit ARM a count of 2^31 or more
    /// arrives with the top bit set, a negative `isize`, and is still a count. The test is one unsigned
    /// compare. For a call whose only success is 0 (a status), a negative value of any size is a failure:
    /// use [`Error::check_status`].
    ///
    /// ```
    /// use xen_hypercall::xen::Error;
    /// assert_eq!(Error::check(4096), Ok(4096));
    /// assert_eq!(Error::check(-38), Err(Error::ENOSYS));
    /// assert_eq!(Error::check(-4095), Err(Error::from_errno(4095)));
    /// // Not an errno: a count with the top bit set, as a 32-bit register holds 2^31 or 2^32 - 4096.
    /// assert_eq!(Error::check(isize::MIN), Ok(isize::MIN as usize));
    /// assert_eq!(Error::check(-4096), Ok(-4096isize as usize));
    /// ```
    #[inline(always)]
    pub const fn check(ret: isize) -> Result<usize> {
        // `ret > -(MAX_ERRNO + 1)` unsigned: -4096 is an immediate of ARM's `cmn`, -4095 is not.
        if (ret as usize) > (-(Error::MAX_ERRNO as isize) - 1) as usize {
            Err(Error((ret as i32).wrapping_neg()))
        } else {
            Ok(ret as usize)
        }
    }

    /// Interprets a raw hypercall result whose only success is 0 or another non-negative status: any
    /// negative value is a failure (`-errno`; a value below `-i32::MAX` is kept saturated, as
    /// `Error(i32::MAX)`).
    ///
    /// ```
    /// use xen_hypercall::xen::Error;
    /// assert_eq!(Error::check_status(0), Ok(()));
    /// assert_eq!(Error::check_status(-22), Err(Error::EINVAL));
    /// assert_eq!(Error::check_status(-5000), Err(Error::from_errno(5000)));
    /// ```
    #[inline(always)]
    pub const fn check_status(ret: isize) -> Result<()> {
        if ret >= 0 {
            Ok(())
        } else {
            Err(Error::from_ret(ret))
        }
    }

    /// [`Error::from_ret`] on a typed wrapper's error path.
    ///
    /// On 32-bit ARM the saturating negation is three instructions and a copy of the result (`rsb`,
    /// `cmp`, `mvneq`), which LLVM would otherwise speculate before the sign test, onto the success
    /// path, whenever the error shares a register with a success value (`Result<Port>` after
    /// `alloc_unbound`'s `?`): an empty `asm!` on the result, which LLVM does not speculate, keeps the
    /// negation behind the test. A caller that drops the error deletes it (`pure`, `nomem`). On AArch64
    /// and x86-64 the negation is a `csneg` or a `neg`/`cmov` pair, and LLVM's select costs less than
    /// the branch the barrier would force where a caller folds the error to a value (`map_or`).
    #[inline(always)]
    pub(crate) fn from_failed(ret: isize) -> Error {
        #[cfg(target_arch = "arm")]
        {
            let mut ret = ret;
            // SAFETY: an empty template that reads and writes only the register holding `ret`.
            unsafe {
                core::arch::asm!("/* {0} */", inout(reg) ret, options(pure, nomem, nostack, preserves_flags));
            }
            Error::from_ret(ret)
        }
        #[cfg(not(target_arch = "arm"))]
        Error::from_ret(ret)
    }

    /// The error of a negative hypercall result. A result below `-i32::MAX` is no Xen errno; it is kept
    /// saturated rather than wrapped.
    #[inline(always)]
    pub(crate) const fn from_ret(ret: isize) -> Error {
        if ret < -(i32::MAX as isize) {
            Error(i32::MAX)
        } else {
            Error((-ret) as i32)
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "Error::{name}"),
            None => write!(f, "Error({})", self.0),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({}): {}", self.0, self.description()),
            None => write!(f, "unknown Xen error {}", self.0),
        }
    }
}

impl core::error::Error for Error {}

/// The result of a typed hypercall.
pub type Result<T> = core::result::Result<T, Error>;
