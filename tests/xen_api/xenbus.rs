//! xenbus on the host: a fake xenstored keeping a tree of nodes, watches and transactions on the back end
//! of the xenstore ring, driven inside the client's `wait` closure, and a scripted backend that reacts to
//! what the frontend writes (as blkback does) or to the passing of turns. The expected values are the
//! protocol's (`io/xenbus.h`, `io/xs_wire.h`), written out here.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use xen_hypercall::mock;

use crate::xs_daemon;
use xen_hypercall::xen::evtchn::Port;
use xen_hypercall::xen::ring::{ByteRing, SharedArea};
use xen_hypercall::xen::xenbus::{self, Frontend, XenbusState};
use xen_hypercall::xen::xenstore::{
    XENSTORE_PAYLOAD_MAX, XS_DIRECTORY, XS_DIRECTORY_PART, XS_ERROR, XS_GET_PERMS, XS_READ, XS_RM,
    XS_TRANSACTION_END, XS_TRANSACTION_START, XS_UNWATCH, XS_WATCH, XS_WATCH_EVENT, XS_WRITE,
    Xenstore,
};
use xen_hypercall::xen::{DomId, Error, Page};

const HOME: &[u8] = b"/local/domain/1/";
const BACKEND: &[u8] = b"/local/domain/0/backend/vbd/1/51712";

/// A write the backend makes in reaction: (absolute path, value).
type Writes = Vec<(Vec<u8>, Vec<u8>)>;

/// What the scripted backend sees: a write of the client's (absolute path, value), or a turn passing.
enum Seen<'a> {
    Write(&'a [u8], &'a [u8]),
    Turn(usize),
}

/// A transaction's writes (`None`: removed), applied at its commit.
type TxWrites = Vec<(Vec<u8>, Option<Vec<u8>>)>;

type React = Box<dyn FnMut(&BTreeMap<Vec<u8>, Vec<u8>>, Seen<'_>) -> Writes>;

struct Daemon {
    ring: ByteRing<'static>,
    inbuf: Vec<u8>,
    /// Watch events fired by the change being made.
    out: Vec<u8>,
    /// The bytes waiting to go into the ring (replies and events, in order).
    sending: Vec<u8>,
    tree: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Bumped on every change (the generation `XS_DIRECTORY_PART` answers).
    generation: u64,
    watches: Vec<(Vec<u8>, Vec<u8>)>,
    /// Open transactions: their writes (`None`: removed), applied at commit.
    txs: BTreeMap<u32, TxWrites>,
    next_tx: u32,
    /// Commits to refuse with `EAGAIN`.
    conflicts: usize,
    /// (type, tx_id, payload) of every request.
    seen: Vec<(u32, u32, Vec<u8>)>,
    events_sent: usize,
    turns: usize,
    react: React,
}

fn msg(ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for w in [ty, req_id, tx_id, payload.len() as u32] {
        v.extend_from_slice(&w.to_ne_bytes());
    }
    v.extend_from_slice(payload);
    v
}

fn abs(path: &[u8]) -> Vec<u8> {
    if path.starts_with(b"/") {
        path.to_vec()
    } else {
        [HOME, path].concat()
    }
}

fn under(path: &[u8], dir: &[u8]) -> bool {
    path == dir || (path.starts_with(dir) && path.get(dir.len()) == Some(&b'/'))
}

impl Daemon {
    /// The direct children's names of `dir`, each NUL-terminated.
    fn children(&self, dir: &[u8]) -> Vec<u8> {
        let mut names: Vec<&[u8]> = Vec::new();
        for k in self.tree.keys() {
            if k.len() > dir.len() + 1 && under(k, dir) {
                let rest = &k[dir.len() + 1..];
                let name = rest.split(|&b| b == b'/').next().unwrap();
                if names.last() != Some(&name) {
                    names.push(name);
                }
            }
        }
        names.dedup();
        let mut out = Vec::new();
        for n in names {
            out.extend_from_slice(n);
            out.push(0);
        }
        out
    }

    fn set(&mut self, path: Vec<u8>, value: Option<Vec<u8>>) {
        match value {
            Some(v) => {
                // Parents exist as empty nodes, as xenstored makes them.
                let mut at = 0;
                while let Some(i) = path[at + 1..].iter().position(|&b| b == b'/') {
                    let parent = path[..at + 1 + i].to_vec();
                    self.tree.entry(parent).or_default();
                    at += 1 + i;
                }
                self.tree.insert(path.clone(), v);
            }
            None => self.tree.retain(|k, _| !under(k, &path)),
        }
        self.generation += 1;
        for (w, token) in self.watches.clone() {
            if under(&path, &w) {
                let payload = [&path[..], b"\0", &token, b"\0"].concat();
                self.out.extend(msg(XS_WATCH_EVENT, 0, 0, &payload));
                self.events_sent += 1;
            }
        }
    }

    fn apply(&mut self, writes: Writes) {
        for (p, v) in writes {
            self.set(p, Some(v));
        }
    }

    fn read(&self, tx: u32, path: &[u8]) -> Option<Vec<u8>> {
        if let Some(w) = self.txs.get(&tx)
            && let Some((_, v)) = w.iter().rev().find(|(p, _)| p == path)
        {
            return v.clone();
        }
        self.tree.get(path).cloned()
    }

    fn answer(&mut self, ty: u32, id: u32, tx: u32, payload: &[u8]) -> Vec<u8> {
        let err = |name: &str| msg(XS_ERROR, id, tx, format!("{name}\0").as_bytes());
        let ok = msg(ty, id, tx, b"OK\0");
        let strings: Vec<&[u8]> = payload.split(|&b| b == 0).collect();
        let path = abs(strings[0]);
        match ty {
            XS_READ => match self.read(tx, &path) {
                Some(v) => msg(ty, id, tx, &v),
                None => err("ENOENT"),
            },
            XS_WRITE => {
                let value = payload[strings[0].len() + 1..].to_vec();
                if tx != 0 {
                    self.txs.get_mut(&tx).unwrap().push((path, Some(value)));
                } else {
                    self.set(path.clone(), Some(value.clone()));
                    let w = (self.react)(&self.tree, Seen::Write(&path, &value));
                    self.apply(w);
                }
                ok
            }
            XS_RM => {
                self.set(path, None);
                ok
            }
            XS_DIRECTORY => {
                if !self.tree.contains_key(&path) {
                    return err("ENOENT");
                }
                let c = self.children(&path);
                if c.len() > XENSTORE_PAYLOAD_MAX {
                    return err("E2BIG");
                }
                msg(ty, id, tx, &c)
            }
            XS_DIRECTORY_PART => {
                // As C xenstored 4.17's send_directory_part: the generation, then as many whole names
                // from byte `off` as fit, the last part ending with an empty name.
                if !self.tree.contains_key(&path) {
                    return err("ENOENT");
                }
                let off: usize = std::str::from_utf8(strings[1]).unwrap().parse().unwrap();
                let c = self.children(&path);
                let mut out = format!("{}\0", self.generation).into_bytes();
                if off >= c.len() {
                    out.push(0);
                    return msg(ty, id, tx, &out);
                }
                let maxlen = XENSTORE_PAYLOAD_MAX - out.len() - 1;
                let mut len = 0;
                for name in c[off..].split_inclusive(|&b| b == 0) {
                    if len + name.len() > maxlen {
                        break;
                    }
                    len += name.len();
                }
                out.extend_from_slice(&c[off..off + len]);
                if off + len == c.len() {
                    out.push(0);
                }
                msg(ty, id, tx, &out)
            }
            XS_WATCH => {
                let token = strings[1].to_vec();
                self.watches.push((path.clone(), token.clone()));
                let mut r = ok;
                // Fired once at once, after the reply.
                r.extend(msg(
                    XS_WATCH_EVENT,
                    0,
                    0,
                    &[&path[..], b"\0", &token, b"\0"].concat(),
                ));
                self.events_sent += 1;
                r
            }
            XS_UNWATCH => {
                self.watches
                    .retain(|(p, t)| !(p == &path && t == strings[1]));
                ok
            }
            XS_TRANSACTION_START => {
                self.next_tx += 1;
                self.txs.insert(self.next_tx, Vec::new());
                msg(ty, id, 0, format!("{}\0", self.next_tx).as_bytes())
            }
            XS_TRANSACTION_END => {
                let writes = self.txs.remove(&tx).unwrap_or_default();
                if strings[0] == b"T" {
                    if self.conflicts > 0 {
                        self.conflicts -= 1;
                        return err("EAGAIN");
                    }
                    for (p, v) in writes {
                        self.set(p.clone(), v.clone());
                        if let Some(v) = v {
                            let w = (self.react)(&self.tree, Seen::Write(&p, &v));
                            self.apply(w);
                        }
                    }
                }
                ok
            }
            XS_GET_PERMS => msg(ty, id, tx, b"n1\0"),
            _ => err("ENOSYS"),
        }
    }

    fn turn(&mut self) {
        self.turns += 1;
        let w = (self.react)(&self.tree, Seen::Turn(self.turns));
        self.apply(w);
        let fired = std::mem::take(&mut self.out);
        self.sending.extend(fired);
        xs_daemon::receive(&mut self.ring, &mut self.inbuf);
        while let Some((h, payload)) = xs_daemon::next_message(&mut self.inbuf) {
            let (ty, id, tx) = (h.r#type, h.req_id, h.tx_id);
            self.seen.push((ty, tx, payload.clone()));
            // The reply first, then the watch events its change fired (xenstored answers first).
            let r = self.answer(ty, id, tx, &payload);
            self.sending.extend(r);
            let fired = std::mem::take(&mut self.out);
            self.sending.extend(fired);
        }
        let n = self.ring.write(&self.sending).unwrap();
        self.sending.drain(..n);
    }
}

type Client = Xenstore<'static, Box<dyn FnMut() -> Result<(), Error>>>;

/// How many waits a client may make before its `wait` says `ETIMEDOUT`: the bound of every wait here.
const WAIT_LIMIT: usize = 200;

struct Setup {
    xs: Client,
    d: Rc<RefCell<Daemon>>,
}

fn setup(tree: &[(&[u8], &[u8])], react: React) -> Setup {
    mock::reset();
    mock::answer_zero();
    let (front, back) = xs_daemon::ring_ends();
    let mut d = Daemon {
        ring: back,
        inbuf: Vec::new(),
        out: Vec::new(),
        sending: Vec::new(),
        tree: BTreeMap::new(),
        generation: 1,
        watches: Vec::new(),
        txs: BTreeMap::new(),
        next_tx: 0,
        conflicts: 0,
        seen: Vec::new(),
        events_sent: 0,
        turns: 0,
        react,
    };
    for (k, v) in tree {
        d.set(abs(k), Some(v.to_vec()));
    }
    d.out.clear();
    d.events_sent = 0;
    let d = Rc::new(RefCell::new(d));
    let d2 = d.clone();
    let mut waits = 0;
    let wait: Box<dyn FnMut() -> Result<(), Error>> = Box::new(move || {
        waits += 1;
        if waits > WAIT_LIMIT {
            return Err(Error::ETIMEDOUT);
        }
        d2.borrow_mut().turn();
        Ok(())
    });
    let xs = Xenstore::new(front, Port(1), wait);
    Setup { xs, d }
}

fn quiet() -> React {
    Box::new(|_, _| Vec::new())
}

/// [`setup`] with an owned tree.
fn setup_nodes(tree: &Nodes, react: React) -> Setup {
    let refs: Vec<(&[u8], &[u8])> = tree.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    setup(&refs, react)
}

/// A device's frontend and backend directories as libxl makes them for domain 1: `front` (relative)
/// with its state (1), backend `back` and backend id (0), then `front_keys`; `back` with its state (1),
/// then `back_keys`.
fn device_tree(
    front: &str,
    back: &[u8],
    front_keys: &[(&str, &[u8])],
    back_keys: &[(&str, &[u8])],
) -> Nodes {
    let node = |dir: &[u8], (k, v): (&str, &[u8])| ([dir, b"/", k.as_bytes()].concat(), v.to_vec());
    let front_nodes = [
        ("state", &b"1"[..]),
        ("backend", back),
        ("backend-id", b"0"),
    ]
    .into_iter()
    .chain(front_keys.iter().copied())
    .map(|kv| node(front.as_bytes(), kv));
    let back_nodes = [("state", &b"1"[..])]
        .into_iter()
        .chain(back_keys.iter().copied())
        .map(|kv| node(back, kv));
    front_nodes.chain(back_nodes).collect()
}

/// The frontend's and backend's directories as libxl makes them for `xvda` of domain 1.
fn vbd_tree() -> Nodes {
    device_tree(
        "device/vbd/51712",
        BACKEND,
        &[("virtual-device", b"51712")],
        &[("frontend-id", b"1")],
    )
}

fn bk(key: &str) -> Vec<u8> {
    [BACKEND, b"/", key.as_bytes()].concat()
}

fn fe(key: &str) -> Vec<u8> {
    [HOME, b"device/vbd/51712/", key.as_bytes()].concat()
}

/// A backend that behaves as blkback: InitWait from turn `init_wait`; on the frontend's Initialised,
/// its sizes and Connected (if the ring details are there); on Closing, Closing; on Closed, Closed.
fn blkback(init_wait: usize) -> React {
    Box::new(move |tree, seen| match seen {
        Seen::Turn(t) if t == init_wait => vec![(bk("state"), b"2".to_vec())],
        Seen::Write(p, v) if p == fe("state") => match v {
            b"3" if tree.contains_key(&fe("ring-ref"))
                && tree.contains_key(&fe("event-channel")) =>
            {
                vec![
                    (bk("sectors"), b"8192".to_vec()),
                    (bk("sector-size"), b"512".to_vec()),
                    (bk("info"), b"0".to_vec()),
                    (bk("feature-flush-cache"), b"1".to_vec()),
                    (bk("feature-discard"), b"0".to_vec()),
                    (bk("state"), b"4".to_vec()),
                ]
            }
            b"5" => vec![(bk("state"), b"5".to_vec())],
            b"6" => vec![(bk("state"), b"6".to_vec())],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    })
}

#[test]
fn states_are_named_as_in_xenbus_h_and_unknown_values_kept() {
    let names = [
        "Unknown",
        "Initialising",
        "InitWait",
        "Initialised",
        "Connected",
        "Closing",
        "Closed",
        "Reconfiguring",
        "Reconfigured",
    ];
    for (v, n) in names.iter().enumerate() {
        assert_eq!(XenbusState(v as u32).name(), Some(*n));
        assert_eq!(XenbusState(v as u32).to_string(), *n);
    }
    assert_eq!(XenbusState::INIT_WAIT, XenbusState(2));
    assert_eq!(XenbusState::CONNECTED, XenbusState(4));
    assert_eq!(XenbusState::CLOSED, XenbusState(6));
    assert_eq!(XenbusState(9).name(), None);
    assert_eq!(XenbusState(9).to_string(), "state 9");
    assert!(XenbusState::CLOSING.is_closing() && XenbusState::CLOSED.is_closing());
    assert!(!XenbusState::CONNECTED.is_closing());
    // An unknown value read from xenstore is kept as it is.
    let mut s = setup(&[(b"st", b"42")], quiet());
    assert_eq!(xenbus::read_state(&mut s.xs, b"st"), Ok(XenbusState(42)));
}

#[test]
fn paths_and_printf_are_bounded_without_allocating() {
    let p = xenbus::path(format_args!("device/{}/{}", "vbd", 51712)).unwrap();
    assert_eq!(p.as_str(), "device/vbd/51712");
    let long = "x".repeat(xenbus::PATH_LEN + 1);
    assert_eq!(
        xenbus::path(format_args!("{long}")),
        Err(Error::ENAMETOOLONG)
    );
    let mut s = setup(&[], quiet());
    xenbus::printf(&mut s.xs, b"data/ring-ref", format_args!("{}", 8u32)).unwrap();
    xenbus::printf(
        &mut s.xs,
        b"data/proto",
        format_args!("{}-{}", "arm", "abi"),
    )
    .unwrap();
    let big = "v".repeat(xenbus::VALUE_LEN + 1);
    assert_eq!(
        xenbus::printf(&mut s.xs, b"data/big", format_args!("{big}")),
        Err(Error::ERANGE)
    );
    let d = s.d.borrow();
    assert_eq!(d.tree[&abs(b"data/ring-ref")], b"8");
    assert_eq!(d.tree[&abs(b"data/proto")], b"arm-abi");
    assert!(!d.tree.contains_key(&abs(b"data/big")));
    // Nothing was sent for the value that did not fit.
    assert_eq!(d.seen.len(), 2);
}

#[test]
fn numbers_and_flags_are_read_typed() {
    let mut s = setup(
        &[
            (b"n", b"8192"),
            (b"max", b"18446744073709551615"),
            (b"over", b"18446744073709551616"),
            (b"neg", b"-1"),
            (b"hex", b"0x10"),
            (b"empty", b""),
            (b"long", b"1234567890123456789012345"),
            (b"f0", b"0"),
            (b"f1", b"1"),
            (b"f2", b"2"),
            (b"fyes", b"yes"),
        ],
        quiet(),
    );
    let xs = &mut s.xs;
    assert_eq!(xenbus::read_u64(xs, b"n"), Ok(8192));
    assert_eq!(xenbus::read_u64(xs, b"max"), Ok(u64::MAX));
    assert_eq!(xenbus::read_u64(xs, b"over"), Err(Error::ERANGE));
    assert_eq!(xenbus::read_u64(xs, b"neg"), Err(Error::EINVAL));
    assert_eq!(xenbus::read_u64(xs, b"hex"), Err(Error::EINVAL));
    assert_eq!(xenbus::read_u64(xs, b"empty"), Err(Error::EINVAL));
    assert_eq!(xenbus::read_u64(xs, b"long"), Err(Error::ERANGE));
    assert_eq!(xenbus::read_u64(xs, b"missing"), Err(Error::ENOENT));
    assert_eq!(xenbus::read_u64_or(xs, b"missing", 7), Ok(7));
    assert_eq!(xenbus::read_u64_or(xs, b"n", 7), Ok(8192));
    assert_eq!(xenbus::read_u64_or(xs, b"neg", 7), Err(Error::EINVAL));
    assert_eq!(xenbus::read_flag(xs, b"f0"), Ok(false));
    assert_eq!(xenbus::read_flag(xs, b"f1"), Ok(true));
    assert_eq!(xenbus::read_flag(xs, b"f2"), Err(Error::EINVAL));
    assert_eq!(xenbus::read_flag(xs, b"fyes"), Err(Error::EINVAL));
    assert_eq!(xenbus::read_flag(xs, b"empty"), Err(Error::EINVAL));
    assert_eq!(xenbus::read_flag(xs, b"missing"), Err(Error::ENOENT));
    assert_eq!(xenbus::read_flag_or(xs, b"missing", true), Ok(true));
    assert_eq!(xenbus::read_flag_or(xs, b"f0", true), Ok(false));
    assert_eq!(xenbus::read_state(xs, b"over"), Err(Error::ERANGE));
    assert_eq!(
        xenbus::read_state(xs, b"max"),
        Err(Error::EINVAL),
        "a state above u32::MAX"
    );
}

#[test]
fn devices_of_a_type_are_listed_and_none_is_an_empty_list() {
    let mut tree = vbd_tree();
    tree.push((b"device/vbd/51728/state".to_vec(), b"1".to_vec()));
    tree.push((b"device/vif/0/state".to_vec(), b"1".to_vec()));
    let mut s = setup_nodes(&tree, quiet());
    let mut buf = [0u8; 64];
    let ids: Vec<&[u8]> = xenbus::devices(&mut s.xs, "vbd", &mut buf)
        .unwrap()
        .collect();
    assert_eq!(ids, [&b"51712"[..], b"51728"]);
    let ids: Vec<&[u8]> = xenbus::devices(&mut s.xs, "vscsi", &mut buf)
        .unwrap()
        .collect();
    assert!(ids.is_empty());
    // The request was a directory of device/<type>, relative to the home.
    let d = s.d.borrow();
    assert_eq!(d.seen[0], (XS_DIRECTORY, 0, b"device/vbd\0".to_vec()));
}

#[test]
fn a_frontend_reads_its_backend_and_backend_id() {
    let mut s = setup_nodes(&vbd_tree(), quiet());
    let f = Frontend::new(&mut s.xs, "vbd", "51712").unwrap();
    assert_eq!(f.node(), "device/vbd/51712");
    assert_eq!(f.backend(), "/local/domain/0/backend/vbd/1/51712");
    assert_eq!(f.backend_id(), DomId(0));
    assert_eq!(
        f.key("ring-ref").unwrap().as_str(),
        "device/vbd/51712/ring-ref"
    );
    assert_eq!(
        f.backend_key("sectors").unwrap().as_str(),
        "/local/domain/0/backend/vbd/1/51712/sectors"
    );
    assert_eq!(f.state(&mut s.xs), Ok(XenbusState::INITIALISING));
    assert_eq!(f.backend_state(&mut s.xs), Ok(XenbusState::INITIALISING));
    assert_eq!(Frontend::new(&mut s.xs, "vbd", "99"), Err(Error::ENOENT));
    // A backend-id that is no domid, and an empty backend path, are refused.
    let mut s = setup(
        &[
            (b"device/vbd/1/backend", BACKEND),
            (b"device/vbd/1/backend-id", b"32752"),
            (b"device/vbd/2/backend", b""),
            (b"device/vbd/2/backend-id", b"0"),
        ],
        quiet(),
    );
    assert_eq!(Frontend::new(&mut s.xs, "vbd", "1"), Err(Error::EINVAL));
    assert_eq!(Frontend::new(&mut s.xs, "vbd", "2"), Err(Error::EINVAL));
}

#[test]
fn a_state_switch_is_a_transaction_that_writes_only_a_change() {
    let mut s = setup_nodes(&vbd_tree(), quiet());
    let f = Frontend::new(&mut s.xs, "vbd", "51712").unwrap();
    let before = s.d.borrow().seen.len();
    f.switch_state(&mut s.xs, XenbusState::INITIALISED).unwrap();
    {
        let d = s.d.borrow();
        let seen = &d.seen[before..];
        let types: Vec<u32> = seen.iter().map(|m| m.0).collect();
        assert_eq!(
            types,
            [XS_TRANSACTION_START, XS_READ, XS_WRITE, XS_TRANSACTION_END]
        );
        let tx = seen[1].1;
        assert_ne!(tx, 0);
        assert_eq!(seen[1], (XS_READ, tx, b"device/vbd/51712/state\0".to_vec()));
        assert_eq!(
            seen[2],
            (XS_WRITE, tx, b"device/vbd/51712/state\x003".to_vec())
        );
        assert_eq!(seen[3], (XS_TRANSACTION_END, tx, b"T\0".to_vec()));
        assert_eq!(d.tree[&fe("state")], b"3");
    }
    // The same state again: read, nothing written.
    let before = s.d.borrow().seen.len();
    f.switch_state(&mut s.xs, XenbusState::INITIALISED).unwrap();
    let types: Vec<u32> = s.d.borrow().seen[before..].iter().map(|m| m.0).collect();
    assert_eq!(types, [XS_TRANSACTION_START, XS_READ, XS_TRANSACTION_END]);
    // The node gone (the toolstack removing the device): ENOENT, nothing made again, the transaction
    // aborted.
    s.xs.rm(b"device/vbd/51712").unwrap();
    let before = s.d.borrow().seen.len();
    assert_eq!(
        f.switch_state(&mut s.xs, XenbusState::CLOSED),
        Err(Error::ENOENT)
    );
    let d = s.d.borrow();
    let seen = &d.seen[before..];
    assert!(seen.iter().all(|m| m.0 != XS_WRITE));
    assert_eq!(seen.last().unwrap().2, b"F\0");
    assert!(!d.tree.contains_key(&fe("state")));
}

#[test]
fn a_conflicting_state_switch_is_run_again() {
    let mut s = setup_nodes(&vbd_tree(), quiet());
    let f = Frontend::new(&mut s.xs, "vbd", "51712").unwrap();
    s.d.borrow_mut().conflicts = 2;
    f.switch_state(&mut s.xs, XenbusState::CONNECTED).unwrap();
    let d = s.d.borrow();
    let starts = d
        .seen
        .iter()
        .filter(|m| m.0 == XS_TRANSACTION_START)
        .count();
    assert_eq!(starts, 3);
    assert_eq!(d.tree[&fe("state")], b"4");
}

#[test]
fn the_handshake_with_a_blkback_like_backend_connects_and_closes() {
    let mut s = setup_nodes(&vbd_tree(), blkback(5));
    let xs = &mut s.xs;
    let mut buf = [0u8; 64];
    let id = xenbus::devices(xs, "vbd", &mut buf)
        .unwrap()
        .next()
        .unwrap();
    let id = std::str::from_utf8(id).unwrap().to_string();
    let f = Frontend::new(xs, "vbd", &id).unwrap();
    f.watch_backend(xs, b"be").unwrap();
    // The backend is Initialising until turn 5: the frontend waits, on watch events.
    assert_eq!(
        f.wait_for_backend(xs, &[XenbusState::INIT_WAIT]),
        Ok(XenbusState::INIT_WAIT)
    );
    assert!(s.d.borrow().turns >= 5);
    // The details, in one transaction with the state switch's own.
    xs.transaction(|tx| {
        xenbus::printf(tx, f.key("ring-ref")?.as_bytes(), format_args!("{}", 8))?;
        xenbus::printf(
            tx,
            f.key("event-channel")?.as_bytes(),
            format_args!("{}", 5),
        )?;
        xenbus::printf(tx, f.key("protocol")?.as_bytes(), format_args!("arm-abi"))
    })
    .unwrap();
    f.switch_state(xs, XenbusState::INITIALISED).unwrap();
    assert_eq!(
        f.wait_for_backend(xs, &[XenbusState::CONNECTED]),
        Ok(XenbusState::CONNECTED)
    );
    let mut r = |k: &str| xenbus::read_u64(xs, f.backend_key(k).unwrap().as_bytes());
    assert_eq!(
        (r("sectors"), r("sector-size"), r("info")),
        (Ok(8192), Ok(512), Ok(0))
    );
    let flag = |xs: &mut Client, k: &str| {
        xenbus::read_flag_or(xs, f.backend_key(k).unwrap().as_bytes(), false)
    };
    assert_eq!(flag(xs, "feature-flush-cache"), Ok(true));
    assert_eq!(flag(xs, "feature-discard"), Ok(false));
    assert_eq!(flag(xs, "feature-persistent"), Ok(false));
    f.switch_state(xs, XenbusState::CONNECTED).unwrap();
    f.close(xs).unwrap();
    assert_eq!(f.state(xs), Ok(XenbusState::CLOSED));
    assert_eq!(f.backend_state(xs), Ok(XenbusState::CLOSED));
    f.unwatch_backend(xs, b"be").unwrap();
    let d = s.d.borrow();
    assert!(d.watches.is_empty());
    // Every backend change was seen through a watch event: the first at once, then InitWait, Connected
    // (after the other details), Closing, Closed.
    assert!(d.events_sent >= 5, "{}", d.events_sent);
    assert_eq!(d.tree[&fe("ring-ref")], b"8");
    assert_eq!(d.tree[&fe("event-channel")], b"5");
}

/// The vbd frontend of [`vbd_tree`], watching its backend (token `be`), whose state becomes `state` at the
/// daemon's turn `turn` (`None`: it never changes).
fn watching(change: Option<(usize, &'static [u8])>) -> (Setup, Frontend) {
    let react: React = match change {
        Some((turn, state)) => Box::new(move |_, seen| match seen {
            Seen::Turn(t) if t == turn => vec![(bk("state"), state.to_vec())],
            _ => Vec::new(),
        }),
        None => quiet(),
    };
    let mut s = setup_nodes(&vbd_tree(), react);
    let f = Frontend::new(&mut s.xs, "vbd", "51712").unwrap();
    f.watch_backend(&mut s.xs, b"be").unwrap();
    (s, f)
}

#[test]
fn a_backend_that_closes_unexpectedly_is_enotconn() {
    let (mut s, f) = watching(Some((3, b"6")));
    assert_eq!(
        f.wait_for_backend(&mut s.xs, &[XenbusState::INIT_WAIT]),
        Err(Error::ENOTCONN)
    );
    // Waiting for Closed itself is fine.
    assert_eq!(
        f.wait_for_backend(&mut s.xs, &[XenbusState::CLOSED]),
        Ok(XenbusState::CLOSED)
    );
    // Closing while connected: the same.
    let (mut s, f) = watching(Some((2, b"5")));
    assert_eq!(
        f.wait_for_backend(&mut s.xs, &[XenbusState::CONNECTED]),
        Err(Error::ENOTCONN)
    );
}

#[test]
fn a_backend_that_never_answers_ends_the_wait_with_the_closures_timeout() {
    let (mut s, f) = watching(None);
    assert_eq!(
        f.wait_for_backend(&mut s.xs, &[XenbusState::INIT_WAIT]),
        Err(Error::ETIMEDOUT)
    );
    // It waited on the event channel (each wait a daemon turn), not by re-reading in a loop: the state
    // was read once per watch event (the one at registration) and once at the start.
    let d = s.d.borrow();
    let reads = d
        .seen
        .iter()
        .filter(|m| m.0 == XS_READ && m.2.ends_with(b"51712/state\0"))
        .count();
    assert_eq!(reads, 2);
    assert_eq!(d.events_sent, 1);
    // Negative control: a backend that answers at the last turn before the limit is seen.
    drop(d);
    let (mut s, f) = watching(Some((WAIT_LIMIT - 5, b"2")));
    assert_eq!(
        f.wait_for_backend(&mut s.xs, &[XenbusState::INIT_WAIT]),
        Ok(XenbusState::INIT_WAIT)
    );
}

#[test]
fn a_wait_for_a_watch_event_is_bounded_by_the_closure() {
    let mut s = setup(&[(b"data/go", b"0")], quiet());
    let mut ev = [0u8; 64];
    assert_eq!(s.xs.wait_watch_event(&mut ev), Err(Error::ETIMEDOUT));
    let mut s = setup(&[(b"data/go", b"0")], quiet());
    s.xs.watch(b"data/go", b"go").unwrap();
    let e = s.xs.wait_watch_event(&mut ev).unwrap();
    assert_eq!(
        (e.path, e.token),
        (&b"/local/domain/1/data/go"[..], &b"go"[..])
    );
}

/// (key, value) pairs of a tree.
type Nodes = Vec<(Vec<u8>, Vec<u8>)>;

/// A directory `big` of 600 children of 9 bytes each ("entry-NNN\0" is 10): 6000 bytes of names, over
/// one payload. The names, and the tree's (key, value) pairs.
fn big_directory() -> (Vec<String>, Nodes) {
    let names: Vec<String> = (0..600).map(|i| format!("entry-{i:03}")).collect();
    let tree = names
        .iter()
        .map(|n| (format!("big/{n}").into_bytes(), b"x".to_vec()))
        .collect();
    (names, tree)
}

#[test]
fn a_directory_bigger_than_one_reply_is_read_in_parts() {
    let (names, tree) = big_directory();
    let mut s = setup_nodes(&tree, quiet());
    let mut buf = vec![0u8; 8192];
    assert_eq!(s.xs.directory(b"big", &mut buf).err(), Some(Error::E2BIG));
    let got: Vec<String> =
        s.xs.directory_part(b"big", &mut buf)
            .unwrap()
            .map(|n| String::from_utf8(n.to_vec()).unwrap())
            .collect();
    assert_eq!(got, names);
    let parts =
        s.d.borrow()
            .seen
            .iter()
            .filter(|m| m.0 == XS_DIRECTORY_PART)
            .count();
    assert_eq!(parts, 2);
    // Too small a buffer: ERANGE.
    assert_eq!(
        s.xs.directory_part(b"big", &mut buf[..4000]).err(),
        Some(Error::ERANGE)
    );
    // A small and an empty directory, in one part each.
    let mut s = setup(&[(b"d/a", b"1"), (b"d/b", b"2"), (b"e", b"")], quiet());
    let got: Vec<&[u8]> = s.xs.directory_part(b"d", &mut buf).unwrap().collect();
    assert_eq!(got, [&b"a"[..], b"b"]);
    assert_eq!(s.xs.directory_part(b"e", &mut buf).unwrap().count(), 0);
    assert_eq!(
        s.xs.directory_part(b"nope", &mut buf).err(),
        Some(Error::ENOENT)
    );
}

#[test]
fn a_directory_changed_between_parts_is_read_again() {
    let (_, tree) = big_directory();
    // A new child appears between the first part and the second (turn 2: the first part's request is
    // answered at turn 1).
    let react: React = Box::new(|_, seen| match seen {
        Seen::Turn(2) => vec![(abs(b"big/entry-999"), b"x".to_vec())],
        _ => Vec::new(),
    });
    let mut s = setup_nodes(&tree, react);
    let mut buf = vec![0u8; 8192];
    let got: Vec<String> =
        s.xs.directory_part(b"big", &mut buf)
            .unwrap()
            .map(|n| String::from_utf8(n.to_vec()).unwrap())
            .collect();
    assert_eq!(got.len(), 601);
    assert_eq!(got.last().unwrap(), "entry-999");
    let d = s.d.borrow();
    let offsets: Vec<&[u8]> = d
        .seen
        .iter()
        .filter(|m| m.0 == XS_DIRECTORY_PART)
        .map(|m| &m.2[4..])
        .collect();
    // Started over at offset 0 after the generation changed.
    assert_eq!(offsets.iter().filter(|o| o.starts_with(b"0\0")).count(), 2);
    let _ = (XS_RM, XS_GET_PERMS, XS_UNWATCH);
}

/// What a network frontend's handshake needs besides xenstore (after [`setup`], which resets the mock):
/// event channels allocated as Xen would (ports 20, 21, …), and a grant table over a leaked frame with
/// `pages` leaked pages to grant (their frame numbers counted from the table's).
fn netback_rig(
    pages: usize,
) -> (
    xen_hypercall::xen::grant_table::GrantTable<64>,
    &'static mut [Page],
) {
    use std::cell::Cell;
    use xen_hypercall::xen::evtchn::{self, AllocUnbound};
    use xen_hypercall::xen::grant_table::{GrantEntryV1, GrantTable};
    use xen_hypercall::xen::nr;

    let next = Cell::new(20u32);
    mock::set_default(move |c| {
        if c.op() == nr::EVENT_CHANNEL_OP && c.arg(0) == evtchn::EVTCHNOP_ALLOC_UNBOUND {
            let p = next.get();
            next.set(p + 1);
            c.update(1, |a: &mut AllocUnbound| a.port = Port(p));
        }
        0
    });
    std::thread_local! { static BASE: Cell<usize> = const { Cell::new(0) }; }
    fn gfn_of(p: *const Page) -> u64 {
        ((p as usize - BASE.with(Cell::get)) / 4096 + 1) as u64
    }
    let all: &'static mut [Page] = Box::leak((0..1 + pages).map(|_| Page::new()).collect());
    BASE.with(|b| b.set(all.as_ptr() as usize));
    let (frame, rest) = all.split_at_mut(1);
    // SAFETY: the frame is leaked and used as the table's entries only; pages' frames from `gfn_of`.
    let table = unsafe {
        GrantTable::<64>::new(frame.as_mut_ptr().cast::<GrantEntryV1>(), 1).with_gfn_of(gfn_of)
    };
    (table, rest)
}

/// The network frontend's handshake (`netfront::NetFront::connect`) with a netback-like backend: the
/// keys netback reads, split event channels when offered, `Connected` both ways, and a close that ends
/// in `Closed` with every page back.
#[test]
fn the_network_frontend_connects_to_a_netback_like_backend_and_closes() {
    use xen_hypercall::xen::netfront::{NetFront, Options, Pages, Tables};

    const VIF: &[u8] = b"/local/domain/0/backend/vif/1/0";
    let vb = |k: &str| [VIF, b"/", k.as_bytes()].concat();
    let vf = |k: &str| [HOME, b"device/vif/0/", k.as_bytes()].concat();
    let tree = device_tree(
        "device/vif/0",
        VIF,
        &[("mac", b"00:16:3e:00:00:02"), ("mtu", b"1500")],
        &[("feature-split-event-channels", b"1")],
    );
    // netback: InitWait at turn 3; on the frontend's Connected, Connected if every key it needs is there.
    let react: React = Box::new(move |tree, seen| match seen {
        Seen::Turn(3) => vec![(vb("state"), b"2".to_vec())],
        Seen::Write(p, v) if p == vf("state") => match v {
            b"4" if [
                "tx-ring-ref",
                "rx-ring-ref",
                "event-channel-tx",
                "event-channel-rx",
            ]
            .iter()
            .all(|k| tree.contains_key(&vf(k)))
                && ["request-rx-copy", "feature-rx-notify"]
                    .iter()
                    .all(|k| tree.get(&vf(k)).map(Vec::as_slice) == Some(b"1"))
                // The default options take blank checksums.
                && tree.get(&vf("feature-no-csum-offload")).map(Vec::as_slice) == Some(b"0") =>
            {
                vec![(vb("state"), b"4".to_vec())]
            }
            b"5" => vec![(vb("state"), b"5".to_vec())],
            b"6" => vec![(vb("state"), b"6".to_vec())],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    });
    let mut s = setup_nodes(&tree, react);
    let (mut table, rest) = netback_rig(2 + 2 + 4);
    let (rings, rest) = rest.split_at_mut(2);
    let (a, b) = rings.split_at_mut(1);
    let (tx, rx) = rest.split_at_mut(2);
    let pages = Pages {
        tx_ring: &mut a[0],
        rx_ring: &mut b[0],
        tx,
        rx,
        tables: Box::leak(Box::new(Tables::new())),
    };
    let net = NetFront::connect(&mut s.xs, &mut table, "0", pages, Options::default()).unwrap();
    let i = *net.info();
    assert_eq!(i.mac, [0x00, 0x16, 0x3e, 0x00, 0x00, 0x02]);
    assert_eq!(
        (i.mtu, i.split, i.tx_port, i.rx_port),
        (1500, true, Port(20), Port(21))
    );
    {
        let d = s.d.borrow();
        assert_eq!(d.tree[&vf("state")], b"4");
        assert_eq!(d.tree[&vb("state")], b"4");
        assert_eq!(d.tree[&vf("event-channel-tx")], b"20");
        assert_eq!(d.tree[&vf("event-channel-rx")], b"21");
        assert!(!d.tree.contains_key(&vf("event-channel")));
        // Not asked for by default: frames of the MTU only.
        assert!(!d.tree.contains_key(&vf("feature-gso-tcpv4")));
        let r = |k: &str| String::from_utf8(d.tree[&vf(k)].clone()).unwrap();
        assert_eq!(r("tx-ring-ref"), net.tx_ring_ref().0.to_string());
        assert_eq!(r("rx-ring-ref"), net.rx_ring_ref().0.to_string());
        assert_ne!(r("tx-ring-ref"), r("rx-ring-ref"));
    }
    let back = net.close(Some(&mut s.xs), &mut table, || true);
    assert!(back.backend_closed);
    assert_eq!(back.leaked, 0);
    assert_eq!((back.rings.len(), back.tx.len(), back.rx.len()), (2, 2, 4));
    assert_eq!(s.d.borrow().tree[&vf("state")], b"6");
}

#[test]
fn the_client_opens_the_ring_its_hvm_parameters_name() {
    use xen_hypercall::xen::hvm::HvmParam;
    use xen_hypercall::xen::xenstore;
    mock::reset();
    // HVM_PARAM_STORE_PFN, then HVM_PARAM_STORE_EVTCHN, as the toolstack set them (libxl's ARM magic
    // pages: the xenstore ring at GFN 0x39001 on port 1).
    for (index, value) in [(1u32, 0x39001u64), (2, 1)] {
        mock::respond(move |call| {
            let mut asked = None;
            assert!(call.update(1, |p: &mut HvmParam| {
                asked = Some((p.domid, p.index));
                p.value = value;
            }));
            assert_eq!(asked, Some((DomId::SELF, index)));
            0
        });
    }
    let page: *mut Page = Box::into_raw(Box::new(Page::new()));
    let mut frame = None;
    let xs = Xenstore::open(
        |pfn| {
            frame = Some(pfn);
            // SAFETY: the leaked page stands for the frame; accessed only through the ring.
            unsafe { SharedArea::new(page, 1) }
        },
        || Ok(()),
    )
    .unwrap();
    assert_eq!(frame, Some(0x39001));
    assert_eq!(xs.port(), Port(1));
    assert_eq!(mock::pending_responses(), 0);
    // No ring (the frame parameter 0): ENODEV, and the area is not asked for.
    mock::reset();
    mock::answer_zero();
    assert_eq!(xenstore::ring_location(), Err(Error::ENODEV));
    let r = Xenstore::open(
        |_| -> Result<SharedArea<'static>, Error> { panic!("mapped") },
        || Ok(()),
    );
    assert!(matches!(r, Err(Error::ENODEV)));
    // A parameter Xen refuses: its error.
    mock::reset();
    mock::fails(Error::EINVAL);
    assert_eq!(xenstore::ring_location(), Err(Error::EINVAL));
}

#[test]
fn requests_outside_an_open_transaction_carry_no_transaction_id() {
    let mut s = setup(&[(b"data/conflict", b"init")], quiet());
    let mut attempts = 0;
    s.d.borrow_mut().conflicts = 1;
    s.xs.transaction(|tx| {
        attempts += 1;
        let mut v = [0u8; 16];
        tx.read(b"data/conflict", &mut v)?;
        tx.outside().write(b"data/signal", b"1")?;
        xenbus::printf(tx, b"data/conflict", format_args!("domU {attempts}"))
    })
    .unwrap();
    assert_eq!(attempts, 2);
    let d = s.d.borrow();
    let writes: Vec<(u32, &[u8])> = d
        .seen
        .iter()
        .filter(|m| m.0 == XS_WRITE)
        .map(|m| (m.1, &m.2[..]))
        .collect();
    // Each attempt: the signal outside (tx 0, applied at once), the value inside (its tx).
    assert_eq!(writes.len(), 4);
    assert_eq!(writes[0], (0, &b"data/signal\x001"[..]));
    assert_ne!(writes[1].0, 0);
    assert_eq!(writes[1].1, b"data/conflict\x00domU 1");
    assert_eq!(writes[3].1, b"data/conflict\x00domU 2");
    assert_eq!(d.tree[&abs(b"data/conflict")], b"domU 2");
    assert_eq!(d.tree[&abs(b"data/signal")], b"1");
}

/// Multi-queue (`netfront::MultiQueue`) with a netback-like backend that offers `offer` queues
/// (`multi-queue-max-queues`, none when `None`), three sets of pages given: the keys the backend reads
/// (Linux's netback, `connect_data_rings`: `multi-queue-num-queues` and `queue-<i>/…` for more than one
/// queue, the flat keys for one), the queues it did not take handed back untouched, frames sent by flow,
/// and a close that ends every queue's grants.
fn multi_queue(offer: Option<&'static [u8]>) -> (usize, usize, BTreeMap<Vec<u8>, Vec<u8>>) {
    use xen_hypercall::xen::netfront::queues::MultiQueue;
    use xen_hypercall::xen::netfront::{Options, Pages, Tables};

    const VIF: &[u8] = b"/local/domain/0/backend/vif/1/0";
    let vb = |k: &str| [VIF, b"/", k.as_bytes()].concat();
    let vf = |k: &str| [HOME, b"device/vif/0/", k.as_bytes()].concat();
    let mut tree: Vec<(&[u8], &[u8])> = vec![
        (b"device/vif/0/state", b"1"),
        (b"device/vif/0/backend", VIF),
        (b"device/vif/0/backend-id", b"0"),
        (b"device/vif/0/mac", b"00:16:3e:00:00:02"),
        (b"/local/domain/0/backend/vif/1/0/state", b"1"),
    ];
    if let Some(n) = offer {
        tree.push((b"/local/domain/0/backend/vif/1/0/multi-queue-max-queues", n));
    }
    // netback: InitWait at turn 3; on the frontend's Connected, Connected if the keys of as many queues
    // as it asked for are there (no split channels offered: one `event-channel` each).
    let react: React = Box::new(move |tree, seen| match seen {
        Seen::Turn(3) => vec![(vb("state"), b"2".to_vec())],
        Seen::Write(p, v) if p == vf("state") => match v {
            b"4" => {
                let n: usize = tree
                    .get(&vf("multi-queue-num-queues"))
                    .map_or(1, |v| std::str::from_utf8(v).unwrap().parse().unwrap());
                let dir = |i: usize| {
                    if n == 1 {
                        String::new()
                    } else {
                        format!("queue-{i}/")
                    }
                };
                let all = (0..n).all(|i| {
                    ["tx-ring-ref", "rx-ring-ref", "event-channel"]
                        .iter()
                        .all(|k| tree.contains_key(&vf(&format!("{}{k}", dir(i)))))
                });
                if all {
                    vec![(vb("state"), b"4".to_vec())]
                } else {
                    Vec::new()
                }
            }
            b"5" => vec![(vb("state"), b"5".to_vec())],
            b"6" => vec![(vb("state"), b"6".to_vec())],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    });
    let mut s = setup(&tree, react);
    let (mut table, mut rest) = netback_rig(3 * 4);
    let pages = [(); 3].map(|()| {
        let (mine, others) = core::mem::take(&mut rest).split_at_mut(4);
        rest = others;
        let (rings, pools) = mine.split_at_mut(2);
        let (a, b) = rings.split_at_mut(1);
        let (tx, rx) = pools.split_at_mut(1);
        Pages {
            tx_ring: &mut a[0],
            rx_ring: &mut b[0],
            tx,
            rx,
            tables: Box::leak(Box::new(Tables::new())),
        }
    });
    let options = Options {
        split_channels: false,
        gso_tcpv4: true,
        ..Options::default()
    };
    let (mut mq, unused) = MultiQueue::connect(&mut s.xs, &mut table, "0", pages, options).unwrap();
    let used = mq.len();
    assert_eq!(used + unused.len(), 3);
    // The pages not used are the last sets, never granted.
    for p in &unused {
        assert_eq!(p.tx.len(), 1);
    }
    assert_eq!(mq.ports().count(), 2 * used);
    let ports: Vec<u32> = mq.ports().map(|p| p.0).collect();
    let want: Vec<u32> = (0..used as u32).flat_map(|i| [20 + i, 20 + i]).collect();
    assert_eq!(ports, want);
    // UDP over IPv4 from 169.254.1.2 to 169.254.1.1, from port `sport`.
    let udp = |sport: u16| {
        let mut f = vec![0u8; 14 + 20 + 8 + 4];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&32u16.to_be_bytes());
        f[23] = 17;
        f[26..30].copy_from_slice(&[169, 254, 1, 2]);
        f[30..34].copy_from_slice(&[169, 254, 1, 1]);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&7u16.to_be_bytes());
        f
    };
    // One flow, one queue; many flows over every queue; ARP on the first.
    let q = mq.queue_for(&udp(1000));
    assert!((0..20).all(|_| mq.queue_for(&udp(1000)) == q));
    let spread: std::collections::BTreeSet<usize> =
        (1000..1064).map(|p| mq.queue_for(&udp(p))).collect();
    assert_eq!(spread.len(), used);
    assert_eq!(mq.queue_for(&[0xffu8; 60]), 0);
    for p in 1000..1064 {
        mq.send(&udp(p)).unwrap();
    }
    let sent: Vec<u64> = mq.queues().iter().map(|q| q.stats().tx_frames).collect();
    assert_eq!(sent.iter().sum::<u64>(), 64);
    assert!(sent.iter().all(|&n| n > 0));
    let tree = s.d.borrow().tree.clone();
    let back = mq.close(&mut s.xs, &mut table, || true);
    assert_eq!(back.len(), used);
    for r in &back {
        assert!(r.backend_closed);
        assert_eq!(
            (r.rings.len(), r.tx.len(), r.rx.len(), r.leaked),
            (2, 1, 1, 0)
        );
    }
    assert_eq!(s.d.borrow().tree[&vf("state")], b"6");
    (used, unused.len(), tree)
}

#[test]
fn a_multi_queue_frontend_takes_the_queues_offered_and_writes_each_queues_keys() {
    let vf = |k: &str| [HOME, b"device/vif/0/", k.as_bytes()].concat();
    let val = |t: &BTreeMap<Vec<u8>, Vec<u8>>, k: &str| t.get(&vf(k)).cloned();
    // Two offered, three asked for: two used, under `queue-0/` and `queue-1/`.
    let (used, unused, t) = multi_queue(Some(b"2"));
    assert_eq!((used, unused), (2, 1));
    assert_eq!(val(&t, "multi-queue-num-queues"), Some(b"2".to_vec()));
    for (i, port) in [(0, b"20"), (1, b"21")] {
        assert_eq!(
            val(&t, &format!("queue-{i}/event-channel")),
            Some(port.to_vec())
        );
    }
    let refs: std::collections::BTreeSet<Vec<u8>> = ["queue-0/tx-ring-ref", "queue-0/rx-ring-ref"]
        .into_iter()
        .chain(["queue-1/tx-ring-ref", "queue-1/rx-ring-ref"])
        .map(|k| val(&t, k).unwrap())
        .collect();
    assert_eq!(refs.len(), 4);
    assert_eq!(val(&t, "tx-ring-ref"), None);
    assert_eq!(val(&t, "event-channel"), None);
    assert_eq!(val(&t, "request-rx-copy"), Some(b"1".to_vec()));
    // Asked for: GSO segments of TCP over IPv4.
    assert_eq!(val(&t, "feature-gso-tcpv4"), Some(b"1".to_vec()));
    // More offered than asked for: all three.
    assert_eq!(multi_queue(Some(b"8")).0, 3);
    // None offered: one queue, the flat keys, no count.
    let (used, unused, t) = multi_queue(None);
    assert_eq!((used, unused), (1, 2));
    assert_eq!(val(&t, "multi-queue-num-queues"), None);
    assert_eq!(val(&t, "event-channel"), Some(b"20".to_vec()));
    assert!(val(&t, "tx-ring-ref").is_some());
    assert!(!t.keys().any(|k| k.windows(6).any(|w| w == b"queue-")));
}

#[test]
fn a_multi_queue_frontend_of_no_queue_is_refused_before_xenstore_is_asked() {
    use xen_hypercall::xen::netfront::queues::MultiQueue;
    use xen_hypercall::xen::netfront::{NetError, Options, Pages};
    let mut s = setup(&[], quiet());
    let (mut table, _) = netback_rig(0);
    let r = MultiQueue::<0>::connect(
        &mut s.xs,
        &mut table,
        "0",
        [] as [Pages; 0],
        Options::default(),
    );
    assert!(matches!(r, Err(NetError::BadPages)));
    assert!(s.d.borrow().seen.is_empty());
}
