//! The audit on real objects (fixtures compiled for A64 at -O3, T32 at -Os, and A32 at -O0 with Thumb
//! functions mixed in, checked in under `tests/data/`), its errors on bad input, and a fuzz-style test over
//! mutated ELF bytes.

use cargo_xen::audit::{self, SiteKind};
use cargo_xen::elf::Isa;

mod common;
use common::data;

fn site_of(r: &audit::Report, name: &str) -> (Isa, Vec<Option<u64>>, u64) {
    let f = r
        .functions
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{name} not reported"));
    (
        f.isa,
        f.sites.iter().map(|s| s.number).collect(),
        f.sites.iter().map(|s| s.setup_bytes).sum(),
    )
}

#[test]
fn finds_every_site_with_its_number() {
    for (file, isa) in [
        ("fixtures-a64-O3.o", Isa::A64),
        ("fixtures-t32-Os.o", Isa::T32),
        ("fixtures-a32-O0.o", Isa::A32),
    ] {
        let r = audit::analyze(&data(file)).unwrap();
        for n in 0..=6u64 {
            let (got_isa, numbers, _) = site_of(&r, &format!("xh_const_{n}"));
            assert_eq!(got_isa, isa, "{file}");
            assert_eq!(numbers, [Some(0x20 + n)], "{file} xh_const_{n}");
            let (_, numbers, _) = site_of(&r, &format!("xh_args_{n}"));
            assert_eq!(numbers, [Some(0x30 + n)], "{file} xh_args_{n}");
        }
        // The references have no trap: they are not hypercall sites.
        assert!(
            r.functions.iter().all(|f| !f.name.starts_with("xh_ref_")),
            "{file}"
        );
        // The wrong-tag control is reported with its tag.
        let bad = r.functions.iter().find(|f| f.name == "xh_bad_tag").unwrap();
        assert_eq!(bad.sites[0].kind, SiteKind::Inline { tag: 0xEA0 });
    }
    // Thumb functions inside an A32 object are decoded as Thumb.
    let r = audit::analyze(&data("fixtures-a32-O0.o")).unwrap();
    let (isa, numbers, _) = site_of(&r, "xh_t32attr_const_3");
    assert_eq!((isa, numbers), (Isa::T32, vec![Some(0x23)]));
}

#[test]
fn setup_bytes_count_the_register_moves() {
    // xh_const_1 calls number 0x21 = 33 (physdev_op, declared arity 2): its inputs are the number register
    // and two argument registers, of which the site writes the number and one argument.
    // xh_const_6 calls 0x26 = 38, not a Xen number: the audit counts the number register and five argument
    // registers (Xen reads at most five), so the sixth argument's move is not counted.
    let r = audit::analyze(&data("fixtures-a64-O3.o")).unwrap();
    assert_eq!(site_of(&r, "xh_const_1").2, 8); // mov w16, #33 ; mov w0, #65
    assert_eq!(site_of(&r, "xh_const_6").2, 24); // mov w16 ; mov w0 … w4
    // T32 -Os: mov.w r12 (4 bytes) + movs r0 … r4 (2 bytes each).
    let r = audit::analyze(&data("fixtures-t32-Os.o")).unwrap();
    assert_eq!(site_of(&r, "xh_const_6").2, 14);
}

#[test]
fn json_has_the_totals() {
    let r = audit::analyze(&data("fixtures-a64-O3.o")).unwrap();
    let j: serde_json::Value = serde_json::from_str(&audit::render_json(&r)).unwrap();
    assert_eq!(j["version"], 1);
    let sites: usize = r.callers().map(|f| f.sites.len()).sum();
    assert!(sites >= 9, "{sites}");
    assert_eq!(j["files"][0]["totals"]["sites"], sites);
    let listed: usize = j["files"][0]["functions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["stub"].is_null())
        .map(|f| f["sites"].as_array().unwrap().len())
        .sum();
    assert_eq!(listed, sites);
    let table = audit::render_table(&r);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("total") && l.contains(&sites.to_string()))
    );
}

#[test]
fn bad_input_is_a_one_line_error() {
    let err = |bytes: &[u8]| audit::analyze(bytes).unwrap_err().to_string();
    assert!(err(b"").contains("not an ELF"));
    assert!(err(b"#!/bin/sh\necho hi\n").contains("not an ELF"));
    let host = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    assert!(err(&host).contains("unsupported architecture"));
    let elf = data("fixtures-a64-O3.o");
    for cut in [16, 64, 200, 1000, elf.len() - 1] {
        let e = audit::analyze(&elf[..cut]);
        assert!(e.is_err(), "truncated at {cut} accepted");
        assert!(!e.unwrap_err().to_string().contains('\n'));
    }
    assert!(err(&data("stripped-a64.o")).contains("no function symbols"));
}

#[test]
fn mutated_elf_bytes_never_panic() {
    let originals = [
        data("fixtures-a64-O3.o"),
        data("fixtures-t32-Os.o"),
        data("fixtures-a32-O0.o"),
    ];
    let (ok, err) = common::audit_mutations(&originals, 0x9E37_79B9_7F4A_7C15);
    // Both outcomes occur: the mutations reach the parser and the decoder.
    assert!(ok > 100 && err > 100, "ok {ok}, err {err}");
}
