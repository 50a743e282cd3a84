//! A manual-testing aid: runs the latency/fault proxy of `tests/it/support` in front of a registry
//! and prints every request it sees. `cargo run --example proxy -- UPSTREAM [RTT_MS]`.

// The integration tests' support: an example uses only part of it.
#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::Duration;

use support::proxy::{Fault, Proxy};

fn main() {
    let mut args = std::env::args().skip(1);
    let upstream = args.next().expect("usage: proxy UPSTREAM [RTT_MS]");
    let rtt = Duration::from_millis(args.next().and_then(|a| a.parse().ok()).unwrap_or(0));
    let proxy = Proxy::start(&upstream, rtt, |_, _| Fault::Pass);
    println!("{}", proxy.host);
    let mut seen = 0;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let log = proxy.log();
        for line in &log[seen..] {
            eprintln!("{:?} {line}", std::time::SystemTime::now());
        }
        seen = log.len();
    }
}
