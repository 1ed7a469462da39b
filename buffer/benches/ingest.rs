//! Parse + validate + buffer throughput for TSBS-style `cpu` lines (10 tags,
//! 10 fields), in 10,000-line request bodies. Run: `cargo bench -p buffer`.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use buffer::Buffer;
use catalog::Catalog;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use line_protocol::Precision;
use object_store::ObjectStore;
use object_store::memory::InMemory;
use object_store::path::Path;
use validation::{build, parse, schema_check};

const LINES: usize = 10_000;

/// Deterministic TSBS `cpu` lines: 100 hosts, 10s apart.
fn tsbs_cpu(lines: usize) -> String {
    let regions = ["us-east-1", "us-west-1", "eu-west-1", "ap-southeast-2"];
    let mut out = String::with_capacity(lines * 330);
    let mut x: u64 = 42;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % 100
    };
    for i in 0..lines {
        let host = i % 100;
        let region = regions[host % regions.len()];
        out.push_str(&format!(
            "cpu,hostname=host_{host},region={region},datacenter={region}a,rack={},os=Ubuntu16.10,arch=x64,team=SF,service={},service_version=1,service_environment=production ",
            host % 97,
            host % 19
        ));
        let fields = [
            "usage_user",
            "usage_system",
            "usage_idle",
            "usage_nice",
            "usage_iowait",
            "usage_irq",
            "usage_softirq",
            "usage_steal",
            "usage_guest",
            "usage_guest_nice",
        ];
        for (j, f) in fields.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(&format!("{f}={}i", rnd()));
        }
        out.push_str(&format!(
            " {}\n",
            1_451_606_400_000_000_000i64 + (i / 100) as i64 * 10_000_000_000
        ));
    }
    out
}

fn bench(c: &mut Criterion) {
    let body = tsbs_cpu(LINES);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let catalog = rt.block_on(Catalog::load(store, Path::default())).unwrap();
    // Create the schema once, as the first write would.
    let mut parsed = parse(body.as_bytes(), Precision::Nanosecond);
    let change = schema_check(
        &catalog.state(),
        "db",
        &mut parsed,
        &validation::Limits::UNLIMITED,
    );
    let state = rt.block_on(catalog.ensure(&change)).unwrap();

    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(LINES as u64));
    g.bench_function("split_and_parse_lines", |b| {
        // The parser alone: no timestamps converted, nothing kept.
        b.iter(|| {
            let mut n = 0;
            for (_, line) in line_protocol::split_lines(body.as_bytes()) {
                let l = line_protocol::parse_line(line).unwrap();
                n += l.fields.len();
            }
            assert_eq!(n, LINES * 10);
        })
    });
    g.bench_function("parse", |b| {
        b.iter(|| {
            let p = parse(body.as_bytes(), Precision::Nanosecond);
            assert_eq!(p.good.len(), LINES);
        })
    });
    g.bench_function("parse_validate_buffer", |b| {
        b.iter(|| {
            let mut p = parse(body.as_bytes(), Precision::Nanosecond);
            let change = schema_check(&state, "db", &mut p, &validation::Limits::UNLIMITED);
            assert!(change.tables.is_empty());
            let built = build(&state, "db", &mut p, 0).unwrap();
            let buffer = Buffer::new();
            buffer.apply(1, built.batch);
        })
    });
    g.bench_function("parse_validate_buffer_one_pass", |b| {
        // The write path's common case: the catalog already has every column.
        b.iter(|| {
            let (built, rejected) = validation::parse_and_build_known(
                &state,
                "db",
                body.as_bytes(),
                Precision::Nanosecond,
                0,
            )
            .unwrap()
            .unwrap();
            assert!(rejected.is_empty());
            let buffer = Buffer::new();
            buffer.apply(1, built.batch);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
