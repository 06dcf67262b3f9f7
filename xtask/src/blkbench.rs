//! The block benchmark (`cargo bench --bench blk`): the library's block frontend against Linux's
//! `xen-blkfront`, in one boot, on the same dom0, blkback and RAM-disk size ([`xl::Scenario::blkbench`]).
//!
//! Each side runs the same workloads, in the same order, three rounds, in one process: 1024 synchronous
//! 4 KiB transfers, sequential and random (the same xorshift offsets), read and write, and 4 × 1 MiB
//! sequential; the fastest round of each is kept, with its counters. Ours times them with the generic
//! timer and counts its requests and notifications (`xen::blkfront::Stats`); Linux runs
//! `benches/linux-blkio` (`O_DIRECT`, `pread64`/`pwrite64` one after another, `CLOCK_MONOTONIC`, the same
//! generic timer) and counts its `blkif` interrupts (the backend's notifications). dom0 reads blkback's
//! interrupt count for each disk (the frontend's notifications) and its request statistics.

use anyhow::{Context, Result, bail};

use crate::xen::{self, XenBuild};
use crate::{setup, xl};

/// One workload's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    pub name: String,
    /// Ours: microseconds, requests, notifications sent, waits.
    pub ours_us: Option<u64>,
    pub ours_requests: u64,
    pub ours_notifications: u64,
    pub ours_grants: u64,
    pub kib: u64,
    /// Linux: microseconds (`linux-blkio`'s nanoseconds), `blkif` interrupts received.
    pub linux_us: Option<u64>,
    pub linux_irqs: u64,
}

/// What one boot measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    pub rows: Vec<Row>,
    /// blkback's interrupt count for our disk, at the end of our workloads.
    pub ours_backend_irqs: Option<u64>,
    /// blkback's interrupt count for Linux's disk, before and after its workloads.
    pub linux_backend_irqs: Option<(u64, u64)>,
    /// Our frontend's total notifications, from its `stats` line.
    pub ours_total_notifications: Option<u64>,
    /// Linux's `blkfront:` line (its features).
    pub linux_features: String,
    /// KiB moved by every round of our workloads, and of Linux's (its workloads' sizes are ours).
    pub ours_total_kib: u64,
    pub linux_total_kib: u64,
}

fn number_after(l: &str, key: &str) -> Option<u64> {
    let at = l.find(key)? + key.len();
    let digits: String = l[at..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// The `blkif-backend` counts of the lines after dom0's step line `ok NAME: label`.
fn backend_irqs(lines: &[&str], step: &str) -> Vec<u64> {
    let Some(at) = lines.iter().position(|l| l.starts_with(step)) else {
        return Vec::new();
    };
    lines[at + 1..]
        .iter()
        .take_while(|l| l.starts_with("  |"))
        .filter(|l| l.ends_with("blkif-backend"))
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .collect()
}

/// Reads the console lines and dom0's steps of a `blkbench` boot.
pub fn parse(output: &str) -> Figures {
    let mut f = Figures::default();
    let mut rows: Vec<Row> = Vec::new();
    fn row(rows: &mut Vec<Row>, name: &str) -> usize {
        if let Some(i) = rows.iter().position(|r| r.name == name) {
            return i;
        }
        rows.push(Row {
            name: name.to_string(),
            ..Row::default()
        });
        rows.len() - 1
    }
    for l in xl::console_lines(output, "blkbench") {
        if let Some(rest) = l.strip_prefix("xl-blk: bench ") {
            let Some((name, rest)) = rest.split_once(": ") else {
                continue;
            };
            let i = row(&mut rows, name);
            f.ours_total_kib += number_after(rest, "").unwrap_or(0);
            let us = number_after(rest, "KiB in ");
            // The fastest round, with its counters.
            if rows[i]
                .ours_us
                .is_some_and(|best| us.is_none_or(|us| us >= best))
            {
                continue;
            }
            rows[i].kib = number_after(rest, "").unwrap_or(0);
            rows[i].ours_us = us;
            rows[i].ours_requests = number_after(rest, "requests ").unwrap_or(0);
            rows[i].ours_notifications = number_after(rest, "notifications ").unwrap_or(0);
            rows[i].ours_grants = number_after(rest, "grants ").unwrap_or(0);
        } else if l.starts_with("xl-blk: stats ") {
            f.ours_total_notifications = number_after(l, "notifications ");
        }
    }
    let mut linux_runs = Vec::new();
    for l in xl::console_lines(output, "linux") {
        if let Some(rest) = l.strip_prefix("linux-blk: bench ") {
            let Some((name, rest)) = rest.split_once(": ") else {
                continue;
            };
            let (Some(irq), Some(ns)) = (number_after(rest, "irq "), number_after(rest, "ns "))
            else {
                continue;
            };
            let i = row(&mut rows, name);
            linux_runs.push(name.to_string());
            let us = ns / 1000;
            // The fastest round, with its counters.
            if rows[i].linux_us.is_some_and(|best| us >= best) {
                continue;
            }
            rows[i].linux_us = Some(us);
            rows[i].linux_irqs = irq;
        } else if let Some(at) = l.find("blkfront: xvda: ") {
            f.linux_features = l[at..].to_string();
        }
    }
    f.linux_total_kib = linux_runs
        .iter()
        .filter_map(|n| rows.iter().find(|r| &r.name == n))
        .map(|r| r.kib)
        .sum();
    let lines = xl::harness_lines(output);
    f.ours_backend_irqs = backend_irqs(&lines, "ok blkbench: blkback interrupts")
        .first()
        .copied();
    let before = backend_irqs(&lines, "ok blkbench: GO for the Linux domU");
    let after = backend_irqs(&lines, "ok linux: blkback interrupts for Linux");
    if let (Some(&b), Some(&a)) = (before.last(), after.last()) {
        f.linux_backend_irqs = Some((b, a));
    }
    f.rows = rows;
    f
}

/// The table (and the totals) of one boot.
pub fn markdown(f: &Figures) -> String {
    let mut s = String::from(
        "| workload | KiB | ours ms | Linux ms | Linux / ours time | ours requests | ours notifications (to the \
         backend) per MiB | Linux blkif interrupts (from the backend) per MiB | ours grant operations per request \
         |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &f.rows {
        let mib = r.kib as f64 / 1024.0;
        let ours_ms = r.ours_us.map(|u| u as f64 / 1000.0);
        let cell = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1}"));
        let linux_ms = r.linux_us.map(|u| u as f64 / 1000.0);
        let ratio = match (ours_ms, linux_ms) {
            (Some(o), Some(l)) if o > 0.0 => format!("{:.2}", l / o),
            _ => "–".into(),
        };
        let per_mib = |n: u64, present: bool| {
            if present && mib > 0.0 {
                format!("{:.0}", n as f64 / mib)
            } else {
                "–".into()
            }
        };
        let grants = if r.ours_requests > 0 {
            format!("{:.2}", r.ours_grants as f64 / r.ours_requests as f64)
        } else {
            "–".into()
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {ratio} | {} | {} | {} | {grants} |\n",
            r.name,
            r.kib,
            cell(ours_ms),
            cell(linux_ms),
            if r.ours_us.is_some() {
                r.ours_requests.to_string()
            } else {
                "–".into()
            },
            per_mib(r.ours_notifications, r.ours_us.is_some()),
            per_mib(r.linux_irqs, r.linux_us.is_some()),
        ));
    }
    let mib = f.ours_total_kib as f64 / 1024.0;
    let linux_mib = f.linux_total_kib as f64 / 1024.0;
    if let (Some(b), Some(n)) = (f.ours_backend_irqs, f.ours_total_notifications) {
        s.push_str(&format!(
            "\nours: blkback received {b} notifications for {mib:.0} MiB, all runs ({:.0} per MiB); the frontend \
             counted {n} (grant entries are written once, at connect: 0 per request)\n",
            b as f64 / mib.max(1.0)
        ));
    }
    if let Some((b, a)) = f.linux_backend_irqs {
        s.push_str(&format!(
            "Linux: blkback received {} notifications during its workloads ({:.0} per MiB, all runs)\n",
            a - b,
            (a - b) as f64 / linux_mib.max(1.0)
        ));
    }
    if !f.linux_features.is_empty() {
        s.push_str(&format!("Linux: {}\n", f.linux_features));
    }
    s
}

/// Boots the `blkbench` scenario on release Xen and returns its figures.
pub fn run() -> Result<Figures> {
    setup::toolchain()?;
    setup::debian(&[setup::QEMU])?;
    let dom0 = xl::fetch()?;
    let xens = vec![(XenBuild::Release, xen::fetch_xen()?)];
    let scenario = xl::Scenario::blkbench();
    let runs = xl::run_with(&scenario, &dom0, &xens, &xl::ICOUNT)?;
    let r = runs.first().context("no run")?;
    if !r.problems.is_empty() {
        bail!("the benchmark's boot failed:\n{}", r.problems.join("\n"));
    }
    Ok(parse(&r.boot.output))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as a real boot printed them (release Xen, 2026-12-06).
    const OUTPUT: &str = "\
xl-harness: ok blkbench: blkback interrupts
xl-harness:   |  22:       3711  xen-dyn-lateeoi     Edge    -event     blkif-backend
xl-harness:   |  23:         22  xen-dyn-lateeoi     Edge    -event     blkif-backend
xl-harness:   | /sys/bus/xen-backend/devices/vbd-1-51712/statistics/rd_req:2064
xl-harness: ok blkbench: GO for the Linux domU
xl-harness:   |  23:         24  xen-dyn-lateeoi     Edge    -event     blkif-backend
xl-harness: ok linux: blkback interrupts for Linux
xl-harness:   |  23:       3995  xen-dyn-lateeoi     Edge    -event     blkif-backend
xl-harness: console blkbench| xl-blk: bench seq-read-4k: 4096 KiB in 1217150 us, requests 1024, notifications 1019, waits 1024, grants 0
xl-harness: console blkbench| xl-blk: bench seq-read-1m: 4096 KiB in 15817 us, requests 16, notifications 15, waits 16, grants 0
xl-harness: console blkbench| xl-blk: bench seq-read-4k: 4096 KiB in 3449000 us, requests 1024, notifications 999, waits 1024, grants 0
xl-harness: console blkbench| xl-blk: stats requests 4128 (indirect 32), segments 6144, batches 4128, notifications 3710, waits 4126
xl-harness: console linux| linux-blk: xvda 8192 sectors; [    5.222572] blkfront: xvda: barrier or flush: disabled; persistent grants: enabled
xl-harness: console linux| linux-blk: bench seq-read-4k: irq 1024 ns 2460123456
xl-harness: console linux| linux-blk: bench seq-read-4k: irq 1030 ns 5880000000
xl-harness: console linux| linux-blk: FAIL rand-read-4k: rc 1 error pread64 5
xl-harness: console linux| linux-blk: bench seq-write-4k: irq 1024
";

    #[test]
    fn a_real_boot_is_read() {
        let f = parse(OUTPUT);
        assert_eq!(f.ours_backend_irqs, Some(3711));
        assert_eq!(f.linux_backend_irqs, Some((24, 3995)));
        assert_eq!(f.ours_total_notifications, Some(3710));
        assert!(f.linux_features.starts_with("blkfront: xvda: barrier"));
        let r = &f.rows[0];
        assert_eq!(
            (
                r.name.as_str(),
                r.kib,
                r.ours_us,
                r.ours_requests,
                r.ours_notifications
            ),
            ("seq-read-4k", 4096, Some(1217150), 1024, 1019)
        );
        // The faster of Linux's two rounds, with its interrupts.
        assert_eq!((r.linux_us, r.linux_irqs), (Some(2460123), 1024));
        assert_eq!(f.rows[1].linux_us, None);
        // A failed run and a line without its time give no row.
        assert_eq!(f.rows.len(), 2);
        let md = markdown(&f);
        // 2460.123 ms over 1217.15 ms.
        assert!(
            md.contains(
                "| seq-read-4k | 4096 | 1217.2 | 2460.1 | 2.02 | 1024 | 255 | 256 | 0.00 |"
            ),
            "{md}"
        );
        // Ours: 4096 + 4096 + 4096 KiB in three lines; Linux: two seq-read-4k runs.
        assert_eq!((f.ours_total_kib, f.linux_total_kib), (12288, 8192));
        assert!(
            md.contains("blkback received 3711 notifications for 12 MiB, all runs (309 per MiB)"),
            "{md}"
        );
        assert!(
            md.contains("blkback received 3971 notifications during its workloads (496 per MiB"),
            "{md}"
        );
    }

    #[test]
    fn a_boot_without_the_lines_gives_no_figures() {
        let f = parse("xl-harness: ok blkbench: blkback interrupts\n");
        assert_eq!(f, Figures::default());
        assert!(!markdown(&f).contains("blkback received"));
    }
}
