//! `xen::nr` against Xen's own tables: the arity of every hypercall against the `arm`, `pv64` and `hvm64`
//! columns of `xen/include/hypercall-defs.c` (with each prototype's argument count), and every number
//! against `#define __HYPERVISOR_<name> <n>` in `xen/include/public/xen.h`, all read from Xen's source tree
//! at test time. x86 names two of the architecture-specific numbers (`mca` is `arch_0`,
//! `paging_domctl_cont` is `arch_1`): those aliases are read from Xen's x86 headers too.
//!
//! The comparison needs the source: `XEN_SRC` names the directory holding `xen/` (`cargo xtask test` fetches
//! Debian's `xen` source package and runs this with `--ignored`). The parser's own tests run everywhere.

use std::collections::BTreeMap;

/// One column of the table: hypercall name → the argument count of that column's handler (`None`: `-`).
pub type Column = BTreeMap<String, Option<usize>>;

/// What `hypercall-defs.c` declares, per hypercall of the table, for the columns this crate uses.
#[derive(Debug, PartialEq, Eq)]
pub struct Defs {
    /// The `arm` column.
    pub arm: Column,
    /// The `pv64` column: 64-bit PV guests on x86.
    pub pv64: Column,
    /// The `hvm64` column: 64-bit HVM and PVH guests on x86.
    pub hvm64: Column,
}

/// The columns read, by their name in the `table:` line.
const COLUMNS: [&str; 3] = ["arm", "pv64", "hvm64"];

/// Removes `/* … */` comments (which in `hypercall-defs.c` also hold examples of the syntax).
fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        match rest[start + 2..].find("*/") {
            Some(end) => rest = &rest[start + 2 + end + 2..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// Reads `hypercall-defs.c`. Preprocessor lines are ignored (every conditional branch is read); a prefix
/// `PREFIX_x` counts as `x` (what it is where a column names it: `hvm` and `compat` on x86, `dep` and
/// `do_arm` on ARM). A name with several table rows (alternative `#if` branches) takes, per column, the
/// row whose entry is not `-`; two different entries are an error.
pub fn parse_defs(text: &str) -> Result<Defs, String> {
    let text = strip_comments(text);
    let mut prefixes: Vec<String> = Vec::new();
    // (prefix, name) → argument count.
    let mut protos: BTreeMap<(String, String), usize> = BTreeMap::new();
    // The field index of each of `COLUMNS`, once the `table:` line is read.
    let mut cols: Option<[usize; 3]> = None;
    let mut rows: [BTreeMap<String, Option<String>>; 3] = Default::default();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at = || format!("hypercall-defs.c line {}: `{line}`", n + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(names) = line.strip_prefix("table:") {
            let names: Vec<&str> = names.split_whitespace().collect();
            let mut idx = [0; 3];
            for (i, c) in COLUMNS.iter().enumerate() {
                idx[i] = 1 + names
                    .iter()
                    .position(|n| n == c)
                    .ok_or_else(|| format!("{}: no `{c}` column", at()))?;
            }
            cols = Some(idx);
            continue;
        }
        if let Some(idx) = cols {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let name = fields[0].to_string();
            for (i, &col) in idx.iter().enumerate() {
                let entry = fields
                    .get(col)
                    .ok_or_else(|| format!("{}: no `{}` entry", at(), COLUMNS[i]))?;
                let prefix = entry.split(':').next().unwrap_or(entry);
                let prefix = (prefix != "-").then(|| prefix.to_string());
                match (rows[i].get(&name), &prefix) {
                    (Some(Some(old)), Some(new)) if old != new => {
                        return Err(format!("{}: {name} has two {} entries", at(), COLUMNS[i]));
                    }
                    (Some(Some(_)), _) => {}
                    _ => {
                        rows[i].insert(name.clone(), prefix);
                    }
                }
            }
            continue;
        }
        if let Some(list) = line.strip_prefix("prefix:") {
            prefixes = list
                .split_whitespace()
                .map(|p| p.strip_prefix("PREFIX_").unwrap_or(p).to_string())
                .collect();
            continue;
        }
        if ["rettype:", "caller:", "handle:", "defhandle:"]
            .iter()
            .any(|d| line.starts_with(d))
        {
            continue;
        }
        let (name, args) = line
            .split_once('(')
            .and_then(|(name, rest)| Some((name.trim(), rest.strip_suffix(')')?)))
            .ok_or_else(|| format!("{}: not a prototype", at()))?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{}: not a prototype", at()));
        }
        let args = args.trim();
        let count = if args.is_empty() || args == "void" {
            0
        } else {
            args.split(',').count()
        };
        if prefixes.is_empty() {
            return Err(format!("{}: a prototype before any `prefix:` line", at()));
        }
        for p in &prefixes {
            let key = (p.clone(), name.to_string());
            if let Some(old) = protos.insert(key, count)
                && old != count
            {
                return Err(format!(
                    "{}: {p}_{name} declared with {old} and {count} arguments",
                    at()
                ));
            }
        }
    }
    if cols.is_none() {
        return Err("hypercall-defs.c: no `table:` line".into());
    }
    let mut out: [Column; 3] = Default::default();
    for (i, rows) in rows.into_iter().enumerate() {
        for (name, prefix) in rows {
            let arity = match prefix {
                None => None,
                Some(p) => Some(*protos.get(&(p.clone(), name.clone())).ok_or_else(|| {
                    format!(
                        "hypercall-defs.c: the {} column calls {p}_{name}, which has no prototype",
                        COLUMNS[i]
                    )
                })?),
            };
            out[i].insert(name, arity);
        }
    }
    let [arm, pv64, hvm64] = out;
    Ok(Defs { arm, pv64, hvm64 })
}

/// Reads `#define __HYPERVISOR_<name> __HYPERVISOR_<other>` lines (x86's names for `arch_N`): name → other.
pub fn parse_aliases(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("#define") {
            continue;
        }
        let (Some(name), Some(other)) = (
            words.next().and_then(|w| w.strip_prefix("__HYPERVISOR_")),
            words.next().and_then(|w| w.strip_prefix("__HYPERVISOR_")),
        ) else {
            continue;
        };
        if words.next().is_none() {
            out.insert(name.to_string(), other.to_string());
        }
    }
    out
}

/// Reads `#define __HYPERVISOR_<name> <number>` lines of `xen.h` (aliases to other names are skipped).
pub fn parse_numbers(text: &str) -> Result<BTreeMap<String, usize>, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("#define") {
            continue;
        }
        let Some(name) = words.next().and_then(|w| w.strip_prefix("__HYPERVISOR_")) else {
            continue;
        };
        let Some(Ok(number)) = words.next().map(str::parse::<usize>) else {
            continue;
        };
        if let Some(old) = out.insert(name.to_string(), number)
            && old != number
        {
            return Err(format!(
                "xen.h: __HYPERVISOR_{name} is both {old} and {number}"
            ));
        }
    }
    if out.is_empty() {
        return Err("xen.h: no `#define __HYPERVISOR_<name> <number>` line".into());
    }
    Ok(out)
}

/// Compares a table of `(number, name)` and an arity function with one column of Xen's table (named
/// `what` in the messages; its names mapped through `aliases` first); returns every difference.
pub fn compare(
    all: &[(usize, &str)],
    arity: impl Fn(usize) -> Option<usize>,
    what: &str,
    column: &Column,
    aliases: &BTreeMap<String, String>,
    numbers: &BTreeMap<String, usize>,
) -> Vec<String> {
    let column: Column = column
        .iter()
        .map(|(n, a)| (aliases.get(n).unwrap_or(n).clone(), *a))
        .collect();
    let mut problems = Vec::new();
    for &(nr, name) in all {
        match numbers.get(name) {
            Some(&n) if n == nr => {}
            Some(&n) => problems.push(format!("{name}: number {nr} here, {n} in xen.h")),
            None => problems.push(format!("{name}: not in xen.h")),
        }
        let xen = column.get(name).copied().flatten();
        if arity(nr) != xen {
            problems.push(format!(
                "{name} ({nr}): {what} arity {:?} here, {:?} in hypercall-defs.c",
                arity(nr),
                xen
            ));
        }
    }
    for name in numbers.keys() {
        if !all.iter().any(|&(_, n)| n == name) {
            problems.push(format!("{name}: in xen.h, missing here"));
        }
    }
    for (name, a) in &column {
        if a.is_some() && !all.iter().any(|&(_, n)| n == name) {
            problems.push(format!(
                "{name}: has a {what} handler in hypercall-defs.c, missing here"
            ));
        }
    }
    problems
}

const EXCERPT: &str = "\
/*
 * prefix: <prefix> ...
 * fn()
 */
#ifdef CONFIG_ARM
#define PREFIX_do_arm do_arm
#endif
rettype: compat int
handle: uint unsigned int
prefix: do PREFIX_hvm PREFIX_do_arm
physdev_op(int cmd, void *arg)
prefix: do PREFIX_hvm
memory_op(unsigned long cmd, void *arg)
prefix: compat
memory_op(unsigned int cmd, void *arg)
prefix: do
console_io(unsigned int cmd, unsigned int count, char *buffer)
iret()
hypfs_op(unsigned int cmd, const char *arg1, unsigned long arg2, void *arg3, unsigned long arg4)
mca(xen_mc_t *u_xen_mc)
mmu_update(mmu_update_t *ureqs, unsigned int count, unsigned int *pdone, unsigned int foreigndom)
table:                             pv32     pv64     hvm32    hvm64    arm
memory_op                          compat   do       hvm      hvm      do
console_io                         do       do       do       do       do:1
physdev_op                         compat   do       hvm      hvm      do_arm
iret                               compat:1 do:1     -        -        -
mmu_update                         do:1     do:1     -        -        -
#ifdef CONFIG_HYPFS
hypfs_op                           do       do       do       do       do
#elif defined(CONFIG_OTHER)
hypfs_op                           do       do       do       do       -
#endif
mca                                do       do       -        -        -
";

const XEN_H: &str = "\
#define __HYPERVISOR_mmu_update            1
#define __HYPERVISOR_memory_op            12
#define __HYPERVISOR_console_io           18
#define __HYPERVISOR_iret                 23 /* x86 only */
#define __HYPERVISOR_physdev_op           33
#define __HYPERVISOR_hypfs_op             42
#define __HYPERVISOR_arch_0               48
#undef __HYPERVISOR_physdev_op
#define __HYPERVISOR_physdev_op __HYPERVISOR_physdev_op_compat
";

const XEN_MCA_H: &str = "#define __HYPERVISOR_mca __HYPERVISOR_arch_0\n";

/// The hypercalls of `EXCERPT` and their numbers in `XEN_H`, as a table here would list them.
const EXCERPT_NUMBERS: [(usize, &str); 7] = [
    (1, "mmu_update"),
    (12, "memory_op"),
    (18, "console_io"),
    (23, "iret"),
    (33, "physdev_op"),
    (42, "hypfs_op"),
    (48, "arch_0"),
];

fn column(entries: &[(&str, Option<usize>)]) -> Column {
    entries.iter().map(|&(n, a)| (n.to_string(), a)).collect()
}

#[test]
fn parser_reads_a_hand_written_excerpt() {
    let defs = parse_defs(EXCERPT).unwrap();
    // ARM and HVM64 have no PV-only handlers: the same column.
    let no_pv_only = column(&[
        ("memory_op", Some(2)),
        ("console_io", Some(3)),
        ("physdev_op", Some(2)),
        ("iret", None),
        ("mmu_update", None),
        ("hypfs_op", Some(5)),
        ("mca", None),
    ]);
    assert_eq!(defs.arm, no_pv_only);
    assert_eq!(
        defs.pv64,
        column(&[
            ("memory_op", Some(2)),
            ("console_io", Some(3)),
            ("physdev_op", Some(2)),
            ("iret", Some(0)),
            ("mmu_update", Some(4)),
            ("hypfs_op", Some(5)),
            ("mca", Some(1)),
        ])
    );
    assert_eq!(defs.hvm64, no_pv_only);
    let numbers = parse_numbers(XEN_H).unwrap();
    assert_eq!(numbers.get("iret"), Some(&23));
    assert_eq!(numbers.len(), 7);
    assert_eq!(
        parse_aliases(XEN_MCA_H),
        [("mca".to_string(), "arch_0".to_string())].into()
    );
}

#[test]
fn comparison_catches_a_wrong_arity_and_a_wrong_number() {
    let defs = parse_defs(EXCERPT).unwrap();
    let numbers = parse_numbers(XEN_H).unwrap();
    let none = BTreeMap::new();
    let right = EXCERPT_NUMBERS;
    let arm = |nr: usize| match nr {
        12 | 33 => Some(2),
        18 => Some(3),
        42 => Some(5),
        _ => None,
    };
    assert_eq!(
        compare(&right, arm, "ARM", &defs.arm, &none, &numbers),
        Vec::<String>::new()
    );
    // Deliberately wrong: console_io declared with 2 arguments, hypfs_op numbered 43.
    let wrong_arity = |nr: usize| if nr == 18 { Some(2) } else { arm(nr) };
    assert_eq!(
        compare(&right, wrong_arity, "ARM", &defs.arm, &none, &numbers),
        vec!["console_io (18): ARM arity Some(2) here, Some(3) in hypercall-defs.c"]
    );
    let mut wrong_number = right;
    wrong_number[5] = (43, "hypfs_op");
    let p = compare(&wrong_number, arm, "ARM", &defs.arm, &none, &numbers);
    assert!(
        p.contains(&"hypfs_op: number 43 here, 42 in xen.h".to_string()),
        "{p:?}"
    );
}

#[test]
fn the_x86_columns_are_compared_with_their_aliases() {
    let defs = parse_defs(EXCERPT).unwrap();
    let numbers = parse_numbers(XEN_H).unwrap();
    let aliases = parse_aliases(XEN_MCA_H);
    let all = EXCERPT_NUMBERS;
    let pv64 = |nr: usize| match nr {
        1 => Some(4),
        12 | 33 => Some(2),
        18 => Some(3),
        23 => Some(0),
        42 => Some(5),
        48 => Some(1),
        _ => None,
    };
    let hvm64 = |nr: usize| match nr {
        1 | 23 | 48 => None,
        _ => pv64(nr),
    };
    assert_eq!(
        compare(&all, pv64, "PV64", &defs.pv64, &aliases, &numbers),
        Vec::<String>::new()
    );
    assert_eq!(
        compare(&all, hvm64, "HVM64", &defs.hvm64, &aliases, &numbers),
        Vec::<String>::new()
    );
    // Deliberately wrong: the HVM64 table used for a PV guest, mmu_update with 3 arguments.
    let p = compare(&all, hvm64, "PV64", &defs.pv64, &aliases, &numbers);
    assert_eq!(
        p,
        vec![
            "mmu_update (1): PV64 arity None here, Some(4) in hypercall-defs.c",
            "iret (23): PV64 arity None here, Some(0) in hypercall-defs.c",
            "arch_0 (48): PV64 arity None here, Some(1) in hypercall-defs.c",
        ]
    );
    let three = |nr: usize| if nr == 1 { Some(3) } else { pv64(nr) };
    assert_eq!(
        compare(&all, three, "PV64", &defs.pv64, &aliases, &numbers),
        vec!["mmu_update (1): PV64 arity Some(3) here, Some(4) in hypercall-defs.c"]
    );
    // Without the alias, `mca` is a handler nothing here names.
    let p = compare(&all, pv64, "PV64", &defs.pv64, &BTreeMap::new(), &numbers);
    assert!(
        p.contains(&"mca: has a PV64 handler in hypercall-defs.c, missing here".to_string()),
        "{p:?}"
    );
}

#[test]
fn parser_rejects_malformed_input() {
    assert!(parse_defs("prefix: do\nfoo(int a)\n").is_err(), "no table");
    assert!(
        parse_defs("foo(int a)\ntable: pv64 hvm64 arm\nfoo do do do\n").is_err(),
        "no prefix"
    );
    let e =
        parse_defs("prefix: do\nfoo(int a)\ntable: pv64 hvm64 arm\nbar do do do\n").unwrap_err();
    assert!(e.contains("do_bar"), "{e}");
    let e = parse_defs("prefix: do\nfoo(int a)\ntable: pv arm\nfoo do do\n").unwrap_err();
    assert!(e.contains("no `pv64` column"), "{e}");
    assert!(parse_numbers("nothing here\n").is_err());
}

/// Reads Xen's source from `XEN_SRC` and compares. Fails when `XEN_SRC` is unset or wrong.
#[cfg(feature = "mock")]
#[test]
#[ignore = "needs Xen's source: cargo xtask test runs it (XEN_SRC=<dir holding xen/>)"]
fn nr_matches_xens_own_tables() {
    use xen_hypercall::xen::nr;
    let dir = std::env::var_os("XEN_SRC")
        .expect("XEN_SRC must name Xen's source tree (the directory holding xen/)");
    let dir = std::path::Path::new(&dir);
    let read = |rel: &str| {
        let p = dir.join(rel);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("XEN_SRC: cannot read {}: {e}", p.display()))
    };
    let defs = parse_defs(&read("xen/include/hypercall-defs.c")).unwrap();
    let numbers = parse_numbers(&read("xen/include/public/xen.h")).unwrap();
    let mut aliases = parse_aliases(&read("xen/include/public/arch-x86/xen-mca.h"));
    aliases.extend(parse_aliases(&read("xen/arch/x86/include/asm/hypercall.h")));
    // Sanity: what this project's checks rely on, read from Xen's files.
    assert_eq!(defs.arm.get("dm_op"), Some(&Some(3)));
    assert_eq!(defs.pv64.get("mmu_update"), Some(&Some(4)));
    assert_eq!(defs.hvm64.get("mmu_update"), Some(&None));
    assert_eq!(aliases.get("mca").map(String::as_str), Some("arch_0"));
    assert_eq!(
        aliases.get("paging_domctl_cont").map(String::as_str),
        Some("arch_1")
    );
    assert!(
        defs.arm.len() >= 40,
        "{} hypercalls in the table",
        defs.arm.len()
    );
    let none = BTreeMap::new();
    let mut problems = compare(&nr::ALL, nr::arm_arity, "ARM", &defs.arm, &none, &numbers);
    problems.extend(compare(
        &nr::ALL,
        nr::x86_pv64_arity,
        "PV64",
        &defs.pv64,
        &aliases,
        &numbers,
    ));
    problems.extend(compare(
        &nr::ALL,
        nr::x86_hvm64_arity,
        "HVM64",
        &defs.hvm64,
        &aliases,
        &numbers,
    ));
    // The hypercall page serves PV and PVH guests from one ELF (`nr::arity` takes either column): the
    // two must agree wherever both declare a call.
    for &(n, name) in nr::ALL.iter() {
        if let (Some(p), Some(h)) = (nr::x86_pv64_arity(n), nr::x86_hvm64_arity(n))
            && p != h
        {
            problems.push(format!("{name}: PV64 arity {p}, HVM64 arity {h}"));
        }
    }
    assert!(
        problems.is_empty(),
        "xen::nr differs from Xen's tables:\n  {}",
        problems.join("\n  ")
    );
    println!(
        "{} hypercalls compared with {} and {}: numbers, ARM, PV64 and HVM64 arities agree",
        nr::ALL.len(),
        dir.join("xen/include/hypercall-defs.c").display(),
        dir.join("xen/include/public/xen.h").display()
    );
}

#[cfg(not(feature = "mock"))]
#[test]
#[ignore = "needs the mock backend (xen::nr on the host) and Xen's source: cargo xtask test runs it"]
fn nr_matches_xens_own_tables() {}
