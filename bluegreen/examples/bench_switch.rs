//! The driver of `scripts/bench-switch.sh`: measures the traffic switch under keep-alive
//! load (nginx's plain reload, nginx's reload-free state file, HAProxy's runtime API)
//! and the orchestrator's own cost (a deploy beyond container start and gates, the
//! rollback command end to end), and prints a Markdown section on stdout.
//!
//! Run it through the script (release build, image, proxies, wrk). Settings come from
//! the environment: `BENCH_SWITCHES` (6), `BENCH_GAP_MS` (1500), `BENCH_CONNECTIONS`
//! (50), `BENCH_RUNS` (3), `BENCH_WRK` (path of wrk; empty: a Rust keep-alive client
//! loop), `BENCH_CLI` (path of the release-built `odoo-bluegreen`).
//!
//! The harness (proxies on loopback ports in temp dirs, the fake Odoo image, stack
//! files) is the test suite's, `tests/util`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

use deploy_test_support as util;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use deploy_bluegreen::switch::{Backend, TrafficSwitch};
use deploy_bluegreen::verify::{verify_release, Expected, VerifyOptions};
use deploy_bluegreen::Slot;
use util::{
    fake_image, load_while, HaproxyProc, NginxKind, NginxProc, ProxyChoice, ReleaseServer,
    StackOptions, TestStack,
};

struct Settings {
    switches: usize,
    gap: Duration,
    connections: usize,
    runs: usize,
    wrk: Option<PathBuf>,
    cli: PathBuf,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What a load run counted.
#[derive(Debug, Default)]
struct Load {
    sent: u64,
    failed: u64,
    detail: String,
    seconds: f64,
}

struct SwitchRun {
    name: &'static str,
    target: &'static str,
    load: Load,
    latencies: Vec<Duration>,
    calls: Vec<Duration>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let settings = Settings {
        switches: env_or("BENCH_SWITCHES", 6),
        gap: Duration::from_millis(env_or("BENCH_GAP_MS", 1500)),
        connections: env_or("BENCH_CONNECTIONS", 50),
        runs: env_or("BENCH_RUNS", 3),
        wrk: std::env::var("BENCH_WRK")
            .ok()
            .filter(|p| !p.is_empty())
            .map(PathBuf::from),
        cli: std::env::var("BENCH_CLI")
            .map(PathBuf::from)
            .unwrap_or_else(|_| util::workspace_root().join("target/release/odoo-bluegreen")),
    };
    assert!(
        settings.cli.exists(),
        "{} is missing: build it with cargo build --release -p odoo-deploy --bin odoo-bluegreen",
        settings.cli.display()
    );

    let mut switch_runs = Vec::new();
    for (name, target, proxy) in [
        (
            "nginx, plain reload (`nginx -s reload`)",
            "< 500 ms",
            Some(NginxKind::Reload),
        ),
        (
            "nginx, reload-free state file",
            "< 500 ms",
            Some(NginxKind::StateFile),
        ),
        ("HAProxy, runtime API", "< 10 ms", None),
    ] {
        eprintln!("==> switches under load: {name}");
        let run = switch_under_load(&settings, proxy).await;
        eprintln!(
            "    sent {} failed {} ({}); latencies {:?}",
            run.0.sent, run.0.failed, run.0.detail, run.1
        );
        switch_runs.push(SwitchRun {
            name,
            target,
            load: run.0,
            latencies: run.1,
            calls: run.2,
        });
    }

    let mut orchestration = Vec::new();
    for (name, choice) in [
        ("HAProxy", ProxyChoice::Haproxy),
        (
            "nginx (state file)",
            ProxyChoice::Nginx(NginxKind::StateFile),
        ),
    ] {
        eprintln!("==> deploys and rollbacks through odoo-bluegreen: {name}");
        orchestration.push((name, orchestrate(&settings, choice).await));
    }

    print_section(&settings, &switch_runs, &orchestration);
}

/// Switches `settings.switches` times between two fake Odoo servers while the load runs;
/// returns the load's counts, each switch's latency (switch call until 20 consecutive
/// new requests reached the new slot) and each switch call's own duration.
async fn switch_under_load(
    settings: &Settings,
    nginx: Option<NginxKind>,
) -> (Load, Vec<Duration>, Vec<Duration>) {
    let blue_server = ReleaseServer::start("blue").await;
    let green_server = ReleaseServer::start("green").await;
    let (blue, green) = (
        blue_server.backend(Slot::Blue),
        green_server.backend(Slot::Green),
    );
    let (url, switch, _nginx, _haproxy): (String, Box<dyn TrafficSwitch>, _, _) = match nginx {
        Some(kind) => {
            let (proc, switch) = NginxProc::start(kind, &blue, &green, Slot::Blue).await;
            (proc.url(), Box::new(switch), Some(proc), None)
        }
        None => {
            let (proc, switch) = HaproxyProc::start(&blue, &green, Slot::Blue).await;
            (proc.url(), Box::new(switch), None, Some(proc))
        }
    };
    let settle = Duration::from_secs(1);
    let sequence = switches(settings, &url, &*switch, blue, green, settle);
    match &settings.wrk {
        Some(wrk) => {
            let total = settle * 2 + settings.gap * u32::try_from(settings.switches).unwrap();
            let seconds = total.as_secs() + 1;
            let load = run_wrk(wrk, &url, settings.connections, seconds);
            let (load, (latencies, calls)) = tokio::join!(load, sequence);
            (load, latencies, calls)
        }
        None => {
            let (report, (latencies, calls)) = load_while(
                &url,
                settings.connections,
                Duration::from_secs(120),
                async {
                    let result = sequence.await;
                    tokio::time::sleep(settle).await;
                    result
                },
            )
            .await;
            let load = Load {
                sent: report.sent,
                failed: report.failed,
                detail: format!("{:?}", report.errors),
                seconds: report.elapsed.as_secs_f64(),
            };
            (load, latencies, calls)
        }
    }
}

async fn switches(
    settings: &Settings,
    url: &str,
    switch: &dyn TrafficSwitch,
    blue: Backend,
    green: Backend,
    settle: Duration,
) -> (Vec<Duration>, Vec<Duration>) {
    let mut latencies = Vec::new();
    let mut calls = Vec::new();
    tokio::time::sleep(settle).await;
    for i in 0..settings.switches {
        let (target, release) = if i % 2 == 0 {
            (green, "green")
        } else {
            (blue, "blue")
        };
        let started = Instant::now();
        switch.switch_to(&target).await.unwrap();
        calls.push(started.elapsed());
        let options = VerifyOptions {
            consecutive: 20,
            timeout: Duration::from_secs(10),
            interval: Duration::ZERO,
            ..VerifyOptions::default()
        };
        let verify_started = Instant::now();
        let verified = verify_release(url, &Expected::release(release), &options)
            .await
            .unwrap();
        latencies.push(verify_started.duration_since(started) + verified.latency);
        tokio::time::sleep(settings.gap).await;
    }
    (latencies, calls)
}

async fn run_wrk(wrk: &Path, url: &str, connections: usize, seconds: u64) -> Load {
    let output = tokio::process::Command::new(wrk)
        .args(["-t", "2", "-c", &connections.to_string()])
        .args(["-d", &format!("{seconds}s"), "--timeout", "5s"])
        .arg(format!("{url}/web/health"))
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "wrk failed:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let number_before = |marker: &str| -> u64 {
        text.lines()
            .find(|l| l.contains(marker))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let responses = number_before(" requests in ");
    let seconds_taken = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split(" requests in ").nth(1))
        .and_then(|rest| rest.split('s').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(seconds as f64);
    let socket = |kind: &str| -> u64 {
        text.lines()
            .find(|l| l.trim_start().starts_with("Socket errors:"))
            .and_then(|l| {
                l.split(',')
                    .find(|part| part.contains(kind))
                    .and_then(|part| part.split_whitespace().last())
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0)
    };
    let non_2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0u64);
    let (connect, read, write, timeout) = (
        socket("connect"),
        socket("read"),
        socket("write"),
        socket("timeout"),
    );
    let errors = connect + read + write + timeout;
    Load {
        sent: responses + errors,
        failed: errors + non_2xx,
        detail: format!(
            "connect {connect}, read {read}, write {write}, timeout {timeout}, non-2xx {non_2xx}"
        ),
        seconds: seconds_taken,
    }
}

#[derive(Debug, Default)]
struct Orchestration {
    total: Vec<Duration>,
    start: Vec<Duration>,
    gates: Vec<Duration>,
    drain: Vec<Duration>,
    overhead: Vec<Duration>,
    rollback_wall: Vec<Duration>,
    rollback_inside: Vec<Duration>,
    /// One more deploy and rollback under the same load as the switches.
    under_load: Load,
}

fn cli_json(cli: &Path, config: &Path, args: &[&str]) -> (serde_json::Value, Duration) {
    let started = Instant::now();
    let output = std::process::Command::new(cli)
        .arg("--config")
        .arg(config)
        .args(args)
        .args(["--json", "--quiet"])
        .env("ODOO_BLUEGREEN_OPERATOR", "bench")
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(
        output.status.success(),
        "odoo-bluegreen {args:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (serde_json::from_slice(&output.stdout).unwrap(), took)
}

fn ms_field(report: &serde_json::Value, field: &str) -> Duration {
    Duration::from_millis(report["timings"][field].as_u64().unwrap_or(0))
}

/// Deploys and rolls back `settings.runs` times through the release-built binary.
async fn orchestrate(settings: &Settings, choice: ProxyChoice) -> Orchestration {
    let stack = TestStack::start(choice, Slot::Blue).await;
    let gates = r#"
[gates.pre_switch.run]
mode = "once"
[[gates.pre_switch.gates]]
name = "health"
kind = "health"
[[gates.pre_switch.gates]]
name = "login"
kind = "authentication"

[gates.post_switch.run]
mode = "once"
[[gates.post_switch.gates]]
name = "health"
kind = "health"
"#;
    let config = stack.write_config(&StackOptions {
        deploy: Some("rollback_window = \"keep\"\ndrain_timeout = \"2s\"".to_owned()),
        gates: gates.to_owned(),
        ..StackOptions::default()
    });
    let cli = settings.cli.clone();
    let image = fake_image();
    let runs = settings.runs;
    let result = tokio::task::spawn_blocking(move || {
        let mut out = Orchestration::default();
        // The first release goes to green (the proxy starts on an empty blue).
        cli_json(
            &cli,
            &config,
            &["deploy", "--image", &image, "--release", "b0"],
        );
        for run in 1..=runs {
            let release = format!("b{run}");
            let (deploy, _) = cli_json(
                &cli,
                &config,
                &["deploy", "--image", &image, "--release", &release],
            );
            assert_eq!(deploy["result"], "succeeded", "{deploy:#}");
            out.total.push(ms_field(&deploy, "total_ms"));
            out.start.push(ms_field(&deploy, "container_start_ms"));
            out.gates.push(ms_field(&deploy, "gates_ms"));
            out.drain.push(ms_field(&deploy, "drain_ms"));
            out.overhead.push(ms_field(&deploy, "overhead_ms"));
            let (rollback, wall) = cli_json(&cli, &config, &["rollback"]);
            assert_eq!(rollback["result"], "succeeded", "{rollback:#}");
            out.rollback_wall.push(wall);
            out.rollback_inside.push(ms_field(&rollback, "total_ms"));
        }
        out
    })
    .await
    .unwrap();
    let mut result = result;
    result.under_load = deploy_and_rollback_under_load(settings, &stack).await;
    drop(stack);
    result
}

/// A whole deploy and a rollback through the binary while the load runs through the
/// proxy; returns what the load counted.
async fn deploy_and_rollback_under_load(settings: &Settings, stack: &TestStack) -> Load {
    let url = stack.url();
    let config = stack.dir.path().join("stack.toml");
    let cli = settings.cli.clone();
    let image = fake_image();
    let settle = Duration::from_secs(1);
    let sequence = async move {
        tokio::time::sleep(settle).await;
        tokio::task::spawn_blocking(move || {
            let (deploy, _) = cli_json(
                &cli,
                &config,
                &["deploy", "--image", &image, "--release", "load-1"],
            );
            assert_eq!(deploy["result"], "succeeded", "{deploy:#}");
            std::thread::sleep(Duration::from_millis(500));
            let (rollback, _) = cli_json(&cli, &config, &["rollback"]);
            assert_eq!(rollback["result"], "succeeded", "{rollback:#}");
        })
        .await
        .unwrap();
        tokio::time::sleep(settle).await;
    };
    match &settings.wrk {
        Some(wrk) => {
            let (load, ()) = tokio::join!(run_wrk(wrk, &url, settings.connections, 5), sequence);
            load
        }
        None => {
            let (report, ()) = load_while(
                &url,
                settings.connections,
                Duration::from_secs(60),
                sequence,
            )
            .await;
            Load {
                sent: report.sent,
                failed: report.failed,
                detail: format!("{:?}", report.errors),
                seconds: report.elapsed.as_secs_f64(),
            }
        }
    }
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn max(values: &[Duration]) -> Duration {
    values.iter().max().copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn print_section(
    settings: &Settings,
    switches: &[SwitchRun],
    orchestration: &[(&str, Orchestration)],
) {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let load = match &settings.wrk {
        Some(_) => format!(
            "wrk 4.1 (Debian), {} keep-alive connections, 2 threads",
            settings.connections
        ),
        None => format!(
            "a Rust client loop (reqwest), {} tasks with one keep-alive connection each",
            settings.connections
        ),
    };
    println!(
        "Measured on {cores} cores with a release build. Load: {load}, `GET /web/health` through the proxy for the whole run; the backends are two fake Odoo servers (odoo-fixtures, in the driver's process) that answer with their release label. {} switches per procedure, {} ms apart. *Switch latency*: from the switch call until 20 consecutive new requests (a separate keep-alive client) reached the new slot; *switch call*: the call itself.",
        settings.switches,
        settings.gap.as_millis()
    );
    println!();
    println!("| proxy, procedure | requests sent | failed | req/s | switch latency, median (max) | target | switch call, median |");
    println!("|---|---|---|---|---|---|---|");
    for run in switches {
        println!(
            "| {} | {} | **{}** | {:.0} | {} ({}) | {} | {} |",
            run.name,
            run.load.sent,
            run.load.failed,
            run.load.sent as f64 / run.load.seconds.max(0.001),
            ms(median(&run.latencies)),
            ms(max(&run.latencies)),
            run.target,
            ms(median(&run.calls)),
        );
    }
    println!();
    for run in switches {
        println!("- {}: failures by kind: {}", run.name, run.load.detail);
    }
    println!();
    println!(
        "Orchestration, through the release-built `odoo-bluegreen` with real containers of the fake Odoo image (`odoo-fake:test`) on the Docker engine; pre-switch gates `health` + `authentication` against the new slot, post-switch gate `health` through the proxy; median of {} deploys and {} rollbacks (max in parentheses). *Overhead* is the deploy's total less container start, gates, drain and rollback window: locking, reading Docker and the proxy, the journal, the switch and its verification, recording. The rollback is the whole command, process start to exit, switching back to the warm previous slot.",
        settings.runs, settings.runs
    );
    println!();
    println!("| proxy | deploy total | container start | gates | drain | orchestration overhead (target < 2 s) | rollback command (target < 1 s) | rollback inside the process |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, o) in orchestration {
        println!(
            "| {name} | {} | {} | {} | {} | **{}** ({}) | **{}** ({}) | {} |",
            ms(median(&o.total)),
            ms(median(&o.start)),
            ms(median(&o.gates)),
            ms(median(&o.drain)),
            ms(median(&o.overhead)),
            ms(max(&o.overhead)),
            ms(median(&o.rollback_wall)),
            ms(max(&o.rollback_wall)),
            ms(median(&o.rollback_inside)),
        );
    }
    println!();
    println!(
        "A whole deploy (container start, gates, switch, drain) and a rollback through `odoo-bluegreen`, under the same load ({load}) through the proxy for about 5 s:"
    );
    println!();
    println!("| proxy | requests sent | failed | failures by kind |");
    println!("|---|---|---|---|");
    for (name, o) in orchestration {
        println!(
            "| {name} | {} | **{}** | {} |",
            o.under_load.sent, o.under_load.failed, o.under_load.detail
        );
    }
}
