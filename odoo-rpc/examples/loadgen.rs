//! A small load generator and memory probe over `odoo-rpc`, used by
//! `scripts/bench-rpc.sh` and a worked example of concurrent use and streaming.
//!
//! ```sh
//! cargo run --release -p odoo-rpc --example loadgen -- URL DB LOGIN SCENARIO [ARGS]
//! ```
//! The password comes from `ODOO_PASSWORD`. Scenarios (all bounded in count and time):
//! - `calls N CONCURRENCY`: N `search_read`s of 10 `res.partner` records, CONCURRENCY in
//!   flight; prints `calls_per_sec=...`.
//! - `read-all MODEL`: one `search_read` of a whole table; prints `records=...`,
//!   `elapsed_ms=...`, `peak_rss_kb=...`.
//! - `stream MODEL PAGE`: streams a whole table page by page; prints `records=...`,
//!   `elapsed_ms=...`, `peak_rss_kb=...`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use odoo_rpc::{Client, Domain, SearchOptions};
use secrecy::SecretString;
use serde_json::Value;

/// Hard bound on any scenario's run time, whatever the count.
const TIME_LIMIT: Duration = Duration::from_secs(120);

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> ExitCode {
    // One client thread: the fake (or a real server) gets the other cores, and a
    // sequential caller avoids cross-thread wake-ups. LOADGEN_THREADS=N to change it.
    let threads: usize = std::env::var("LOADGEN_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    match runtime {
        Ok(rt) => rt.block_on(run()),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(1)
        }
    }
}

async fn run() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!(
            "usage: loadgen URL DB LOGIN calls N CONCURRENCY | read-all MODEL | stream MODEL PAGE"
        );
        return ExitCode::from(2);
    }
    let password = SecretString::from(std::env::var("ODOO_PASSWORD").unwrap_or_default());
    let client = match Client::builder(args[0].as_str())
        .database(args[1].as_str())
        .login(args[2].as_str())
        .password(password)
        .timeout(Duration::from_secs(300))
        .max_response_bytes(2 * 1024 * 1024 * 1024)
        .build()
    {
        Ok(c) => c,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let num = |i: usize, default: u64| -> u64 {
        args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
    };
    let result = match args[3].as_str() {
        "calls" => calls(client, num(4, 10_000), num(5, 1)).await,
        "read-all" => read_all(client, args.get(4).map_or("res.partner", String::as_str)).await,
        "stream" => {
            stream(
                client,
                args.get(4).map_or("res.partner", String::as_str),
                num(5, 5_000) as usize,
            )
            .await
        }
        other => Err(format!("unknown scenario {other}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(1)
        }
    }
}

async fn calls(client: Client, total: u64, concurrency: u64) -> Result<(), String> {
    client.authenticate().await.map_err(|e| e.to_string())?;
    let domain = Domain::new();
    let opts = SearchOptions::default().limit(10);
    // Warm up the pool and the server.
    for _ in 0..concurrency.min(100) {
        let _: Vec<Value> = client
            .search_read("res.partner", &domain, &["name", "email"], &opts)
            .await
            .map_err(|e| e.to_string())?;
    }
    let issued = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let issued = issued.clone();
        let failed = failed.clone();
        let domain = domain.clone();
        let opts = opts.clone();
        tasks.push(tokio::spawn(async move {
            while issued.fetch_add(1, Ordering::Relaxed) < total && start.elapsed() < TIME_LIMIT {
                let res: Result<Vec<Value>, _> = client
                    .search_read("res.partner", &domain, &["name", "email"], &opts)
                    .await;
                if res.map(|rows| rows.len()).unwrap_or(0) == 0 {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())?;
    }
    let elapsed = start.elapsed();
    let done = issued.load(Ordering::Relaxed).min(total);
    println!(
        "calls={done} concurrency={concurrency} failed={} elapsed_ms={} calls_per_sec={:.0}",
        failed.load(Ordering::Relaxed),
        elapsed.as_millis(),
        done as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

async fn read_all(client: Client, model: &str) -> Result<(), String> {
    client.authenticate().await.map_err(|e| e.to_string())?;
    let before = peak_rss_kb();
    let start = Instant::now();
    let rows: Vec<Value> = client
        .search_read(model, &Domain::new(), &[], &SearchOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let elapsed = start.elapsed();
    println!(
        "records={} elapsed_ms={} rss_before_kb={before} peak_rss_kb={}",
        rows.len(),
        elapsed.as_millis(),
        peak_rss_kb()
    );
    Ok(())
}

async fn stream(client: Client, model: &str, page: usize) -> Result<(), String> {
    client.authenticate().await.map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut rows =
        std::pin::pin!(client.search_read_stream::<Value>(model, Domain::new(), Vec::new(), page));
    let mut count = 0u64;
    while let Some(row) = rows.next().await {
        row.map_err(|e| e.to_string())?;
        count += 1;
        if start.elapsed() > TIME_LIMIT {
            return Err(format!("stopped after {count} records: time limit"));
        }
    }
    println!(
        "records={count} elapsed_ms={} peak_rss_kb={}",
        start.elapsed().as_millis(),
        peak_rss_kb()
    );
    Ok(())
}
