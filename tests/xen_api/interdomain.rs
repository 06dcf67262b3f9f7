//! The inter-domain API on the mock: grant mapping, copying and entries, reservations and foreign
//! mappings, event delivery over a `SharedInfo` in memory, and wrappers written with `xen::raw`.
//! Expected values are written by hand from Xen's headers and sources; two domains, ports, references and
//! frames are always distinct values.

use xen_hypercall::mock::{self, Call};
use xen_hypercall::xen::evtchn::{self, Events, Port, PortVcpus};
use xen_hypercall::xen::grant_table::{
    self as gt, CopyPtr, FreeRefs, GntMap, GnttabCopy, GnttabMapGrantRef, GnttabUnmapGrantRef,
    GrantEntryV1, GrantError, GrantHandle, GrantPtr, GrantRef, GrantStatus, GrantTable, MapArea,
    MapRequest,
};
use xen_hypercall::xen::memory::{
    self, AddToPhysmapBatch, MemoryReservation, RemoveFromPhysmap, Space,
};
use xen_hypercall::xen::vcpu::{RunstateInfo, SharedInfo, VcpuInfo, XEN_RUNSTATE_UPDATE};
use xen_hypercall::xen::{DomId, Error, Page, nr, sched, vm_assist};

fn only_call() -> Call {
    let calls = mock::take_calls();
    assert_eq!(calls.len(), 1, "expected exactly one hypercall: {calls:?}");
    let c = calls.into_iter().next().unwrap();
    assert_eq!(
        Some(c.arity()),
        nr::arm_arity(c.op),
        "arity of hypercall {}",
        c.op
    );
    c
}

fn neg(e: Error) -> isize {
    -(e.errno() as isize)
}

// ---------------------------------------------------------------- grant map / unmap / copy

#[test]
fn map_grant_ref_is_one_call_for_the_batch_with_every_operation() {
    mock::reset();
    mock::respond(|c| {
        assert!(c.update(1, |o: &mut [GnttabMapGrantRef; 2]| {
            o[0].status = 0;
            o[0].handle = GrantHandle(41);
            o[1].status = 0;
            o[1].handle = GrantHandle(42);
        }));
        0
    });
    let mut ops = [
        GnttabMapGrantRef::new(0x8000_0000, GntMap::HOST_MAP, GrantRef(8), DomId(1)),
        GnttabMapGrantRef::new(
            0x8000_1000,
            GntMap::HOST_MAP | GntMap::READONLY,
            GrantRef(9),
            DomId(2),
        ),
    ];
    // SAFETY: the mock maps nothing.
    assert_eq!(unsafe { gt::map_grant_ref(&mut ops) }, Ok(()));
    assert_eq!(ops[0].result(), Ok(GrantHandle(41)));
    assert_eq!(ops[1].result(), Ok(GrantHandle(42)));
    let c = only_call();
    assert_eq!(c.op, nr::GRANT_TABLE_OP);
    assert_eq!((c.args[0], c.args[2]), (0, 2)); // GNTTABOP_map_grant_ref, count 2
    assert_eq!(c.bytes(1).unwrap().len(), 64);
    let a: GnttabMapGrantRef = c.read_at(1, 0).unwrap();
    let b: GnttabMapGrantRef = c.read_at(1, 1).unwrap();
    assert_eq!(
        (a.host_addr, a.flags, a.r#ref, a.dom),
        (0x8000_0000, 2, GrantRef(8), DomId(1))
    );
    assert_eq!(
        (b.host_addr, b.flags, b.r#ref, b.dom),
        (0x8000_1000, 6, GrantRef(9), DomId(2))
    );
    // Sent as "not done": a status Xen did not write reads as failed.
    assert_eq!((a.status, b.status), (-1, -1));
}

#[test]
fn map_grant_ref_reports_each_failed_operation() {
    mock::reset();
    mock::respond(|c| {
        c.update(1, |o: &mut [GnttabMapGrantRef; 3]| {
            o[0].status = 0;
            o[0].handle = GrantHandle(7);
            o[1].status = -8; // GNTST_permission_denied
            o[2].status = -3; // GNTST_bad_gntref
        });
        0
    });
    let mut ops = [
        GnttabMapGrantRef::new(0x8000_0000, GntMap::HOST_MAP, GrantRef(8), DomId(1)),
        GnttabMapGrantRef::new(0x8000_1000, GntMap::HOST_MAP, GrantRef(9), DomId(1)),
        GnttabMapGrantRef::new(0x8000_2000, GntMap::HOST_MAP, GrantRef(4000), DomId(1)),
    ];
    assert_eq!(
        // SAFETY: the mock maps nothing.
        unsafe { gt::map_grant_ref(&mut ops) },
        Err(GrantError::Status(GrantStatus::PERMISSION_DENIED))
    );
    assert_eq!(ops[0].result(), Ok(GrantHandle(7)));
    assert_eq!(ops[1].status(), Err(GrantStatus::PERMISSION_DENIED));
    assert_eq!(ops[2].status(), Err(GrantStatus::BAD_GNTREF));
}

#[test]
fn a_failed_grant_hypercall_leaves_unreached_operations_failed() {
    mock::reset();
    mock::respond(|c| {
        // Xen did the first operation, then could not read the second.
        c.update(1, |o: &mut [GnttabUnmapGrantRef; 2]| o[0].status = 0);
        neg(Error::EFAULT)
    });
    let mut ops = [
        GnttabUnmapGrantRef::new(0x8000_0000, GrantHandle(7)),
        GnttabUnmapGrantRef::new(0x8000_1000, GrantHandle(8)),
    ];
    ops[1].status = 0; // stale "okay" from an earlier use: must not survive
    assert_eq!(
        // SAFETY: the mock unmaps nothing.
        unsafe { gt::unmap_grant_ref(&mut ops) },
        Err(GrantError::Xen(Error::EFAULT))
    );
    assert_eq!(ops[0].status(), Ok(()));
    assert_eq!(ops[1].status(), Err(GrantStatus::GENERAL_ERROR));
    let c = only_call();
    assert_eq!((c.op, c.args[0], c.args[2]), (nr::GRANT_TABLE_OP, 1, 2));
    let u: GnttabUnmapGrantRef = c.read_at(1, 1).unwrap();
    assert_eq!(
        (u.host_addr, u.dev_bus_addr, u.handle),
        (0x8000_1000, 0, GrantHandle(8))
    );
}

#[test]
fn an_empty_batch_makes_no_hypercall() {
    mock::reset();
    // SAFETY: empty batches.
    assert_eq!(unsafe { gt::map_grant_ref(&mut []) }, Ok(()));
    // SAFETY: as above.
    assert_eq!(unsafe { gt::unmap_grant_ref(&mut []) }, Ok(()));
    assert_eq!(gt::copy(&mut []), Ok(()));
    assert!(mock::take_calls().is_empty());
}

#[test]
fn copy_sets_the_gref_flags_from_the_kinds_of_its_ends() {
    mock::reset();
    mock::respond(|c| {
        c.update(1, |o: &mut [GnttabCopy; 2]| {
            o[0].status = 0;
            o[1].status = -10; // GNTST_bad_copy_arg
        });
        0
    });
    let mut ops = [
        GnttabCopy::to_frame(
            CopyPtr::Gref {
                dom: DomId(3),
                gref: GrantRef(12),
                offset: 16,
            },
            0x40123,
            128,
            64,
        ),
        GnttabCopy::new(
            CopyPtr::Frame {
                gmfn: 0x40456,
                offset: 4000,
            },
            GrantPtr {
                dom: DomId(4),
                gref: GrantRef(13),
                offset: 0,
            },
            200,
        ),
    ];
    assert_eq!(
        // SAFETY: the mock writes no frame.
        unsafe { gt::copy_unchecked(&mut ops) },
        Err(GrantError::Status(GrantStatus::BAD_COPY_ARG))
    );
    assert_eq!(ops[0].status(), Ok(()));
    assert_eq!(ops[1].status(), Err(GrantStatus::BAD_COPY_ARG));
    let c = only_call();
    assert_eq!((c.op, c.args[0], c.args[2]), (nr::GRANT_TABLE_OP, 5, 2));
    let a: GnttabCopy = c.read_at(1, 0).unwrap();
    assert_eq!(
        (a.source.u, a.source.domid, a.source.offset),
        (12, DomId(3), 16)
    );
    assert_eq!(
        (a.dest.u, a.dest.domid, a.dest.offset),
        (0x40123, DomId::SELF, 128)
    );
    assert_eq!((a.len, a.flags), (64, 1)); // GNTCOPY_source_gref
    let b: GnttabCopy = c.read_at(1, 1).unwrap();
    assert_eq!((b.source.u, b.source.domid), (0x40456, DomId::SELF));
    assert_eq!(
        (b.dest.u, b.dest.domid, b.len, b.flags),
        (13, DomId(4), 200, 2)
    ); // GNTCOPY_dest_gref
}

#[test]
fn gntmap_flags_combine() {
    let f = GntMap::HOST_MAP | GntMap::READONLY;
    assert_eq!(f.bits(), 0b110);
    let mut g = GntMap::NONE;
    g |= GntMap::DEVICE_MAP;
    assert_eq!(g.bits(), 1);
    assert!(f.contains(GntMap::HOST_MAP) && !f.contains(GntMap::DEVICE_MAP));
}

// ---------------------------------------------------------------- grant entries

#[repr(C, align(4096))]
struct Frames([GrantEntryV1; 1024]);

fn frames() -> Box<Frames> {
    Box::new(Frames([GrantEntryV1::default(); 1024]))
}

/// A page given up for the rest of the test run, as `GrantTable::grant` wants it.
fn given_page() -> &'static mut Page {
    Box::leak(Box::new(Page::new()))
}

/// The frame the tests' tables give the grantee for a page: the low 32 bits of its address / 4096 (host
/// addresses are beyond a v1 entry's 32-bit frames).
fn test_gfn(p: *const Page) -> u64 {
    (p as usize as u64 >> 12) & 0xffff_ffff
}

fn gfn(p: &Page) -> u32 {
    test_gfn(p) as u32
}

#[test]
fn grant_writes_the_entry_and_end_access_gives_the_page_back() {
    let mut f = frames();
    // SAFETY: `f` outlives the table and is read below only after the table's last use; the test's
    // memory is identity-mapped (a page's frame is its address / 4096, as `gfn` computes it).
    let mut table = unsafe { GrantTable::<4>::new(f.0.as_mut_ptr(), 2).with_gfn_of(test_gfn) };
    assert_eq!(table.entries().len(), 1024);
    assert_eq!(table.free_count(), 4);
    let (p, q) = (given_page(), given_page());
    let (pf, qf, pa) = (gfn(p), gfn(q), p as *mut Page);
    let rw = table.grant(DomId(0), p, false).unwrap();
    let ro = table.grant(DomId(5), q, true).unwrap();
    assert_eq!((rw.gref(), ro.gref()), (GrantRef(8), GrantRef(9))); // first unreserved, lowest first
    assert_eq!(rw.page(), Some(pa));
    let e = table.entries().get(rw.gref()).unwrap();
    assert_eq!((e.flags, e.domid, e.frame), (1, DomId(0), pf)); // GTF_permit_access
    let e = table.entries().get(ro.gref()).unwrap();
    assert_eq!((e.flags, e.domid, e.frame), (1 | 4, DomId(5), qf)); // | GTF_readonly
    let back = table.end_access(rw).unwrap().unwrap();
    assert_eq!(back as *mut Page, pa); // the same page, the caller's again
    assert_eq!(table.entries().get(GrantRef(8)).unwrap().flags, 0);
    assert_eq!(table.free_count(), 3);
    // The freed reference is handed out again.
    let again = table.grant(DomId(1), back, false).unwrap();
    assert_eq!(again.gref(), GrantRef(8));
    drop(table);
    assert_eq!(
        (f.0[8].flags, f.0[8].domid, f.0[8].frame),
        (1, DomId(1), pf)
    );
    assert_eq!(f.0[9].frame, qf);
}

#[test]
fn end_access_is_refused_while_the_grantee_has_it_mapped_and_the_grant_comes_back() {
    let mut f = frames();
    let p = f.0.as_mut_ptr();
    // SAFETY: `f` outlives the table; the writes below stand in for Xen's, made between calls.
    let mut table = unsafe { GrantTable::<4>::new(p, 1).with_gfn_of(test_gfn) };
    let mut g = table.grant(DomId(2), given_page(), false).unwrap();
    let r = g.gref();
    for busy in [
        gt::GTF_READING,
        gt::GTF_WRITING,
        gt::GTF_READING | gt::GTF_WRITING,
    ] {
        // SAFETY: as above.
        unsafe { (*p.add(r.0 as usize)).flags = gt::GTF_PERMIT_ACCESS | busy };
        let refused = table.end_access(g).unwrap_err();
        assert_eq!(refused.error, Error::EBUSY, "flags {busy:#x}");
        g = refused.grant;
        // Still granted, still not free.
        assert_eq!(g.gref(), r);
        assert_eq!(
            table.entries().get(r).unwrap().flags,
            gt::GTF_PERMIT_ACCESS | busy
        );
        assert_eq!(table.free_count(), 3);
    }
    // SAFETY: as above: the grantee unmapped.
    unsafe { (*p.add(r.0 as usize)).flags = gt::GTF_PERMIT_ACCESS };
    assert!(table.end_access(g).unwrap().is_some());
    assert_eq!(table.free_count(), 4);
}

#[test]
fn a_grant_of_another_table_is_refused() {
    let (mut f, mut h) = (frames(), frames());
    // SAFETY: two tables over two distinct frame sets, both outliving them.
    let (mut a, mut b) = unsafe {
        (
            GrantTable::<4>::new(f.0.as_mut_ptr(), 1).with_gfn_of(test_gfn),
            GrantTable::<4>::new(h.0.as_mut_ptr(), 1).with_gfn_of(test_gfn),
        )
    };
    let ga = a.grant(DomId(1), given_page(), false).unwrap();
    let gb = b.grant(DomId(2), given_page(), false).unwrap();
    assert_eq!(ga.gref(), gb.gref()); // both ref 8, of different tables
    let refused = b.end_access(ga).unwrap_err();
    assert_eq!(refused.error, Error::EINVAL);
    // Neither access ended.
    assert_eq!(a.entries().get(GrantRef(8)).unwrap().flags, 1);
    assert_eq!(b.entries().get(GrantRef(8)).unwrap().flags, 1);
    assert!(a.end_access(refused.grant).is_ok());
    assert!(b.end_access(gb).is_ok());
}

#[test]
fn reserved_references_are_never_handed_out_and_a_refused_grant_returns_the_page() {
    let mut f = frames();
    // SAFETY: `f` outlives the table.
    let mut table = unsafe { GrantTable::<512>::new(f.0.as_mut_ptr(), 1).with_gfn_of(test_gfn) };
    // One frame: 512 entries, 8 reserved: 504 references.
    assert_eq!(table.free_count(), 504);
    let mut got = Vec::new();
    for _ in 0..504 {
        got.push(table.grant(DomId(0), given_page(), false).unwrap());
    }
    assert_eq!((got[0].gref().0, got[503].gref().0), (8, 511));
    assert!(
        got.iter()
            .all(|g| g.gref().0 >= gt::GNTTAB_NR_RESERVED_ENTRIES)
    );
    let last = given_page();
    let addr = last as *mut Page;
    let refused = table.grant(DomId(0), last, false).unwrap_err();
    assert_eq!(refused.error, Error::ENOSPC);
    assert_eq!(refused.page as *mut Page, addr);
}

#[test]
fn grant_frame_refuses_frames_beyond_32_bits() {
    let mut f = frames();
    // SAFETY: `f` outlives the table.
    let mut table = unsafe { GrantTable::<4>::new(f.0.as_mut_ptr(), 1).with_gfn_of(test_gfn) };
    // SAFETY: nothing is granted (refused); frame 5 below stands for memory shared with domain 1.
    unsafe {
        assert_eq!(
            table.grant_frame(DomId(1), 1 << 32, false).err(),
            Some(Error::EINVAL)
        );
        assert_eq!(table.free_count(), 4);
        let g = table.grant_frame(DomId(1), 5, true).unwrap();
        assert_eq!(g.page(), None);
        assert_eq!(table.entries().get(g.gref()).unwrap().frame, 5);
        assert!(matches!(table.end_access(g), Ok(None)));
    }
}

#[test]
fn grant_entries_refuse_bad_frames_and_used_entries() {
    let mut f = frames();
    // SAFETY: `f` outlives the entries; the test is the only user of the references it grants, and the
    // frames are no memory of the test's.
    unsafe {
        let entries = gt::GrantEntries::new(f.0.as_mut_ptr(), 1);
        assert_eq!(
            entries.grant_access(GrantRef(8), DomId(1), 1 << 32, false),
            Err(Error::EINVAL)
        );
        assert_eq!(
            entries.grant_access(GrantRef(512), DomId(1), 5, false),
            Err(Error::EINVAL)
        );
        entries
            .grant_access(GrantRef(8), DomId(1), 5, false)
            .unwrap();
        assert_eq!(
            entries.grant_access(GrantRef(8), DomId(2), 6, false),
            Err(Error::EBUSY)
        );
        assert_eq!(
            entries.get(GrantRef(8)).map(|e| (e.domid, e.frame)),
            Some((DomId(1), 5))
        );
    }
}

#[test]
fn a_reference_in_use_behind_the_tables_back_does_not_get_it_stuck() {
    let mut f = frames();
    let p = f.0.as_mut_ptr();
    // SAFETY: `f` outlives the table; the write below stands in for code outside the table that
    // granted reference 8 (only `unsafe` code can).
    let mut table = unsafe { GrantTable::<4>::new(p, 1).with_gfn_of(test_gfn) };
    // SAFETY: as above.
    unsafe { (*p.add(8)).flags = gt::GTF_PERMIT_ACCESS };
    // Ref 8 is skipped and left out of the list; every later grant succeeds while references are free.
    let g = table.grant(DomId(1), given_page(), false).unwrap();
    assert_eq!(g.gref(), GrantRef(9));
    assert_eq!(table.free_count(), 2);
    let h = table.grant(DomId(1), given_page(), false).unwrap();
    assert_eq!(h.gref(), GrantRef(10));
    let i = table.grant(DomId(1), given_page(), false).unwrap();
    assert_eq!(i.gref(), GrantRef(11));
    assert_eq!(table.free_count(), 0);
    // Ref 8 was never touched.
    assert_eq!(table.entries().get(GrantRef(8)).unwrap().domid, DomId(0));
}

#[test]
fn copy_refuses_a_frame_destination_before_any_hypercall() {
    mock::reset();
    let to_gref = GrantPtr {
        dom: DomId(4),
        gref: GrantRef(13),
        offset: 0,
    };
    let from = CopyPtr::Gref {
        dom: DomId(3),
        gref: GrantRef(12),
        offset: 0,
    };
    // Through the constructor meant for `copy_unchecked`, and built by hand without GNTCOPY_dest_gref.
    let mut by_hand = GnttabCopy::new(from, to_gref, 64);
    by_hand.flags &= !gt::GNTCOPY_DEST_GREF;
    by_hand.dest.u = 0x40123;
    for bad in [GnttabCopy::to_frame(from, 0x40123, 0, 64), by_hand] {
        let mut ops = [GnttabCopy::new(from, to_gref, 64), bad];
        assert!(!ops[0].writes_frame() && ops[1].writes_frame());
        assert_eq!(gt::copy(&mut ops), Err(GrantError::Xen(Error::EPERM)));
        assert_eq!(ops[0].status(), Err(GrantStatus::GENERAL_ERROR)); // not done
        assert_eq!(ops[1].status(), Err(GrantStatus::GENERAL_ERROR));
        assert!(mock::take_calls().is_empty());
    }
}

/// A window of 4 pages for a `MapArea`, in memory the test gives up to it.
fn window() -> *mut Page {
    Box::leak(Box::new([
        Page::new(),
        Page::new(),
        Page::new(),
        Page::new(),
    ]))
    .as_mut_ptr()
}

#[test]
fn map_area_maps_only_into_its_window_and_frees_slots() {
    mock::reset();
    let va = window();
    // SAFETY: the window is the test's, given up to the area; the mock maps nothing.
    let mut area = unsafe { MapArea::<4>::new(0x8000_0000, va) };
    mock::respond(|c| {
        assert!(c.update(1, |o: &mut [GnttabMapGrantRef; 3]| {
            o[0].status = 0;
            o[0].handle = GrantHandle(41);
            o[1].status = -8; // GNTST_permission_denied
            o[2].status = 0;
            o[2].handle = GrantHandle(43);
        }));
        0
    });
    let [a, b, c] = area.map_batch([
        MapRequest {
            dom: DomId(1),
            gref: GrantRef(8),
            readonly: false,
        },
        MapRequest {
            dom: DomId(1),
            gref: GrantRef(9),
            readonly: false,
        },
        MapRequest {
            dom: DomId(2),
            gref: GrantRef(10),
            readonly: true,
        },
    ]);
    let (a, c) = (a.unwrap(), c.unwrap());
    assert_eq!(
        b.err(),
        Some(GrantError::Status(GrantStatus::PERMISSION_DENIED))
    );
    let call = only_call();
    assert_eq!(
        (call.op, call.args[0], call.args[2]),
        (nr::GRANT_TABLE_OP, 0, 3)
    );
    for (k, (addr, flags, gref, dom)) in [
        (0x8000_0000, 2, 8, 1), // GNTMAP_host_map
        (0x8000_1000, 2, 9, 1),
        (0x8000_2000, 2 | 4, 10, 2), // | GNTMAP_readonly
    ]
    .into_iter()
    .enumerate()
    {
        let o: GnttabMapGrantRef = call.read_at(1, k).unwrap();
        assert_eq!(
            (o.host_addr, o.flags, o.r#ref, o.dom),
            (addr, flags, GrantRef(gref), DomId(dom)),
            "op {k}"
        );
    }
    // Slot 1 was given back when Xen refused the grant: slots 1 and 3 are free.
    assert_eq!(area.free_count(), 2);
    assert_eq!((a.as_ptr(), c.as_ptr()), (va, va.wrapping_add(2)));
    assert_eq!((a.handle(), c.readonly()), (GrantHandle(41), true));
    // The page is read and written through the mapping, within the page only; read-only stays so.
    a.write(4090, b"hello!").unwrap();
    let mut got = [0u8; 6];
    a.read(4090, &mut got).unwrap();
    assert_eq!(&got, b"hello!");
    assert_eq!(a.write(4091, b"hello!"), Err(Error::EINVAL));
    assert_eq!(a.read(usize::MAX, &mut got), Err(Error::EINVAL));
    assert_eq!(c.write(0, b"x"), Err(Error::EPERM));

    mock::respond(|c| {
        assert!(c.update(1, |o: &mut GnttabUnmapGrantRef| o.status = 0));
        0
    });
    area.unmap(a).unwrap();
    let u: GnttabUnmapGrantRef = only_call().read(1).unwrap();
    assert_eq!((u.host_addr, u.handle), (0x8000_0000, GrantHandle(41)));
    assert_eq!(area.free_count(), 3);

    // A mapping of another area is refused without a hypercall, and comes back.
    // SAFETY: as above.
    let mut other = unsafe { MapArea::<4>::new(0x9000_0000, window()) };
    let refused = other.unmap(c).unwrap_err();
    assert_eq!(refused.error, GrantError::Xen(Error::EINVAL));
    assert!(mock::take_calls().is_empty());
    mock::respond(|c| {
        assert!(c.update(1, |o: &mut GnttabUnmapGrantRef| o.status = -1));
        0
    });
    // Xen refusing the unmap leaves the slot taken.
    let refused = area.unmap(refused.mapping).unwrap_err();
    assert_eq!(
        refused.error,
        GrantError::Status(GrantStatus::GENERAL_ERROR)
    );
    assert_eq!(area.free_count(), 3);
}

#[test]
fn map_area_full_is_enospc_without_a_hypercall_for_the_rest() {
    mock::reset();
    // SAFETY: as in the test above.
    let mut area = unsafe { MapArea::<1>::new(0x8000_0000, window()) };
    mock::respond(|c| {
        assert!(c.update(1, |o: &mut GnttabMapGrantRef| {
            o.status = 0;
            o.handle = GrantHandle(1);
        }));
        0
    });
    let [a, b] = area.map_batch([
        MapRequest {
            dom: DomId(1),
            gref: GrantRef(8),
            readonly: true,
        },
        MapRequest {
            dom: DomId(1),
            gref: GrantRef(9),
            readonly: true,
        },
    ]);
    assert!(a.is_ok());
    assert_eq!(b.err(), Some(GrantError::Xen(Error::ENOSPC)));
    assert_eq!(only_call().args[2], 1); // one operation
    assert_eq!(
        area.map(DomId(1), GrantRef(9), true).err(),
        Some(GrantError::Xen(Error::ENOSPC))
    );
}

#[test]
fn free_refs_is_a_bounded_list_without_reserved_refs() {
    let mut free = FreeRefs::<3>::new(10);
    assert_eq!(free.len(), 2); // only 8 and 9 exist below 10
    let a = free.alloc().unwrap();
    let b = free.alloc().unwrap();
    assert_eq!((a, b), (GrantRef(8), GrantRef(9)));
    assert_eq!(free.alloc(), None);
    assert_eq!(free.free(GrantRef(10)), Err(Error::EINVAL));
    assert_eq!(free.free(GrantRef(0)), Err(Error::EINVAL));
    free.free(a).unwrap();
    assert_eq!(free.free(a), Err(Error::EINVAL)); // already free
    assert!(free.is_allocated(b) && !free.is_allocated(a));
}

#[test]
fn grant_table_map_maps_every_frame_in_order() {
    mock::reset();
    mock::answer_zero();
    let mut f = frames();
    // SAFETY: the mock maps nothing; `f` stands in for the mapped frames.
    let table = unsafe { GrantTable::<8>::map(0x38000, 2, f.0.as_mut_ptr()) }.unwrap();
    assert_eq!(table.entries().len(), 1024);
    let calls = mock::take_calls();
    assert_eq!(calls.len(), 2);
    for (i, c) in calls.iter().enumerate() {
        assert_eq!(
            (c.op, c.args[0]),
            (nr::MEMORY_OP, memory::XENMEM_ADD_TO_PHYSMAP)
        );
        let a: memory::AddToPhysmap = c.read(1).unwrap();
        assert_eq!(
            (a.domid, a.space, a.idx, a.gpfn),
            (DomId::SELF, 1, i as u64, 0x38000 + i as u64)
        );
    }
    mock::reset();
    mock::fails(Error::EINVAL);
    // SAFETY: as above.
    let r = unsafe { GrantTable::<8>::map(0x38000, 2, f.0.as_mut_ptr()) };
    assert_eq!(r.err(), Some(Error::EINVAL));
    assert_eq!(mock::take_calls().len(), 1); // stopped at the first failure
}

// ---------------------------------------------------------------- memory

#[test]
fn reservations_send_the_extent_list_and_return_the_count_done() {
    for (cmd, which) in [
        (memory::XENMEM_DECREASE_RESERVATION, 0),
        (memory::XENMEM_POPULATE_PHYSMAP, 1),
        (memory::XENMEM_INCREASE_RESERVATION, 2),
    ] {
        mock::reset();
        mock::respond(move |c| {
            assert_eq!(c.read_handle_at::<u64>(1, 0, 2), Some(0x40300));
            2 // Xen stopped after two extents
        });
        let mut gpfns = [0x40100, 0x40200, 0x40300];
        // SAFETY: the mock changes no mapping.
        let done = unsafe {
            match which {
                0 => memory::decrease_reservation(DomId(7), &mut gpfns, 1),
                1 => memory::populate_physmap(DomId(7), &mut gpfns, 1),
                _ => memory::increase_reservation(DomId(7), &mut gpfns, 1),
            }
        };
        assert_eq!(done, Ok(2), "cmd {cmd}");
        let c = only_call();
        assert_eq!((c.op, c.args[0]), (nr::MEMORY_OP, cmd));
        let r: MemoryReservation = c.read(1).unwrap();
        assert_eq!(r.extent_start, gpfns.as_ptr() as u64);
        // The extent list behind the handle, as recorded with the structure.
        assert_eq!(
            c.read_handle::<u64>(1, 0).unwrap(),
            [0x40100, 0x40200, 0x40300]
        );
        assert_eq!(
            (r.nr_extents, r.extent_order, r.mem_flags, r.domid),
            (3, 1, 0, DomId(7))
        );
    }
}

#[test]
fn reservation_errors_and_impossible_counts() {
    mock::reset();
    mock::fails(Error::ENOMEM);
    // SAFETY: the mock changes no mapping.
    assert_eq!(
        // SAFETY: the mock changes no mapping.
        unsafe { memory::populate_physmap(DomId::SELF, &mut [1], 0) },
        Err(Error::ENOMEM)
    );
    mock::returns(3); // more extents than were asked for
    // SAFETY: as above.
    assert_eq!(
        // SAFETY: the mock changes no mapping.
        unsafe { memory::decrease_reservation(DomId::SELF, &mut [1, 2], 0) },
        Err(Error::ERANGE)
    );
}

#[test]
fn remove_from_physmap_names_the_frame() {
    mock::reset();
    mock::returns(0);
    // SAFETY: the mock changes no mapping.
    unsafe { memory::remove_from_physmap(DomId(3), 0x40abc) }.unwrap();
    let c = only_call();
    assert_eq!((c.op, c.args[0]), (nr::MEMORY_OP, 15));
    let r: RemoveFromPhysmap = c.read(1).unwrap();
    assert_eq!((r.domid, r.gpfn), (DomId(3), 0x40abc));
    mock::fails(Error::ENOENT);
    // SAFETY: as above.
    assert_eq!(
        // SAFETY: the mock changes no mapping.
        unsafe { memory::remove_from_physmap(DomId::SELF, 1) },
        Err(Error::ENOENT)
    );
}

#[test]
fn add_to_physmap_batch_maps_foreign_frames_with_per_frame_errors() {
    mock::reset();
    mock::respond(|c| {
        // The indices and frames are read-only to Xen; only the errors may be written.
        let errs = c.handle_mut::<i32>(1, 2).unwrap();
        assert_eq!(errs.len(), 2);
        errs[1] = -1; // EPERM for the second frame
        0
    });
    let mut errs = [7; 2];
    // SAFETY: the mock changes no mapping.
    unsafe {
        memory::add_to_physmap_batch(
            DomId::SELF,
            Space::GMFN_FOREIGN,
            DomId(2),
            &[0x40010, 0x40011],
            &[0x50000, 0x50001],
            &mut errs,
        )
    }
    .unwrap();
    assert_eq!(errs, [7, -1]);
    assert_eq!(memory::frame_result(errs[1]), Err(Error::EPERM));
    let c = only_call();
    assert_eq!((c.op, c.args[0]), (nr::MEMORY_OP, 23));
    let b: AddToPhysmapBatch = c.read(1).unwrap();
    assert_eq!(
        (b.domid, b.space, b.size, b.foreign_domid),
        (DomId::SELF, 4, 2, DomId(2))
    );
    // The three arrays behind the handles, as they were when the call was made.
    assert_eq!(c.read_handle::<u64>(1, 0).unwrap(), [0x40010, 0x40011]);
    assert_eq!(c.read_handle::<u64>(1, 1).unwrap(), [0x50000, 0x50001]);
    assert_eq!(c.read_handle::<i32>(1, 2).unwrap(), [7, 7]);
    assert_eq!(c.handle_bytes(1, 3), None);
}

#[test]
fn add_to_physmap_batch_refuses_mismatched_lengths_without_a_call() {
    mock::reset();
    let mut errs = [0; 1];
    // SAFETY: refused before any call.
    let r = unsafe {
        memory::add_to_physmap_batch(
            DomId::SELF,
            Space::GMFN_FOREIGN,
            DomId(2),
            &[1, 2],
            &[3, 4],
            &mut errs,
        )
    };
    assert_eq!(r, Err(Error::EINVAL));
    assert!(mock::take_calls().is_empty());
}

// ---------------------------------------------------------------- event channels, sched, vm_assist

#[test]
fn bind_ipi_and_bind_vcpu() {
    mock::reset();
    mock::respond(|c| {
        c.update(1, |b: &mut evtchn::BindIpi| b.port = Port(9));
        0
    });
    assert_eq!(evtchn::bind_ipi(3), Ok(Port(9)));
    let c = only_call();
    assert_eq!((c.op, c.args[0]), (nr::EVENT_CHANNEL_OP, 7));
    assert_eq!(c.read::<evtchn::BindIpi>(1).unwrap().vcpu, 3);

    mock::returns(0);
    evtchn::bind_vcpu(Port(11), 2).unwrap();
    let c = only_call();
    assert_eq!((c.op, c.args[0]), (nr::EVENT_CHANNEL_OP, 8));
    let b: evtchn::BindVcpu = c.read(1).unwrap();
    assert_eq!((b.port, b.vcpu), (Port(11), 2));
    mock::fails(Error::EINVAL);
    assert_eq!(evtchn::bind_vcpu(Port(1), 1), Err(Error::EINVAL));
}

#[test]
fn remote_shutdown_and_watchdog() {
    mock::reset();
    mock::returns(0);
    sched::remote_shutdown(DomId(4), sched::ShutdownReason::Reboot).unwrap();
    let c = only_call();
    assert_eq!((c.op, c.args[0]), (nr::SCHED_OP, 4));
    let r: sched::SchedRemoteShutdown = c.read(1).unwrap();
    assert_eq!((r.domain_id, r.reason), (DomId(4), 1));
    mock::fails(Error::EPERM);
    assert_eq!(
        sched::remote_shutdown(DomId(4), sched::ShutdownReason::Poweroff),
        Err(Error::EPERM)
    );
    mock::take_calls();

    mock::returns(2); // Xen's new watchdog id
    assert_eq!(sched::watchdog(0, 30), Ok(2));
    mock::returns(0); // re-arm returns 0; the wrapper gives the id back
    assert_eq!(sched::watchdog(2, 60), Ok(2));
    mock::fails(Error::ENOSPC);
    assert_eq!(sched::watchdog(0, 5), Err(Error::ENOSPC));
    let calls = mock::take_calls();
    let w: Vec<(u32, u32)> = calls
        .iter()
        .map(|c| {
            assert_eq!((c.op, c.args[0]), (nr::SCHED_OP, 6));
            let w: sched::SchedWatchdog = c.read(1).unwrap();
            (w.id, w.timeout)
        })
        .collect();
    assert_eq!(w, [(0, 30), (2, 60), (0, 5)]);
}

#[test]
fn vm_assist_passes_command_and_type() {
    mock::reset();
    mock::returns(0);
    mock::returns(0);
    vm_assist::enable(vm_assist::Type::RUNSTATE_UPDATE_FLAG).unwrap();
    vm_assist::disable(vm_assist::Type::RUNSTATE_UPDATE_FLAG).unwrap();
    mock::fails(Error::EINVAL);
    assert_eq!(vm_assist::enable(vm_assist::Type(2)), Err(Error::EINVAL));
    let calls = mock::take_calls();
    let got: Vec<(usize, usize, usize)> =
        calls.iter().map(|c| (c.op, c.args[0], c.args[1])).collect();
    assert_eq!(
        got,
        [
            (nr::VM_ASSIST, 0, 5),
            (nr::VM_ASSIST, 1, 5),
            (nr::VM_ASSIST, 0, 2)
        ]
    );
    assert!(calls.iter().all(|c| c.arity() == 2));
}

// ---------------------------------------------------------------- event delivery (2-level)

fn page() -> Box<SharedInfo> {
    Box::new(SharedInfo::default())
}

/// What Xen's `evtchn_2l_set_pending` does for `port`.
fn xen_raises(info: *mut SharedInfo, port: u32) {
    let (w, b) = ((port / 64) as usize, port % 64);
    // SAFETY: `info` is the test's page; the test thread is its only user.
    unsafe {
        let was = (*info).evtchn_pending[w] & (1 << b) != 0;
        (*info).evtchn_pending[w] |= 1 << b;
        if !was && (*info).evtchn_mask[w] & (1 << b) == 0 {
            (*info).vcpu_info[0].evtchn_pending_sel |= 1 << w;
            (*info).vcpu_info[0].evtchn_upcall_pending = 1;
        }
    }
}

#[test]
fn take_pending_yields_pending_unmasked_ports_and_clears_them() {
    let mut p = page();
    let info: *mut SharedInfo = &raw mut *p;
    // SAFETY: the page outlives `events`; Xen's writes are simulated between calls.
    let events = unsafe { Events::new(info) };
    // SAFETY: as above (masks are set before the events, as a guest would).
    unsafe { (*info).evtchn_mask[1] = 1 << 5 }; // port 69 masked
    for port in [3, 64, 69, 70, 4095] {
        xen_raises(info, port);
    }
    assert!(events.upcall_pending());
    // SAFETY: as above.
    assert_eq!(
        // SAFETY: the test's page (or area), read while nobody writes it.
        unsafe { (*info).vcpu_info[0].evtchn_pending_sel },
        (1 << 0) | (1 << 1) | (1 << 63)
    );
    let got: Vec<u32> = events.take_pending().map(|p| p.0).collect();
    assert_eq!(got, [3, 64, 70, 4095]);
    assert!(!events.upcall_pending());
    // SAFETY: as above.
    unsafe {
        assert_eq!((*info).vcpu_info[0].evtchn_pending_sel, 0);
        assert_eq!((*info).evtchn_pending[0], 0);
        assert_eq!((*info).evtchn_pending[1], 1 << 5); // the masked port stays pending
        assert_eq!((*info).evtchn_pending[63], 0);
    }
    assert!(events.is_pending(Port(69)) && events.is_masked(Port(69)));
    assert_eq!(events.take_pending().count(), 0);
}

#[test]
fn only_words_in_the_selector_are_scanned() {
    let mut p = page();
    let info: *mut SharedInfo = &raw mut *p;
    // SAFETY: as in the test above.
    let events = unsafe { Events::new(info) };
    // Pending bits in words 2 and 5, but the selector names word 5 only.
    // SAFETY: as above.
    unsafe {
        (*info).evtchn_pending[2] = 1 << 1; // port 129
        (*info).evtchn_pending[5] = 1 << 10 | 1 << 11; // ports 330, 331
        (*info).vcpu_info[0].evtchn_pending_sel = 1 << 5;
    }
    let got: Vec<u32> = events.take_pending().map(|p| p.0).collect();
    assert_eq!(got, [330, 331]);
    assert!(events.is_pending(Port(129)));
}

#[test]
fn a_port_cleared_meanwhile_is_not_yielded_twice() {
    let mut p = page();
    let info: *mut SharedInfo = &raw mut *p;
    // SAFETY: as above.
    let events = unsafe { Events::new(info) };
    xen_raises(info, 10);
    xen_raises(info, 11);
    let mut it = events.take_pending();
    assert_eq!(it.next(), Some(Port(10)));
    // Another handler (or `wait`) takes port 11 first.
    assert!(events.clear_pending(Port(11)));
    assert_eq!(it.next(), None);
}

#[test]
fn dropping_the_iterator_early_gives_the_rest_back() {
    let mut p = page();
    let info: *mut SharedInfo = &raw mut *p;
    // SAFETY: as above.
    let events = unsafe { Events::new(info) };
    for port in [1, 2, 200] {
        xen_raises(info, port);
    }
    let first = events.take_pending().next();
    assert_eq!(first, Some(Port(1)));
    // Word 0 (port 2 untaken) and word 3 (port 200) are selected again, the upcall flagged again.
    assert!(events.upcall_pending());
    // SAFETY: as above.
    assert_eq!(
        // SAFETY: the test's page (or area), read while nobody writes it.
        unsafe { (*info).vcpu_info[0].evtchn_pending_sel },
        (1 << 0) | (1 << 3)
    );
    let mut rest = Vec::new();
    events.for_each_pending(|p| rest.push(p.0));
    assert_eq!(rest, [2, 200]);
    assert!(!events.upcall_pending());
}

#[test]
fn for_each_pending_drains_events_raised_during_the_handler() {
    let mut p = page();
    let info: *mut SharedInfo = &raw mut *p;
    // SAFETY: as above.
    let events = unsafe { Events::new(info) };
    xen_raises(info, 5);
    let mut seen = Vec::new();
    events.for_each_pending(|port| {
        seen.push(port.0);
        if port.0 == 5 {
            xen_raises(info, 500); // arrives while the handler runs
        }
    });
    assert_eq!(seen, [5, 500]);
}

#[test]
fn clear_pending_is_test_and_clear_and_mask_is_local() {
    let mut p = page();
    let info: *mut SharedInfo = &raw mut *p;
    // SAFETY: as above.
    let events = unsafe { Events::new(info) };
    assert!(!events.clear_pending(Port(77)));
    xen_raises(info, 77);
    assert!(events.clear_pending(Port(77)));
    assert!(!events.clear_pending(Port(77)));
    assert_eq!(events.mask(Port(130)), Ok(false));
    assert_eq!(events.mask(Port(130)), Ok(true));
    // SAFETY: as above.
    assert_eq!(unsafe { (*info).evtchn_mask[2] }, 1 << 2);
    assert_eq!(events.mask(Port(4096)), Err(Error::EINVAL));
    assert!(!events.is_pending(Port(4096)) && events.is_masked(Port(4096)));
    assert!(!events.clear_pending(Port(9999)));
}

#[test]
fn unmask_asks_xen_and_leaves_the_mask_bit_to_it() {
    mock::reset();
    let mut p = page();
    let info: *mut SharedInfo = &raw mut *p;
    // SAFETY: as above.
    let events = unsafe { Events::new(info) };
    events.mask(Port(6)).unwrap();
    xen_raises(info, 6); // masked: no selector bit, no upcall
    assert!(!events.upcall_pending());
    mock::returns(0);
    events.unmask(Port(6)).unwrap();
    let c = only_call();
    assert_eq!(
        (c.op, c.args[0]),
        (nr::EVENT_CHANNEL_OP, evtchn::EVTCHNOP_UNMASK)
    );
    assert_eq!(c.read::<evtchn::PortArg>(1).unwrap().port, Port(6));
    // Clearing the bit is Xen's job (it re-raises the pending event as it does).
    assert!(events.is_masked(Port(6)));
}

#[test]
fn wait_polls_the_port_and_takes_the_event() {
    mock::reset();
    let mut p = page();
    let info: *mut SharedInfo = &raw mut *p;
    // SAFETY: as above.
    let events = unsafe { Events::new(info) };
    // Already pending: taken without a hypercall.
    xen_raises(info, 40);
    assert_eq!(events.wait_until_system_time(Port(40), 0), Ok(true));
    assert!(mock::take_calls().is_empty());
    // Raised while the vCPU polls.
    let addr = info as usize;
    mock::respond(move |_| {
        xen_raises(addr as *mut SharedInfo, 41);
        0
    });
    assert_eq!(events.wait_until_system_time(Port(41), 0), Ok(true));
    assert!(!events.is_pending(Port(41)));
    let c = only_call();
    assert_eq!((c.op, c.args[0]), (nr::SCHED_OP, sched::SCHEDOP_POLL));
    let poll: sched::SchedPoll = c.read(1).unwrap();
    assert_eq!((poll.nr_ports, poll.timeout), (1, 0));
    // Timeout reached without the event.
    mock::returns(0);
    assert_eq!(
        events.wait_until_system_time(Port(42), 123_456_789),
        Ok(false)
    );
    let c = only_call();
    assert_eq!(c.read::<sched::SchedPoll>(1).unwrap().timeout, 123_456_789);
    // Xen refuses: the error comes back.
    mock::fails(Error::EINVAL);
    assert_eq!(
        events.wait_until_system_time(Port(42), 0),
        Err(Error::EINVAL)
    );
    assert_eq!(
        events.wait_until_system_time(Port(5000), 0),
        Err(Error::EINVAL)
    );
}

#[test]
fn a_separate_vcpu_info_holds_the_selector() {
    let mut p = page();
    let mut v = Box::new(xen_hypercall::xen::vcpu::VcpuInfo::default());
    let info: *mut SharedInfo = &raw mut *p;
    // SAFETY: both outlive `events`.
    let events = unsafe { Events::with_vcpu_info(info, &raw mut *v) };
    // SAFETY: as above.
    unsafe { (*info).evtchn_pending[0] = 1 << 9 };
    v.evtchn_pending_sel = 1;
    v.evtchn_upcall_pending = 1;
    assert_eq!(events.take_pending().collect::<Vec<_>>(), [Port(9)]);
    assert_eq!((v.evtchn_pending_sel, v.evtchn_upcall_pending), (0, 0));
}

// ---------------------------------------------------------------- runstate

#[test]
fn a_runstate_read_during_an_update_is_refused() {
    let mut area = RunstateInfo {
        state: 1,
        _pad: 0,
        state_entry_time: 1000,
        time: [10, 20, 30, 40],
    };
    // SAFETY: `area` is valid and written by nobody during the read.
    assert_eq!(
        // SAFETY: the test's page (or area), read while nobody writes it.
        unsafe { RunstateInfo::try_read_consistent(&raw mut area) },
        Some(area)
    );
    // SAFETY: as above.
    assert_eq!(
        // SAFETY: the test's page (or area), read while nobody writes it.
        unsafe { RunstateInfo::read_consistent(&raw mut area) }.time,
        [10, 20, 30, 40]
    );
    area.state_entry_time |= XEN_RUNSTATE_UPDATE;
    // SAFETY: as above.
    assert_eq!(
        // SAFETY: the test's page (or area), read while nobody writes it.
        unsafe { RunstateInfo::try_read_consistent(&raw mut area) },
        None
    );
}

/// Xen's side of the runstate protocol, written as Rust must write memory another thread reads
/// concurrently (atomic stores): set `XEN_RUNSTATE_UPDATE`, barrier, rewrite the area for update `n`,
/// then clear the flag with a release store. With `finish` false it stops after the rewrite.
fn xen_updates_runstate(area: usize, n: u64, finish: bool) {
    use std::sync::atomic::Ordering::{Relaxed, Release};
    use std::sync::atomic::{AtomicI32, AtomicU64, fence};
    let area = area as *mut RunstateInfo;
    // SAFETY: the tests' `area` is valid, 8-aligned and only accessed atomically while they run.
    let (entry, state, time) = unsafe {
        (
            AtomicU64::from_ptr(&raw mut (*area).state_entry_time),
            AtomicI32::from_ptr(&raw mut (*area).state),
            (&raw mut (*area).time).cast::<u64>(),
        )
    };
    if entry.load(Relaxed) & XEN_RUNSTATE_UPDATE == 0 {
        entry.store(n | XEN_RUNSTATE_UPDATE, Relaxed);
        fence(Release);
        state.store((n % 4) as i32, Relaxed);
        for k in 0..4 {
            // SAFETY: as above, for element `k` (< 4) of `time`.
            unsafe { AtomicU64::from_ptr(time.add(k)) }.store(n * (k as u64 + 1), Relaxed);
        }
    }
    if finish {
        entry.store(n, Release);
    }
}

/// A runstate area in update `n`, as `xen_updates_runstate` writes it, on the heap so that a second
/// thread can write it.
fn runstate_area(n: u64) -> *mut RunstateInfo {
    Box::into_raw(Box::new(RunstateInfo {
        state: (n % 4) as i32,
        _pad: 0,
        state_entry_time: n,
        time: [n, 2 * n, 3 * n, 4 * n],
    }))
}

#[test]
fn a_runstate_read_racing_xen_returns_only_whole_updates() {
    let area = runstate_area(1);
    let last: u64 = if cfg!(miri) { 40 } else { 20_000 };
    let addr = area as usize;
    let xen = std::thread::spawn(move || {
        for n in 2..=last {
            xen_updates_runstate(addr, n, true);
        }
    });
    let mut seen = 0;
    while seen != last {
        // SAFETY: `area` is valid until freed below; the other thread only stores atomically.
        if let Some(r) = unsafe { RunstateInfo::try_read_consistent(area) } {
            let n = r.state_entry_time;
            assert!(n >= seen, "update {n} read after update {seen}");
            let whole = ((n % 4) as i32, [n, 2 * n, 3 * n, 4 * n]);
            assert_eq!((r.state, r.time), whole, "a copy mixing two updates");
            seen = n;
        }
    }
    xen.join().unwrap();
    // SAFETY: from `Box::into_raw`; the writer has finished.
    drop(unsafe { Box::from_raw(area) });
}

#[test]
fn a_runstate_read_waits_for_xen_to_finish_an_update() {
    use std::sync::Barrier;
    let area = runstate_area(1);
    let addr = area as usize;
    let (rewritten, refused) = (Barrier::new(2), Barrier::new(2));
    std::thread::scope(|s| {
        s.spawn(|| {
            xen_updates_runstate(addr, 2, false); // flag set, area rewritten, flag not yet cleared
            rewritten.wait();
            refused.wait();
            xen_updates_runstate(addr, 2, true);
        });
        rewritten.wait();
        // SAFETY: `area` is valid until freed below; the other thread only stores atomically.
        assert_eq!(unsafe { RunstateInfo::try_read_consistent(area) }, None);
        refused.wait();
        // SAFETY: as above. It retries until the flag is clear.
        let r = unsafe { RunstateInfo::read_consistent(area) };
        assert_eq!((r.state_entry_time, r.state, r.time), (2, 2, [2, 4, 6, 8]));
    });
    // SAFETY: from `Box::into_raw`; the writer has finished.
    drop(unsafe { Box::from_raw(area) });
}

// ---------------------------------------------------------------- user wrappers (xen::raw)

/// `struct gnttab_dump_table`, which the crate does not wrap.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct DumpTable {
    dom: DomId,
    status: i16,
}
// SAFETY: a repr(C) struct of integers.
unsafe impl xen_hypercall::xen::raw::Plain for DumpTable {}

fn dump_table(dom: DomId) -> gt::Result<()> {
    use xen_hypercall::xen::raw::{Arg, call3};
    let mut d = DumpTable { dom, status: 0 };
    // SAFETY: Xen reads and writes the one `gnttab_dump_table` behind the pointer, borrowed for the call.
    let ret =
        unsafe { call3::<{ nr::GRANT_TABLE_OP }>(Arg::val(3), Arg::inout(&mut d), Arg::val(1)) };
    Error::check(ret)?;
    match GrantStatus::from_raw(d.status) {
        None => Ok(()),
        Some(s) => Err(GrantError::Status(s)),
    }
}

#[test]
fn a_user_wrapper_is_recorded_like_the_built_in_ones() {
    mock::reset();
    mock::respond(|c| {
        assert_eq!(
            c.read::<DumpTable>(1),
            Some(DumpTable {
                dom: DomId(6),
                status: 0
            })
        );
        assert!(c.update(1, |d: &mut DumpTable| d.status = -2));
        0
    });
    assert_eq!(
        dump_table(DomId(6)),
        Err(GrantError::Status(GrantStatus::BAD_DOMAIN))
    );
    let c = only_call();
    assert_eq!((c.op, c.args[0], c.args[2]), (nr::GRANT_TABLE_OP, 3, 1));
    assert_eq!(c.bytes(1).map(<[u8]>::len), Some(4));
}

// ---------------------------------------------------------------- per-vCPU delivery

/// What Xen's `evtchn_2l_set_pending` does for `port` bound to vCPU `vcpu`, whose `vcpu_info` is `vi`.
fn xen_raises_on(info: *mut SharedInfo, vi: *mut VcpuInfo, port: u32) {
    let (w, b) = ((port / 64) as usize, port % 64);
    // SAFETY: `info` and `vi` are the test's; the test thread is their only user.
    unsafe {
        let was = (*info).evtchn_pending[w] & (1 << b) != 0;
        (*info).evtchn_pending[w] |= 1 << b;
        if !was && (*info).evtchn_mask[w] & (1 << b) == 0 {
            (*vi).evtchn_pending_sel |= 1 << w;
            (*vi).evtchn_upcall_pending = 1;
        }
    }
}

/// What `register_vcpu_info` does to the new `vcpu_info` (`xen/common/domain.c`: every selector bit
/// set, the upcall flagged, "to make sure nothing gets lost").
fn xen_registers(vi: *mut VcpuInfo) {
    // SAFETY: as above.
    unsafe {
        (*vi).evtchn_pending_sel = !0;
        (*vi).evtchn_upcall_pending = 1;
    }
}

/// Answers `EVTCHNOP_bind_ipi` with `port`, checking the vCPU asked for.
fn ipi_answer(port: u32, vcpu: u32) {
    mock::respond(move |c| {
        assert_eq!(c.op(), nr::EVENT_CHANNEL_OP);
        assert_eq!(c.arg(0), evtchn::EVTCHNOP_BIND_IPI);
        assert!(c.update(1, |b: &mut evtchn::BindIpi| {
            assert_eq!(b.vcpu, vcpu);
            b.port = Port(port);
        }));
        0
    });
}

fn leak<T>(t: T) -> &'static T {
    Box::leak(Box::new(t))
}

/// Two vCPUs: vCPU 1 binds an IPI to itself (port 40) and vCPU 0 one to vCPU 0 (port 41, same word);
/// both are raised, then vCPU 0 registers its `vcpu_info` (its whole selector set) and drains.
/// Returns (what vCPU 0 took, what vCPU 1 took afterwards). `filter`: whether vCPU 0 drains with its
/// ports (false: the negative control, a drain without the per-vCPU filter).
fn two_vcpus(filter: bool) -> (Vec<u32>, Vec<u32>) {
    mock::reset();
    let table: &'static PortVcpus<2> = leak(PortVcpus::new());
    let mut p = page();
    let info: *mut SharedInfo = &raw mut *p;
    let vi0: *mut VcpuInfo = Box::leak(Box::new(VcpuInfo::default()));
    let vi1: *mut VcpuInfo = Box::leak(Box::new(VcpuInfo::default()));
    ipi_answer(40, 1);
    assert_eq!(table.bind_ipi(1), Ok(Port(40)));
    ipi_answer(41, 0);
    assert_eq!(table.bind_ipi(0), Ok(Port(41)));
    assert_eq!(mock::take_calls().len(), 2);
    // SAFETY: the page and both vcpu_infos outlive the `Events`; Xen's writes are simulated between calls.
    let (e0, e1) = unsafe {
        (
            Events::with_vcpu_info(info, vi0),
            Events::with_vcpu_info(info, vi1).with_ports(table.vcpu(1).unwrap()),
        )
    };
    let e0 = if filter {
        e0.with_ports(table.vcpu(0).unwrap())
    } else {
        e0
    };
    xen_raises_on(info, vi1, 40);
    xen_raises_on(info, vi0, 41);
    xen_registers(vi0);
    let mut on0 = Vec::new();
    e0.for_each_pending(|p| on0.push(p.0));
    let mut on1 = Vec::new();
    e1.for_each_pending(|p| on1.push(p.0));
    drop(p);
    (on0, on1)
}

#[test]
fn a_port_bound_to_vcpu_1_is_not_taken_by_vcpu_0s_drain() {
    let (on0, on1) = two_vcpus(true);
    assert_eq!(on0, [41]);
    assert_eq!(on1, [40]);
}

#[test]
fn negative_control_without_the_filter_vcpu_0_steals_vcpu_1s_ipi() {
    // The drain as it was before per-vCPU binding: vCPU 0 takes port 40 and vCPU 1 finds nothing, the
    // failure the filter prevents (this test shows the check above can fail).
    let (on0, on1) = two_vcpus(false);
    assert_eq!(on0, [40, 41]);
    assert!(on1.is_empty());
}

#[test]
fn port_vcpus_start_on_vcpu_0_and_move_with_bind_vcpu_and_close() {
    mock::reset();
    let table: PortVcpus<3> = PortVcpus::new();
    assert_eq!(table.vcpu_of(Port(0)), Some(0));
    assert_eq!(table.vcpu_of(Port(4095)), Some(0));
    assert_eq!(table.vcpu_of(Port(4096)), None);
    assert!(table.vcpu(3).is_none());
    // bind_vcpu: the hypercall, then the record.
    mock::returns(0);
    assert_eq!(table.bind_vcpu(Port(130), 2), Ok(()));
    let c = only_call();
    assert_eq!(
        (c.op, c.args[0]),
        (nr::EVENT_CHANNEL_OP, evtchn::EVTCHNOP_BIND_VCPU)
    );
    let b: evtchn::BindVcpu = c.read(1).unwrap();
    assert_eq!((b.port, b.vcpu), (Port(130), 2));
    assert_eq!(table.vcpu_of(Port(130)), Some(2));
    assert!(table.vcpu(2).unwrap().contains(Port(130)));
    assert!(!table.vcpu(0).unwrap().contains(Port(130)));
    assert!(table.vcpu(0).unwrap().contains(Port(131)));
    // Xen refuses (a per-vCPU virq or IPI): the record does not move.
    mock::fails(Error::EINVAL);
    assert_eq!(table.bind_vcpu(Port(130), 1), Err(Error::EINVAL));
    mock::take_calls();
    assert_eq!(table.vcpu_of(Port(130)), Some(2));
    // Bad input: no hypercall.
    assert_eq!(table.bind_vcpu(Port(130), 3), Err(Error::EINVAL));
    assert_eq!(table.bind_vcpu(Port(4096), 1), Err(Error::EINVAL));
    assert_eq!(table.bind_ipi(3), Err(Error::EINVAL));
    assert_eq!(table.bind_virq(evtchn::Virq::TIMER, 7), Err(Error::EINVAL));
    assert_eq!(table.note(Port(5000), 0), Err(Error::EINVAL));
    assert!(mock::take_calls().is_empty());
    // close: back on vCPU 0, where Xen puts the next port with this number.
    mock::returns(0);
    assert_eq!(table.close(Port(130)), Ok(()));
    assert_eq!(only_call().args[0], evtchn::EVTCHNOP_CLOSE);
    assert_eq!(table.vcpu_of(Port(130)), Some(0));
    assert!(!table.vcpu(2).unwrap().contains(Port(130)));
}

#[test]
fn bind_virq_records_the_vcpu_xen_was_asked_for() {
    mock::reset();
    let table: PortVcpus<2> = PortVcpus::new();
    mock::respond(|c| {
        assert_eq!(c.arg(0), evtchn::EVTCHNOP_BIND_VIRQ);
        assert!(c.update(1, |b: &mut evtchn::BindVirq| {
            assert_eq!((b.virq, b.vcpu), (0, 1));
            b.port = Port(77);
        }));
        0
    });
    assert_eq!(table.bind_virq(evtchn::Virq::TIMER, 1), Ok(Port(77)));
    assert_eq!(table.vcpu_of(Port(77)), Some(1));
}
