//! `cargo xen new`: a unikernel project from the template of the xen-hypercall repository (`template/`),
//! whose files are embedded in this tool, so that an installed `cargo-xen` has them.
//!
//! The project is the template with its package and binary named after the project, its `.cargo/config.toml`
//! set to the chosen architecture (`aarch64`: `aarch64-unknown-none`; `arm`: `armv7a-none-eabi`; `thumb`:
//! the same with `-C target-feature=+thumb-mode`), and its dependencies on `xen-hypercall` and `xen-test`
//! either by version (crates.io) or, with `--path`, on a local checkout of the repository. Its cargo runner
//! is `cargo xen run --runner`: `cargo run --release` boots it on Xen under QEMU, `cargo test` runs its
//! `tests/on_xen.rs` there.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The template's files: where each goes in a new project, and its text.
pub const FILES: [(&str, &str); 10] = [
    ("Cargo.toml", include_str!("../template/Cargo.toml.in")),
    (
        ".cargo/config.toml",
        include_str!("../template/cargo-config.toml"),
    ),
    (".gitignore", include_str!("../template/gitignore")),
    (
        "rust-toolchain.toml",
        include_str!("../template/rust-toolchain.toml"),
    ),
    ("link-a64.ld", include_str!("../template/link-a64.ld")),
    ("link-a32.ld", include_str!("../template/link-a32.ld")),
    ("src/main.rs", include_str!("../template/main.rs")),
    ("src/entry.rs", include_str!("../template/entry.rs")),
    ("src/mmu.rs", include_str!("../template/mmu.rs")),
    ("tests/on_xen.rs", include_str!("../template/on_xen.rs")),
];

/// The template's package and binary name.
const TEMPLATE_NAME: &str = "my-unikernel";

/// A new project's architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewArch {
    /// AArch64 (`aarch64-unknown-none`).
    Aarch64,
    /// 32-bit ARM, A32 code (`armv7a-none-eabi`).
    Arm,
    /// 32-bit ARM, Thumb-2 code (`armv7a-none-eabi` with `+thumb-mode`; the entry code stays A32).
    Thumb,
}

impl NewArch {
    /// From `aarch64`, `arm` or `thumb` (also `a64`, `a32`, `t32`).
    pub fn parse(s: &str) -> Option<NewArch> {
        match s {
            "aarch64" | "a64" => Some(NewArch::Aarch64),
            "arm" | "a32" => Some(NewArch::Arm),
            "thumb" | "t32" => Some(NewArch::Thumb),
            _ => None,
        }
    }

    /// The build target.
    pub fn target(self) -> &'static str {
        match self {
            NewArch::Aarch64 => "aarch64-unknown-none",
            NewArch::Arm | NewArch::Thumb => "armv7a-none-eabi",
        }
    }
}

/// Rust's keywords (strict, reserved and edition 2024's), which a crate cannot be named.
const KEYWORDS: [&str; 52] = [
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// Names a project cannot have: the crates it uses or the compiler's, and cargo's own directory names.
const TAKEN: [&str; 11] = [
    "core",
    "std",
    "alloc",
    "test",
    "proc_macro",
    "xen_hypercall",
    "xen_test",
    "build",
    "deps",
    "examples",
    "incremental",
];

/// Checks a package name: ASCII letters, digits, `-` and `_`, starting with a letter, at most 64 bytes,
/// neither a keyword nor a crate it depends on.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("the project's name is empty");
    }
    if name.len() > 64 {
        bail!("`{name}`: a project's name has at most 64 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        bail!("`{name}`: a project's name starts with an ASCII letter");
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        bail!("`{name}`: a project's name has ASCII letters, digits, `-` and `_` only, not {c:?}");
    }
    let krate = name.replace('-', "_");
    if KEYWORDS.contains(&krate.as_str()) {
        bail!("`{name}` is a Rust keyword");
    }
    if TAKEN.contains(&krate.to_ascii_lowercase().as_str()) {
        bail!("`{name}` is taken (a crate the project uses, or a directory of cargo's)");
    }
    Ok(())
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `text` with the first `from` replaced by `to`; an error if the embedded template has no `from` (the
/// template and this code disagree).
fn replace(file: &str, text: &str, from: &str, to: &str) -> Result<String> {
    if !text.contains(from) {
        bail!(
            "the embedded template's {file} has no `{from}`: this cargo-xen does not match its template"
        );
    }
    Ok(text.replacen(from, to, 1))
}

/// The files of a project named `name` for `arch`, its dependencies on the checkout `path` (the root of
/// the xen-hypercall repository) when given, else by version.
pub fn render(
    name: &str,
    arch: NewArch,
    path: Option<&Path>,
) -> Result<Vec<(&'static str, String)>> {
    check_name(name)?;
    let mut out = Vec::new();
    for (file, text) in FILES {
        let mut text = text.replace(TEMPLATE_NAME, name);
        match file {
            "Cargo.toml" => {
                if let Some(p) = path {
                    let root = p
                        .to_str()
                        .context("the --path directory's name is not UTF-8")?;
                    let test = p.join("xen-test");
                    let test = test
                        .to_str()
                        .context("the --path directory's name is not UTF-8")?;
                    text = replace(
                        file,
                        &text,
                        "xen-hypercall = \"0.1\"",
                        &format!("xen-hypercall = {{ path = {} }}", toml_string(root)),
                    )?;
                    text = replace(
                        file,
                        &text,
                        "xen-test = \"0.1\"",
                        &format!("xen-test = {{ path = {} }}", toml_string(test)),
                    )?;
                }
            }
            ".cargo/config.toml" if arch != NewArch::Aarch64 => {
                text = replace(
                    file,
                    &text,
                    "target = \"aarch64-unknown-none\"",
                    &format!("target = \"{}\"", arch.target()),
                )?;
                if arch == NewArch::Thumb {
                    let a32 = "    \"-C\", \"link-arg=-Tlink-a32.ld\",\n";
                    text = replace(
                        file,
                        &text,
                        a32,
                        &format!(
                            "{a32}    # Thumb-2 code (the entry code stays A32).\n    \"-C\", \"target-feature=+thumb-mode\",\n"
                        ),
                    )?;
                }
            }
            _ => {}
        }
        out.push((file, text));
    }
    Ok(out)
}

/// Options of `cargo xen new`.
#[derive(Clone, Debug)]
pub struct NewOptions {
    /// The project's directory; its last component is the project's name.
    pub dir: PathBuf,
    /// The architecture.
    pub arch: NewArch,
    /// A checkout of xen-hypercall to depend on by path.
    pub path: Option<PathBuf>,
}

/// Creates the project; returns its name. Refuses an existing directory, a bad name, and a `--path` that
/// is not a checkout of xen-hypercall.
pub fn create(opts: &NewOptions) -> Result<String> {
    let name = opts
        .dir
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| {
            format!(
                "`{}`: no project name at the end of the path",
                opts.dir.display()
            )
        })?
        .to_string();
    check_name(&name)?;
    if opts.dir.exists() || opts.dir.is_symlink() {
        bail!("`{}` already exists", opts.dir.display());
    }
    let path = match &opts.path {
        Some(p) => {
            let root = std::fs::canonicalize(p)
                .map_err(|e| anyhow::anyhow!("--path {}: {e}", p.display()))?;
            let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
            if !manifest.contains("name = \"xen-hypercall\"")
                || !root.join("xen-test/Cargo.toml").is_file()
            {
                bail!(
                    "--path {}: not a checkout of xen-hypercall (its Cargo.toml and xen-test/Cargo.toml)",
                    p.display()
                );
            }
            Some(root)
        }
        None => None,
    };
    let files = render(&name, opts.arch, path.as_deref())?;
    for (file, text) in files {
        let to = opts.dir.join(file);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&to, text).with_context(|| format!("writing {}", to.display()))?;
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file<'a>(files: &'a [(&str, String)], name: &str) -> &'a str {
        &files.iter().find(|(f, _)| *f == name).unwrap().1
    }

    #[test]
    fn names_are_checked() {
        for good in ["hello", "my-kernel", "k_2", "A"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "2fast",
            "-x",
            "a b",
            "caf\u{e9}",
            "fn",
            "xen-test",
            "xen_hypercall",
            "core",
            "a/b",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn every_architecture_renders() {
        let a64 = render("hello", NewArch::Aarch64, None).unwrap();
        assert_eq!(a64.len(), FILES.len());
        let manifest = file(&a64, "Cargo.toml");
        assert!(manifest.contains("name = \"hello\"") && !manifest.contains(TEMPLATE_NAME));
        assert!(
            manifest.contains("xen-hypercall = \"0.1\"") && manifest.contains("xen-test = \"0.1\"")
        );
        let config = file(&a64, ".cargo/config.toml");
        assert!(config.contains("target = \"aarch64-unknown-none\""));
        assert!(config.contains("runner = \"cargo xen run --runner\""));
        let arm = render("hello", NewArch::Arm, None).unwrap();
        let config = file(&arm, ".cargo/config.toml");
        assert!(
            config.contains("target = \"armv7a-none-eabi\"") && !config.contains("+thumb-mode\",")
        );
        let thumb = render("hello", NewArch::Thumb, None).unwrap();
        let config = file(&thumb, ".cargo/config.toml");
        assert!(config.contains("target = \"armv7a-none-eabi\""));
        assert!(config.contains("\"-C\", \"target-feature=+thumb-mode\",\n]"));
        let local = render("hello", NewArch::Aarch64, Some(Path::new("/src/x\"y"))).unwrap();
        let manifest = file(&local, "Cargo.toml");
        assert!(
            manifest.contains("xen-hypercall = { path = \"/src/x\\\"y\" }"),
            "{manifest}"
        );
        assert!(
            manifest.contains("xen-test = { path = \"/src/x\\\"y/xen-test\" }"),
            "{manifest}"
        );
    }
}
