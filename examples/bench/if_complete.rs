//! The bench rows for zero-stage publishing: what `multiarch push --if-complete` costs inside a
//! build job at N = 2 and N = 8 and 20 ms RTT, when a platform is still awaited (it looks and
//! publishes nothing) and when it completes the set (it publishes), beside a plain `push` of the
//! same set (what a manifest job runs).

use std::time::Duration;

use super::support::fixtures::{push_content, Compression, Item};
use super::support::proxy::{Fault, Proxy};
use super::support::Registry;
use super::{measure, median, multiarch, program_for, suffix, PLATFORMS};

/// The fixture for `platform` under `bench:{prefix}-{arch}{variant}`; its digest.
fn fixture(reg: &Registry, prefix: &str, platform: &str) -> String {
    push_content(
        reg,
        &format!("bench:{prefix}-{}", suffix(platform)),
        platform,
        serde_json::json!({"Entrypoint": ["/usr/local/bin/app"]}),
        &[vec![
            Item::File("etc/os-release", 0o644, b"ID=bench\n".to_vec()),
            Item::File("usr/local/bin/app", 0o755, program_for(platform)),
        ]],
        Compression::Gzip,
    )
}

pub(crate) fn run(bin: &str, reg: &Registry, runs: usize) {
    let proxy = Proxy::start(&reg.host, Duration::from_millis(20), |_, _| Fault::Pass);
    let host = &proxy.host;
    println!();
    println!("Zero-stage publishing: `multiarch push --if-complete` in the build job of the first platform (its own image handed over by digest, the others by tag; 20 ms RTT; content check on). Incomplete: the last platform's tag is missing. Publishing: the set is complete, a fresh target tag each run. Beside it, a plain `push` of the same set (a manifest job's run):");
    println!();
    println!("| N | incomplete (median) | requests | publishing (median) | requests | plain push (median) | requests |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in [2usize, 8] {
        let platforms = &PLATFORMS[..n];
        // The incomplete set: every platform but the last under `inc-` tags.
        let mut own = String::new();
        for (i, p) in platforms[..n - 1].iter().enumerate() {
            let digest = fixture(reg, &format!("inc{n}"), p);
            if i == 0 {
                own = digest;
            }
        }
        let own_variable = format!(
            "MULTIARCH_SOURCE_{}",
            platforms[0].replace('/', "_").to_uppercase()
        );
        // The complete set under `src-` tags (the main rows push them too; pushed again here so
        // that these rows run on their own).
        let complete: Vec<String> = platforms.iter().map(|p| fixture(reg, "src", p)).collect();
        let complete_own = complete[0].clone();
        let mut cells = Vec::new();
        for (case, prefix, digest, if_complete) in [
            ("incomplete", format!("inc{n}"), own.clone(), true),
            ("publishing", "src".to_string(), complete_own.clone(), true),
            ("push", "src".to_string(), complete_own.clone(), false),
        ] {
            let (mut times, mut requests) = (Vec::new(), Vec::new());
            for run in 0..runs {
                let mut env = vec![
                    ("MULTIARCH_PLATFORMS", platforms.join(",")),
                    (
                        "MULTIARCH_SOURCE_TEMPLATE",
                        format!("{{image}}:{prefix}-{{arch}}{{variant}}"),
                    ),
                    ("MULTIARCH_TAGS", format!("ic-{case}-{n}-{run}")),
                    ("MULTIARCH_TIMEOUT", "15m".to_string()),
                ];
                if if_complete {
                    env.push(("MULTIARCH_IF_COMPLETE", "true".to_string()));
                    env.push((own_variable.as_str(), format!("{host}/bench@{digest}")));
                }
                let before = proxy.requests();
                let (t, _) = measure(&mut multiarch(bin, host, &env));
                times.push(t.as_secs_f64());
                requests.push(proxy.requests() - before);
                // What was measured is what the row says: nothing published while incomplete.
                let published = reg.raw(&format!("bench:ic-{case}-{n}-{run}")).is_some();
                assert_eq!(published, case != "incomplete", "{case} N={n}");
            }
            requests.sort();
            cells.push((median(times), requests[requests.len() / 2]));
            eprintln!(
                "--if-complete N={n} {case}: {:.3}s",
                cells.last().unwrap().0
            );
        }
        println!(
            "| {n} | {:.3} s | {} | {:.3} s | {} | {:.3} s | {} |",
            cells[0].0, cells[0].1, cells[1].0, cells[1].1, cells[2].0, cells[2].1
        );
    }
}
