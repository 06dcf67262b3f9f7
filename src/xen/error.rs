//! Xen's error codes (`xen/include/public/errno.h`) and the conversion from a raw hypercall result.

use core::fmt;

use super::grant_table::GrantStatus;

macro_rules! errnos {
    ($($name:ident = $value:literal, $text:literal;)*) => {
        /// A failed hypercall: one variant per error code of Xen's public `errno.h`, by its name there.
        ///
        /// Hypercalls return `-errno` on failure. Codes `errno.h` does not define are kept in
        /// [`Error::Unknown`]; a grant-table operation that the hypercall accepted but whose per-operation
        /// status reports a failure is [`Error::Grant`]; a full [`multicall`](super::multicall) batch is
        /// [`Error::ENOBUFS`]. The aliases of `errno.h` are associated constants ([`Error::EWOULDBLOCK`],
        /// [`Error::EDEADLOCK`]).
        ///
        /// ```
        /// use xen_hypercall::xen::Error;
        /// assert_eq!(Error::from_errno(22), Error::EINVAL);
        /// assert_eq!(Error::EINVAL.errno(), 22);
        /// assert_eq!(Error::EINVAL.to_string(), "EINVAL (22): Invalid argument");
        /// ```
        #[allow(clippy::upper_case_acronyms)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Error {
            $(
                #[doc = concat!("`", stringify!($name), "` = ", stringify!($value), ": ", $text, ".")]
                $name,
            )*
            /// An error code that Xen's public `errno.h` does not define (the positive value).
            Unknown(i32),
            /// The grant-table hypercall succeeded but the operation's `status` field reports a failure.
            Grant(GrantStatus),
        }

        impl Error {
            /// Every error code of Xen's public `errno.h`, in its order (aliases excluded).
            pub const ALL: &'static [Error] = &[$(Error::$name),*];

            /// The error for a positive Xen errno value; values `errno.h` does not define give
            /// [`Error::Unknown`].
            pub const fn from_errno(errno: i32) -> Error {
                match errno {
                    $($value => Error::$name,)*
                    other => Error::Unknown(other),
                }
            }

            /// The positive Xen errno value.
            ///
            /// A grant-table status is no errno: for [`Error::Grant`] this is the nearest errno, as
            /// [`GrantStatus::errno`] lists it (match on the variant to tell the two kinds apart).
            pub const fn errno(&self) -> i32 {
                match self {
                    $(Error::$name => $value,)*
                    Error::Unknown(e) => *e,
                    Error::Grant(s) => s.errno(),
                }
            }

            /// The name of the code in `errno.h` (`"EINVAL"`), if it is one.
            pub const fn name(&self) -> Option<&'static str> {
                match self {
                    $(Error::$name => Some(stringify!($name)),)*
                    Error::Unknown(_) | Error::Grant(_) => None,
                }
            }

            /// What the code means, from the comments of `errno.h`.
            pub const fn description(&self) -> &'static str {
                match self {
                    $(Error::$name => $text,)*
                    Error::Unknown(_) => "unknown error",
                    Error::Grant(s) => s.description(),
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

    /// Interprets a raw hypercall result: non-negative is success (the value), negative is `-errno`.
    ///
    /// ```
    /// use xen_hypercall::xen::Error;
    /// assert_eq!(Error::check(4096), Ok(4096));
    /// assert_eq!(Error::check(-38), Err(Error::ENOSYS));
    /// ```
    pub const fn check(ret: isize) -> Result<usize> {
        if ret >= 0 {
            Ok(ret as usize)
        } else {
            // A result below -i32::MAX is no Xen errno; keep it saturated rather than wrap.
            let e = if ret < -(i32::MAX as isize) {
                i32::MAX
            } else {
                (-ret) as i32
            };
            Err(Error::from_errno(e))
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unknown(e) => write!(f, "unknown Xen error {e}"),
            Error::Grant(s) => write!(f, "grant-table status {} ({})", s.code(), s.description()),
            _ => write!(
                f,
                "{} ({}): {}",
                self.name().unwrap_or("?"),
                self.errno(),
                self.description()
            ),
        }
    }
}

impl core::error::Error for Error {}

/// The result of a typed hypercall.
pub type Result<T> = core::result::Result<T, Error>;
