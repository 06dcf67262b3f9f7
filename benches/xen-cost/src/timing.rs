// The timing loop and the output line of both xen-cost dom0s (`benches/xen-cost`, `benches/xen-cost-x86`),
// included where each defines its own `ticks()`.

/// Ticks of `n` iterations of `body`, the best of three runs after a warm-up run.
fn time(n: usize, mut body: impl FnMut(usize)) -> u64 {
    let mut best = u64::MAX;
    for run in 0..4 {
        let t0 = ticks();
        for i in 0..n {
            body(black_box(i));
        }
        let t = ticks() - t0;
        if run > 0 {
            best = best.min(t);
        }
    }
    best
}

fn line(name: &str, n: usize, v: u64) {
    let mut buf = [0u8; 64];
    let mut len = 0;
    let mut push = |b: &[u8]| {
        for &c in b {
            if len < buf.len() {
                buf[len] = c;
                len += 1;
            }
        }
    };
    push(b"xen-cost ");
    push(name.as_bytes());
    for x in [n as u64, v] {
        let mut d = [0u8; 20];
        let (mut i, mut x) = (d.len(), x);
        loop {
            i -= 1;
            d[i] = b'0' + (x % 10) as u8;
            x /= 10;
            if x == 0 {
                break;
            }
        }
        push(b" ");
        push(&d[i..]);
    }
    push(b"\n");
    let _ = console::write(&buf[..len]);
}
