//! The SMCCC and PSCI constants of `xen_hypercall::smccc` and `psci` against Xen's own sources, read at
//! test time: the function identifiers and return codes of `xen/arch/arm/include/asm/psci.h` and
//! `asm/smccc.h` (identifiers rebuilt as `ARM_SMCCC_CALL_VAL` builds them, from the owners and shifts the
//! header defines), Xen's UID from `XEN_SMCCC_UID` in `public/arch-arm/smccc.h` (in the register order of
//! `fill_uid` in `vsmc.c`), the service's call count and revision, and the versions Xen reports.
//!
//! Needs the source: `XEN_SRC` names the directory holding `xen/` (`cargo xtask test` runs this with
//! `--ignored` in its "Xen's tables" step). The parser's negative controls run everywhere.

use std::collections::BTreeMap;

/// `#define NAME value` lines of a header whose value is one token (a number, or `-n`).
fn defines(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let mut full = line.trim_end().to_string();
        while full.ends_with('\\') {
            full.pop();
            match lines.next() {
                Some(next) => full.push_str(next.trim()),
                None => break,
            }
        }
        if let Some(rest) = full.trim_start().strip_prefix("#define ") {
            let mut it = rest.splitn(2, char::is_whitespace);
            let name = it.next().unwrap_or("").to_string();
            let value = it.next().unwrap_or("").trim().to_string();
            if !name.contains('(') {
                out.insert(name, value);
            }
        }
    }
    out
}

fn int(v: &str) -> Result<i64, String> {
    let v = v.trim().trim_start_matches('\\').trim();
    let v = v.trim_start_matches('(').trim_end_matches(')');
    let v = v
        .strip_prefix("_AC(")
        .map(|r| r.split(',').next().unwrap_or(""))
        .unwrap_or(v);
    let (neg, v) = match v.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, v),
    };
    let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => i64::from_str_radix(h, 16),
        None => v.parse(),
    }
    .map_err(|e| format!("`{v}`: {e}"))?;
    Ok(if neg { -n } else { n })
}

/// Xen's identifiers, codes and values as its sources define them.
#[derive(Debug)]
#[cfg_attr(not(feature = "mock"), allow(dead_code))]
struct Xen {
    fids: BTreeMap<&'static str, u32>,
    codes: BTreeMap<String, i32>,
    uid: [u32; 4],
    call_count: u32,
    revision: (u32, u32),
    smccc_version: (u32, u32),
    psci_version: (u32, u32),
}

fn get<'a>(d: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, String> {
    d.get(name)
        .map(String::as_str)
        .ok_or_else(|| format!("`{name}` not defined"))
}

/// The `(a, b)` of the first `NAME(a, b)` after `after` in `text`.
fn pair_after(text: &str, after: &str, name: &str) -> Result<(u32, u32), String> {
    let at = text
        .find(after)
        .ok_or_else(|| format!("`{after}` not found"))?;
    let rest = &text[at..];
    let call = rest
        .find(&format!("{name}("))
        .ok_or_else(|| format!("no `{name}(` after `{after}`"))?;
    let args = &rest[call + name.len() + 1..];
    let args = &args[..args.find(')').ok_or("unclosed")?];
    let v: Vec<&str> = args.split(',').collect();
    if v.len() != 2 {
        return Err(format!("`{name}({args})`"));
    }
    Ok((int(v[0])? as u32, int(v[1])? as u32))
}

fn read_xen(
    psci_h: &str,
    smccc_h: &str,
    public_smccc_h: &str,
    vsmc_c: &str,
    vpsci_c: &str,
) -> Result<Xen, String> {
    let s = defines(smccc_h);
    let shift = |n: &str| -> Result<u32, String> { Ok(int(get(&s, n)?)? as u32) };
    let owner = |n: &str| -> Result<u32, String> {
        Ok(int(get(&s, &format!("ARM_SMCCC_OWNER_{n}"))?)? as u32)
    };
    let fast = int(get(&s, "ARM_SMCCC_FAST_CALL")?)? as u32;
    let conv64 = int(get(&s, "ARM_SMCCC_CONV_64")?)? as u32;
    let conv32 = int(get(&s, "ARM_SMCCC_CONV_32")?)? as u32;
    let call_val = |conv: u32, owner: u32, func: u32| -> Result<u32, String> {
        Ok(fast << shift("ARM_SMCCC_TYPE_SHIFT")?
            | conv << shift("ARM_SMCCC_CONV_SHIFT")?
            | owner << shift("ARM_SMCCC_OWNER_SHIFT")?
            | func)
    };
    // The function number of a generic identifier macro: the last argument of its ARM_SMCCC_CALL_VAL.
    let func_of = |macro_name: &str| -> Result<u32, String> {
        let at = smccc_h
            .find(&format!("#define {macro_name}"))
            .ok_or_else(|| format!("`{macro_name}` not defined"))?;
        let body = &smccc_h[at..];
        let call = body
            .find("ARM_SMCCC_CALL_VAL(")
            .ok_or("no ARM_SMCCC_CALL_VAL")?;
        let body = &body[call..];
        let end = body.find(')').ok_or("unclosed")?;
        let last = body[..end].rsplit(',').next().ok_or("no arguments")?;
        Ok(int(last)? as u32)
    };
    let mut fids = BTreeMap::new();
    fids.insert(
        "SMCCC_VERSION",
        call_val(conv32, owner("ARCH")?, func_of("ARM_SMCCC_VERSION_FID")?)?,
    );
    fids.insert(
        "SMCCC_ARCH_FEATURES",
        call_val(
            conv32,
            owner("ARCH")?,
            func_of("ARM_SMCCC_ARCH_FEATURES_FID")?,
        )?,
    );
    fids.insert(
        "SMCCC_ARCH_WORKAROUND_1",
        call_val(
            conv32,
            owner("ARCH")?,
            func_of("ARM_SMCCC_ARCH_WORKAROUND_1_FID")?,
        )?,
    );
    let hyp = owner("HYPERVISOR")?;
    fids.insert(
        "HYP_CALL_COUNT",
        call_val(conv32, hyp, func_of("ARM_SMCCC_CALL_COUNT_FID(owner)")?)?,
    );
    fids.insert(
        "HYP_UID",
        call_val(conv32, hyp, func_of("ARM_SMCCC_CALL_UID_FID(owner)")?)?,
    );
    fids.insert(
        "HYP_REVISION",
        call_val(conv32, hyp, func_of("ARM_SMCCC_REVISION_FID(owner)")?)?,
    );

    let p = defines(psci_h);
    let std = owner("STANDARD")?;
    for (ours, theirs) in [
        ("PSCI_VERSION", "PSCI_0_2_FN32_PSCI_VERSION"),
        ("CPU_SUSPEND_32", "PSCI_0_2_FN32_CPU_SUSPEND"),
        ("CPU_OFF", "PSCI_0_2_FN32_CPU_OFF"),
        ("CPU_ON_32", "PSCI_0_2_FN32_CPU_ON"),
        ("AFFINITY_INFO_32", "PSCI_0_2_FN32_AFFINITY_INFO"),
        ("MIGRATE_INFO_TYPE", "PSCI_0_2_FN32_MIGRATE_INFO_TYPE"),
        ("SYSTEM_OFF", "PSCI_0_2_FN32_SYSTEM_OFF"),
        ("SYSTEM_RESET", "PSCI_0_2_FN32_SYSTEM_RESET"),
        ("FEATURES", "PSCI_1_0_FN32_PSCI_FEATURES"),
        ("CPU_SUSPEND_64", "PSCI_0_2_FN64_CPU_SUSPEND"),
        ("CPU_ON_64", "PSCI_0_2_FN64_CPU_ON"),
        ("AFFINITY_INFO_64", "PSCI_0_2_FN64_AFFINITY_INFO"),
    ] {
        let v = get(&p, theirs)?;
        let (conv, nr) = if let Some(n) = v.strip_prefix("PSCI_0_2_FN32(") {
            (conv32, n)
        } else if let Some(n) = v.strip_prefix("PSCI_0_2_FN64(") {
            (conv64, n)
        } else {
            return Err(format!("`{theirs}` is `{v}`"));
        };
        fids.insert(
            ours,
            call_val(conv, std, int(nr.trim_end_matches(')'))? as u32)?,
        );
    }
    let mut codes = BTreeMap::new();
    for (name, v) in &p {
        if let Some(code) = name.strip_prefix("PSCI_")
            && !name.starts_with("PSCI_0_2")
            && !name.starts_with("PSCI_1_0")
            && !name.starts_with("PSCI_VERSION")
            && let Ok(n) = int(v)
            && n < 0
        {
            codes.insert(code.to_string(), n as i32);
        }
    }

    // XEN_SMCCC_UID XEN_DEFINE_UUID(a, b, c, d, e1..e6): bytes a (4, big-endian), b (2), c (2), d (2),
    // e1..e6; fill_uid puts bytes 4n..4n+3 into register n, the first in the low-order bits.
    let u = defines(public_smccc_h);
    let def = get(&u, "XEN_SMCCC_UID")?;
    let args = def
        .strip_prefix("XEN_DEFINE_UUID(")
        .ok_or_else(|| format!("XEN_SMCCC_UID is `{def}`"))?
        .trim_end_matches(')');
    let a: Vec<i64> = args.split(',').map(int).collect::<Result<_, _>>()?;
    if a.len() != 10 {
        return Err(format!("XEN_DEFINE_UUID with {} arguments", a.len()));
    }
    let mut bytes: Vec<u8> = Vec::new();
    bytes.extend((a[0] as u32).to_be_bytes());
    bytes.extend((a[1] as u16).to_be_bytes());
    bytes.extend((a[2] as u16).to_be_bytes());
    bytes.extend((a[3] as u16).to_be_bytes());
    bytes.extend(a[4..].iter().map(|&b| b as u8));
    let mut uid = [0u32; 4];
    for (n, w) in uid.iter_mut().enumerate() {
        *w = u32::from_le_bytes(
            bytes[4 * n..4 * n + 4]
                .try_into()
                .map_err(|_| "short uid")?,
        );
    }
    let v = defines(vsmc_c);
    Ok(Xen {
        fids,
        codes,
        uid,
        call_count: int(get(&v, "XEN_SMCCC_FUNCTION_COUNT")?)? as u32,
        revision: (
            int(get(&u, "XEN_SMCCC_MAJOR_REVISION")?)? as u32,
            int(get(&u, "XEN_SMCCC_MINOR_REVISION")?)? as u32,
        ),
        smccc_version: pair_after(smccc_h, "#define ARM_SMCCC_VERSION_1_1", "SMCCC_VERSION")?,
        psci_version: pair_after(vpsci_c, "do_psci_0_2_version", "PSCI_VERSION")?,
    })
}

#[cfg(feature = "mock")]
mod compare {
    use super::Xen;
    use xen_hypercall::{psci, smccc};

    /// Every difference between the crate and Xen's sources.
    pub fn differences(x: &Xen) -> Vec<String> {
        let mut out = Vec::new();
        let ours: [(&str, u32); 18] = [
            ("SMCCC_VERSION", smccc::VERSION),
            ("SMCCC_ARCH_FEATURES", smccc::ARCH_FEATURES),
            ("SMCCC_ARCH_WORKAROUND_1", smccc::ARCH_WORKAROUND_1),
            ("HYP_CALL_COUNT", smccc::hypervisor::CALL_COUNT),
            ("HYP_UID", smccc::hypervisor::UID),
            ("HYP_REVISION", smccc::hypervisor::REVISION),
            ("PSCI_VERSION", psci::fid::VERSION),
            ("CPU_SUSPEND_32", psci::fid::CPU_SUSPEND_32),
            ("CPU_OFF", psci::fid::CPU_OFF),
            ("CPU_ON_32", psci::fid::CPU_ON_32),
            ("AFFINITY_INFO_32", psci::fid::AFFINITY_INFO_32),
            ("MIGRATE_INFO_TYPE", psci::fid::MIGRATE_INFO_TYPE),
            ("SYSTEM_OFF", psci::fid::SYSTEM_OFF),
            ("SYSTEM_RESET", psci::fid::SYSTEM_RESET),
            ("FEATURES", psci::fid::FEATURES),
            ("CPU_SUSPEND_64", psci::fid::CPU_SUSPEND_64),
            ("CPU_ON_64", psci::fid::CPU_ON_64),
            ("AFFINITY_INFO_64", psci::fid::AFFINITY_INFO_64),
        ];
        for (name, v) in ours {
            match x.fids.get(name) {
                Some(&theirs) if theirs == v => {}
                other => out.push(format!("{name}: ours {v:#x}, Xen's {other:x?}")),
            }
        }
        for e in psci::Error::ALL {
            let name = e.name().unwrap_or("?");
            if x.codes.get(name) != Some(&e.0) {
                out.push(format!(
                    "PSCI_{name}: ours {}, Xen's {:?}",
                    e.0,
                    x.codes.get(name)
                ));
            }
        }
        if x.codes.len() != psci::Error::ALL.len() {
            out.push(format!(
                "Xen's psci.h has {} codes: {:?}",
                x.codes.len(),
                x.codes
            ));
        }
        if x.uid != smccc::Uid::XEN.0 {
            out.push(format!(
                "UID: ours {:x?}, Xen's {:x?}",
                smccc::Uid::XEN.0,
                x.uid
            ));
        }
        // What the guest expects Xen to report (guests/src/bin/smp.rs checks the same values live).
        if x.call_count != 3
            || x.revision != (0, 1)
            || x.smccc_version != (1, 1)
            || x.psci_version != (1, 1)
        {
            out.push(format!(
                "call count {}, revision {:?}, SMCCC {:?}, PSCI {:?}; expected 3, (0, 1), (1, 1), (1, 1)",
                x.call_count, x.revision, x.smccc_version, x.psci_version
            ));
        }
        out
    }
}

#[cfg_attr(not(feature = "mock"), allow(dead_code))]
struct Sources {
    psci_h: String,
    smccc_h: String,
    public_smccc_h: String,
    vsmc_c: String,
    vpsci_c: String,
}

#[cfg_attr(not(feature = "mock"), allow(dead_code))]
fn sources() -> Sources {
    let dir = std::env::var_os("XEN_SRC")
        .expect("XEN_SRC must name Xen's source tree (the directory holding xen/)");
    let read = |p: &str| {
        let p = std::path::Path::new(&dir).join(p);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("XEN_SRC: cannot read {}: {e}", p.display()))
    };
    Sources {
        psci_h: read("xen/arch/arm/include/asm/psci.h"),
        smccc_h: read("xen/arch/arm/include/asm/smccc.h"),
        public_smccc_h: read("xen/include/public/arch-arm/smccc.h"),
        vsmc_c: read("xen/arch/arm/vsmc.c"),
        vpsci_c: read("xen/arch/arm/vpsci.c"),
    }
}

#[cfg_attr(not(feature = "mock"), allow(dead_code))]
fn parse(s: &Sources) -> Xen {
    read_xen(
        &s.psci_h,
        &s.smccc_h,
        &s.public_smccc_h,
        &s.vsmc_c,
        &s.vpsci_c,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[cfg(feature = "mock")]
#[test]
#[ignore = "needs Xen's source: cargo xtask test runs it (XEN_SRC=<dir holding xen/>)"]
fn constants_match_xens_sources() {
    let s = sources();
    let x = parse(&s);
    eprintln!(
        "compared {} identifiers, {} PSCI codes, the UID, count, revision, versions",
        x.fids.len(),
        x.codes.len()
    );
    let d = compare::differences(&x);
    assert!(d.is_empty(), "{d:#?}");

    // Negative controls: a wrong identifier, code or UID byte in Xen's text must show.
    let broken = Sources {
        psci_h: s
            .psci_h
            .replace("PSCI_0_2_FN64(3)", "PSCI_0_2_FN64(5)")
            .replace("-9", "-10"),
        smccc_h: s.smccc_h.replace("0xFF01", "0xFF02"),
        public_smccc_h: s.public_smccc_h.replace("0xa71812dc", "0xa71812dd"),
        vsmc_c: s.vsmc_c.clone(),
        vpsci_c: s.vpsci_c.clone(),
    };
    let d = compare::differences(&parse(&broken));
    for what in ["CPU_ON_64", "INVALID_ADDRESS", "HYP_UID", "UID: ours"] {
        assert!(
            d.iter().any(|l| l.contains(what)),
            "{what} not caught: {d:#?}"
        );
    }
}

#[test]
fn the_parser_reads_continued_defines_and_rejects_odd_ones() {
    let d = defines("#define A \\\n   0x10\n#define B(x) x\n#define C -3\n");
    assert_eq!(d.get("A").map(String::as_str), Some("0x10"));
    assert!(!d.contains_key("B(x)") && !d.contains_key("B"));
    assert_eq!(int(get(&d, "C").unwrap()), Ok(-3));
    assert_eq!(int("_AC(0x3F,U)"), Ok(0x3f));
    assert!(int("FOO").is_err());
    assert!(read_xen("", "", "", "", "").is_err());
}
