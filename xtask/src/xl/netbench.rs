//! The network benchmark (`cargo bench --bench net`): this crate's network frontend (the `xl-net` domU)
//! against Linux's `xen-netfront` (a Linux domU from dom0's own kernel), both on netback over dom0's
//! bridge, in the same boot, one after the other.
//!
//! dom0 measures with busybox `ping -A` (the next request as soon as the reply came): round trips per
//! second for 64-byte and 1500-byte Ethernet frames (`-s 22` and `-s 1458`), the MiB/s both ways that
//! makes, and the event channel interrupts dom0 took from each vif per round trip (`/proc/interrupts`,
//! the frontend's notifications). Each domU reports its own side: ours its notifications and hypercalls
//! (`sched_poll`, `EVTCHNOP_send`), Linux its interrupts from `/proc/interrupts`. The figures are TCG's
//! under load: compare within one boot only. Nothing here passes or fails on a figure.

use std::fmt::Write as _;

use anyhow::{Result, bail};

use super::{DomU, LINUX, Scenario, Shutdown, Step, VIF_BACKEND, Value, Vif, harness_lines};
use crate::elf::Isa;

/// Frames measured: (Ethernet frame bytes, ping's `-s`), and round trips per measurement.
pub const FRAMES: [(u32, u32); 2] = [(64, 22), (1500, 1458)];
/// Round trips per measurement.
pub const COUNT: u32 = 300;

/// dom0's measurement of one guest: `bench NAME FRAME COUNT RECEIVED CENTISECONDS IRQS`.
fn measure(name: &str, ip: &str, vif: &str) -> String {
    let mut s = format!(
        "irqs() {{ grep {vif} /proc/interrupts | awk '{{ s += $2 }} END {{ print s + 0 }}'; }}; \
         cs() {{ cut -d' ' -f1 /proc/uptime | tr -d .; }}; ping -c 3 -W 2 {ip} > /dev/null; "
    );
    for (frame, size) in FRAMES {
        let _ = write!(
            s,
            "i0=$(irqs); t0=$(cs); ping -A -q -c {COUNT} -W 5 -s {size} {ip} > /tmp/b; t1=$(cs); i1=$(irqs); \
             r=$(grep -o '[0-9]* packets received' /tmp/b | cut -d' ' -f1); \
             echo \"bench {name} {frame} {COUNT} ${{r:-0}} $((t1 - t0)) $((i1 - i0))\"; "
        );
    }
    s.push_str("true");
    s
}

/// The benchmark's boot: the Linux domU `lnx` (domid 1) and ours `netb` (domid 2), each with a vif on
/// the bridge; dom0 waits for both, measures Linux's, then ours, checks one UDP exchange with ours, shuts
/// Linux's down and detaches ours.
pub fn scenario() -> Scenario {
    let ours = DomU {
        name: "netb",
        bin: "xl-net",
        isa: Isa::A64,
        config: vec![],
        console: vec![
            "xl-net: ok connected",
            "xl-net: ok backend gone",
            "xl-net: ok closed: backend closed 1",
            "xl-net: done",
        ],
        xenstore: vec![(VIF_BACKEND, Value::Is("2"))],
        shutdown: Shutdown::Poweroff,
        seconds: 150,
        disks: vec![],
        vifs: vec![Vif {
            mac: "00:16:3e:00:00:02",
        }],
        dom0: vec![
            Step::Await("data/net-ready", "1"),
            Step::Run(
                "the Linux domU answers",
                "n=0; until ping -c 1 -W 1 169.254.1.3 > /dev/null; do n=$((n + 1)); [ $n -gt 100 ] && exit 1; done; echo \"after $n tries\"",
            ),
            Step::Run(
                "measure Linux's netfront",
                // `measure` fills this in: see `bench_steps`.
                "",
            ),
            Step::Run("measure ours", ""),
            Step::Run(
                "udp: one exchange each way",
                "udp-check 169.254.1.2 64 1472",
            ),
            Step::Run("xl shutdown lnx", "timeout 30 xl shutdown -w lnx"),
            Step::Run("network-detach: the vif is gone", super::DETACH),
        ],
    };
    let linux = DomU {
        name: "lnx",
        bin: LINUX,
        isa: Isa::A64,
        config: vec![
            "memory = 128",
            "ramdisk = \"/domu/lnx.initrd\"",
            "extra = \"console=hvc0 rdinit=/init quiet\"",
        ],
        console: vec![
            "linux-domu: ok eth0 up",
            "linux-domu: irqs",
            "linux-domu: done",
        ],
        xenstore: vec![],
        shutdown: Shutdown::Poweroff,
        seconds: 150,
        disks: vec![],
        vifs: vec![Vif {
            mac: "00:16:3e:00:00:03",
        }],
        dom0: vec![],
    };
    let mut s = Scenario {
        name: "netbench",
        title: "network benchmark: ours against Linux's netfront, ping -A with 64 and 1500-byte frames",
        domus: vec![linux, ours],
        control: vec![],
    };
    // The measurement commands are built at run time (they name the vifs).
    let steps = &mut s.domus[1].dom0;
    steps[2] = Step::Run(
        "measure Linux's netfront",
        Box::leak(measure("linux", "169.254.1.3", "vif1.0").into_boxed_str()),
    );
    steps[3] = Step::Run(
        "measure ours",
        Box::leak(measure("ours", "169.254.1.2", "vif2.0").into_boxed_str()),
    );
    s
}

/// One measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub guest: String,
    pub frame: u32,
    pub count: u32,
    pub received: u32,
    pub seconds: f64,
    pub dom0_irqs: u64,
}

impl Row {
    /// Round trips per second.
    pub fn rate(&self) -> f64 {
        f64::from(self.received) / self.seconds.max(0.01)
    }
    /// MiB/s of frames, both directions together.
    pub fn mib_s(&self) -> f64 {
        self.rate() * 2.0 * f64::from(self.frame) / (1024.0 * 1024.0)
    }
}

/// The `bench …` lines of dom0's output.
pub fn rows(output: &str) -> Vec<Row> {
    harness_lines(output)
        .iter()
        .filter_map(|l| {
            let l = l.trim_start_matches("  | ");
            let f: Vec<&str> = l.strip_prefix("bench ")?.split_whitespace().collect();
            if f.len() != 6 {
                return None;
            }
            Some(Row {
                guest: f[0].to_string(),
                frame: f[1].parse().ok()?,
                count: f[2].parse().ok()?,
                received: f[3].parse().ok()?,
                seconds: f[4].parse::<f64>().ok()? / 100.0,
                dom0_irqs: f[5].parse().ok()?,
            })
        })
        .collect()
}

/// A domU's console value `PREFIX N` (the first number after the prefix).
fn console_number(output: &str, name: &str, prefix: &str) -> Option<u64> {
    super::console_lines(output, name).iter().find_map(|l| {
        let rest = l.split_once(prefix)?.1.trim_start();
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    })
}

/// Boots the benchmark on release Xen and prints its table (markdown).
pub fn run() -> Result<String> {
    crate::setup::toolchain()?;
    crate::setup::debian(&[crate::setup::QEMU])?;
    let dom0 = super::fetch()?;
    let xen = crate::xen::fetch_xen()?;
    let s = scenario();
    let runs = super::run(&s, &dom0, &[(crate::xen::XenBuild::Release, xen)])?;
    let r = &runs[0];
    let out = &r.boot.output;
    let rows = rows(out);
    if !r.problems.is_empty() || rows.len() != 2 * FRAMES.len() {
        bail!(
            "the benchmark boot failed ({} rows):\n{}",
            rows.len(),
            r.problems.join("\n")
        );
    }
    let mut t = String::from(
        "### Network: ours against Linux's netfront (busybox ping -A from dom0, release Xen, TCG)\n\n\
         | guest | frame | round trips | round trips/s | MiB/s (both ways) | dom0 vif IRQs per round trip |\n\
         |---|---|---|---|---|---|\n",
    );
    for row in &rows {
        let _ = writeln!(
            t,
            "| {} | {} B | {}/{} | {:.0} | {:.2} | {:.2} |",
            row.guest,
            row.frame,
            row.received,
            row.count,
            row.rate(),
            row.mib_s(),
            row.dom0_irqs as f64 / f64::from(row.received.max(1)),
        );
    }
    let ours: u64 = rows
        .iter()
        .filter(|r| r.guest == "ours")
        .map(|r| u64::from(r.received))
        .sum();
    let linux: u64 = rows
        .iter()
        .filter(|r| r.guest == "linux")
        .map(|r| u64::from(r.received))
        .sum();
    let per = |v: Option<u64>, n: u64| {
        v.map_or("?".to_string(), |v| {
            format!("{v} ({:.2} per round trip)", v as f64 / n.max(1) as f64)
        })
    };
    let _ = write!(
        t,
        "\nWhole run, all traffic included (so slightly more than the measured round trips): ours sent {} \
         notifications and made {} hypercalls on its data path ({} sched_poll) for {ours} measured round \
         trips; Linux's domU took {} interrupts on its vif for {linux}.\n",
        per(console_number(out, "netb", "notifications "), ours),
        per(console_number(out, "netb", "hypercalls "), ours),
        console_number(out, "netb", "sched_poll ").map_or("?".to_string(), |v| v.to_string()),
        per(console_number(out, "lnx", "irqs "), linux),
    );
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::super::{MARK, init_script};
    use super::*;

    #[test]
    fn bench_lines_are_read_and_other_lines_ignored() {
        let out = format!(
            "{MARK}ok netb: run measure ours\n{MARK}  | bench ours 64 300 299 68 300\n\
             {MARK}  | bench ours 1500 300 300 x 300\n{MARK}  | bench linux 1500 300 300 202 301\n\
             bench ours 64 1 1 1 1\n"
        );
        let r = rows(&out);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(
            (
                r[0].guest.as_str(),
                r[0].frame,
                r[0].received,
                r[0].dom0_irqs
            ),
            ("ours", 64, 299, 300)
        );
        assert!((r[0].seconds - 0.68).abs() < 1e-9);
        assert!((r[0].rate() - 299.0 / 0.68).abs() < 1e-6);
        assert_eq!((r[1].guest.as_str(), r[1].frame), ("linux", 1500));
    }

    #[test]
    fn a_vif_brings_the_bridge_and_netback_and_only_then() {
        let net = Scenario::net();
        assert!(net.has_vifs() && scenario().has_vifs());
        assert!(!Scenario::console().has_vifs());
        let s = init_script(&net);
        for want in [
            "brctl addbr xenbr0",
            "ip addr add 169.254.1.1/16 dev xenbr0",
            "net/bridge/bridge",
            "drivers/net/xen-netback/xen-netback",
            "udp-check 169.254.1.2",
            "xl network-detach $D 0",
        ] {
            assert!(s.contains(want), "{want} missing");
        }
        assert!(!init_script(&Scenario::console()).contains("brctl"));
        // One vif mechanism: the declared vif's line, with the harness's hotplug script.
        assert!(
            net.domus[0]
                .config_file()
                .contains("vif = ['mac=00:16:3e:00:00:02,bridge=xenbr0,script=vif-bridge-sh']\n")
        );
        assert!(
            scenario().domus[0]
                .config_file()
                .contains("mac=00:16:3e:00:00:03,")
        );
        // The Linux domU is no guest build, and the measurements name both vifs.
        let b = scenario();
        assert_eq!(b.domus[0].bin, LINUX);
        let steps = init_script(&b);
        assert!(steps.contains("grep vif1.0 /proc/interrupts") && steps.contains("grep vif2.0"));
    }
}
