//! Client throughput against the fake Odoo on loopback: a 10-record
//! `search_read` one at a time and 64 in flight, per protocol, and a
//! 100,000-record `search_read` decoded into typed records.
//!
//! `cargo bench -p odoo-rpc`. The numbers include the fake's own work (it runs
//! in the same process), so they are a lower bound of the client's speed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use odoo_fixtures::{FakeOdoo, OdooVersion};
use odoo_rpc::{Client, Domain, Protocol, SearchOptions};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Partner {
    id: i64,
    name: String,
    email: odoo_rpc::OdooOption<String>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct BenchRecord {
    id: i64,
    name: String,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn start_fake(runtime: &tokio::runtime::Runtime) -> FakeOdoo {
    runtime.block_on(async {
        FakeOdoo::builder()
            .version(OdooVersion::V19)
            .database("demo")
            .user("admin", "admin")
            .api_key("admin", "bench-key")
            .record_requests(false)
            .websocket(false)
            .synthetic_model("bench.record", 100_000)
            .start()
            .await
            .unwrap()
    })
}

fn client(fake: &FakeOdoo, protocol: Protocol) -> Client {
    let builder = Client::builder(fake.uri())
        .database("demo")
        .login("admin")
        .protocol(protocol);
    match protocol {
        Protocol::Web => builder.password(SecretString::from("admin")),
        _ => builder.api_key(SecretString::from("bench-key")),
    }
    .build()
    .unwrap()
}

fn small_calls(c: &mut Criterion) {
    let runtime = runtime();
    let fake = start_fake(&runtime);
    let options = SearchOptions::default().limit(10);
    let domain = Domain::new();
    let mut group = c.benchmark_group("search_read_10");
    group.measurement_time(Duration::from_secs(5));
    for protocol in [Protocol::Web, Protocol::JsonRpc, Protocol::Json2] {
        let client = client(&fake, protocol);
        runtime.block_on(client.authenticate()).unwrap();
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("sequential", protocol), |b| {
            b.to_async(&runtime).iter(|| async {
                client
                    .search_read::<Partner>("res.partner", &domain, &["name", "email"], &options)
                    .await
                    .unwrap()
            });
        });
        group.throughput(Throughput::Elements(64));
        group.bench_function(BenchmarkId::new("64_in_flight", protocol), |b| {
            b.to_async(&runtime).iter(|| async {
                let calls = (0..64).map(|_| {
                    let client = client.clone();
                    let (domain, options) = (domain.clone(), options.clone());
                    tokio::spawn(async move {
                        client
                            .search_read::<Partner>(
                                "res.partner",
                                &domain,
                                &["name", "email"],
                                &options,
                            )
                            .await
                            .unwrap()
                    })
                });
                futures_util::future::join_all(calls).await
            });
        });
    }
    group.finish();
}

fn large_read(c: &mut Criterion) {
    let runtime = runtime();
    let fake = start_fake(&runtime);
    let client = client(&fake, Protocol::Json2);
    let mut group = c.benchmark_group("search_read_100k");
    group.sample_size(10);
    group.throughput(Throughput::Elements(100_000));
    group.bench_function("typed", |b| {
        b.to_async(&runtime).iter(|| async {
            client
                .search_read::<BenchRecord>(
                    "bench.record",
                    &Domain::new(),
                    &["name"],
                    &SearchOptions::default().limit(100_000),
                )
                .await
                .unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, small_calls, large_read);
criterion_main!(benches);
