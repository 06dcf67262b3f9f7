//! The README and `docs/` stay true: the README stays short, every relative link (file and `#anchor`)
//! resolves, every fenced block says its language, and every file of `docs/` is wired into the doc tests
//! (`src/lib.rs`, `doc_examples`), which compile its Rust blocks.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The README's limit, under 250 lines: what a newcomer reads in five minutes.
const README_MAX_LINES: usize = 249;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The Markdown files checked: the README and every `docs/*.md`.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// Each line with whether it is inside a fenced code block (the fences themselves count as inside).
fn lines_outside_fences(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

/// GitHub's anchor of a heading: lower case, punctuation other than `-` and `_` dropped, spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown text's headings, with GitHub's `-1`, `-2`… for repeated ones.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for (_, line) in lines_outside_fences(text) {
        let hashes = line.len() - line.trim_start_matches('#').len();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[hashes..]);
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// The line without inline code spans (a `[x](y)` inside backticks is not a link); `code` says whether a
/// span is open, carried from line to line (a span may continue on the next line of its paragraph).
fn without_code_spans(line: &str, code: &mut bool) -> String {
    let mut out = String::new();
    for c in line.chars() {
        if c == '`' {
            *code = !*code;
        } else if !*code {
            out.push(c);
        }
    }
    out
}

/// The targets of the inline links `[text](target)` of a Markdown text, with their line numbers.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut code = false;
    for (n, line) in lines_outside_fences(text) {
        if line.trim().is_empty() {
            code = false; // a paragraph ends every span
        }
        let line = without_code_spans(line, &mut code);
        let mut rest = line.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            match after.find(')') {
                Some(j) => {
                    out.push((n, after[..j].to_string()));
                    rest = &after[j + 1..];
                }
                None => break,
            }
        }
    }
    out
}

/// The problems of the links of `file` (whose text is `text`): a relative target that does not exist, an
/// anchor that no heading of the target makes. Web links are not followed.
fn dead_links(file: &Path, text: &str) -> Vec<String> {
    let dir = file.parent().expect("a file's directory");
    let mut problems = Vec::new();
    for (n, target) in links(text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (target.as_str(), None),
        };
        let resolved = if path.is_empty() {
            file.to_path_buf()
        } else {
            dir.join(path)
        };
        let at = format!("{}:{n}: `{target}`", file.display());
        if !resolved.exists() {
            problems.push(format!("{at}: no file {}", resolved.display()));
            continue;
        }
        if let Some(anchor) = anchor {
            let target_text = if resolved == file {
                text.to_string()
            } else {
                read(&resolved)
            };
            if !anchors(&target_text).contains(anchor) {
                problems.push(format!("{at}: no heading makes #{anchor}"));
            }
        }
    }
    problems
}

/// The opening fences without a language (rustdoc would compile such a block as Rust).
fn untagged_fences(file: &Path, text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if let Some(tag) = t.strip_prefix("```") {
            if !fenced && tag.trim().is_empty() {
                problems.push(format!(
                    "{}:{}: a code block without a language (`text`, `sh`, `rust`, …)",
                    file.display(),
                    i + 1
                ));
            }
            fenced = !fenced;
        }
    }
    problems
}

#[test]
fn the_readme_stays_short() {
    let n = read(&root().join("README.md")).lines().count();
    assert!(
        n <= README_MAX_LINES,
        "README.md has {n} lines, more than {README_MAX_LINES}: move the detail to docs/"
    );
}

#[test]
fn every_link_of_the_readme_and_docs_resolves() {
    let mut problems = Vec::new();
    let mut docs_links = 0;
    for file in markdown_files() {
        let text = read(&file);
        docs_links += links(&text)
            .iter()
            .filter(|(_, t)| t.starts_with("docs/"))
            .count();
        problems.extend(dead_links(&file, &text));
    }
    assert!(problems.is_empty(), "dead links:\n{}", problems.join("\n"));
    // Not vacuous: the README does link into docs/.
    assert!(docs_links >= 10, "{docs_links} links into docs/ found");
}

#[test]
fn every_code_block_says_its_language() {
    let mut problems = Vec::new();
    for file in markdown_files() {
        problems.extend(untagged_fences(&file, &read(&file)));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_docs_file_is_compiled_by_the_doc_tests() {
    let lib = read(&root().join("src/lib.rs"));
    let files = markdown_files();
    assert!(files.len() > 5, "{} Markdown files found", files.len());
    for file in &files {
        let name = file.file_name().and_then(|n| n.to_str()).expect("a name");
        let wired = if name == "README.md" && file.parent() == Some(root().as_path()) {
            "include_str!(\"../README.md\")".to_string()
        } else {
            format!("include_str!(\"../docs/{name}\")")
        };
        assert!(
            lib.contains(&wired),
            "{} is not in src/lib.rs's doc examples: add `#[doc = {wired}]` to `doc_examples`",
            file.display()
        );
    }
}

// The checker's own negative controls: each defect is reported.

#[test]
fn a_missing_file_and_a_missing_anchor_are_reported() {
    let file = root().join("README.md");
    let text = "# Title\n\n## A `code` heading: here\n\nSee [a](docs/no-such-file.md), [b](#no-such-heading),\n\
                [c](#a-code-heading-here), [d](#title), [e](https://example.org/x), `[f](not-a-link.md)`, `a\n\
                span [h](over-two-lines.md)`.\n\
                ```text\n[g](inside-a-block.md)\n```\n";
    let problems = dead_links(&file, text);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].contains("docs/no-such-file.md") && problems[0].contains("no file"));
    assert!(problems[1].contains("no heading makes #no-such-heading"));
    // An anchor into another file is looked up in that file.
    let problems = dead_links(
        &file,
        "[x](docs/xl.md#no-such-heading) [y](docs/xl.md#the-set-up)",
    );
    assert_eq!(problems.len(), 1, "{problems:#?}");
}

#[test]
fn anchors_follow_github() {
    let a = anchors(
        "# What \"safe\" means here\n## Out-of-line stubs\n## Out-of-line stubs\n## `cargo xen run`, x86_64\n",
    );
    let want: BTreeSet<String> = [
        "what-safe-means-here",
        "out-of-line-stubs",
        "out-of-line-stubs-1",
        "cargo-xen-run-x86_64",
    ]
    .map(String::from)
    .into();
    assert_eq!(a, want);
}

#[test]
fn an_untagged_block_is_reported() {
    let f = Path::new("x.md");
    assert_eq!(
        untagged_fences(f, "```rust\nlet x = 1;\n```\n```\nplain\n```\n").len(),
        1
    );
    assert!(untagged_fences(f, "```text\n```\n```sh\n```\n").is_empty());
}
