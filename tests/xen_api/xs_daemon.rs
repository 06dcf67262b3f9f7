//! What the tests' fake xenstore daemons share (`xenstore.rs`, `xenbus.rs`): the two ends of a xenstore
//! ring over one leaked page, and the client's requests taken off the ring message by message
//! (`io/xs_wire.h`: a 16-byte `xsd_sockmsg` of type, request id, transaction id and payload length, in
//! native byte order, then the payload).

use xen_hypercall::xen::Page;
use xen_hypercall::xen::ring::{ByteRing, End, SharedArea};
use xen_hypercall::xen::xenstore::XsdSockmsg;

/// The client's (front) and the daemon's (back) ends of a xenstore ring over one leaked page.
pub fn ring_ends() -> (ByteRing<'static>, ByteRing<'static>) {
    let p: *mut Page = Box::into_raw(Box::new(Page::new()));
    // SAFETY: the page is leaked, never referenced, accessed only through the two byte rings.
    let (a, b) = unsafe {
        (
            SharedArea::new(p, 1).unwrap(),
            SharedArea::new(p, 1).unwrap(),
        )
    };
    (
        ByteRing::xenstore(a, End::Front),
        ByteRing::xenstore(b, End::Back),
    )
}

/// Appends everything the client has written on `ring` to `inbuf`.
pub fn receive(ring: &mut ByteRing<'_>, inbuf: &mut Vec<u8>) {
    let mut buf = [0u8; 256];
    loop {
        let n = ring.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        inbuf.extend_from_slice(&buf[..n]);
    }
}

/// The first message of `inbuf`, taken out of it: its header and payload; `None` while it is not complete.
pub fn next_message(inbuf: &mut Vec<u8>) -> Option<(XsdSockmsg, Vec<u8>)> {
    if inbuf.len() < 16 {
        return None;
    }
    let h = XsdSockmsg::from_bytes(inbuf[..16].try_into().unwrap());
    let len = h.len as usize;
    if inbuf.len() < 16 + len {
        return None;
    }
    let payload = inbuf[16..16 + len].to_vec();
    inbuf.drain(..16 + len);
    Some((h, payload))
}
