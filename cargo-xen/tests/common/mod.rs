//! Shared by the audit's integration tests: the checked-in test data and the fuzz-style run over mutated
//! ELF bytes.

use cargo_xen::audit;

/// A file of `tests/data/`.
pub fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Audits 3000 mutations of `originals` (taken in turn; bytes overwritten, sometimes truncated, from a
/// xorshift stream started at `seed`) and renders each report as JSON; panics if the audit panics.
/// Returns how many were audited and how many were refused with an error.
pub fn audit_mutations(originals: &[Vec<u8>], seed: u64) -> (usize, usize) {
    let mut seed = seed;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut ok, mut err) = (0, 0);
    for i in 0..3000 {
        let mut bytes = originals[i % originals.len()].clone();
        let flips = 1 + next() % 16;
        for _ in 0..flips {
            let at = (next() as usize) % bytes.len();
            bytes[at] = next() as u8;
        }
        if next() % 4 == 0 {
            let len = (next() as usize) % bytes.len();
            bytes.truncate(len);
        }
        match std::panic::catch_unwind(|| audit::analyze(&bytes).map(|r| audit::render_json(&r))) {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(_)) => err += 1,
            Err(_) => panic!("the audit panicked on mutation {i}"),
        }
    }
    (ok, err)
}
