//! The x86-64 audit on C compiled with clang against Linux-shaped hypercalls (`tests/data/linux-x86.c`,
//! whose header lists the expected sites; built as `linux-x86-Os.o`, also in an archive `linux-x86.a`), its
//! errors on bad input, and a fuzz-style test over mutated x86-64 ELF bytes.

use cargo_xen::audit::{self, Arch, Limits, SiteKind, StubKind};
use cargo_xen::x86::Trap;

mod common;
use common::data;

/// The names and kinds of the sites of `func`.
fn sites(r: &audit::Report, func: &str) -> Vec<(String, SiteKind)> {
    r.functions
        .iter()
        .find(|f| f.name == func)
        .unwrap_or_else(|| panic!("{func} not reported"))
        .sites
        .iter()
        .map(|s| (s.name(), s.kind.clone()))
        .collect()
}

fn named(v: &[(&str, SiteKind)]) -> Vec<(String, SiteKind)> {
    v.iter().map(|(n, k)| (n.to_string(), k.clone())).collect()
}

#[test]
fn finds_every_site_of_the_linux_shaped_c() {
    for file in ["linux-x86-Os.o", "linux-x86.a"] {
        let r = audit::analyze(&data(file)).unwrap();
        assert!(
            r.functions
                .iter()
                .all(|f| f.arch == Arch::X86_64 && f.isa_name() == "x64")
        );
        let page = SiteKind::Page;
        for (func, want) in [
            (
                "xh_evtchn_send",
                named(&[("event_channel_op/send", page.clone())]),
            ),
            ("xh_yield", named(&[("sched_op/yield", page.clone())])),
            (
                "xh_console_write",
                named(&[("console_io/write", page.clone())]),
            ),
            (
                "xh_work",
                named(&[
                    ("xen_version/version", page.clone()),
                    ("event_channel_op/close", page.clone()),
                    ("sched_op/yield", page.clone()),
                ]),
            ),
            (
                "xh_vmmcall_send",
                named(&[("event_channel_op/send", SiteKind::Trap(Trap::Vmmcall))]),
            ),
            (
                "xh_syscall_yield",
                named(&[("sched_op/yield", SiteKind::Trap(Trap::Syscall))]),
            ),
            (
                "xh_stub_send",
                named(&[("event_channel_op/send", SiteKind::PerCall)]),
            ),
            (
                "xh_generic_query",
                named(&[("grant_table_op/query_size", SiteKind::Outline { arity: 3 })]),
            ),
        ] {
            assert_eq!(sites(&r, func), want, "{file}: {func}");
        }
        // The stubs, recognised by their code (their names say nothing).
        let stub = |name: &str| {
            r.functions
                .iter()
                .find(|f| f.name == name)
                .and_then(|f| f.stub)
        };
        assert_eq!(stub("evtchn_entry"), Some(StubKind::PerCall { number: 32 }));
        assert_eq!(stub("call_xen"), Some(StubKind::Generic { arity: 3 }));
        // Eight callers with ten sites, two stubs of 9 and 15 bytes (`mov $32,%eax; vmmcall; ret` and
        // four `mov`s, `syscall`, `ret`).
        let t = r.totals();
        assert_eq!(
            (t.functions, t.sites, r.stub_bytes()),
            (8, 10, 24),
            "{file}"
        );
    }
}

#[test]
fn setup_bytes_count_the_register_moves() {
    let r = audit::analyze(&data("linux-x86-Os.o")).unwrap();
    let setup = |func: &str| -> Vec<u64> {
        r.functions
            .iter()
            .find(|f| f.name == func)
            .unwrap()
            .sites
            .iter()
            .map(|s| s.setup_bytes)
            .collect()
    };
    // mov $0x1d,%eax (5) ; xor %edi,%edi (2) ; xor %esi,%esi (2): number and both arguments.
    assert_eq!(setup("xh_syscall_yield"), [9]);
    // mov $0x4,%edi (5); `lea` of the struct's address is address arithmetic, not a move.
    assert_eq!(setup("xh_evtchn_send"), [5]);
    // console_io through the page: mov %rdi,%rdx (3) ; xor %edi,%edi (2); `movslq` is a conversion.
    assert_eq!(setup("xh_console_write"), [5]);
    // The generic stub takes four C arguments: mov $0x14,%edi ; mov $0x6,%esi ; mov $0x1,%ecx (5 each).
    assert_eq!(setup("xh_generic_query"), [15]);
}

#[test]
fn json_diff_and_limits() {
    let r = audit::analyze(&data("linux-x86-Os.o")).unwrap();
    let j: serde_json::Value = serde_json::from_str(&audit::render_json(&r)).unwrap();
    assert_eq!(j["version"], 1);
    let funcs = j["files"][0]["functions"].as_array().unwrap();
    let f = |name: &str| funcs.iter().find(|f| f["name"] == name).unwrap();
    assert_eq!(f("xh_vmmcall_send")["isa"], "x64");
    let s = &f("xh_vmmcall_send")["sites"][0];
    assert_eq!(
        (&s["kind"], &s["trap"], &s["number"]),
        (&"inline".into(), &"vmmcall".into(), &32.into())
    );
    let s = &f("xh_yield")["sites"][0];
    assert_eq!(
        (&s["kind"], &s["number"], &s["first_arg"]),
        (&"hypercall_page".into(), &29.into(), &0.into())
    );
    assert_eq!(f("call_xen")["stub"]["kind"], "generic");
    assert_eq!(j["files"][0]["totals"]["sites"], 10);
    // The table.
    let table = audit::render_table(&r);
    assert!(table.contains("event_channel_op/send→page"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("xh_work") && l.contains(" x64 ")),
        "{table}"
    );
    // --diff against the report without one function: that function's line and the totals.
    let mut less = r.clone();
    less.functions.retain(|f| f.name != "xh_work");
    let d = audit::diff(&r, &less);
    let names: Vec<&str> = d.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["xh_work", "total"]);
    assert_eq!(d[1].sites, (10, 7));
    // A limit at the worst site passes, one below fails.
    let at = Limits {
        setup_per_site: Some(15),
        ..Limits::default()
    };
    assert!(at.check(&r).is_empty());
    let below = Limits {
        setup_per_site: Some(14),
        ..Limits::default()
    };
    let v = below.check(&r);
    assert!(
        v.len() == 1 && v[0].contains("grant_table_op/query_size in xh_generic_query"),
        "{v:?}"
    );
}

#[test]
fn bad_input_is_a_one_line_error() {
    let err = |bytes: &[u8]| audit::analyze(bytes).unwrap_err().to_string();
    // A hosted x86-64 program: its `syscall`s are its OS's.
    let host = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let e = err(&host);
    assert!(
        e.contains("unsupported architecture") && e.contains("hosted"),
        "{e}"
    );
    let elf = data("linux-x86-Os.o");
    for cut in [20, 64, 200, 1000, elf.len() - 1] {
        let e = audit::analyze(&elf[..cut]);
        assert!(e.is_err(), "truncated at {cut} accepted");
        assert!(!e.unwrap_err().to_string().contains('\n'));
    }
    assert!(err(&data("stripped-x86.o")).contains("no function symbols"));
}

#[test]
fn mutated_x86_elf_bytes_never_panic() {
    let originals = [data("linux-x86-Os.o"), data("linux-x86.a")];
    let (ok, err) = common::audit_mutations(&originals, 0x2545_F491_4F6C_DD1D);
    assert!(ok > 100 && err > 100, "ok {ok}, err {err}");
}
