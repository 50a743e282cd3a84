//! The bench row for the two pipeline shapes: the documented buildah pipeline with its manifest
//! job, and the zero-stage one (build jobs only, `publish-if-complete`), each run whole by
//! gitlab-ci-local on the host shell in a fresh project (a new commit, so new images and a new
//! index every run). The shell executor schedules nothing, pulls no image and starts no
//! container: it leaves out exactly what a manifest job costs on real runners, so the difference
//! here is only the extra job's own run and the stage boundary.

use std::time::Instant;

use serde_norway::Value;

use super::median;
use super::support::glci::{adapt, example, project, run, tool_image};
use super::support::Registry;

pub(crate) fn run_all(reg: &Registry, runs: usize) {
    let tool = tool_image(reg);
    let image = reg.repo("group/app");
    let build: Vec<(&str, Value)> = vec![
        ("context", "app".into()),
        ("registry-login", "none".into()),
        ("tls-verify", Value::Bool(false)),
    ];
    let mut zero = build.clone();
    zero.push(("tool-image", tool.as_str().into()));
    let manifest: Vec<(&str, Value)> = vec![];
    let variables = vec![
        ("MULTIARCH_IMAGE", image.clone()),
        ("MULTIARCH_INSECURE_REGISTRIES", reg.host.clone()),
    ];
    println!();
    println!("The two pipeline shapes, each run whole by gitlab-ci-local 4 on the host shell (two buildah build jobs of a one-file `FROM scratch` image; a fresh commit each run). The shell executor leaves out what a manifest job costs on real runners — scheduling the job after the build stage, pulling its image, starting its container (10–60 s on shared runners) — so this measures only the job's own run and the stage boundary:");
    println!();
    println!("| pipeline | jobs | wall time (median) | runs |");
    println!("|---|---|---:|---|");
    for (name, file, inputs, jobs) in [
        (
            "builds + manifest job",
            "gitlab-registry.yml",
            vec![("build-buildah", build.clone()), ("manifest", manifest)],
            "2 builds, manifest",
        ),
        (
            "builds only (publish-if-complete)",
            "zero-stage.yml",
            vec![("build-buildah", zero)],
            "2 builds",
        ),
    ] {
        let mut times = Vec::new();
        for _ in 0..runs {
            let inputs: Vec<(&str, &[(&str, Value)])> =
                inputs.iter().map(|(c, i)| (*c, i.as_slice())).collect();
            let repo = project(&adapt(&example(file), &inputs, &[]));
            let start = Instant::now();
            let (ok, log) = run(repo.path(), &variables);
            assert!(ok, "{name}: the pipeline failed:\n{log}");
            times.push(start.elapsed().as_secs_f64());
            reg.raw("group/app:latest")
                .expect("the index was published");
        }
        let list: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
        println!(
            "| {name} | {jobs} | {:.1} s | {} s |",
            median(times.clone()),
            list.join(", ")
        );
        eprintln!("pipeline {name}: {:.1}s", median(times));
    }
}
