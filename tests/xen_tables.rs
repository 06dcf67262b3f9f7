//! `xen::nr` against Xen's own tables: the ARM arity of every hypercall against the `arm` column of
//! `xen/include/hypercall-defs.c` (with each prototype's argument count), and every number against
//! `#define __HYPERVISOR_<name> <n>` in `xen/include/public/xen.h`, both read from Xen's source tree at
//! test time.
//!
//! The comparison needs the source: `XEN_SRC` names the directory holding `xen/` (`cargo xtask test` fetches
//! Debian's `xen` source package and runs this with `--ignored`). The parser's own tests run everywhere.

use std::collections::BTreeMap;

/// What `hypercall-defs.c` declares: per hypercall, the ARM handler's argument count (`None`: `-` in the
/// `arm` column), for every hypercall of the table.
#[derive(Debug, PartialEq, Eq)]
pub struct Defs {
    /// Hypercall name → ARM arity.
    pub arm: BTreeMap<String, Option<usize>>,
}

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
/// `PREFIX_x` counts as `x` (what it is on ARM, where the `arm` column names one of them). A name with
/// several table rows (alternative `#if` branches) takes the row whose `arm` entry is not `-`.
pub fn parse_defs(text: &str) -> Result<Defs, String> {
    let text = strip_comments(text);
    let mut prefixes: Vec<String> = Vec::new();
    // (prefix, name) → argument count.
    let mut protos: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut arm_col: Option<usize> = None;
    let mut rows: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at = || format!("hypercall-defs.c line {}: `{line}`", n + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(cols) = line.strip_prefix("table:") {
            let cols: Vec<&str> = cols.split_whitespace().collect();
            let i = cols
                .iter()
                .position(|c| *c == "arm")
                .ok_or_else(|| format!("{}: no `arm` column", at()))?;
            arm_col = Some(i + 1);
            continue;
        }
        if let Some(col) = arm_col {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let entry = fields
                .get(col)
                .ok_or_else(|| format!("{}: no `arm` entry", at()))?;
            let prefix = entry.split(':').next().unwrap_or(entry);
            let prefix = (prefix != "-").then(|| prefix.to_string());
            let name = fields[0].to_string();
            match (rows.get(&name), &prefix) {
                (Some(Some(old)), Some(new)) if old != new => {
                    return Err(format!("{}: {name} has two arm entries", at()));
                }
                (Some(Some(_)), _) => {}
                _ => {
                    rows.insert(name, prefix);
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
    if arm_col.is_none() {
        return Err("hypercall-defs.c: no `table:` line".into());
    }
    let mut arm = BTreeMap::new();
    for (name, prefix) in rows {
        let arity = match prefix {
            None => None,
            Some(p) => Some(*protos.get(&(p.clone(), name.clone())).ok_or_else(|| {
                format!("hypercall-defs.c: the arm column calls {p}_{name}, which has no prototype")
            })?),
        };
        arm.insert(name, arity);
    }
    Ok(Defs { arm })
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

/// Compares a table of `(number, name)` and an arity function with Xen's; returns every difference.
pub fn compare(
    all: &[(usize, &str)],
    arity: impl Fn(usize) -> Option<usize>,
    defs: &Defs,
    numbers: &BTreeMap<String, usize>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for &(nr, name) in all {
        match numbers.get(name) {
            Some(&n) if n == nr => {}
            Some(&n) => problems.push(format!("{name}: number {nr} here, {n} in xen.h")),
            None => problems.push(format!("{name}: not in xen.h")),
        }
        let xen = defs.arm.get(name).copied().flatten();
        if arity(nr) != xen {
            problems.push(format!(
                "{name} ({nr}): ARM arity {:?} here, {:?} in hypercall-defs.c",
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
    for (name, a) in &defs.arm {
        if a.is_some() && !all.iter().any(|&(_, n)| n == name) {
            problems.push(format!(
                "{name}: has an ARM handler in hypercall-defs.c, missing here"
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
prefix: compat
memory_op(unsigned int cmd, void *arg)
prefix: do
memory_op(unsigned long cmd, void *arg)
console_io(unsigned int cmd, unsigned int count, char *buffer)
iret()
hypfs_op(unsigned int cmd, const char *arg1, unsigned long arg2, void *arg3, unsigned long arg4)
table:                             pv32     pv64     hvm32    hvm64    arm
memory_op                          compat   do       hvm      hvm      do
console_io                         do       do       do       do       do:1
physdev_op                         compat   do       hvm      hvm      do_arm
iret                               compat:1 do:1     -        -        -
#ifdef CONFIG_HYPFS
hypfs_op                           do       do       do       do       do
#elif defined(CONFIG_OTHER)
hypfs_op                           do       do       do       do       -
#endif
";

const XEN_H: &str = "\
#define __HYPERVISOR_memory_op            12
#define __HYPERVISOR_console_io           18
#define __HYPERVISOR_iret                 23 /* x86 only */
#define __HYPERVISOR_physdev_op           33
#define __HYPERVISOR_hypfs_op             42
#undef __HYPERVISOR_physdev_op
#define __HYPERVISOR_physdev_op __HYPERVISOR_physdev_op_compat
";

#[test]
fn parser_reads_a_hand_written_excerpt() {
    let defs = parse_defs(EXCERPT).unwrap();
    let want: BTreeMap<String, Option<usize>> = [
        ("memory_op", Some(2)),
        ("console_io", Some(3)),
        ("physdev_op", Some(2)),
        ("iret", None),
        ("hypfs_op", Some(5)),
    ]
    .into_iter()
    .map(|(n, a)| (n.to_string(), a))
    .collect();
    assert_eq!(defs.arm, want);
    let numbers = parse_numbers(XEN_H).unwrap();
    assert_eq!(numbers.get("iret"), Some(&23));
    assert_eq!(numbers.len(), 5);
}

#[test]
fn comparison_catches_a_wrong_arity_and_a_wrong_number() {
    let defs = parse_defs(EXCERPT).unwrap();
    let numbers = parse_numbers(XEN_H).unwrap();
    let right: [(usize, &str); 5] = [
        (12, "memory_op"),
        (18, "console_io"),
        (23, "iret"),
        (33, "physdev_op"),
        (42, "hypfs_op"),
    ];
    let arity = |nr: usize| match nr {
        12 | 33 => Some(2),
        18 => Some(3),
        42 => Some(5),
        _ => None,
    };
    assert_eq!(
        compare(&right, arity, &defs, &numbers),
        Vec::<String>::new()
    );
    // Deliberately wrong: console_io declared with 2 arguments, hypfs_op numbered 43.
    let wrong_arity = |nr: usize| if nr == 18 { Some(2) } else { arity(nr) };
    assert_eq!(
        compare(&right, wrong_arity, &defs, &numbers),
        vec!["console_io (18): ARM arity Some(2) here, Some(3) in hypercall-defs.c"]
    );
    let mut wrong_number = right;
    wrong_number[4] = (43, "hypfs_op");
    let p = compare(&wrong_number, arity, &defs, &numbers);
    assert!(
        p.contains(&"hypfs_op: number 43 here, 42 in xen.h".to_string()),
        "{p:?}"
    );
}

#[test]
fn parser_rejects_malformed_input() {
    assert!(parse_defs("prefix: do\nfoo(int a)\n").is_err(), "no table");
    assert!(
        parse_defs("foo(int a)\ntable: arm\nfoo do\n").is_err(),
        "no prefix"
    );
    let e = parse_defs("prefix: do\nfoo(int a)\ntable: pv arm\nbar do do\n").unwrap_err();
    assert!(e.contains("do_bar"), "{e}");
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
    // Sanity: what this project's checks rely on, read from Xen's files.
    assert_eq!(defs.arm.get("dm_op"), Some(&Some(3)));
    assert!(
        defs.arm.len() >= 40,
        "{} hypercalls in the table",
        defs.arm.len()
    );
    let problems = compare(&nr::ALL, nr::arm_arity, &defs, &numbers);
    assert!(
        problems.is_empty(),
        "xen::nr differs from Xen's tables:\n  {}",
        problems.join("\n  ")
    );
    println!(
        "{} hypercalls compared with {} and {}: numbers and ARM arities agree",
        nr::ALL.len(),
        dir.join("xen/include/hypercall-defs.c").display(),
        dir.join("xen/include/public/xen.h").display()
    );
}

#[cfg(not(feature = "mock"))]
#[test]
#[ignore = "needs the mock backend (xen::nr on the host) and Xen's source: cargo xtask test runs it"]
fn nr_matches_xens_own_tables() {}
