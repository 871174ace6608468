//! Wall time of the whole scenario suite on the simulated cluster, injector
//! start-up included, scenarios in parallel: what `cargo test` pays.
//!
//! cargo bench -p injector-harness --bench suite

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use injector_harness::cluster::Backend;
use injector_harness::run;

fn bench(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let files = run::expand_paths(&[dir]).expect("scenarios");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let options = run::RunOptions {
        parallel: 8,
        ..run::RunOptions::for_backend(Backend::Sim).expect("options")
    };
    let mut group = c.benchmark_group("sim_suite");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function(format!("{}_scenarios_parallel_8", files.len()), |b| {
        b.iter(|| {
            let results = runtime.block_on(run::run_once(&files, &options, Arc::new(|_| {})));
            for (path, r) in &results {
                let run = r
                    .as_ref()
                    .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                assert!(run.passed(), "{}:\n{}", run.name, run.report());
            }
            results.len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
