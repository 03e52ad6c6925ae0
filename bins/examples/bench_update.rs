//! The driver of `scripts/bench-update.sh`: module updates inside `odoo-bluegreen
//! deploy`, per strategy, under a keep-alive JSON-RPC load through HAProxy, on a
//! database with many partners (the fake Odoo image serving from the test cluster), and
//! the runbook's way as the anchor (stop the old container, run the update, start the
//! new one). Prints a Markdown section on stdout.
//!
//! Settings from the environment: `BENCH_PARTNERS` (100000), `BENCH_TASKS` (4 load
//! tasks, each on its own keep-alive connection), `BENCH_CLI` (the release-built
//! `odoo-bluegreen`), and the test cluster's `DEPLOY_TEST_PG*`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

use deploy_test_support as util;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use deploy_bluegreen::Slot;
use serde_json::Value;
use util::{describe, LoadReport, ProxyChoice, TestStack};

/// How many custom modules the images carry.
const MODULES: usize = 10;
/// The longest a measured step may take, load included.
const STEP_LIMIT: Duration = Duration::from_secs(900);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The addons of one image: `bench_m1` .. `bench_m10` at the versions given, each
/// adding a column to `res_partner` filled for every partner at install, and rewriting
/// it in a post migration of every later version (what an upgrade script costs).
fn image(tag: &str, versions: &[&str]) {
    let addons = tempfile::tempdir().unwrap();
    for (i, version) in versions.iter().enumerate() {
        let m = format!("bench_m{}", i + 1);
        let dir = addons.path().join(&m);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(
            dir.join("__manifest__.py"),
            format!("{{'name': 'Bench {m}', 'version': '{version}', 'depends': ['base'], 'data': ['data/fill.sql'], 'license': 'LGPL-3'}}\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("__fake__.toml"),
            format!("[[column]]\ntable = \"res_partner\"\nname = \"x_{m}\"\ntype = \"varchar\"\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("data/fill.sql"),
            format!("UPDATE res_partner SET x_{m} = 'v' || id WHERE x_{m} IS NULL;\n"),
        )
        .unwrap();
        for later in ["1.1", "1.2", "1.3"] {
            let migration = dir.join("migrations").join(later);
            std::fs::create_dir_all(&migration).unwrap();
            std::fs::write(
                migration.join("post-rewrite.sql"),
                format!("UPDATE res_partner SET x_{m} = '{later}-' || id;\n"),
            )
            .unwrap();
        }
    }
    util::fake_image_with_addons(addons.path(), tag);
}

/// One measured deploy (or the anchor's procedure).
struct Row {
    strategy: String,
    modules: String,
    load: LoadReport,
    window: Option<Duration>,
    update: Option<Duration>,
    total: Duration,
    outcome: String,
}

fn ms(value: &Value) -> Option<Duration> {
    value.as_u64().map(Duration::from_millis)
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "–".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
}

struct Bench {
    cli: PathBuf,
    tasks: usize,
    partners: u64,
    tags: Vec<String>,
}

/// `odoo-bluegreen deploy --image IMAGE --json` with the database URL in the
/// environment.
fn deploy(cli: &Path, config: &Path, image: &str, url: &str) -> (Output, Value) {
    let out = Command::new(cli)
        .arg("--config")
        .arg(config)
        .args(["deploy", "--image", image, "--json", "--quiet"])
        .env("BENCH_DB_URL", url)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, value)
}

impl Bench {
    fn deploy(&self, config: &Path, image: &str, url: &str) -> (Output, Value) {
        deploy(&self.cli, config, image, url)
    }

    /// A stack on HAProxy whose database has the partners and the ten modules of the
    /// first image installed; `update` is its `[update]` table (none: no update).
    async fn stack(&self, update: Option<&str>) -> (TestStack, util::ScratchDb, String) {
        let stack = TestStack::start(ProxyChoice::Haproxy, Slot::Blue).await;
        let db = util::ScratchDb::new("bench_update");
        let base = util::odoo_one_off(&self.tags[0], &["-d", &db.0, "--stop-after-init"]);
        assert!(base.status.success(), "{}", describe(&base));
        db.sql(&format!(
            "INSERT INTO res_partner (name, complete_name, email, type, active) SELECT 'Partner ' || g, 'Partner ' || g, 'p' || g || '@example.com', 'contact', true FROM generate_series(1, {}) g; UPDATE res_partner SET commercial_partner_id = id",
            self.partners
        ));
        db.sql("VACUUM ANALYZE res_partner");
        let modules: Vec<String> = (1..=MODULES).map(|i| format!("bench_m{i}")).collect();
        let install = util::odoo_one_off(
            &self.tags[0],
            &["-d", &db.0, "-i", &modules.join(","), "--stop-after-init"],
        );
        assert!(install.status.success(), "{}", describe(&install));
        let update = update.map_or_else(String::new, |table| format!("[update]\n{table}\n"));
        let (_, text) = stack.write_pg_config(&db.0, "BENCH_DB_URL", &update);
        std::fs::write(
            stack.dir.path().join("stack-all.toml"),
            text.replace("[update]\n", "[update]\nmodules = \"all\"\n"),
        )
        .unwrap();
        (stack, db, text)
    }

    /// The three measured deploys of `strategy`: one module changed, ten, all.
    async fn strategy(&self, strategy: &str) -> Vec<Row> {
        eprintln!(
            "==> strategy {strategy}: preparing a database of {} partners",
            self.partners
        );
        let (stack, db, _) = self
            .stack(Some(&format!(
                "strategy = \"{strategy}\"\ntimeout = \"10m\""
            )))
            .await;
        let url = util::pg_url(&db.0);
        let config = stack.dir.path().join("stack.toml");
        let (out, _) = self.deploy(&config, &self.tags[0], &url);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        let mut rows = Vec::new();
        for (modules, tag, file) in [
            ("1", &self.tags[1], "stack.toml"),
            ("10", &self.tags[2], "stack.toml"),
            ("all installed", &self.tags[3], "stack-all.toml"),
        ] {
            eprintln!("==> strategy {strategy}: update of {modules}");
            let config = stack.dir.path().join(file);
            let image = tag.clone();
            let db_url = url.clone();
            let cli = self.cli.clone();
            let started = Instant::now();
            let (load, done) = util::load_jsonrpc_while(
                &stack.url(),
                self.tasks,
                STEP_LIMIT,
                tokio::task::spawn_blocking(move || deploy(&cli, &config, &image, &db_url)),
            )
            .await;
            let total = started.elapsed();
            let (out, report) = done.unwrap();
            let update = report["stages"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["name"] == "update"))
                .cloned()
                .unwrap_or_default();
            let count = update["details"]["plan"]["update"]
                .as_array()
                .map_or(0, Vec::len);
            rows.push(Row {
                strategy: strategy.to_owned(),
                modules: if modules == "all installed" {
                    format!("all installed ({count})")
                } else {
                    count.to_string()
                },
                load,
                window: ms(&report["maintenance"]["window_ms"]),
                update: ms(&update["details"]["outcome"]["elapsed_ms"]),
                total: ms(&report["timings"]["total_ms"]).unwrap_or(total),
                outcome: format!(
                    "exit {}{}",
                    out.status.code().unwrap_or(-1),
                    report["result"]
                        .as_str()
                        .map(|r| format!(", {r}"))
                        .unwrap_or_default()
                ),
            });
        }
        drop(db);
        rows
    }

    /// The runbook's way: stop the serving container, run the update in a one-off
    /// container of the new image, start a container of the new image in its place.
    async fn anchor(&self) -> Vec<Row> {
        eprintln!(
            "==> the runbook's way: preparing a database of {} partners",
            self.partners
        );
        let (stack, db, _) = self.stack(None).await;
        let url = util::pg_url(&db.0);
        let config = stack.dir.path().join("stack.toml");
        let (out, report) = self.deploy(&config, &self.tags[0], &url);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        let slot = report["to"]["slot"].as_str().unwrap_or("blue").to_owned();
        let port = if slot == "blue" {
            stack.blue_port
        } else {
            stack.green_port
        };
        let names = Command::new("docker")
            .args(["ps", "-q", "--filter"])
            .arg(format!("label=com.deployment.stack={}", stack.stack()))
            .args(["--filter"])
            .arg(format!("label=com.deployment.slot={slot}"))
            .output()
            .unwrap();
        let mut current = String::from_utf8_lossy(&names.stdout).trim().to_owned();
        assert!(!current.is_empty(), "no serving container");
        let all: Vec<String> = (1..=MODULES).map(|i| format!("bench_m{i}")).collect();
        let mut rows = Vec::new();
        for (modules, tag, list) in [
            ("1", &self.tags[1], "bench_m1".to_owned()),
            ("10", &self.tags[2], all.join(",")),
            ("all installed", &self.tags[3], "all".to_owned()),
        ] {
            eprintln!("==> the runbook's way: update of {modules}");
            let proxy = stack.url();
            let db_name = db.0.clone();
            let image = tag.clone();
            let old = current.clone();
            let stack_name = stack.stack().to_owned();
            let started = Instant::now();
            let (load, done) = util::load_jsonrpc_while(
                &proxy.clone(),
                self.tasks,
                STEP_LIMIT,
                tokio::task::spawn_blocking(move || {
                    let stop = Command::new("docker")
                        .args(["rm", "-f", &old])
                        .output()
                        .unwrap();
                    assert!(stop.status.success(), "{}", describe(&stop));
                    let update_started = Instant::now();
                    let run = util::odoo_one_off(
                        &image,
                        &[
                            "-d",
                            &db_name,
                            "-u",
                            &list,
                            "--stop-after-init",
                            "--no-http",
                            "--workers",
                            "0",
                        ],
                    );
                    assert!(run.status.success(), "{}", describe(&run));
                    let update = update_started.elapsed();
                    let mut args = util::fake_args(&image);
                    args.extend(["-d", &db_name, "--max-cron-threads", "0"].map(str::to_owned));
                    let started = Command::new("docker")
                        .args(["run", "-d", "-p", &format!("127.0.0.1:{port}:8069")])
                        .args(["--label", &format!("com.deployment.stack={stack_name}")])
                        .args(util::pg_container_args())
                        .args(["-e", "ODOO_PASSWORD=admin"])
                        .arg(&image)
                        .args(&args)
                        .output()
                        .unwrap();
                    assert!(started.status.success(), "{}", describe(&started));
                    let name = String::from_utf8_lossy(&started.stdout).trim().to_owned();
                    // Until requests through the proxy reach the new release again.
                    let deadline = Instant::now() + Duration::from_secs(120);
                    while Instant::now() < deadline {
                        let probe = Command::new("curl")
                            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "2"])
                            .arg(format!("{proxy}/web/health"))
                            .output();
                        if probe.is_ok_and(|p| p.stdout == b"200") {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    (update, name)
                }),
            )
            .await;
            let (update, name) = done.unwrap();
            let window = started.elapsed();
            current = name;
            rows.push(Row {
                strategy: "runbook: stop, update, start".to_owned(),
                modules: modules.to_owned(),
                load,
                window: Some(window),
                update: Some(update),
                total: window,
                outcome: "every request fails meanwhile".to_owned(),
            });
        }
        let _ = Command::new("docker").args(["rm", "-f", &current]).output();
        drop(db);
        rows
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let prefix = util::unique_prefix();
    let tags: Vec<String> = ["u0", "u1", "u2", "u3"]
        .iter()
        .map(|r| format!("{prefix}-bench:{r}"))
        .collect();
    let ten = |v: &'static str| vec![v; MODULES];
    let mut one = ten("1.0");
    one[0] = "1.1";
    image(&tags[0], &ten("1.0"));
    image(&tags[1], &one);
    image(&tags[2], &ten("1.2"));
    // The same addons as u2 under another tag: deployed with modules = "all".
    image(&tags[3], &ten("1.2"));
    let bench = Bench {
        cli: std::env::var("BENCH_CLI")
            .map(PathBuf::from)
            .unwrap_or_else(|_| util::workspace_root().join("target/release/odoo-bluegreen")),
        tasks: env_or("BENCH_TASKS", 4),
        partners: env_or("BENCH_PARTNERS", 100_000),
        tags: tags.clone(),
    };
    let mut rows = Vec::new();
    for strategy in ["maintenance", "online"] {
        rows.extend(bench.strategy(strategy).await);
    }
    rows.extend(bench.anchor().await);
    for tag in &tags {
        let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "| strategy | modules updated | requests | answered 503 by maintenance | failed otherwise | maintenance window (no release serves) | the update's own time | deploy total | outcome |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for row in &rows {
        let errors = if row.load.errors.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                row.load
                    .errors
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {}{} | {} | {} | {} | {} |",
            row.strategy,
            row.modules,
            row.load.sent,
            row.load.maintenance,
            row.load.failed,
            errors,
            secs(row.window),
            secs(row.update),
            secs(Some(row.total)),
            row.outcome
        );
    }
    print!("{out}");
}
