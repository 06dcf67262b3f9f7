//! Several queues on one virtual interface (`multi-queue-max-queues`): a [`NetFront`] per queue, each
//! with its own rings, event channel(s) and pools, under one xenbus frontend.
//!
//! The backend spreads the frames it sends over the queues by flow (Linux's netback hashes each packet's
//! addresses and ports); [`MultiQueue::send`] does the same for the frames it sends
//! ([`MultiQueue::queue_for`]), so one flow's frames stay in order on one queue, and
//! [`MultiQueue::receive_frame`] takes from the queues in turn. A program with a vCPU per queue drives
//! each queue on its own vCPU instead ([`MultiQueue::queues`]).

use arrayvec::ArrayVec;

use super::{
    ETH_HLEN, Frame, Ipv4, NetError, NetFront, Pages, Result, Returned, WATCH_TOKEN,
    close_frontend, handshake,
};
use crate::xen::Error;
use crate::xen::evtchn::Port;
use crate::xen::grant_table::GrantTable;
use crate::xen::netfront::Options;
use crate::xen::xenbus::Frontend;
use crate::xen::xenstore::{Store, Xenstore};

/// A network frontend of up to `Q` queues.
pub struct MultiQueue<const Q: usize> {
    queues: ArrayVec<NetFront, Q>,
    frontend: Frontend,
    /// The queue [`receive_frame`](Self::receive_frame) looks at first.
    next: usize,
}

impl<const Q: usize> MultiQueue<Q> {
    /// The handshake of [`NetFront::connect`] with as many queues as the backend offers
    /// (`multi-queue-max-queues`, 1 when it says nothing) up to `Q`, one set of `pages` each: with more
    /// than one, `multi-queue-num-queues` and each queue's keys under `queue-<i>/`. Returns the frontend
    /// and the pages of the queues not used, untouched. On failure the grants made are left in place
    /// (their pages never reused) and the ports closed. `BadPages` for no pages at all (`Q` = 0), before
    /// anything is asked of xenstore.
    pub fn connect<W: FnMut() -> core::result::Result<(), Error>, const N: usize>(
        xs: &mut Xenstore<'_, W>,
        table: &mut GrantTable<N>,
        id: &str,
        pages: [Pages; Q],
        options: Options,
    ) -> Result<(MultiQueue<Q>, ArrayVec<Pages, Q>)> {
        let (frontend, queues, unused) = handshake(xs, table, id, pages, options)?;
        let mq = MultiQueue {
            queues,
            frontend,
            next: 0,
        };
        Ok((mq, unused))
    }

    /// The queues, in the backend's order (`queue-0`, …).
    pub fn queues(&mut self) -> &mut [NetFront] {
        &mut self.queues
    }

    /// How many queues the backend took.
    pub fn len(&self) -> usize {
        self.queues.len()
    }

    /// Never: a frontend has at least one queue.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// The ports to wait on: each queue's two (the same one twice unless split).
    pub fn ports(&self) -> impl Iterator<Item = Port> + '_ {
        self.queues.iter().flat_map(NetFront::ports)
    }

    /// The queue a frame goes out on: by its flow for TCP and UDP over IPv4 (the addresses and ports),
    /// by its addresses for other IPv4, the first queue for anything else.
    pub fn queue_for(&self, frame: &[u8]) -> usize {
        let n = self.queues.len().max(1);
        flow_hash(frame) as usize % n
    }

    /// Sends one frame on its flow's queue ([`queue_for`](Self::queue_for)): [`NetFront::send`].
    pub fn send(&mut self, frame: &[u8]) -> Result<()> {
        let i = self.queue_for(frame);
        let r = self.queues[i].send(frame);
        self.spread(r)
    }

    /// Receives one frame from the queues in turn, starting after the one that gave the last:
    /// [`NetFront::receive_frame`]; the queue's index with it.
    pub fn receive_frame(&mut self, buf: &mut [u8]) -> Result<Option<(usize, Frame)>> {
        let n = self.queues.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            let r = self.queues[i].receive_frame(buf);
            match self.spread(r)? {
                Some(f) => {
                    self.next = (i + 1) % n;
                    return Ok(Some((i, f)));
                }
                None => continue,
            }
        }
        Ok(None)
    }

    /// [`NetFront::prepare_wait`] on every queue: `true` if any has something already.
    pub fn prepare_wait(&mut self) -> Result<bool> {
        let mut any = false;
        for i in 0..self.queues.len() {
            let r = self.queues[i].prepare_wait();
            any |= self.spread(r)?;
        }
        Ok(any)
    }

    /// A protocol error or a backend gone on one queue counts for all.
    fn spread<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(NetError::Protocol | NetError::BackendGone) = r {
            self.queues.iter_mut().for_each(NetFront::set_gone);
        }
        r
    }

    /// Whether the backend counts as gone.
    pub fn is_gone(&self) -> bool {
        self.queues.iter().any(NetFront::is_gone)
    }

    /// [`NetFront::check_backend`] for every queue: reads the backend's state after a watch event.
    pub fn check_backend(&mut self, store: &mut impl Store) -> Result<bool> {
        let gone = match self.frontend.backend_state(store) {
            Ok(s) => s.is_closing(),
            Err(Error::ENOENT) => true,
            Err(e) => return Err(e.into()),
        };
        if gone {
            self.queues.iter_mut().for_each(NetFront::set_gone);
        }
        Ok(self.is_gone())
    }

    /// Watches the backend's state with [`WATCH_TOKEN`] (already done by [`connect`](Self::connect)).
    pub fn watch_backend<W: FnMut() -> core::result::Result<(), Error>>(
        &self,
        xs: &mut Xenstore<'_, W>,
    ) -> Result<()> {
        self.frontend.watch_backend(xs, WATCH_TOKEN)?;
        Ok(())
    }

    /// Tears down as [`NetFront::close`]: the xenbus side once, then every queue's grants and ports.
    /// What each queue hands back, in order.
    pub fn close<W: FnMut() -> core::result::Result<(), Error>, const N: usize>(
        self,
        xs: &mut Xenstore<'_, W>,
        table: &mut GrantTable<N>,
        mut pause: impl FnMut() -> bool,
    ) -> ArrayVec<Returned, Q> {
        let closed = close_frontend(&self.frontend, xs);
        self.queues
            .into_iter()
            .map(|q| q.end(table, &mut pause, closed))
            .collect()
    }
}

/// A hash of a frame's flow (FNV-1a over the IPv4 protocol, addresses and, for TCP and UDP, ports): the
/// same for every frame of one flow; 0 for a frame that is not IPv4.
fn flow_hash(frame: &[u8]) -> u32 {
    let Some(ip) = Ipv4::of(frame) else {
        return 0;
    };
    let at = ETH_HLEN + ip.header;
    // Every fragment of a datagram by its addresses alone: only the first has the ports.
    let ports = match ip.proto {
        6 | 17 if !ip.fragmented => frame.get(at..at + 4),
        _ => None,
    };
    // The protocol and the addresses (`Ipv4::of` saw the fixed header).
    let fields = [
        &[ip.proto][..],
        &frame[ETH_HLEN + 12..ETH_HLEN + 20],
        ports.unwrap_or_default(),
    ];
    let mut h: u32 = 0x811c_9dc5;
    for b in fields.iter().flat_map(|f| f.iter()) {
        h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    }
    h
}
