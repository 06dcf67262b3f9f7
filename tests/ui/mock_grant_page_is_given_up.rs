// A granted page is given up: the program cannot touch it through its old reference, nor end the same
// access twice, nor read a mapping after unmapping it.
use xen_hypercall::xen::grant_table::{GrantEntryV1, GrantRef, GrantTable, MapArea};
use xen_hypercall::xen::{DomId, Page};

fn main() {
    let mut frame = [GrantEntryV1::default(); 512];
    // SAFETY: `frame` outlives the table.
    let mut table = unsafe { GrantTable::<4>::new(frame.as_mut_ptr(), 1) };
    let page: &'static mut Page = Box::leak(Box::new(Page::new()));
    let grant = table.grant(DomId(1), page, false).unwrap();
    page.0[0] = 1;
    let _ = table.end_access(grant);
    let _ = table.end_access(grant);

    let window: &'static mut [Page; 1] = Box::leak(Box::new([Page::new()]));
    // SAFETY: the window is given up to the area.
    let mut area = unsafe { MapArea::<1>::new(0x8000_0000, window.as_mut_ptr()) };
    let m = area.map(DomId(1), GrantRef(8), true).unwrap();
    let _ = area.unmap(m);
    let _ = m.read(0, &mut [0; 4]);
}
