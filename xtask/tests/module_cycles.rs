//! No file of a crate depends on itself through other files: the file-level module graph of every crate in
//! the workspace is acyclic.
//!
//! The graph, per crate (each `src/lib.rs`, `src/main.rs`, `src/bin/*.rs`, `tests/*.rs`, `benches/*.rs`,
//! `build.rs` of every package is a crate root): the module tree is built from the `mod` declarations
//! (`#[path]` honoured, inline `mod name { … }` kept in their file); a file depends on another when one of its
//! `use` declarations, or a path in its code or in a macro's tokens (`crate::…`, `super::…`, `self::…`,
//! `$crate::…`, or a path through one of its module's children) names an item of the other file. Names are
//! followed through re-exports (`pub use`, globs included) to the file that defines them. A `mod`
//! declaration alone is containment, not a dependency: a parent owns its children; it depends on one only
//! by naming its items (`pub use child::*` does), and a child on its parent only by naming the parent's.
//!
//! A cycle is reported with every step: the two files and the path that makes the first use the second.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;

/// One module: a file, or an inline `mod name { … }` inside one.
struct Module {
    file: PathBuf,
    parent: Option<usize>,
    children: BTreeMap<String, usize>,
    /// Names the module binds with `use` (`name` → the path it stands for, relative to this module).
    uses: BTreeMap<String, Vec<String>>,
    /// `use path::*`, relative to this module.
    globs: Vec<Vec<String>>,
    /// Names of the items the module defines.
    items: BTreeSet<String>,
    /// Paths the module's code names (relative to this module), for the edges.
    refs: Vec<Vec<String>>,
}

/// The module tree of one crate.
struct Crate {
    modules: Vec<Module>,
}

/// An edge: `from` names `path`, defined in `to`.
type Edges = BTreeMap<PathBuf, BTreeMap<PathBuf, String>>;

fn attr_path(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|a| {
        let syn::Meta::NameValue(nv) = &a.meta else {
            return None;
        };
        if !nv.path.is_ident("path") {
            return None;
        }
        match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        }
    })
}

/// Flattens a `use` tree into (bound name or `*`, path).
fn use_paths(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<(String, Vec<String>)>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_paths(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            if name == "self" {
                if let Some(last) = prefix.last() {
                    out.push((last.clone(), prefix.clone()));
                }
            } else {
                let mut p = prefix.clone();
                p.push(name.clone());
                out.push((name, p));
            }
        }
        syn::UseTree::Rename(r) => {
            let mut p = prefix.clone();
            if r.ident != "self" {
                p.push(r.ident.to_string());
            }
            out.push((r.rename.to_string(), p));
        }
        syn::UseTree::Glob(_) => out.push(("*".into(), prefix.clone())),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_paths(t, prefix, out);
            }
        }
    }
}

/// Paths in `tokens` that start with `crate`, `super`, `self`, `$crate` or one of `locals` (the module's
/// children), as segment lists (`$crate` becomes `crate`).
fn token_paths(tokens: TokenStream, locals: &BTreeSet<String>, out: &mut Vec<Vec<String>>) {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < trees.len() {
        if let TokenTree::Group(g) = &trees[i] {
            token_paths(g.stream(), locals, out);
            i += 1;
            continue;
        }
        // A path is not a continuation of another (`a::crate` does not occur; `x::super` neither).
        let after_colons = i >= 2
            && matches!(&trees[i - 1], TokenTree::Punct(p) if p.as_char() == ':')
            && matches!(&trees[i - 2], TokenTree::Punct(p) if p.as_char() == ':');
        let start = match &trees[i] {
            TokenTree::Ident(id) if !after_colons => {
                let s = id.to_string();
                let dollar =
                    i >= 1 && matches!(&trees[i - 1], TokenTree::Punct(p) if p.as_char() == '$');
                (s == "crate" || s == "super" || s == "self" || (locals.contains(&s) && !dollar))
                    .then_some(s)
            }
            _ => None,
        };
        let Some(first) = start else {
            i += 1;
            continue;
        };
        let mut path = vec![first];
        let mut j = i + 1;
        while j + 2 < trees.len()
            && matches!(&trees[j], TokenTree::Punct(p) if p.as_char() == ':')
            && matches!(&trees[j + 1], TokenTree::Punct(p) if p.as_char() == ':')
        {
            match &trees[j + 2] {
                TokenTree::Ident(id) => path.push(id.to_string()),
                _ => break,
            }
            j += 3;
        }
        // A bare `self`/`super`/local name without `::` names nothing across files.
        if path.len() > 1 {
            out.push(path);
        }
        i = j.max(i + 1);
    }
}

fn item_name(item: &syn::Item) -> Option<String> {
    Some(
        match item {
            syn::Item::Const(i) => &i.ident,
            syn::Item::Enum(i) => &i.ident,
            syn::Item::Fn(i) => &i.sig.ident,
            syn::Item::Macro(i) => i.ident.as_ref()?,
            syn::Item::Static(i) => &i.ident,
            syn::Item::Struct(i) => &i.ident,
            syn::Item::Trait(i) => &i.ident,
            syn::Item::TraitAlias(i) => &i.ident,
            syn::Item::Type(i) => &i.ident,
            syn::Item::Union(i) => &i.ident,
            _ => return None,
        }
        .to_string(),
    )
}

impl Crate {
    /// Reads the crate whose root file is `root`.
    fn read(root: &Path) -> Result<Crate, String> {
        let mut c = Crate {
            modules: Vec::new(),
        };
        c.add_file(root, None, root.parent().unwrap().to_path_buf())?;
        Ok(c)
    }

    fn new_module(&mut self, file: &Path, parent: Option<usize>) -> usize {
        self.modules.push(Module {
            file: file.to_path_buf(),
            parent,
            children: BTreeMap::new(),
            uses: BTreeMap::new(),
            globs: Vec::new(),
            items: BTreeSet::new(),
            refs: Vec::new(),
        });
        self.modules.len() - 1
    }

    /// Adds the module in `file`; `dir` is where its `mod name;` children live.
    fn add_file(
        &mut self,
        file: &Path,
        parent: Option<usize>,
        dir: PathBuf,
    ) -> Result<usize, String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let parsed = syn::parse_file(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let m = self.new_module(file, parent);
        self.add_items(m, &parsed.items, file, &dir, true)?;
        Ok(m)
    }

    fn add_items(
        &mut self,
        m: usize,
        items: &[syn::Item],
        file: &Path,
        dir: &Path,
        file_level: bool,
    ) -> Result<(), String> {
        // `include!("FILE")` at item level: FILE's items are this module's, its `#[path]`s relative to
        // FILE's directory (first: their children are this module's too).
        for item in items {
            let syn::Item::Macro(mac) = item else {
                continue;
            };
            if !mac.mac.path.is_ident("include") {
                continue;
            }
            let Ok(lit) = mac.mac.parse_body::<syn::LitStr>() else {
                continue;
            };
            let included = file.parent().unwrap().join(lit.value());
            let text = std::fs::read_to_string(&included)
                .map_err(|e| format!("{}: {e}", included.display()))?;
            let parsed =
                syn::parse_file(&text).map_err(|e| format!("{}: {e}", included.display()))?;
            self.add_items(m, &parsed.items, &included, dir, true)?;
        }
        // Children first: the token scan needs their names.
        for item in items {
            let syn::Item::Mod(md) = item else { continue };
            let name = md.ident.to_string();
            let child = match &md.content {
                Some((_, inner)) => {
                    let c = self.new_module(file, Some(m));
                    let sub = match attr_path(&md.attrs) {
                        Some(p) => dir.join(p),
                        None => dir.join(&name),
                    };
                    self.modules[m].children.insert(name.clone(), c);
                    self.add_items(c, inner, file, &sub, false)?;
                    c
                }
                None => {
                    // `#[path]` is relative to the file's directory in a file's own items.
                    let path = match attr_path(&md.attrs) {
                        Some(p) if file_level => file.parent().unwrap().join(p),
                        Some(p) => dir.join(p),
                        None if dir.join(format!("{name}.rs")).exists() => {
                            dir.join(format!("{name}.rs"))
                        }
                        None => dir.join(&name).join("mod.rs"),
                    };
                    let sub = if path.file_name().is_some_and(|f| f == "mod.rs") {
                        path.parent().unwrap().to_path_buf()
                    } else {
                        path.with_extension("")
                    };
                    self.add_file(&path, Some(m), sub)?
                }
            };
            self.modules[m].children.insert(name, child);
        }
        let locals: BTreeSet<String> = self.modules[m].children.keys().cloned().collect();
        for item in items {
            match item {
                syn::Item::Mod(_) => {}
                syn::Item::Use(u) => {
                    let mut out = Vec::new();
                    use_paths(&u.tree, &mut Vec::new(), &mut out);
                    for (name, path) in out {
                        if name == "*" {
                            self.modules[m].globs.push(path.clone());
                        } else {
                            self.modules[m].uses.insert(name, path.clone());
                        }
                        self.modules[m].refs.push(path);
                    }
                }
                other => {
                    if let Some(name) = item_name(other) {
                        self.modules[m].items.insert(name);
                    }
                    let mut refs = Vec::new();
                    token_paths(other.to_token_stream(), &locals, &mut refs);
                    self.modules[m].refs.extend(refs);
                }
            }
        }
        Ok(())
    }

    /// The module `path` starts from, relative to module `m`, and the segments left; `None` for an
    /// external crate or a name the crate does not define.
    fn start(&self, m: usize, path: &[String]) -> Option<(usize, usize)> {
        let mut at = m;
        let mut i = 0;
        while i < path.len() {
            match path[i].as_str() {
                "crate" if i == 0 => at = 0,
                "self" => {}
                "super" => at = self.modules[at].parent?,
                _ => break,
            }
            i += 1;
        }
        Some((at, i))
    }

    /// The module whose file defines what `path` (relative to module `m`) names; `None` when it is outside
    /// the crate.
    fn resolve(&self, m: usize, path: &[String], depth: usize) -> Option<usize> {
        if depth > 16 {
            return None;
        }
        let (mut at, mut i) = self.start(m, path)?;
        if i == 0 && !self.modules[m].children.contains_key(&path[0]) {
            // A path relative to the module: through a `use` of it, else an external crate.
            let bound = self.modules[m].uses.get(&path[0])?;
            if bound.first() == Some(&path[0]) {
                return None;
            }
            let mut full = bound.clone();
            full.extend_from_slice(&path[1..]);
            return self.resolve(m, &full, depth + 1);
        }
        while i < path.len() {
            let seg = &path[i];
            let module = &self.modules[at];
            if let Some(&c) = module.children.get(seg) {
                at = c;
                i += 1;
                continue;
            }
            if module.items.contains(seg) {
                return Some(at);
            }
            if let Some(bound) = module.uses.get(seg) {
                let mut full = bound.clone();
                full.extend_from_slice(&path[i + 1..]);
                return self.resolve(at, &full, depth + 1);
            }
            for g in &module.globs {
                let mut full = g.clone();
                full.extend_from_slice(&path[i..]);
                if let Some(t) = self.resolve(at, &full, depth + 1)
                    && self.modules[t].file != self.modules[at].file
                {
                    return Some(t);
                }
            }
            return Some(at);
        }
        Some(at)
    }

    /// The file-level edges.
    fn edges(&self) -> Edges {
        let mut edges = Edges::new();
        for (m, module) in self.modules.iter().enumerate() {
            for r in &module.refs {
                let Some(t) = self.resolve(m, r, 0) else {
                    continue;
                };
                let to = &self.modules[t].file;
                if *to != module.file {
                    edges
                        .entry(module.file.clone())
                        .or_default()
                        .entry(to.clone())
                        .or_insert_with(|| r.join("::"));
                }
            }
        }
        edges
    }
}

/// The files on a cycle (each reaches itself).
fn cyclic_files(edges: &Edges) -> BTreeSet<PathBuf> {
    edges
        .keys()
        .filter(|n| {
            let mut seen = BTreeSet::new();
            let mut stack = vec![(*n).clone()];
            while let Some(x) = stack.pop() {
                for t in edges.get(&x).into_iter().flat_map(|ts| ts.keys()) {
                    if t == *n {
                        return true;
                    }
                    if seen.insert(t.clone()) {
                        stack.push(t.clone());
                    }
                }
            }
            false
        })
        .cloned()
        .collect()
}

/// Every cycle's description (one per strongly connected set of files), empty when there is none.
fn cycles(edges: &Edges, base: &Path) -> Vec<String> {
    let nodes: BTreeSet<&PathBuf> = edges
        .iter()
        .flat_map(|(f, ts)| std::iter::once(f).chain(ts.keys()))
        .collect();
    let reaches = |from: &PathBuf| -> BTreeSet<PathBuf> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(n) = stack.pop() {
            for t in edges.get(&n).into_iter().flat_map(|ts| ts.keys()) {
                if seen.insert(t.clone()) {
                    stack.push(t.clone());
                }
            }
        }
        seen
    };
    let rel = |p: &Path| p.strip_prefix(base).unwrap_or(p).display().to_string();
    let mut reported = BTreeSet::new();
    let mut out = Vec::new();
    for n in nodes {
        if reported.contains(n) || !reaches(n).contains(n) {
            continue;
        }
        // The shortest way back to `n` (breadth first), for the message.
        let mut prev: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([n.clone()]);
        'search: while let Some(x) = queue.pop_front() {
            for t in edges.get(&x).into_iter().flat_map(|ts| ts.keys()) {
                if !prev.contains_key(t) {
                    prev.insert(t.clone(), x.clone());
                    if t == n {
                        break 'search;
                    }
                    queue.push_back(t.clone());
                }
            }
        }
        let mut chain = vec![n.clone()];
        let mut at = prev[n].clone();
        while at != *n {
            chain.push(at.clone());
            at = prev[&at].clone();
        }
        chain[1..].reverse();
        chain.push(n.clone());
        let mut msg = chain
            .iter()
            .map(|p| rel(p))
            .collect::<Vec<_>>()
            .join(" -> ");
        for w in chain.windows(2) {
            let _ = write!(
                msg,
                "\n    {} uses `{}` ({})",
                rel(&w[0]),
                edges[&w[0]][&w[1]],
                rel(&w[1])
            );
        }
        for c in &chain {
            reported.insert(c.clone());
        }
        out.push(msg);
    }
    out
}

/// The crate roots of the package in `dir`.
fn roots(dir: &Path) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    let mut add = |p: PathBuf| {
        if p.is_file() && !roots.contains(&p) {
            roots.push(p);
        }
    };
    add(dir.join("src/lib.rs"));
    add(dir.join("src/main.rs"));
    add(dir.join("build.rs"));
    for sub in ["src/bin", "tests", "benches", "examples"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        files.sort();
        for f in files {
            if f.extension().is_some_and(|e| e == "rs") {
                add(f);
            }
        }
    }
    // `[lib]` / `[[bin]]` paths of the manifest.
    if let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) {
        for line in manifest.lines() {
            if let Some(rest) = line.trim().strip_prefix("path = \"")
                && let Some(p) = rest.strip_suffix('"')
                && p.ends_with(".rs")
            {
                add(dir.join(p));
            }
        }
    }
    roots
}

/// One crate's cycles: its root, the files on a cycle (relative to `base`), and the cycles' descriptions.
struct CrateCycles {
    root: String,
    files: BTreeSet<String>,
    cycles: Vec<String>,
}

/// The cycles of every crate of the packages in `packages` (crates without one left out).
fn check(packages: &[PathBuf], base: &Path) -> Result<Vec<CrateCycles>, String> {
    let rel = |p: &Path| p.strip_prefix(base).unwrap_or(p).display().to_string();
    let mut found = Vec::new();
    for p in packages {
        for root in roots(p) {
            let edges = Crate::read(&root)?.edges();
            let cycles = cycles(&edges, base);
            if !cycles.is_empty() {
                found.push(CrateCycles {
                    root: rel(&root),
                    files: cyclic_files(&edges).iter().map(|f| rel(f)).collect(),
                    cycles,
                });
            }
        }
    }
    Ok(found)
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The workspace's packages: `members` of the root manifest, and the unikernel template.
fn packages() -> Vec<PathBuf> {
    let root = workspace();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let members = manifest
        .lines()
        .find_map(|l| l.strip_prefix("members = ["))
        .expect("the workspace's members line");
    let mut dirs: Vec<PathBuf> = members
        .trim_end_matches(']')
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .map(|m| root.join(m))
        .collect();
    dirs.push(root.join("template"));
    dirs
}

/// Cycles older than this test, in crates other than the tools' (`xtask`, `cargo-xen`, the macros, which
/// have none): each crate root with the files on its cycles. The test fails on a cycle through any file not
/// listed (a new cycle), and when a listed file is on no cycle any more (the list shrinks with the code).
const KNOWN: &[(&str, &[&str])] = &[];

#[test]
fn no_crate_of_the_workspace_has_a_module_cycle() {
    let packages = packages();
    assert!(packages.len() > 5, "the members line was not read");
    let base = workspace();
    let found = check(&packages, &base).unwrap();
    let mut problems = Vec::new();
    for c in &found {
        let known: BTreeSet<String> = KNOWN
            .iter()
            .filter(|(root, _)| *root == c.root)
            .flat_map(|(_, files)| files.iter().map(|f| f.to_string()))
            .collect();
        if !c.files.is_subset(&known) {
            let new: Vec<&String> = c.files.difference(&known).collect();
            // The cycles through the new files (a cycle's first line lists its files).
            let through: Vec<&String> = c
                .cycles
                .iter()
                .filter(|cy| {
                    new.iter()
                        .any(|f| cy.lines().next().is_some_and(|l| l.contains(f.as_str())))
                })
                .collect();
            let shown = if through.is_empty() {
                c.cycles.iter().collect()
            } else {
                through
            };
            problems.push(format!(
                "in the crate of {}: a module cycle through {new:?}:\n{}",
                c.root,
                shown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
    }
    for (root, files) in KNOWN {
        let now = found.iter().find(|c| c.root == *root).map(|c| &c.files);
        let gone: Vec<&&str> = files
            .iter()
            .filter(|f| !now.is_some_and(|n| n.contains(**f)))
            .collect();
        if !gone.is_empty() {
            problems.push(format!(
                "in the crate of {root}: {gone:?} are on no cycle any more: take them out of KNOWN"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Prints what KNOWN would be today (`cargo test -p xtask --test module_cycles -- --ignored --nocapture`).
#[test]
#[ignore]
fn print_the_cycles() {
    for c in check(&packages(), &workspace()).unwrap() {
        println!("    (\"{}\", &{:?}),", c.root, c.files);
        for l in &c.cycles {
            println!("// {}", l.replace('\n', "\n// "));
        }
    }
}

/// The crates read are really read: the workspace's graph has edges where the code has uses.
#[test]
fn the_graph_sees_the_uses() {
    let base = workspace();
    let c = Crate::read(&base.join("xtask/src/lib.rs")).unwrap();
    let edges = c.edges();
    let domains = base.join("xtask/src/domains.rs");
    assert!(
        edges
            .get(&domains)
            .is_some_and(|ts| ts.contains_key(&base.join("xtask/src/xen.rs"))),
        "domains.rs uses xen.rs's guests; edges: {:?}",
        edges.get(&domains)
    );
    // A guest declares its shared modules through `include!("../modules.rs")`: `crate::common` in the
    // shared `xl.rs` is `common.rs`, not the binary's file.
    let c = Crate::read(&base.join("guests/src/bin/xl_blk.rs")).unwrap();
    let edges = c.edges();
    let xl = base.join("guests/src/bin/../xl.rs");
    let to = edges
        .get(&xl)
        .map(|ts| ts.keys().cloned().collect::<Vec<_>>());
    assert!(
        to.as_ref()
            .is_some_and(|ts| ts.iter().any(|t| t.ends_with("common.rs"))
                && !ts.iter().any(|t| t.ends_with("xl_blk.rs"))),
        "xl.rs's edges: {to:?}"
    );
}

/// Negative control: a crate whose files use each other (through `use crate::…`, a `super::` path in code
/// and a re-export) is caught, and the message names the cycle's files.
#[test]
fn a_circular_fixture_is_caught() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cycle");
    let found = check(std::slice::from_ref(&dir), &dir).unwrap();
    assert_eq!(found.len(), 1, "one crate");
    let cycles = &found[0].cycles;
    assert_eq!(cycles.len(), 2, "{cycles:#?}");
    assert!(
        cycles[0].contains("src/a.rs -> src/b.rs -> src/a.rs")
            || cycles[0].contains("src/b.rs -> src/a.rs -> src/b.rs"),
        "{}",
        cycles[0]
    );
    assert!(
        cycles[1].contains("src/arch/mod.rs -> src/arch/leaf.rs -> src/arch/mod.rs")
            || cycles[1].contains("src/arch/leaf.rs -> src/arch/mod.rs -> src/arch/leaf.rs"),
        "{}",
        cycles[1]
    );
    // The acyclic part of the fixture (`c.rs` uses `a.rs`, its inline tests use `super::`) is not reported.
    assert!(!cycles.iter().any(|c| c.contains("c.rs")), "{cycles:#?}");
    let files: Vec<&str> = found[0].files.iter().map(String::as_str).collect();
    assert_eq!(
        files,
        [
            "src/a.rs",
            "src/arch/leaf.rs",
            "src/arch/mod.rs",
            "src/b.rs"
        ]
    );
}
