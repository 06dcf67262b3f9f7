//! Every typed wrapper driven through the recording mock: the right hypercall number, the stub of Xen's
//! declared ARM arity, the right argument values and structure contents, the programmed results and
//! errors mapped back. Run with `--features mock` (as `cargo xtask test` does).

use xen_hypercall::mock::{self, Call};
use xen_hypercall::xen::multicall::{
    Batch, Call as McCall, CallError, Full, MulticallEntry, NOT_REACHED,
};
use xen_hypercall::xen::{
    self, DomId, Error, console, evtchn, grant_table as gt, hvm, memory, nr, sched, vcpu, version,
};

/// Starts a test with a clean mock (the state is per thread; the harness reuses threads).
fn fresh() {
    mock::reset();
}

/// The one call recorded since `fresh()`, checked for the declared arity.
fn only_call() -> Call {
    let calls = mock::take_calls();
    assert_eq!(calls.len(), 1, "expected exactly one hypercall: {calls:?}");
    let c = calls.into_iter().next().unwrap();
    assert_arity(&c);
    c
}

fn assert_arity(c: &Call) {
    assert_eq!(
        Some(c.arity()),
        nr::arm_arity(c.op),
        "hypercall {} issued with arity {}, Xen declares {:?}",
        c.op,
        c.arity(),
        nr::arm_arity(c.op)
    );
}

fn neg(e: Error) -> isize {
    -(e.errno() as isize)
}

// ---------------------------------------------------------------- console

#[test]
fn console_write_is_one_call_with_the_bytes() {
    fresh();
    mock::answer_zero();
    console::write(b"hello\n").unwrap();
    let c = only_call();
    assert_eq!(c.op, nr::CONSOLE_IO);
    assert_eq!(&c.args[..2], &[console::CONSOLEIO_WRITE, 6]);
    assert_eq!(c.bytes(2), Some(&b"hello\n"[..]));
}

#[test]
fn console_write_splits_long_buffers() {
    fresh();
    mock::answer_zero();
    let text: Vec<u8> = (0..2 * console::MAX_WRITE + 5).map(|i| i as u8).collect();
    console::write(&text).unwrap();
    let calls = mock::take_calls();
    let lens: Vec<usize> = calls.iter().map(|c| c.args[1]).collect();
    assert_eq!(lens, [console::MAX_WRITE, console::MAX_WRITE, 5]);
    let mut joined = Vec::new();
    for (k, c) in calls.iter().enumerate() {
        assert_arity(c);
        assert_eq!(c.op, nr::CONSOLE_IO);
        assert_eq!(c.args[0], console::CONSOLEIO_WRITE);
        assert_eq!(c.args[2], text.as_ptr() as usize + k * console::MAX_WRITE);
        joined.extend_from_slice(c.bytes(2).unwrap());
    }
    assert_eq!(joined, text);
}

#[test]
fn console_write_exactly_max_is_one_call_and_empty_is_none() {
    fresh();
    mock::answer_zero();
    console::write(&[b'x'; console::MAX_WRITE]).unwrap();
    assert_eq!(mock::take_calls().len(), 1);
    console::write(b"").unwrap();
    assert!(mock::take_calls().is_empty());
}

#[test]
fn console_write_continues_after_a_short_count() {
    fresh();
    mock::returns(4); // Xen took 4 of the 10 bytes
    mock::returns(6); // and then the other 6
    console::write(b"0123456789").unwrap();
    let calls = mock::take_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].bytes(2), Some(&b"0123456789"[..]));
    assert_eq!(calls[1].bytes(2), Some(&b"456789"[..]));
}

#[test]
fn console_write_stops_at_the_first_error() {
    fresh();
    mock::fails(Error::EFAULT);
    let text = vec![b'a'; console::MAX_WRITE * 3];
    assert_eq!(console::write(&text), Err(Error::EFAULT));
    assert_eq!(mock::take_calls().len(), 1);
}

#[test]
fn console_read_fills_the_buffer() {
    fresh();
    mock::respond(|call| {
        assert_eq!(call.arg(0), console::CONSOLEIO_READ);
        let buf = call.slice_mut::<u8>(2).expect("writable buffer");
        buf[..3].copy_from_slice(b"abc");
        3
    });
    let mut buf = [0u8; 16];
    assert_eq!(console::read(&mut buf), Ok(3));
    assert_eq!(&buf[..3], b"abc");
    let c = only_call();
    assert_eq!((c.op, c.args[1]), (nr::CONSOLE_IO, 16));
    // A count larger than the buffer is never reported.
    mock::returns(100);
    assert_eq!(console::read(&mut buf), Ok(16));
}

#[test]
#[should_panic(
    expected = "mock: hypercall 18 writes 1 bytes through argument 2, which is input-only"
)]
fn console_write_buffer_is_read_only_to_xen() {
    fresh();
    mock::respond(|call| {
        assert_eq!(call.read::<[u8; 2]>(2), Some(*b"hi"));
        // Xen only reads the text: writing it fails the test.
        call.write(2, 0u8);
        0
    });
    let _ = console::write(b"hi");
}

#[test]
#[should_panic(
    expected = "mock: hypercall 18 writes 0 bytes through argument 2, which is input-only"
)]
fn console_write_buffer_is_not_a_writable_slice() {
    fresh();
    mock::respond(|call| {
        call.slice_mut::<u8>(2);
        0
    });
    let _ = console::write(b"hi");
}

// ---------------------------------------------------------------- sched

#[test]
fn sched_yield_and_block() {
    fresh();
    mock::answer_zero();
    sched::yield_now().unwrap();
    let c = only_call();
    assert_eq!((c.op, c.args.as_slice()), (nr::SCHED_OP, &[0, 0][..]));
    sched::block().unwrap();
    let c = only_call();
    assert_eq!((c.op, c.args.as_slice()), (nr::SCHED_OP, &[1, 0][..]));
}

#[test]
fn sched_shutdown_passes_each_reason() {
    use sched::ShutdownReason::*;
    for (reason, code) in [
        (Poweroff, 0),
        (Reboot, 1),
        (Suspend, 2),
        (Crash, 3),
        (Watchdog, 4),
        (SoftReset, 5),
    ] {
        fresh();
        mock::answer_zero();
        sched::shutdown(reason).unwrap();
        let c = only_call();
        assert_eq!((c.op, c.args[0]), (nr::SCHED_OP, sched::SCHEDOP_SHUTDOWN));
        assert_eq!(c.read::<sched::SchedShutdown>(1).unwrap().reason, code);
        sched::shutdown_code(reason).unwrap();
        let c = only_call();
        assert_eq!(c.args[0], sched::SCHEDOP_SHUTDOWN_CODE);
        assert_eq!(c.read::<sched::SchedShutdown>(1).unwrap().reason, code);
    }
}

#[test]
fn sched_poll_describes_the_ports() {
    fresh();
    mock::answer_zero();
    let ports = [evtchn::Port(3), evtchn::Port(9)];
    sched::poll_until_system_time(&ports, 1_000_000).unwrap();
    let c = only_call();
    assert_eq!((c.op, c.args[0]), (nr::SCHED_OP, sched::SCHEDOP_POLL));
    let p: sched::SchedPoll = c.read(1).unwrap();
    assert_eq!(p.ports, ports.as_ptr() as u64);
    assert_eq!(p.nr_ports, 2);
    assert_eq!(p.timeout, 1_000_000);
    assert_eq!(c.bytes(1).unwrap().len(), 24);
    // The ports behind the handle are recorded with the structure.
    assert_eq!(c.read_handle::<u32>(1, 0).unwrap(), [3, 9]);
    assert_eq!(c.handle_bytes(1, 1), None);
}

// ---------------------------------------------------------------- evtchn

#[test]
fn evtchn_alloc_unbound_returns_the_port_xen_writes() {
    fresh();
    mock::respond(|call| {
        assert!(call.update(1, |a: &mut evtchn::AllocUnbound| a.port = evtchn::Port(1)));
        0
    });
    // Two distinct domains, so that swapping them cannot pass.
    let port = evtchn::alloc_unbound(DomId::SELF, DomId(3)).unwrap();
    assert_eq!(port, evtchn::Port(1));
    let c = only_call();
    assert_eq!(
        (c.op, c.args[0]),
        (nr::EVENT_CHANNEL_OP, evtchn::EVTCHNOP_ALLOC_UNBOUND)
    );
    let a: evtchn::AllocUnbound = c.read(1).unwrap();
    assert_eq!(
        (a.dom, a.remote_dom, a.port),
        (DomId::SELF, DomId(3), evtchn::Port(0))
    );
    assert_eq!(c.bytes(1).unwrap(), &[0xF0, 0x7F, 3, 0, 0, 0, 0, 0]);
}

#[test]
fn evtchn_bind_interdomain_and_virq() {
    fresh();
    mock::respond(|call| {
        call.update(1, |b: &mut evtchn::BindInterdomain| {
            b.local_port = evtchn::Port(12)
        });
        0
    });
    assert_eq!(
        evtchn::bind_interdomain(DomId(2), evtchn::Port(5)),
        Ok(evtchn::Port(12))
    );
    let c = only_call();
    assert_eq!(c.args[0], evtchn::EVTCHNOP_BIND_INTERDOMAIN);
    let b: evtchn::BindInterdomain = c.read(1).unwrap();
    assert_eq!((b.remote_dom, b.remote_port), (DomId(2), evtchn::Port(5)));

    mock::respond(|call| {
        call.update(1, |b: &mut evtchn::BindVirq| b.port = evtchn::Port(2));
        0
    });
    assert_eq!(
        evtchn::bind_virq(evtchn::Virq::TIMER, 1),
        Ok(evtchn::Port(2))
    );
    let c = only_call();
    assert_eq!(c.args[0], evtchn::EVTCHNOP_BIND_VIRQ);
    let b: evtchn::BindVirq = c.read(1).unwrap();
    assert_eq!((b.virq, b.vcpu), (0, 1));
}

#[test]
fn evtchn_send_close_unmask_pass_the_port() {
    for (f, cmd) in [
        (
            evtchn::send as fn(evtchn::Port) -> xen::Result<()>,
            evtchn::EVTCHNOP_SEND,
        ),
        (evtchn::close, evtchn::EVTCHNOP_CLOSE),
        (evtchn::unmask, evtchn::EVTCHNOP_UNMASK),
    ] {
        fresh();
        mock::answer_zero();
        f(evtchn::Port(77)).unwrap();
        let c = only_call();
        assert_eq!((c.op, c.args[0]), (nr::EVENT_CHANNEL_OP, cmd));
        assert_eq!(c.bytes(1), Some(&77u32.to_le_bytes()[..]));
    }
}

#[test]
fn evtchn_send_after_close_is_einval() {
    fresh();
    mock::returns(0);
    mock::fails(Error::EINVAL);
    assert_eq!(evtchn::close(evtchn::Port(1)), Ok(()));
    assert_eq!(evtchn::send(evtchn::Port(1)), Err(Error::EINVAL));
}

fn status_answer(status: u32, vcpu: u32, u: [u32; 2]) -> evtchn::Status {
    fresh();
    mock::respond(move |call| {
        call.update(1, |s: &mut evtchn::EvtchnStatus| {
            s.status = status;
            s.vcpu = vcpu;
            s.u = u;
        });
        0
    });
    let st = evtchn::status(evtchn::Port(1)).unwrap();
    let c = only_call();
    assert_eq!(c.args[0], evtchn::EVTCHNOP_STATUS);
    let s: evtchn::EvtchnStatus = c.read(1).unwrap();
    assert_eq!((s.dom, s.port), (DomId::SELF, evtchn::Port(1)));
    st
}

#[test]
fn evtchn_status_decodes_every_state() {
    use evtchn::State;
    assert_eq!(status_answer(0, 0, [0, 0]).state, State::Closed);
    let s = status_answer(1, 0, [0x7FF0, 0]);
    assert_eq!(
        s.state,
        State::Unbound {
            remote: DomId::SELF
        }
    );
    assert_eq!(
        status_answer(2, 0, [3, 8]).state,
        State::Interdomain {
            dom: DomId(3),
            port: evtchn::Port(8)
        }
    );
    assert_eq!(status_answer(3, 0, [40, 0]).state, State::Pirq(40));
    assert_eq!(
        status_answer(4, 2, [0, 0]),
        evtchn::Status {
            state: State::Virq(evtchn::Virq::TIMER),
            vcpu: 2
        }
    );
    assert_eq!(status_answer(5, 0, [0, 0]).state, State::Ipi);
    assert_eq!(status_answer(9, 0, [0, 0]).state, State::Unknown(9));
}

#[test]
fn evtchn_status_of_another_domain() {
    fresh();
    mock::answer_zero();
    evtchn::status_of(DomId(4), evtchn::Port(2)).unwrap();
    let s: evtchn::EvtchnStatus = only_call().read(1).unwrap();
    assert_eq!((s.dom, s.port), (DomId(4), evtchn::Port(2)));
}

// ---------------------------------------------------------------- version

#[test]
fn version_decodes_major_minor() {
    fresh();
    mock::returns(0x40011);
    let v = version::version().unwrap();
    assert_eq!((v.major, v.minor), (4, 17));
    assert_eq!(v.to_string(), "4.17");
    let c = only_call();
    assert_eq!((c.op, c.args.as_slice()), (nr::XEN_VERSION, &[0, 0][..]));
}

#[test]
fn version_pagesize() {
    fresh();
    mock::returns(4096);
    assert_eq!(version::pagesize(), Ok(4096));
    assert_eq!(only_call().args, [version::XENVER_PAGESIZE, 0]);
}

fn fill_string(text: &'static [u8]) {
    mock::respond(move |call| {
        let buf = call.slice_mut::<u8>(1).unwrap();
        buf[..text.len()].copy_from_slice(text);
        0
    });
}

#[test]
fn version_strings() {
    fresh();
    fill_string(b".7");
    assert_eq!(version::extraversion().unwrap().as_str(), Some(".7"));
    let c = only_call();
    assert_eq!(c.args[0], version::XENVER_EXTRAVERSION);
    assert_eq!(c.bytes(1).unwrap().len(), 16);

    fill_string(b"xen-3.0-aarch64 xen-3.0-armv7l ");
    let caps = version::capabilities().unwrap();
    assert_eq!(caps.as_str(), Some("xen-3.0-aarch64 xen-3.0-armv7l "));
    let c = only_call();
    assert_eq!(c.args[0], version::XENVER_CAPABILITIES);
    assert_eq!(c.bytes(1).unwrap().len(), 1024);

    fill_string(b"2445b30a44");
    assert_eq!(version::changeset().unwrap().to_string(), "2445b30a44");
    let c = only_call();
    assert_eq!(c.args[0], version::XENVER_CHANGESET);
    assert_eq!(c.bytes(1).unwrap().len(), 64);
}

#[test]
fn version_compile_info() {
    fresh();
    mock::respond(|call| {
        let written = call.update(1, |i: &mut version::CompileInfo| {
            i.compiler.0[..3].copy_from_slice(b"gcc");
            i.compile_date.0[..4].copy_from_slice(b"2025");
        });
        if written { 0 } else { -1 }
    });
    let info = version::compile_info().unwrap();
    assert_eq!(info.compiler.as_str(), Some("gcc"));
    assert_eq!(info.compile_date.as_str(), Some("2025"));
    let c = only_call();
    assert_eq!(c.args[0], version::XENVER_COMPILE_INFO);
    assert_eq!(c.bytes(1).unwrap().len(), 144);
}

#[test]
fn version_platform_parameters_features_guest_handle() {
    fresh();
    mock::respond(|call| {
        call.write(1, version::PlatformParameters { virt_start: 0x1234 });
        0
    });
    assert_eq!(version::platform_parameters().unwrap().virt_start, 0x1234);
    assert_eq!(only_call().args[0], version::XENVER_PLATFORM_PARAMETERS);

    mock::respond(|call| {
        call.update(1, |f: &mut version::FeatureInfo| {
            f.submap = 0xA0 | f.submap_idx
        });
        0
    });
    assert_eq!(version::get_features(1), Ok(0xA1));
    let c = only_call();
    assert_eq!(c.args[0], version::XENVER_GET_FEATURES);
    assert_eq!(c.read::<version::FeatureInfo>(1).unwrap().submap_idx, 1);

    mock::respond(|call| {
        call.write(1, [7u8; 16]);
        0
    });
    assert_eq!(version::guest_handle(), Ok([7; 16]));
    assert_eq!(only_call().args[0], version::XENVER_GUEST_HANDLE);
}

// ---------------------------------------------------------------- memory

#[test]
fn memory_add_to_physmap_struct() {
    fresh();
    mock::answer_zero();
    // SAFETY: the mock performs no mapping.
    unsafe { memory::add_to_physmap(DomId::SELF, memory::Space::GMFN, 5, 0x40000) }.unwrap();
    let c = only_call();
    assert_eq!(
        (c.op, c.args[0]),
        (nr::MEMORY_OP, memory::XENMEM_ADD_TO_PHYSMAP)
    );
    let a: memory::AddToPhysmap = c.read(1).unwrap();
    assert_eq!(
        (a.domid, a.size, a.space, a.idx, a.gpfn),
        (DomId::SELF, 0, 2, 5, 0x40000)
    );

    // SAFETY: as above.
    unsafe { memory::map_shared_info(0x40001) }.unwrap();
    let a: memory::AddToPhysmap = only_call().read(1).unwrap();
    assert_eq!((a.space, a.idx, a.gpfn), (0, 0, 0x40001));

    // SAFETY: as above.
    unsafe { memory::map_grant_frame(3, 0x40002) }.unwrap();
    let a: memory::AddToPhysmap = only_call().read(1).unwrap();
    assert_eq!((a.space, a.idx, a.gpfn), (1, 3, 0x40002));

    mock::fails(Error::EBUSY);
    // SAFETY: as above.
    let r = unsafe { memory::map_grant_frame(0, 1) };
    assert_eq!(r, Err(Error::EBUSY));

    // An index with bit 31 would select a v2 status frame (ARM has none): refused, no hypercall.
    fresh();
    mock::answer_zero();
    // SAFETY: as above (nothing is mapped).
    let r = unsafe { memory::map_grant_frame(0x8000_0000, 0x40003) };
    assert_eq!(r, Err(Error::EINVAL));
    assert!(mock::take_calls().is_empty());

    // Foreign frames go through the batch call only, and a range needs a size: both refused.
    for space in [memory::Space::GMFN_FOREIGN, memory::Space::GMFN_RANGE] {
        // SAFETY: as above (nothing is mapped).
        let r = unsafe { memory::add_to_physmap(DomId::SELF, space, 0, 0x40004) };
        assert_eq!(r, Err(Error::EINVAL), "{space:?}");
        assert!(mock::take_calls().is_empty());
    }
}

#[test]
fn memory_reservations_pass_the_domid() {
    for (f, cmd) in [
        (
            memory::current_reservation as fn(DomId) -> xen::Result<u64>,
            memory::XENMEM_CURRENT_RESERVATION,
        ),
        (
            memory::maximum_reservation,
            memory::XENMEM_MAXIMUM_RESERVATION,
        ),
        (memory::maximum_gpfn, memory::XENMEM_MAXIMUM_GPFN),
    ] {
        fresh();
        mock::returns(0x8000);
        assert_eq!(f(DomId::SELF), Ok(0x8000));
        let c = only_call();
        assert_eq!((c.op, c.args[0]), (nr::MEMORY_OP, cmd));
        assert_eq!(c.read::<DomId>(1), Some(DomId::SELF));
        assert_eq!(c.bytes(1).unwrap().len(), 2);
    }
}

// ---------------------------------------------------------------- grant table

#[test]
fn grant_query_size_reads_the_frames_xen_writes() {
    fresh();
    mock::respond(|call| {
        call.update(1, |q: &mut gt::GnttabQuerySize| {
            q.nr_frames = 1;
            q.max_nr_frames = 64;
            q.status = 0;
        });
        0
    });
    let size = gt::query_size(DomId::SELF).unwrap();
    assert_eq!((size.nr_frames, size.max_nr_frames), (1, 64));
    let c = only_call();
    assert_eq!(
        (c.op, c.args[0], c.args[2]),
        (nr::GRANT_TABLE_OP, gt::GNTTABOP_QUERY_SIZE, 1)
    );
    assert_eq!(c.read::<gt::GnttabQuerySize>(1).unwrap().dom, DomId::SELF);
}

#[test]
fn grant_status_failures_become_errors() {
    for code in -14..=-1i16 {
        fresh();
        mock::respond(move |call| {
            call.update(1, |q: &mut gt::GnttabQuerySize| q.status = code);
            0
        });
        let e = gt::query_size(DomId(1)).unwrap_err();
        let gt::GrantError::Status(s) = e else {
            panic!("{e:?}")
        };
        assert_eq!(s.code(), code);
        assert!(s.nearest_errno().errno() > 0);
        assert!(e.to_string().contains(&code.to_string()));
    }
    assert_eq!(
        gt::GrantStatus::from_raw(-8),
        Some(gt::GrantStatus::PERMISSION_DENIED)
    );
    assert_eq!(
        gt::GrantStatus::from_raw(-14).map(|s| (s.code(), s.name())),
        Some((-14, None))
    );
    assert_eq!(gt::GrantStatus::from_raw(0), None);
    // The hypercall's own failure wins over the status.
    fresh();
    mock::fails(Error::EFAULT);
    assert_eq!(
        gt::query_size(DomId::SELF),
        Err(gt::GrantError::Xen(Error::EFAULT))
    );
}

#[test]
fn grant_setup_table_points_at_the_frame_list() {
    fresh();
    mock::answer_zero();
    let mut frames = [0u64; 4];
    gt::setup_table(DomId::SELF, &mut frames).unwrap();
    let c = only_call();
    assert_eq!(
        (c.op, c.args[0], c.args[2]),
        (nr::GRANT_TABLE_OP, gt::GNTTABOP_SETUP_TABLE, 1)
    );
    let s: gt::GnttabSetupTable = c.read(1).unwrap();
    assert_eq!((s.dom, s.nr_frames), (DomId::SELF, 4));
    assert_eq!(s.frame_list, frames.as_ptr() as u64);
    assert_eq!(c.handle_bytes(1, 0).map(<[u8]>::len), Some(32));
}

#[test]
fn grant_setup_table_frames_are_written_through_the_handle() {
    fresh();
    mock::respond(|call| {
        let frames = call.handle_mut::<u64>(1, 0).unwrap();
        assert_eq!(frames.len(), 2);
        frames.copy_from_slice(&[0x38000, 0x38001]);
        0
    });
    let mut frames = [0u64; 2];
    gt::setup_table(DomId::SELF, &mut frames).unwrap();
    assert_eq!(frames, [0x38000, 0x38001]);
}

#[test]
#[should_panic(
    expected = "mock: hypercall 29 writes through handle 0 of argument 1, which is input-only"
)]
fn a_handle_xen_only_reads_cannot_be_written() {
    fresh();
    mock::respond(|call| {
        assert_eq!(call.read_handle_at::<u32>(1, 0, 1), Some(5));
        call.handle_mut::<u32>(1, 0);
        0
    });
    let _ = sched::poll_until_system_time(&[evtchn::Port(4), evtchn::Port(5)], 0);
}

#[test]
fn grant_versions() {
    fresh();
    mock::respond(|call| {
        call.update(1, |v: &mut gt::GnttabSetVersion| v.version = 1);
        0
    });
    assert_eq!(gt::set_version(1), Ok(1));
    let c = only_call();
    assert_eq!(c.args[0], gt::GNTTABOP_SET_VERSION);
    assert_eq!(c.read::<gt::GnttabSetVersion>(1).unwrap().version, 1);
    // ARM has grant tables of version 1 only (GNTTAB_MAX_VERSION 1): refused without a hypercall.
    for v in [0, 2, 3] {
        assert_eq!(gt::set_version(v), Err(gt::GrantError::Xen(Error::EINVAL)));
        assert!(mock::take_calls().is_empty());
    }

    mock::respond(|call| {
        call.update(1, |v: &mut gt::GnttabGetVersion| v.version = 1);
        0
    });
    assert_eq!(gt::get_version(DomId::SELF), Ok(1));
    let c = only_call();
    assert_eq!(c.args[0], gt::GNTTABOP_GET_VERSION);
    assert_eq!(c.read::<gt::GnttabGetVersion>(1).unwrap().dom, DomId::SELF);
}

#[test]
fn grant_entry_v1_permit_access() {
    let e = gt::GrantEntryV1::permit_access(DomId(0), 0x1234, true);
    assert_eq!(e.flags, gt::GTF_PERMIT_ACCESS | gt::GTF_READONLY);
    assert_eq!((e.domid, e.frame), (DomId(0), 0x1234));
}

// ---------------------------------------------------------------- hvm

#[test]
fn hvm_get_param_callback_irq() {
    fresh();
    mock::respond(|call| {
        call.update(1, |p: &mut hvm::HvmParam| {
            if p.index == 0 {
                p.value = 0x0200_0000_0000_0210
            }
        });
        0
    });
    let v = hvm::get_param(DomId::SELF, hvm::Param::CALLBACK_IRQ).unwrap();
    assert_eq!(v, 0x0200_0000_0000_0210);
    let via = hvm::CallbackVia::decode(v);
    assert_eq!(
        via,
        hvm::CallbackVia::Ppi {
            intid: 16,
            flags: 2
        }
    );
    assert_eq!(via.intid(), Some(16));
    let c = only_call();
    assert_eq!((c.op, c.args[0]), (nr::HVM_OP, hvm::HVMOP_GET_PARAM));
    let p: hvm::HvmParam = c.read(1).unwrap();
    assert_eq!((p.domid, p.index), (DomId::SELF, 0));
}

#[test]
fn hvm_params_have_xens_indices_and_set_passes_the_value() {
    for (param, index) in [
        (hvm::Param::STORE_PFN, 1),
        (hvm::Param::STORE_EVTCHN, 2),
        (hvm::Param::CONSOLE_PFN, 17),
        (hvm::Param::CONSOLE_EVTCHN, 18),
    ] {
        fresh();
        mock::answer_zero();
        // SAFETY: the mock maps nothing at frame 99.
        unsafe { hvm::set_param_unchecked(DomId::SELF, param, 99) }.unwrap();
        let c = only_call();
        assert_eq!(c.args[0], hvm::HVMOP_SET_PARAM);
        let p: hvm::HvmParam = c.read(1).unwrap();
        assert_eq!((p.index, p.value), (index, 99));
    }
    assert_eq!(
        hvm::CallbackVia::decode(5),
        hvm::CallbackVia::Other(5),
        "a GSI callback is not a PPI"
    );
}

#[test]
fn safe_set_param_refuses_parameters_that_name_memory_before_the_hypercall() {
    for param in [
        hvm::Param::STORE_PFN,
        hvm::Param::CONSOLE_PFN,
        hvm::Param(5),  // HVM_PARAM_IOREQ_PFN (x86)
        hvm::Param(12), // HVM_PARAM_IDENT_PT (x86)
    ] {
        fresh();
        assert_eq!(
            hvm::set_param(DomId::SELF, param, 0x40123),
            Err(Error::EPERM),
            "{param:?}"
        );
        assert!(mock::take_calls().is_empty());
    }
    for param in [
        hvm::Param::CALLBACK_IRQ,
        hvm::Param::STORE_EVTCHN,
        hvm::Param::CONSOLE_EVTCHN,
    ] {
        fresh();
        mock::answer_zero();
        hvm::set_param(DomId::SELF, param, 3).unwrap();
        assert_eq!(only_call().args[0], hvm::HVMOP_SET_PARAM);
    }
}

// ---------------------------------------------------------------- vcpu

#[test]
fn vcpu_register_vcpu_info_once() {
    fresh();
    mock::returns(0);
    mock::fails(Error::EINVAL);
    // SAFETY: the mock keeps nothing.
    assert_eq!(unsafe { vcpu::register_vcpu_info(0, 0x40002, 64) }, Ok(()));
    // SAFETY: as above.
    let r = unsafe { vcpu::register_vcpu_info(0, 0x40002, 64) };
    assert_eq!(r, Err(Error::EINVAL));
    let calls = mock::take_calls();
    for c in &calls {
        assert_arity(c);
        assert_eq!(
            (c.op, c.args[0], c.args[1]),
            (nr::VCPU_OP, vcpu::VCPUOP_REGISTER_VCPU_INFO, 0)
        );
        let r: vcpu::RegisterVcpuInfo = c.read(2).unwrap();
        assert_eq!((r.mfn, r.offset, r.rsvd), (0x40002, 64, 0));
    }
}

#[test]
fn vcpu_register_vcpu_info_at_splits_the_address() {
    fresh();
    mock::answer_zero();
    #[repr(C, align(4096))]
    struct Page([u8; 4096]);
    let mut page = Box::new(Page([0; 4096]));
    let base = page.0.as_mut_ptr() as usize;
    let at = |off: usize| (base + off) as *mut vcpu::VcpuInfo;
    // SAFETY: the mock keeps nothing.
    unsafe { vcpu::register_vcpu_info_at(2, at(4096 - 48)) }.unwrap();
    let c = only_call();
    assert_eq!(c.args[1], 2);
    let r: vcpu::RegisterVcpuInfo = c.read(2).unwrap();
    assert_eq!((r.mfn, r.offset), ((base / 4096) as u64, 4096 - 48));
    // Crossing the page or misaligned: refused before any hypercall.
    // SAFETY: as above.
    let r = unsafe { vcpu::register_vcpu_info_at(0, at(4096 - 40)) };
    assert_eq!(r, Err(Error::EINVAL));
    // SAFETY: as above.
    let r = unsafe { vcpu::register_vcpu_info_at(0, at(4)) };
    assert_eq!(r, Err(Error::EINVAL));
    assert!(mock::take_calls().is_empty());
}

#[test]
fn vcpu_register_runstate_memory_area() {
    fresh();
    mock::answer_zero();
    let mut area = vcpu::RunstateInfo::default();
    // SAFETY: the mock keeps nothing.
    unsafe { vcpu::register_runstate_memory_area(1, &mut area) }.unwrap();
    let c = only_call();
    assert_eq!(
        (c.op, c.args[0], c.args[1]),
        (nr::VCPU_OP, vcpu::VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA, 1)
    );
    let r: vcpu::RegisterRunstateMemoryArea = c.read(2).unwrap();
    assert_eq!(r.addr, &raw mut area as u64);
    assert_eq!(
        c.handle_bytes(2, 0).map(<[u8]>::len),
        Some(core::mem::size_of::<vcpu::RunstateInfo>())
    );
}

// ---------------------------------------------------------------- multicall

#[test]
fn multicall_version_pagesize_unknown() {
    fresh();
    // Xen runs each entry and writes its result.
    mock::respond(|call| {
        let n = call.arg(1);
        let entries = call.slice_mut::<MulticallEntry>(0).unwrap();
        assert_eq!(entries.len(), n);
        for e in entries.iter_mut() {
            e.result = match (e.op as usize, e.args[0] as usize) {
                (nr::XEN_VERSION, version::XENVER_VERSION) => 0x40011,
                (nr::XEN_VERSION, version::XENVER_PAGESIZE) => 4096,
                _ => -38i64 as u64,
            };
        }
        0
    });
    let mut batch: Batch<'_, 4> = Batch::new();
    assert_eq!(batch.push(McCall::xen_version()), Ok(0));
    assert_eq!(batch.push(McCall::pagesize()), Ok(1));
    // SAFETY: hypercall 99 does not exist; it takes no pointer.
    let unknown = unsafe { McCall::raw(99, [0; 6]) };
    assert_eq!(batch.push(unknown), Ok(2));
    let done = batch.submit();
    assert_eq!(done.status(), Ok(()));
    let results: Vec<_> = done.iter().collect();
    assert_eq!(
        results,
        [Ok(0x40011), Ok(4096), Err(CallError::Failed(Error::ENOSYS))]
    );
    assert_eq!(done.get(2), Some(Err(CallError::Failed(Error::ENOSYS))));
    assert_eq!(done.get(3), None);
    assert_eq!(done.raw()[0], 0x40011);
    assert_eq!(done.len(), 3);

    let c = only_call();
    assert_eq!((c.op, c.args[1]), (nr::MULTICALL, 3));
    assert_eq!(c.bytes(0).unwrap().len(), 3 * 64);
    let e: MulticallEntry = c.read_at(0, 1).unwrap();
    assert_eq!((e.op, e.args), (17, [7, 0, 0, 0, 0, 0]));
    let e: MulticallEntry = c.read_at(0, 2).unwrap();
    assert_eq!(e.op, 99);
}

#[test]
fn multicall_overflow_is_an_error() {
    fresh();
    let mut batch: Batch<'_, 2> = Batch::new();
    batch.push(McCall::sched_yield()).unwrap();
    batch.push(McCall::pagesize()).unwrap();
    assert_eq!(batch.push(McCall::xen_version()), Err(Full));
    assert_eq!(batch.len(), 2);
    assert_eq!(Error::from(Full), Error::ENOBUFS);
    let r: xen::Result<usize> = (|| Ok(batch.push(McCall::xen_version())?))();
    assert_eq!(r, Err(Error::ENOBUFS));
    assert!(mock::take_calls().is_empty(), "pushing issues no hypercall");
    assert!(!batch.is_empty());
    assert_eq!(batch.capacity(), 2);
}

#[test]
fn multicall_typed_calls_carry_their_structures() {
    fresh();
    let send = evtchn::PortArg::new(evtchn::Port(5));
    let mut param = hvm::HvmParam::new(DomId::SELF, hvm::Param(1));
    let mut status = evtchn::EvtchnStatus::new(DomId::SELF, evtchn::Port(7));
    let send_addr = &raw const send as u64;
    let param_addr = &raw const param as u64;
    let status_addr = &raw const status as u64;
    let text = b"batched\n";
    mock::returns(0); // the multicall itself
    {
        let mut batch: Batch<'_, 8> = Batch::default();
        batch.push(McCall::evtchn_send(&send)).unwrap();
        batch.push(McCall::hvm_get_param(&mut param)).unwrap();
        batch.push(McCall::evtchn_status(&mut status)).unwrap();
        batch.push(McCall::console_write(text)).unwrap();
        let e = batch.entries();
        assert_eq!((e[0].op, e[0].args[0], e[0].args[1]), (32, 4, send_addr));
        assert_eq!((e[1].op, e[1].args[0], e[1].args[1]), (34, 1, param_addr));
        assert_eq!((e[2].op, e[2].args[0], e[2].args[1]), (32, 5, status_addr));
        assert_eq!(
            (e[3].op, e[3].args[0], e[3].args[1], e[3].args[2]),
            (18, 0, 8, text.as_ptr() as u64)
        );
        assert_eq!(batch.submit().status(), Ok(()));
    }
    let c = only_call();
    assert_eq!(c.args[1], 4);
    // The structures the constructors made, as Xen reads them.
    assert_eq!(send.port, evtchn::Port(5));
    assert_eq!((param.domid, param.index, param.value), (DomId::SELF, 1, 0));
    assert_eq!((status.dom, status.port), (DomId::SELF, evtchn::Port(7)));
}

#[test]
fn multicall_failed_part_way_keeps_the_results_of_the_calls_that_ran() {
    fresh();
    // As Xen's do_multicall: entries run in order, each result written back (a failing call does not
    // stop the batch); then reading entry 2 faults and the multicall returns -EFAULT.
    mock::respond(|call| {
        let entries = call.slice_mut::<MulticallEntry>(0).unwrap();
        for e in entries.iter_mut() {
            assert_eq!(
                e.result, NOT_REACHED,
                "every result is preset before the call"
            );
        }
        entries[0].result = 0x40011;
        entries[1].result = -22i64 as u64;
        -(Error::EFAULT.errno() as isize)
    });
    let mut batch: Batch<'_, 4> = Batch::new();
    batch.push(McCall::xen_version()).unwrap();
    batch.push(McCall::pagesize()).unwrap();
    batch.push(McCall::sched_yield()).unwrap();
    batch.push(McCall::pagesize()).unwrap();
    let done = batch.submit();
    assert_eq!(done.status(), Err(Error::EFAULT));
    let results: Vec<_> = done.iter().collect();
    assert_eq!(
        results,
        [
            Ok(0x40011),
            Err(CallError::Failed(Error::EINVAL)),
            Err(CallError::NotReached(Error::EFAULT)),
            Err(CallError::NotReached(Error::EFAULT)),
        ]
    );
    assert_eq!(done.raw()[2], NOT_REACHED);
    assert_eq!(done.len(), 4);
    // Either failure is an errno for `?` in a function returning xen::Result.
    assert_eq!(Error::from(CallError::Failed(Error::EINVAL)), Error::EINVAL);
    assert_eq!(
        Error::from(CallError::NotReached(Error::EFAULT)),
        Error::EFAULT
    );
    // Counts with the top bit set are values, as for a single hypercall.
    assert_eq!(
        xen::multicall::check_result(0xFFFF_FFFF_8000_0000),
        Ok(0xFFFF_FFFF_8000_0000)
    );
    assert_eq!(
        xen::multicall::check_result(-4095i64 as u64),
        Err(Error::from_errno(4095))
    );
    assert_eq!(only_call().args[1], 4);
}

#[test]
fn multicall_empty_submit_makes_no_call_and_failure_is_reported() {
    fresh();
    let batch: Batch<'_, 1> = Batch::new();
    let done = batch.submit();
    assert!(done.is_empty() && done.status().is_ok());
    assert!(mock::take_calls().is_empty());
    let mut batch: Batch<'_, 1> = Batch::new();
    batch.push(McCall::xen_version()).unwrap();
    mock::fails(Error::EFAULT);
    let done = batch.submit();
    assert_eq!(done.status(), Err(Error::EFAULT));
    assert_eq!(done.get(0), Some(Err(CallError::NotReached(Error::EFAULT))));
    // The batch is gone: a second submit does not compile (tests/ui/multicall_submit_twice.rs).
}

#[test]
fn grant_errors_convert_to_xen_errors_for_question_mark() {
    // The typed-API tour of docs/typed-api.md: `?` on a grant-table call in a function returning `xen::Result`.
    fn frames() -> xen::Result<u32> {
        let gt = gt::query_size(DomId::SELF)?;
        Ok(gt.nr_frames)
    }
    fresh();
    mock::respond(|c| {
        c.update(1, |q: &mut gt::GnttabQuerySize| {
            q.nr_frames = 3;
            q.max_nr_frames = 64;
        });
        0
    });
    assert_eq!(frames(), Ok(3));
    // The hypercall's own failure keeps its errno.
    fresh();
    mock::fails(Error::EFAULT);
    assert_eq!(frames(), Err(Error::EFAULT));
    // A status becomes its nearest errno.
    fresh();
    mock::respond(|c| {
        c.update(1, |q: &mut gt::GnttabQuerySize| {
            q.status = gt::GrantStatus::BAD_DOMAIN.code()
        });
        0
    });
    assert_eq!(frames(), Err(Error::ESRCH));
    for &s in gt::GrantStatus::ALL {
        assert_eq!(Error::from(gt::GrantError::Status(s)), s.nearest_errno());
    }
}

// ---------------------------------------------------------------- errors

#[test]
fn every_errno_maps_back_through_a_wrapper() {
    for &e in Error::ALL {
        fresh();
        mock::returns(neg(e));
        assert_eq!(evtchn::send(evtchn::Port(1)), Err(e));
        assert_eq!(Error::from_errno(e.errno()), e);
        let text = e.to_string();
        assert!(text.starts_with(e.name().unwrap()), "{text}");
        assert!(text.contains(&format!("({})", e.errno())), "{text}");
    }
    assert_eq!(Error::ALL.len(), 49);
    fresh();
    mock::returns(-200);
    assert_eq!(version::version(), Err(Error::from_errno(200)));
    assert_eq!(Error::from_errno(200).errno(), 200);
    assert_eq!(Error::from_errno(200).to_string(), "unknown Xen error 200");
    assert_eq!(format!("{:?}", Error::from_errno(200)), "Error(200)");
    assert_eq!(format!("{:?}", Error::EINVAL), "Error::EINVAL");
    assert_eq!(
        Error::check_status(isize::MIN),
        Err(Error::from_errno(i32::MAX))
    );
    // Equal codes are equal errors however they were made, and match the named constants.
    assert_eq!(Error::from_errno(22), Error::EINVAL);
    assert!(matches!(Error::check(-22), Err(Error::EINVAL)));
    // One register wide.
    assert_eq!(std::mem::size_of::<Error>(), 4);
    assert_eq!(Error::EWOULDBLOCK, Error::EAGAIN);
    assert_eq!(Error::EDEADLOCK.errno(), 35);
}

/// What a 32-bit guest's `isize` holds when Xen returns the `long` `v` in a 32-bit register, sign-extended
/// into the host's 64-bit `isize`: the same low 32 bits and the same sign. The checks compare with
/// `-MAX_ERRNO` in the register's own width, so they decide the same on the host as on 32-bit ARM, and the
/// low 32 bits of the success value are the 32-bit guest's `usize`.
fn reg32(v: u32) -> isize {
    v as i32 as isize
}

#[test]
fn counts_and_numbers_with_the_top_bit_set_are_not_errors() {
    // 2^31 pages (8 TiB of 4 KiB pages), 2^32 - 4096 and 2^32 - 1 - 4095: no errno, successes.
    for v in [0x8000_0000u32, 0xFFFF_F000, 0xFFFF_F000 - 1] {
        for f in [
            memory::current_reservation as fn(DomId) -> xen::Result<u64>,
            memory::maximum_reservation,
            memory::maximum_gpfn,
        ] {
            fresh();
            mock::returns(reg32(v));
            let r = f(DomId::SELF);
            assert_eq!(r.map(|n| n as u32), Ok(v), "{v:#x}");
        }
    }
    // No Xen's major has bit 15 set: a version result with the sign bit set is a failure.
    fresh();
    mock::returns(reg32(0x8001_0002));
    assert_eq!(
        version::version().map(|v| (v.major, v.minor)),
        Err(Error::from_errno(0x7ffe_fffe))
    );
    // -4095..=-1 are errnos.
    for (v, e) in [
        (-1i32, Error::EPERM),
        (-38, Error::ENOSYS),
        (-4095, Error::from_errno(4095)),
    ] {
        fresh();
        mock::returns(reg32(v as u32));
        assert_eq!(memory::current_reservation(DomId::SELF), Err(e));
        assert_eq!(Error::check(reg32(v as u32)), Err(e));
    }
    assert!(Error::check(reg32(-4096i32 as u32)).is_ok());
    assert_eq!(Error::MAX_ERRNO, 4095);
    // A call whose only success is 0 fails on any negative value, errno-sized or not.
    fresh();
    mock::returns(reg32(0x8000_0000));
    assert_eq!(
        evtchn::send(evtchn::Port(1)),
        Err(Error::from_errno(i32::MAX))
    );
    assert_eq!(
        memory::frame_result(i32::MIN),
        Err(Error::from_errno(i32::MAX))
    );
    assert_eq!(
        Error::check_status(reg32(-5000i32 as u32)),
        Err(Error::from_errno(5000))
    );
}

// ---------------------------------------------------------------- every wrapper's arity

#[test]
fn every_wrapper_uses_the_declared_arity() {
    fresh();
    mock::answer_zero();
    let mut frames = [0u64; 1];
    let mut runstate = vcpu::RunstateInfo::default();
    let _ = console::write(b"x");
    let _ = console::read(&mut [0u8; 4]);
    let _ = sched::yield_now();
    let _ = sched::block();
    let _ = sched::poll_forever(&[evtchn::Port(1)]);
    let _ = sched::shutdown(sched::ShutdownReason::Poweroff);
    let _ = sched::shutdown_code(sched::ShutdownReason::Reboot);
    let _ = evtchn::alloc_unbound(DomId::SELF, DomId(0));
    let _ = evtchn::bind_interdomain(DomId(0), evtchn::Port(1));
    let _ = evtchn::bind_virq(evtchn::Virq::DEBUG, 0);
    let _ = evtchn::send(evtchn::Port(1));
    let _ = evtchn::close(evtchn::Port(1));
    let _ = evtchn::unmask(evtchn::Port(1));
    let _ = evtchn::status(evtchn::Port(1));
    let _ = version::version();
    let _ = version::extraversion();
    let _ = version::compile_info();
    let _ = version::capabilities();
    let _ = version::changeset();
    let _ = version::platform_parameters();
    let _ = version::get_features(0);
    let _ = version::pagesize();
    let _ = version::guest_handle();
    // SAFETY: the mock maps and keeps nothing.
    let _ = unsafe { memory::add_to_physmap(DomId::SELF, memory::Space::SHARED_INFO, 0, 1) };
    let _ = memory::current_reservation(DomId::SELF);
    let _ = memory::maximum_gpfn(DomId::SELF);
    let _ = gt::query_size(DomId::SELF);
    let _ = gt::setup_table(DomId::SELF, &mut frames);
    let _ = gt::set_version(1);
    let _ = gt::get_version(DomId::SELF);
    let _ = hvm::get_param(DomId::SELF, hvm::Param::STORE_EVTCHN);
    let _ = hvm::set_param(DomId::SELF, hvm::Param::STORE_EVTCHN, 1);
    // SAFETY: as above.
    let _ = unsafe { vcpu::register_vcpu_info(0, 1, 0) };
    // SAFETY: as above.
    let _ = unsafe { vcpu::register_runstate_memory_area(0, &mut runstate) };
    let mut batch: Batch<'_, 1> = Batch::new();
    batch.push(McCall::xen_version()).unwrap();
    let _ = batch.submit();
    let calls = mock::take_calls();
    assert_eq!(calls.len(), 35);
    for c in &calls {
        assert_arity(c);
    }
}

/// The declared-arity check itself would catch a wrong stub: a raw call of the wrong arity fails it.
#[test]
#[should_panic(expected = "Xen declares Some(2)")]
fn the_arity_check_catches_a_short_stub() {
    fresh();
    mock::returns(0);
    // SAFETY: the mock dereferences nothing.
    let _ = unsafe { xen_hypercall::hypercall!(nr::SCHED_OP, sched::SCHEDOP_YIELD) };
    assert_arity(&only_call_unchecked());
}

fn only_call_unchecked() -> Call {
    mock::take_calls().pop().unwrap()
}

// ---------------------------------------------------------------- the mock itself

#[test]
fn raw_stubs_and_the_macro_are_recorded() {
    fresh();
    mock::returns(0x40011);
    // SAFETY: the mock dereferences nothing.
    let r = unsafe { xen_hypercall::hypercall!(17, 0, 0) };
    assert_eq!(r, 0x40011);
    mock::returns(0);
    // SAFETY: as above.
    unsafe { xen_hypercall::hypercall5(39, 1, 2, 3, 4, 5) };
    let calls = mock::take_calls();
    assert_eq!(calls[0].args, [0, 0]);
    assert_eq!(calls[0].buffers, [None, None]);
    assert_eq!(calls[0].ret, 0x40011);
    assert_eq!(calls[1].ret, 0);
    assert_eq!(
        (calls[1].op, calls[1].args.as_slice()),
        (39, &[1, 2, 3, 4, 5][..])
    );
}

#[test]
fn the_mock_is_per_thread() {
    fresh();
    mock::returns(4);
    console::write(b"main").unwrap();
    let other = std::thread::spawn(|| {
        mock::returns(-1);
        let r = sched::yield_now();
        (r, mock::take_calls().len())
    })
    .join()
    .unwrap();
    assert_eq!(other, (Err(Error::EPERM), 1));
    assert_eq!(mock::take_calls().len(), 1);
}

#[test]
fn default_responder_answers_when_the_queue_is_empty() {
    fresh();
    mock::set_default(|call| {
        if call.op() == nr::XEN_VERSION {
            0x40011
        } else {
            0
        }
    });
    assert_eq!(version::version().unwrap().minor, 17);
    mock::returns(0x50000);
    assert_eq!(version::version().unwrap().major, 5);
    assert_eq!(version::version().unwrap().major, 4);
    mock::reset();
    mock::answer_zero();
    assert_eq!(version::version().unwrap().major, 0);
}

#[test]
#[should_panic(expected = "mock: unscripted hypercall 17 (arguments [0, 0])")]
fn an_unscripted_call_fails_the_test() {
    fresh();
    // Nothing queued and no default: the mock refuses to make up an answer.
    let _ = version::version();
}

#[test]
#[should_panic(expected = "mock: unscripted hypercall 29")]
fn the_default_is_forgotten_on_reset() {
    fresh();
    mock::answer_zero();
    assert_eq!(sched::yield_now(), Ok(()));
    mock::reset();
    let _ = sched::yield_now();
}
