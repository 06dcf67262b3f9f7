//! The network benchmark (`cargo bench --bench net`): this crate's network frontend (the `xl-net` domU)
//! against Linux's `xen-netfront` (a Linux domU from dom0's own kernel), both on netback over dom0's
//! bridge, in the same boot, one after the other.
//!
//! dom0 measures with busybox `ping -A` (the next request as soon as the reply came): round trips per
//! second for 64-byte and 1500-byte Ethernet frames (`-s 22` and `-s 1458`), the MiB/s both ways that
//! makes, and the event channel interrupts dom0 took from each vif per round trip (`/proc/interrupts`,
//! the frontend's notifications). Each domU reports its own side: ours its notifications and hypercalls
//! (`sched_poll`, `EVTCHNOP_send`), Linux its interrupts from `/proc/interrupts`.
//!
//! Then streams (`measure_stream`), in the same boot: UDP floods of [`FLOODS`] datagrams each way with
//! 64-byte and 1500-byte frames, and a TCP stream each way ([`TCP_BYTES`] to the domU,
//! [`TCP_FROM_BYTES`] from it; ours with its `smoltcp` stack, moving the bytes unhashed as Linux's `nc`
//! does), counted by the vif on the receiving side of the frontend, with the notifications per frame on
//! each side.
//!
//! The boot runs on QEMU's instruction clock ([`super::ICOUNT`]) and dom0 times to the microsecond
//! ([`US`]): a second is 10^9 instructions of every domain and Xen, not the host's load. Linux's figures
//! repeat within 1–2 % between boots but for its TCP to the domU, whose GSO segments vary (100 to 3000
//! frames for 16 MiB). Nothing here passes or fails on a figure.

use std::fmt::Write as _;

use anyhow::{Result, bail};

use super::{DomU, LINUX, Scenario, Step, VIF_BACKEND, Value, Vif, harness_lines};

/// Frames measured: (Ethernet frame bytes, ping's `-s`), and round trips per measurement.
pub const FRAMES: [(u32, u32); 2] = [(64, 22), (1500, 1458)];
/// Round trips per measurement.
pub const COUNT: u32 = 1000;

/// Datagrams of each UDP flood, by frame size (Ethernet frame bytes, UDP payload bytes, datagrams).
pub const FLOODS: [(u32, u32, u32); 2] = [(64, 22, 20000), (1500, 1458, 10000)];

/// Bytes of the TCP stream to the domU (zeros, streamed from dom0's `/dev/zero`).
pub const TCP_BYTES: u32 = 16 * 1024 * 1024;

/// Bytes of the TCP stream from the domU (the Linux domU's port 5003 sends this many: see its `/init`),
/// kept in dom0's `/tmp` (its RAM) to be counted.
pub const TCP_FROM_BYTES: u32 = 8 * 1024 * 1024;

/// dom0's clock for the measurements, `us`: microseconds of its monotonic clock (`now at` of
/// `/proc/timer_list`, or bash's `EPOCHREALTIME` where that file is missing). Under [`super::ICOUNT`]
/// it counts the instructions executed (one per nanosecond), every domain's.
const US: &str = r#"us() { t=$(awk '/^now at/ { printf "%d", $3 / 1000; exit }' /proc/timer_list 2>/dev/null); [ -n "$t" ] && echo $t || bash-static -c 'echo ${EPOCHREALTIME/./}'; };"#;

/// dom0's shell helpers for the streaming measurements of one guest (floods and `count` at `ip`, TCP at
/// `tcp_ip`, `$D` its domid): its vif's counters (netback's: `tx_*` is what netback delivered into the
/// frontend's receive ring, `rx_*` what it took from its transmit ring), the vif's interrupts (the
/// frontend's notifications), `settle COUNTER TARGET` (waits until the counter reaches TARGET or stays
/// unchanged for 0.6 s, and prints the microseconds ([`US`]) from `$t0` to its last change), and `count` (ours
/// only: the datagrams and bytes its port 9 took, its notifications and its sleeps so far).
fn stream_helpers(ip: &str, tcp_ip: &str, vif: &str) -> String {
    let mut s = format!("ip={ip}; tip={tcp_ip}; vif={vif}; ");
    s.push_str(US);
    s.push_str(
        r#"
irqs() { grep $vif /proc/interrupts | awk '{ s += $2 } END { print s + 0 }'; };
st() { cat /sys/class/net/$vif/statistics/$1; };
T=/sys/kernel/tracing; [ -d $T/events/kprobes/gcopy ] || { mount -t tracefs nodev $T 2>/dev/null;
  echo 'p:gcopy gnttab_batch_copy n=%x1:u32' >> $T/kprobe_events; echo 'p:gmap gnttab_map_refs n=%x3:u32' >> $T/kprobe_events;
  for e in gcopy gmap; do echo 'hist:keys=common_cpu:vals=n' > $T/events/kprobes/$e/trigger; done; };
gops() { for e in gcopy gmap; do awk '/ n: / { for (i = 1; i <= NF; i++) if ($i == "n:") s += $(i + 1) } END { printf "%d ", s }' $T/events/kprobes/$e/hist 2>/dev/null || printf '0 '; done; };
settle() { last=$(st $1); tl=$(us); while :; do sleep 0.01; v=$(st $1); now=$(us);
  if [ "$v" != "$last" ]; then last=$v; tl=$now; fi; [ "$v" -ge "$2" ] && break;
  [ $((now - tl)) -ge 600000 ] && break; done; echo $((tl - t0)); };
count() { bash-static -c "exec 3<>/dev/udp/$ip/5001; printf count >&3; timeout 3 dd bs=256 count=1 <&3 2>/dev/null" | awk '{ print $2, $4, $5 } END { if (NR == 0) print 0, 0, 0 }'; };
lirqs() { tag=$(us)x$RANDOM; bash-static -c "echo irqs $tag > /dev/tcp/$ip/5004" 2>/dev/null; n=0;
  until v=$(grep "vif-irqs $tag " /var/log/xen/console/guest-lnx.log | tail -1 | awk '{ print $NF }') && [ -n "$v" ]; do
    n=$((n + 1)); [ $n -gt 100 ] && { echo 0; return; }; sleep 0.05; done; echo $v; };
"#,
    );
    s
}

/// dom0's streaming measurement of one guest (`ours`: the `xl-net` domU, which answers `count` and
/// `flood N SIZE` on UDP port 5001 at `ip`, its TCP/IP stack being at `tcp_ip`; `linux`: the Linux domU,
/// which takes `udp N SIZE` on TCP port 5004). For each of [`FLOODS`]: N datagrams from dom0 to the
/// domU's port 9 (one `dd` write each), counted by the vif as delivered (and by our domU itself); then N
/// from the domU to dom0, counted by the vif as taken. Then a TCP stream each way ([`TCP_BYTES`], [`TCP_FROM_BYTES`]). Lines
/// `bench-stream NAME DIR FRAME SENT DELIVERED BYTES MICROSECONDS DOM0_IRQS DOMU_COUNTED
/// DOMU_NOTIFICATIONS DOMU_WAKES` (`-` where the domU does not say). DOMU_NOTIFICATIONS: ours, the
/// notifications it sent; Linux, the interrupts its vif took (the backend's notifications), asked
/// before and after (`irqs TAG` on its port 5004, answered on its console).
fn measure_stream(name: &str, ip: &str, tcp_ip: &str, vif: &str) -> String {
    let ours = name == "ours";
    let mut s = stream_helpers(ip, tcp_ip, vif);
    // dom0 sends no ICMP error to a new peer either: a port unreachable would end the domU's flood
    // (the Linux domU's `/dev/udp` socket is connected; ours ignores them).
    s.push_str("echo 100000000 > /proc/sys/net/ipv4/icmp_ratelimit\n");
    let (before, after) = if ours {
        (
            "set -- $(count) $(gops); c0=$1; n0=$2; w0=$3; g0=$4; m0=$5; ",
            "set -- $(count) $(gops); dc=$(($1 - c0)); dn=$(($2 - n0)); dw=$(($3 - w0)); gc=$(($4 - g0)); gm=$(($5 - m0)); ",
        )
    } else {
        (
            "l0=$(lirqs); set -- $(gops); g0=$1; m0=$2; ",
            "set -- $(gops); gc=$(($1 - g0)); gm=$(($2 - m0)); dc=-; dn=$(($(lirqs) - l0)); dw=-; ",
        )
    };
    for (frame, size, n) in FLOODS {
        let _ = writeln!(
            s,
            r#"{before}p0=$(st tx_packets); i0=$(irqs); t0=$(us); bash-static -c "dd if=/dev/zero bs={size} count={n} > /dev/udp/$ip/9" 2>/dev/null; el=$(settle tx_packets $((p0 + {n}))); p=$(($(st tx_packets) - p0)); i=$(($(irqs) - i0)); {after}echo "bench-stream {name} to {frame} {n} $p $((p * {size})) $el $i $dc $dn $dw $gc $gm""#
        );
        let ask = if ours {
            format!(r#"bash-static -c "printf 'flood {n} {size}' > /dev/udp/$ip/5001""#)
        } else {
            format!(r#"bash-static -c "echo udp {n} {size} > /dev/tcp/$ip/5004""#)
        };
        let _ = writeln!(
            s,
            r#"{before}p0=$(st rx_packets); i0=$(irqs); t0=$(us); {ask}; el=$(settle rx_packets $((p0 + {n}))); p=$(($(st rx_packets) - p0)); i=$(($(irqs) - i0)); {after}echo "bench-stream {name} from {frame} {n} $p $((p * {size})) $el $i $dc $dn $dw $gc $gm""#
        );
    }
    // TCP: to the domU (zeros, moved and counted: ours is told to skip its digest, as Linux's `nc`
    // writes them to /dev/null), and from it (zeros; the end is when the bytes are all there: a busybox
    // `nc` need not close).
    let (b, fb) = (TCP_BYTES, TCP_FROM_BYTES);
    let _ = writeln!(
        s,
        r#"k=/local/domain/$D/data; xenstore-write $k/tcp-md5 - $k/tcp-send "{fb} zeros"
{before}p0=$(st tx_packets); i0=$(irqs); t0=$(us); bash-static -c "head -c {b} /dev/zero > /dev/tcp/$tip/5002"; el=$(settle tx_packets 999999999); p=$(($(st tx_packets) - p0)); i=$(($(irqs) - i0)); {after}echo "bench-stream {name} tcp-to 1514 - $p {b} $el $i $dc $dn $dw $gc $gm"
{before}p0=$(st rx_packets); i0=$(irqs); rm -f /tmp/r.bin; t0=$(us); bash-static -c "cat < /dev/tcp/$tip/5003 > /tmp/r.bin" & r=$!
while [ $(($(us) - t0)) -lt 30000000 ] && [ "$(wc -c < /tmp/r.bin 2>/dev/null || echo 0)" -lt {fb} ]; do sleep 0.01; done
el=$(($(us) - t0)); kill $r 2>/dev/null; got=$(wc -c < /tmp/r.bin); p=$(($(st rx_packets) - p0)); i=$(($(irqs) - i0)); {after}echo "bench-stream {name} tcp-from 1514 - $p $got $el $i $dc $dn $dw $gc $gm""#
    );
    s.push_str("true");
    s
}

/// dom0's measurement of one guest: `bench NAME FRAME COUNT RECEIVED MICROSECONDS IRQS`.
fn measure(name: &str, ip: &str, vif: &str) -> String {
    let mut s = format!(
        "irqs() {{ grep {vif} /proc/interrupts | awk '{{ s += $2 }} END {{ print s + 0 }}'; }}; \
         {us} ping -c 3 -W 2 {ip} > /dev/null; ",
        us = US,
    );
    for (frame, size) in FRAMES {
        let _ = write!(
            s,
            "i0=$(irqs); t0=$(us); ping -A -q -c {COUNT} -W 5 -s {size} {ip} > /tmp/b; t1=$(us); i1=$(irqs); \
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
        console: vec![
            "xl-net: ok connected",
            "xl-net: ok backend gone",
            "xl-net: ok closed: backend closed 1",
            "xl-net: done",
        ],
        xenstore: vec![(VIF_BACKEND, Value::Is("2"))],
        seconds: 150,
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
            Step::Run("stream ours", ""),
            Step::Run("stream Linux's netfront", ""),
            Step::Run(
                "udp: one exchange each way",
                "udp-check 169.254.1.2 64 1472",
            ),
            Step::Run("xl shutdown lnx", "timeout 30 xl shutdown -w lnx"),
            Step::Run("network-detach: the vif is gone", super::DETACH),
        ],
        ..DomU::new("netb", "xl-net")
    };
    let linux = DomU {
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
        seconds: 150,
        vifs: vec![Vif {
            mac: "00:16:3e:00:00:03",
        }],
        ..DomU::new("lnx", LINUX)
    };
    let mut s = Scenario {
        name: "netbench",
        title: "network benchmark: ours against Linux's netfront, ping -A with 64 and 1500-byte frames",
        blkback: "",
        netback: "",
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
    // Ours: floods to and from its own responder, TCP with its stack (169.254.1.4).
    steps[4] = Step::Run(
        "stream ours",
        Box::leak(measure_stream("ours", "169.254.1.2", "169.254.1.4", "vif2.0").into_boxed_str()),
    );
    steps[5] = Step::Run(
        "stream Linux's netfront",
        Box::leak(measure_stream("linux", "169.254.1.3", "169.254.1.3", "vif1.0").into_boxed_str()),
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
                seconds: f[4].parse::<f64>().ok()? / 1e6,
                dom0_irqs: f[5].parse().ok()?,
            })
        })
        .collect()
}

/// One streaming measurement (`bench-stream` line).
#[derive(Clone, Debug, PartialEq)]
pub struct StreamRow {
    pub guest: String,
    /// `to` (dom0 to the domU) or `from`, UDP; `tcp-to` or `tcp-from`.
    pub dir: String,
    pub frame: u32,
    /// Datagrams sent (UDP), `None` for TCP.
    pub sent: Option<u64>,
    /// Frames the vif counted (delivered to the frontend, or taken from it).
    pub packets: u64,
    /// Payload bytes delivered.
    pub bytes: u64,
    pub seconds: f64,
    pub dom0_irqs: u64,
    /// What our domU says: datagrams its port 9 took, its notifications, its sleeps.
    pub domu_counted: Option<u64>,
    pub domu_notifications: Option<u64>,
    pub domu_wakes: Option<u64>,
    /// netback's grant operations meanwhile (dom0's kprobes on `gnttab_batch_copy` and
    /// `gnttab_map_refs`, their counts summed): copies and maps.
    pub grant_copies: u64,
    pub grant_maps: u64,
}

impl StreamRow {
    /// Frames the figures are per: the vif's count for UDP; for TCP the payload in 1448-byte segments
    /// (netback counts a Linux frontend's GSO packet, up to 64 KiB, once).
    pub fn frames(&self) -> u64 {
        if self.dir.starts_with("tcp") {
            self.bytes.div_ceil(1448)
        } else {
            self.packets
        }
    }
    /// Frames per second.
    pub fn pps(&self) -> f64 {
        self.frames() as f64 / self.seconds.max(0.01)
    }
    /// MiB/s of payload.
    pub fn mib_s(&self) -> f64 {
        self.bytes as f64 / self.seconds.max(0.01) / (1024.0 * 1024.0)
    }
}

/// The `bench-stream …` lines of dom0's output.
pub fn stream_rows(output: &str) -> Vec<StreamRow> {
    harness_lines(output)
        .iter()
        .filter_map(|l| {
            let l = l.trim_start_matches("  | ");
            let f: Vec<&str> = l
                .strip_prefix("bench-stream ")?
                .split_whitespace()
                .collect();
            if f.len() != 13 {
                return None;
            }
            // `-` is "not said"; anything else must be a number.
            let opt = |v: &str| -> Option<Option<u64>> {
                if v == "-" {
                    Some(None)
                } else {
                    v.parse().ok().map(Some)
                }
            };
            Some(StreamRow {
                guest: f[0].to_string(),
                dir: f[1].to_string(),
                frame: f[2].parse().ok()?,
                sent: opt(f[3])?,
                packets: f[4].parse().ok()?,
                bytes: f[5].parse().ok()?,
                seconds: f[6].parse::<f64>().ok()? / 1e6,
                dom0_irqs: f[7].parse().ok()?,
                domu_counted: opt(f[8])?,
                domu_notifications: opt(f[9])?,
                domu_wakes: opt(f[10])?,
                grant_copies: f[11].parse().ok()?,
                grant_maps: f[12].parse().ok()?,
            })
        })
        .collect()
}

/// The streaming table (markdown).
pub fn stream_table(rows: &[StreamRow]) -> String {
    let mut t = String::from(
        "### Network streams: UDP floods and TCP, ours against Linux's netfront (release Xen, QEMU -icount)\n\n\
         `to`/`from`: UDP datagrams from dom0 to the domU's port 9 / from the domU to dom0's, counted by \
         netback's vif (delivered into the frontend's receive ring / taken from its transmit ring); \
         `tcp-to`/`tcp-from`: one TCP stream, its frames counted as 1448-byte segments of payload (netback \
         counts a GSO packet of Linux's once). Notifications: dom0's vif interrupts are the frontend's \
         notifications (to the backend); the domU column is, for ours, the notifications it sent (so about \
         dom0's) and its sleeps (`sched_poll`, each ended by the backend's event or a time-out), for \
         Linux's, the interrupts its vif took (the backend's notifications to it). Grant copies and maps: \
         netback's operations (`GNTTABOP_copy` and `GNTTABOP_map_grant_ref` entries, counted by dom0's \
         kprobes on `gnttab_batch_copy` and `gnttab_map_refs`) per frame.\n\n\
         | guest | stream | frame | sent | vif counted | domU counted | frames/s | MiB/s | dom0 vif IRQs per frame | domU notifications (ours: sent; Linux: taken) per frame | domU sleeps per frame | grant copies per frame | grant maps per frame |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let per = |v: Option<u64>, n: u64| {
        v.map_or("-".to_string(), |v| {
            format!("{:.3}", v as f64 / n.max(1) as f64)
        })
    };
    for r in rows {
        let _ = writeln!(
            t,
            "| {} | {} | {} B | {} | {} | {} | {:.0} | {:.2} | {:.3} | {} | {} | {:.2} | {:.2} |",
            r.guest,
            r.dir,
            r.frame,
            r.sent.map_or("-".to_string(), |v| v.to_string()),
            r.packets,
            if r.dir == "to" {
                r.domu_counted.map_or("-".to_string(), |v| v.to_string())
            } else {
                "-".to_string()
            },
            r.pps(),
            r.mib_s(),
            r.dom0_irqs as f64 / r.frames().max(1) as f64,
            per(r.domu_notifications, r.frames()),
            per(r.domu_wakes, r.frames()),
            r.grant_copies as f64 / r.frames().max(1) as f64,
            r.grant_maps as f64 / r.frames().max(1) as f64,
        );
    }
    // Ratios ours / Linux, stream by stream.
    let mut ratios = Vec::new();
    for r in rows.iter().filter(|r| r.guest == "ours") {
        if let Some(l) = rows
            .iter()
            .find(|l| l.guest == "linux" && l.dir == r.dir && l.frame == r.frame)
        {
            ratios.push(format!(
                "{} {} B {:.2}",
                r.dir,
                r.frame,
                r.mib_s() / l.mib_s().max(1e-9)
            ));
        }
    }
    let _ = writeln!(t, "\nOurs / Linux, MiB/s: {}.", ratios.join("; "));
    t
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
    // On QEMU's instruction clock: dom0 times each measurement to the microsecond (`us`), and every
    // figure counts instructions, not the host's load.
    let runs = super::run_with(
        &s,
        &dom0,
        &[(crate::xen::XenBuild::Release, xen)],
        &super::ICOUNT,
    )?;
    let r = &runs[0];
    let out = &r.boot.output;
    let rows = rows(out);
    let streams = stream_rows(out);
    if !r.problems.is_empty()
        || rows.len() != 2 * FRAMES.len()
        || streams.len() != 2 * (2 * FLOODS.len() + 2)
    {
        bail!(
            "the benchmark boot failed ({} rows, {} stream rows):\n{}",
            rows.len(),
            streams.len(),
            r.problems.join("\n")
        );
    }
    let mut t = String::from(
        "### Network: ours against Linux's netfront (busybox ping -A from dom0, release Xen, QEMU -icount)\n\n\
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
    t.push('\n');
    t.push_str(&stream_table(&streams));
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::super::{MARK, init_script};
    use super::*;

    #[test]
    fn bench_lines_are_read_and_other_lines_ignored() {
        let out = format!(
            "{MARK}ok netb: run measure ours\n{MARK}  | bench ours 64 300 299 680000 300\n\
             {MARK}  | bench ours 1500 300 300 x 300\n{MARK}  | bench linux 1500 300 300 2020000 301\n\
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
    fn stream_lines_are_read_and_malformed_ones_ignored() {
        let out = format!(
            "{MARK}  | bench-stream ours to 64 4000 3990 87780 1500000 12 3990 40 35 3990 0\n\
             {MARK}  | bench-stream linux tcp-from 1514 - 3000 4194304 4000000 20 - - - 3100 2900\n\
             {MARK}  | bench-stream ours to 64 4000 3990 87780 1500000 12 3990 40 35 3990\n\
             {MARK}  | bench-stream ours to 64 x 3990 87780 1500000 12 3990 40 35 3990 0\n"
        );
        let r = stream_rows(&out);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(
            (r[0].sent, r[0].packets, r[0].domu_wakes),
            (Some(4000), 3990, Some(35))
        );
        assert!((r[0].pps() - 3990.0 / 1.5).abs() < 1e-6);
        assert_eq!(
            (r[1].dir.as_str(), r[1].sent, r[1].domu_counted),
            ("tcp-from", None, None)
        );
        assert!((r[1].mib_s() - 1.0).abs() < 1e-9);
        assert_eq!((r[1].grant_copies, r[1].grant_maps), (3100, 2900));
        let t = stream_table(&r);
        // Per frame: 3990 copies for 3990 frames; Linux's TCP 2900 maps for 2897 segments of 1448.
        assert!(t.contains("| 1.00 | 0.00 |"), "{t}");
        assert!(t.contains("| 1.07 | 1.00 |"), "{t}");
        assert!(
            t.contains("| ours | to | 64 B | 4000 | 3990 | 3990 | 2660 |"),
            "{t}"
        );
    }

    #[test]
    fn the_streams_name_both_guests_and_the_linux_domu_serves_them() {
        let steps = init_script(&scenario());
        for want in [
            "bench-stream ours to 64 20000",
            "bench-stream linux from 1500 10000",
            "flood 10000 1458",
            "/dev/udp/$ip/5001",
            "echo udp 20000 22 > /dev/tcp/$ip/5004",
            "tip=169.254.1.4; vif=vif2.0",
            "tip=169.254.1.3; vif=vif1.0",
        ] {
            assert!(steps.contains(want), "{want} missing");
        }
        // The Linux domU's source sends what dom0 waits for.
        assert!(super::super::LINUX_INIT.contains(&format!(
            "head -c {TCP_FROM_BYTES} /dev/zero | nc -l -p 5003"
        )));
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
