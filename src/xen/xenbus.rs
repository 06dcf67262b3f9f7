//! xenbus: how a split driver's two ends find each other and agree on their state, over xenstore
//! (`io/xenbus.h`, and the conventions of Linux's `xenbus_client.c` and `xenbus_probe.c`).
//!
//! The protocol, in a screenful:
//!
//! - The toolstack makes two directories per device: the frontend's, `device/<type>/<id>` under the
//!   guest's home (`/local/domain/<domid>/`; `vbd/51712` is `xvda`), and the backend's, under the
//!   backend domain's home (`backend/<type>/<frontend domid>/<id>`). Each names the other: the
//!   frontend's `backend` (an absolute path) and `backend-id` (a domid), the backend's `frontend` and
//!   `frontend-id`.
//! - Each end has a `state` key, a [`XenbusState`] in decimal, that only it writes and the other end
//!   watches. A frontend reads its backend's keys (`<backend>/state`, the device's sizes and features),
//!   writes its own (`ring-ref`, `event-channel`, …), and switches its state: Initialising → (backend
//!   InitWait) → Initialised → (backend Connected) → Connected; to tear down, Closing → (backend Closing
//!   or Closed) → Closed → (backend Closed).
//! - A state switch happens in a transaction that reads the current state first and writes only a
//!   different one ([`Frontend::switch_state`], Linux's `xenbus_switch_state`): no watch fires for
//!   nothing, and a directory the toolstack removed (the device is going) is not made again.
//! - Waiting for the other end is a watch on `<backend>/state` ([`Frontend::watch_backend`]; xenstore
//!   fires it once at once, then at every change) and a loop that re-reads the state after each event
//!   ([`Frontend::wait_for_backend`]). The wait is the client's `wait` closure, which bounds it in time;
//!   a backend that goes to Closing or Closed while the frontend waits for something else is
//!   [`Error::ENOTCONN`].
//! - Values are text: numbers in decimal (`%u`, `%llu`), flags `"0"`/`"1"`. They are written without an
//!   allocator through [`printf`] (a `format_args!` into an `arrayvec::ArrayString`) and read typed by
//!   [`read_u64`], [`read_flag`] and [`read_state`].
//!
//! Every function takes a [`Store`]: the client itself, or a transaction of it.

use core::fmt::{self, Write as _};

use arrayvec::ArrayString;

use super::xenstore::{Entries, Store, WATCH_EVENT_MAX, Xenstore, parse_decimal};
use super::{DomId, Error, Result};

/// `enum xenbus_state` (`io/xenbus.h`): the state of one end of a device. Values Xen does not define
/// are kept as they are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct XenbusState(pub u32);

impl XenbusState {
    /// `XenbusStateUnknown` (0).
    pub const UNKNOWN: XenbusState = XenbusState(0);
    /// `XenbusStateInitialising` (1).
    pub const INITIALISING: XenbusState = XenbusState(1);
    /// `XenbusStateInitWait` (2): a backend waiting for its frontend's details (early hotplug done).
    pub const INIT_WAIT: XenbusState = XenbusState(2);
    /// `XenbusStateInitialised` (3): a frontend whose details are written, waiting for the backend.
    pub const INITIALISED: XenbusState = XenbusState(3);
    /// `XenbusStateConnected` (4).
    pub const CONNECTED: XenbusState = XenbusState(4);
    /// `XenbusStateClosing` (5): the device is being shut down.
    pub const CLOSING: XenbusState = XenbusState(5);
    /// `XenbusStateClosed` (6).
    pub const CLOSED: XenbusState = XenbusState(6);
    /// `XenbusStateReconfiguring` (7).
    pub const RECONFIGURING: XenbusState = XenbusState(7);
    /// `XenbusStateReconfigured` (8).
    pub const RECONFIGURED: XenbusState = XenbusState(8);

    /// Its name in `io/xenbus.h` without the `XenbusState` prefix; `None` for a value Xen does not define.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "Unknown",
            1 => "Initialising",
            2 => "InitWait",
            3 => "Initialised",
            4 => "Connected",
            5 => "Closing",
            6 => "Closed",
            7 => "Reconfiguring",
            8 => "Reconfigured",
            _ => return None,
        })
    }

    /// Closing or Closed: the end is going away.
    pub const fn is_closing(self) -> bool {
        self.0 == Self::CLOSING.0 || self.0 == Self::CLOSED.0
    }
}

impl fmt::Display for XenbusState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "state {}", self.0),
        }
    }
}

/// The capacity of a [`Path`].
pub const PATH_LEN: usize = 128;

/// The capacity of a value written by [`printf`].
pub const VALUE_LEN: usize = 64;

/// A xenstore path built without an allocator ([`path`]).
pub type Path = ArrayString<PATH_LEN>;

/// A path from `format_args!` (`path(format_args!("device/vbd/{id}/state"))`); `ENAMETOOLONG` if it
/// does not fit [`PATH_LEN`] bytes.
pub fn path(args: fmt::Arguments<'_>) -> Result<Path> {
    let mut p = Path::new();
    p.write_fmt(args).map_err(|_| Error::ENAMETOOLONG)?;
    Ok(p)
}

/// Writes at `path` the value formatted from `args` (Linux's `xenbus_printf`): `printf(xs, b"ring-ref",
/// format_args!("{}", gref.0))`. `ERANGE` if the text does not fit [`VALUE_LEN`] bytes (nothing is
/// written); the store's errors.
pub fn printf(store: &mut impl Store, path: &[u8], args: fmt::Arguments<'_>) -> Result<()> {
    let mut v = ArrayString::<VALUE_LEN>::new();
    v.write_fmt(args).map_err(|_| Error::ERANGE)?;
    store.write(path, v.as_bytes())
}

/// The value at `path` as an unsigned decimal number (`%u`, `%llu`): `EINVAL` for anything but ASCII
/// digits (an empty value included), `ERANGE` for a number over `u64::MAX` or a value longer than 24
/// bytes; the store's errors (`ENOENT` when the key does not exist).
pub fn read_u64(store: &mut impl Store, path: &[u8]) -> Result<u64> {
    let mut buf = [0u8; 24];
    let n = store.read(path, &mut buf)?;
    let v = &buf[..n];
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(Error::EINVAL);
    }
    parse_decimal(v).ok_or(Error::ERANGE)
}

/// [`read_u64`], with `default` when the key does not exist (Linux's `xenbus_read_unsigned`, for
/// optional keys such as `feature-*` and `max-ring-page-order`); other errors are returned.
pub fn read_u64_or(store: &mut impl Store, path: &[u8], default: u64) -> Result<u64> {
    match read_u64(store, path) {
        Err(Error::ENOENT) => Ok(default),
        r => r,
    }
}

/// The flag at `path`: `"0"` is false, `"1"` true, anything else `EINVAL`; the store's errors
/// (`ENOENT` when the key does not exist).
pub fn read_flag(store: &mut impl Store, path: &[u8]) -> Result<bool> {
    let mut buf = [0u8; 2];
    match store.read(path, &mut buf) {
        Ok(1) if buf[0] == b'0' => Ok(false),
        Ok(1) if buf[0] == b'1' => Ok(true),
        Ok(_) | Err(Error::ERANGE) => Err(Error::EINVAL),
        Err(e) => Err(e),
    }
}

/// [`read_flag`], with `default` when the key does not exist (an absent `feature-*` key is the feature
/// not offered).
pub fn read_flag_or(store: &mut impl Store, path: &[u8], default: bool) -> Result<bool> {
    match read_flag(store, path) {
        Err(Error::ENOENT) => Ok(default),
        r => r,
    }
}

/// The state at `path` (a `state` key): [`read_u64`], `EINVAL` above `u32::MAX`.
pub fn read_state(store: &mut impl Store, path: &[u8]) -> Result<XenbusState> {
    let v = read_u64(store, path)?;
    u32::try_from(v).map(XenbusState).map_err(|_| Error::EINVAL)
}

/// The devices of type `ty` (`vbd`, `vif`, …) the toolstack gave this domain: the names under
/// `device/<ty>` (each an `<id>` for [`Frontend::new`]), read into `buf` (`ERANGE` if they do not
/// fit). None (an empty list) when there is no such directory.
pub fn devices<'b>(store: &mut impl Store, ty: &str, buf: &'b mut [u8]) -> Result<Entries<'b>> {
    let dir = path(format_args!("device/{ty}"))?;
    match store.directory(dir.as_bytes(), buf) {
        Err(Error::ENOENT) => Ok(Entries::empty()),
        r => r,
    }
}

/// The frontend's view of one device: its own directory (`device/<type>/<id>`, relative to the
/// domain's home), and the backend's directory and domain, read once when it is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frontend {
    node: Path,
    backend: Path,
    backend_id: DomId,
}

impl Frontend {
    /// The device `device/<ty>/<id>`: reads its `backend` (a path) and `backend-id` (a domid).
    /// `ENOENT` when the device or either key does not exist, `ENAMETOOLONG` when a path does not fit a
    /// [`Path`], `EINVAL` for a backend path that is not text or a domid that is no number below
    /// `DOMID_FIRST_RESERVED` (0x7FF0).
    pub fn new(store: &mut impl Store, ty: &str, id: &str) -> Result<Frontend> {
        let node = path(format_args!("device/{ty}/{id}"))?;
        let mut buf = [0u8; PATH_LEN];
        let key = path(format_args!("{node}/backend"))?;
        let n = match store.read(key.as_bytes(), &mut buf) {
            Err(Error::ERANGE) => return Err(Error::ENAMETOOLONG),
            r => r?,
        };
        let text = core::str::from_utf8(&buf[..n]).map_err(|_| Error::EINVAL)?;
        if text.is_empty() {
            return Err(Error::EINVAL);
        }
        let backend = path(format_args!("{text}"))?;
        let key = path(format_args!("{node}/backend-id"))?;
        let id = read_u64(store, key.as_bytes())?;
        let backend_id = match u16::try_from(id) {
            Ok(d) if d < DomId::SELF.0 => DomId(d),
            _ => return Err(Error::EINVAL),
        };
        Ok(Frontend {
            node,
            backend,
            backend_id,
        })
    }

    /// Its directory (`device/<type>/<id>`).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The backend's directory (absolute).
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// The backend's domain (what grants and event channels are for).
    pub fn backend_id(&self) -> DomId {
        self.backend_id
    }

    /// The path of its own `key` (`device/vbd/51712/ring-ref`).
    pub fn key(&self, key: &str) -> Result<Path> {
        path(format_args!("{}/{key}", self.node))
    }

    /// The path of the backend's `key` (`<backend>/sectors`).
    pub fn backend_key(&self, key: &str) -> Result<Path> {
        path(format_args!("{}/{key}", self.backend))
    }

    /// Its own state.
    pub fn state(&self, store: &mut impl Store) -> Result<XenbusState> {
        read_state(store, self.key("state")?.as_bytes())
    }

    /// The backend's state.
    pub fn backend_state(&self, store: &mut impl Store) -> Result<XenbusState> {
        read_state(store, self.backend_key("state")?.as_bytes())
    }

    /// Switches its own state to `state` (Linux's `xenbus_switch_state`): in a transaction, reads the
    /// current state and writes `state` only if it differs; retried when the commit conflicts. `ENOENT`,
    /// and nothing written, when the `state` key is gone (the toolstack is removing the device).
    pub fn switch_state<W: FnMut() -> Result<()>>(
        &self,
        xs: &mut Xenstore<'_, W>,
        state: XenbusState,
    ) -> Result<()> {
        let key = self.key("state")?;
        xs.transaction(|tx| {
            if read_state(tx, key.as_bytes())? == state {
                return Ok(());
            }
            printf(tx, key.as_bytes(), format_args!("{}", state.0))
        })
    }

    /// Watches the backend's state with `token` (xenstore fires the watch once at once): what
    /// [`wait_for_backend`](Self::wait_for_backend) waits on.
    pub fn watch_backend<W: FnMut() -> Result<()>>(
        &self,
        xs: &mut Xenstore<'_, W>,
        token: &[u8],
    ) -> Result<()> {
        xs.watch(self.backend_key("state")?.as_bytes(), token)
    }

    /// Removes the watch of [`watch_backend`](Self::watch_backend).
    pub fn unwatch_backend<W: FnMut() -> Result<()>>(
        &self,
        xs: &mut Xenstore<'_, W>,
        token: &[u8],
    ) -> Result<()> {
        xs.unwatch(self.backend_key("state")?.as_bytes(), token)
    }

    /// Waits until the backend's state is one of `want`, and returns it: reads the state, and while it
    /// is not wanted waits for a watch event ([`Xenstore::wait_watch_event`], bounded by the client's
    /// `wait`) and reads it again. The backend's state must be watched
    /// ([`watch_backend`](Self::watch_backend)); every watch event wakes the wait and is consumed,
    /// whatever its token. `ENOTCONN` when the backend is Closing or Closed and `want` has neither (it
    /// went away); the error of `wait` (a time-out: the backend never answered); `ENOENT` when its
    /// `state` key is gone.
    pub fn wait_for_backend<W: FnMut() -> Result<()>>(
        &self,
        xs: &mut Xenstore<'_, W>,
        want: &[XenbusState],
    ) -> Result<XenbusState> {
        let key = self.backend_key("state")?;
        let closing_wanted = want.iter().any(|s| s.is_closing());
        let mut event = [0u8; WATCH_EVENT_MAX];
        loop {
            let state = read_state(xs, key.as_bytes())?;
            if want.contains(&state) {
                return Ok(state);
            }
            if state.is_closing() && !closing_wanted {
                return Err(Error::ENOTCONN);
            }
            xs.wait_watch_event(&mut event)?;
        }
    }

    /// Tears the device down from the frontend's side: Closing, waits for the backend to be Closing or
    /// Closed, Closed, waits for the backend to be Closed (with the watch of
    /// [`watch_backend`](Self::watch_backend)). The errors of [`switch_state`](Self::switch_state) and
    /// [`wait_for_backend`](Self::wait_for_backend).
    pub fn close<W: FnMut() -> Result<()>>(&self, xs: &mut Xenstore<'_, W>) -> Result<()> {
        self.switch_state(xs, XenbusState::CLOSING)?;
        self.wait_for_backend(xs, &[XenbusState::CLOSING, XenbusState::CLOSED])?;
        self.switch_state(xs, XenbusState::CLOSED)?;
        self.wait_for_backend(xs, &[XenbusState::CLOSED])?;
        Ok(())
    }
}
