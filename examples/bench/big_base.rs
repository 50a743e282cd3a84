//! The bench row for the content check on a big image: a 1 GiB base layer, the entrypoint in a
//! small top layer. The check must not read the base.

use std::time::Duration;

use super::support::fixtures::push_big_base;
use super::support::proxy::{Fault, Proxy};
use super::support::Registry;
use super::{measure, median, multiarch, program_for};

/// What the content check costs on an image with a 1 GiB base layer and its entrypoint in the
/// top layer: `multiarch push` of it with the check on and off, straight to the registry and at
/// 20 ms RTT. The base is never read: the difference is one small layer's request.
pub(crate) fn run(bin: &str, reg: &Registry, runs: usize) {
    const BASE: usize = 1 << 30;
    eprintln!("pushing an image with a 1 GiB base layer");
    push_big_base(
        reg,
        "bigbase:1-amd64",
        "linux/amd64",
        BASE,
        program_for("linux/amd64"),
    );
    let proxy = Proxy::start(&reg.host, Duration::from_millis(20), |_, _| Fault::Pass);
    println!();
    println!("The content check on an image with a 1 GiB base layer and the entrypoint in the top layer (N = 1):");
    println!();
    println!("| RTT | check on (median) | check off (median) | cost of the check | requests on / off | peak RSS on |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut worst = 0f64;
    for (label, host, counted) in [
        ("direct", reg.host.clone(), None),
        ("20 ms", proxy.host.clone(), Some(&proxy)),
    ] {
        let mut times = [Vec::new(), Vec::new()];
        let mut requests = [0usize, 0usize];
        let mut rss = 0;
        for run in 0..runs {
            for (i, check) in ["entrypoint", "off"].iter().enumerate() {
                let env = vec![
                    ("MULTIARCH_IMAGE", format!("{host}/bigbase")),
                    (
                        "MULTIARCH_TAGS",
                        format!("{label}-{check}-{run}").replace(' ', ""),
                    ),
                    ("MULTIARCH_PLATFORMS", "linux/amd64".to_string()),
                    ("MULTIARCH_SOURCE_TEMPLATE", "{image}:1-{arch}".to_string()),
                    ("MULTIARCH_TIMEOUT", "0".to_string()),
                    ("MULTIARCH_CONTENT_CHECK", check.to_string()),
                ];
                let before = counted.map_or(0, |p| p.requests());
                let (t, r) = measure(&mut multiarch(bin, &host, &env));
                times[i].push(t.as_secs_f64());
                requests[i] = counted.map_or(0, |p| p.requests()) - before;
                if i == 0 {
                    rss = rss.max(r);
                }
            }
        }
        let on = median(times[0].clone());
        let off = median(times[1].clone());
        worst = worst.max(on - off);
        let reqs = match counted {
            Some(_) => format!("{} / {}", requests[0], requests[1]),
            None => "–".into(),
        };
        println!(
            "| {label} | {on:.3} s | {off:.3} s | {:+.3} s | {reqs} | {:.1} MiB |",
            on - off,
            rss as f64 / 1024.0
        );
    }
    println!();
    println!(
        "- the check's cost with a 1 GiB base < 0.5 s: {:+.3} s at most, {} (the base layer is never requested)",
        worst,
        if worst < 0.5 { "met" } else { "missed" }
    );
}
