//! `init` (a working stack file and the proxy's configuration) and `proxy-config` (the
//! proxy's configuration of an existing stack file).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use deploy_bluegreen::config::ProxyDriver;
use deploy_bluegreen::setup::{proxy_files, render_stack_file, InitOptions, ProxyFile};
use deploy_bluegreen::switch::nginx::{NginxMode, NginxSwitch};
use deploy_bluegreen::switch::ProxyKind;
use deploy_bluegreen::{Error, Slot, StackConfig};

use crate::{fail, render, Cli};

/// The proxy `init` writes for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ProxyArg {
    /// HAProxy, switched through its admin socket.
    Haproxy,
    /// nginx, reload-free (marker files).
    Nginx,
    /// Traefik, through its file provider.
    Traefik,
}

impl From<ProxyArg> for ProxyKind {
    fn from(value: ProxyArg) -> Self {
        match value {
            ProxyArg::Haproxy => Self::Haproxy,
            ProxyArg::Nginx => Self::Nginx,
            ProxyArg::Traefik => Self::Traefik,
        }
    }
}

/// `init`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// The stack's name (containers <stack>-blue and <stack>-green).
    #[arg(long)]
    stack: String,
    /// The proxy in front of the slots.
    #[arg(long, value_enum)]
    proxy: ProxyArg,
    /// The image the first deploy runs.
    #[arg(long)]
    image: String,
    /// The directory to write into (created when missing).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Where the proxy listens: the stack's public URL is http://<listen>.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The blue slot's host port on 127.0.0.1.
    #[arg(long, default_value_t = 18069)]
    blue_port: u16,
    /// The green slot's host port on 127.0.0.1.
    #[arg(long, default_value_t = 28069)]
    green_port: u16,
    /// Overwrite files that exist.
    #[arg(long)]
    force: bool,
}

/// Runs `init`: exit 0 when every file was written, 2 for bad arguments or files that
/// exist (without --force), 3 when a file cannot be written.
pub(crate) async fn init(cli: &Cli, args: &InitArgs) -> u8 {
    let options = InitOptions {
        stack: args.stack.clone(),
        proxy: args.proxy.into(),
        image: args.image.clone(),
        listen: args.listen,
        blue_port: args.blue_port,
        green_port: args.green_port,
    };
    let text = match render_stack_file(&options) {
        Ok(text) => text,
        Err(e) => return fail(cli, &e, None),
    };
    if let Err(e) = std::fs::create_dir_all(&args.dir) {
        return io_fail(cli, &args.dir, &e);
    }
    let dir = std::path::absolute(&args.dir).unwrap_or_else(|_| args.dir.clone());
    let stack_file = dir.join("stack.toml");
    let config = match StackConfig::from_toml(&text, &dir) {
        Ok(config) => config,
        Err(e) => return fail(cli, &e, None),
    };
    let files = match proxy_files(&config, Slot::Blue) {
        Ok(files) => files,
        Err(e) => return fail(cli, &e, None),
    };
    let mut writes: Vec<(PathBuf, String)> = vec![(stack_file.clone(), text)];
    writes.extend(
        files
            .iter()
            .filter_map(|f| f.path.clone().map(|p| (p, f.text.clone()))),
    );
    let existing: Vec<String> = writes
        .iter()
        .filter(|(path, _)| path.exists())
        .map(|(path, _)| path.display().to_string())
        .collect();
    if !existing.is_empty() && !args.force {
        let _ = writeln!(
            std::io::stderr(),
            "odoo-bluegreen: error: {} already exist(s); nothing was written (--force overwrites)",
            existing.join(", ")
        );
        return 2;
    }
    for (path, text) in &writes {
        if let Some(parent) = path.parent() {
            if let Err(e) = std::fs::create_dir_all(parent) {
                return io_fail(cli, parent, &e);
            }
        }
        if let Err(e) = std::fs::write(path, text) {
            return io_fail(cli, path, &e);
        }
    }
    // The proxy's own directories: HAProxy's socket, nginx's marker files.
    match &config.proxy.driver {
        ProxyDriver::Haproxy { admin_socket, .. } => {
            if let Some(parent) = admin_socket.parent() {
                if let Err(e) = std::fs::create_dir_all(parent) {
                    return io_fail(cli, parent, &e);
                }
            }
        }
        ProxyDriver::Nginx(nginx) => {
            if let (Some(blue), Some(green)) = (
                config.configured_backend(Slot::Blue),
                config.configured_backend(Slot::Green),
            ) {
                if let Err(e) = NginxSwitch::new(nginx.clone())
                    .install(&blue, &green, Slot::Blue)
                    .await
                {
                    return fail(cli, &e, None);
                }
            }
        }
        ProxyDriver::Traefik(_) => {}
    }
    let written: Vec<String> = writes
        .iter()
        .map(|(path, _)| path.display().to_string())
        .collect();
    if cli.json {
        render::print_json(
            "files",
            &odoo_deploy::output::InitOutput {
                stack_file: stack_file.display().to_string(),
                written,
            },
        );
        return 0;
    }
    let mut out = std::io::stdout().lock();
    for path in &written {
        let _ = writeln!(out, "wrote {path}");
    }
    let start = start_command(&config);
    let _ = writeln!(
        out,
        "\nnext:\n  1. start the proxy:  {start}\n  2. deploy:           odoo-bluegreen --config {} deploy\n  3. look:             odoo-bluegreen --config {} status",
        stack_file.display(),
        stack_file.display()
    );
    0
}

/// How to start the proxy with the generated files.
fn start_command(config: &StackConfig) -> String {
    match &config.proxy.driver {
        ProxyDriver::Haproxy { config: file, .. } => format!(
            "haproxy -D -f {}",
            file.as_deref()
                .map_or_else(|| "haproxy.cfg".to_owned(), |p| p.display().to_string())
        ),
        ProxyDriver::Nginx(nginx) => format!(
            "nginx -p {} -c {}",
            nginx.prefix.display(),
            nginx.main_conf.display()
        ),
        ProxyDriver::Traefik(traefik) => format!(
            "traefik --configFile={}",
            traefik
                .file
                .parent()
                .and_then(Path::parent)
                .map_or_else(|| PathBuf::from("traefik.toml"), |p| p.join("traefik.toml"))
                .display()
        ),
    }
}

fn io_fail(cli: &Cli, path: &Path, e: &std::io::Error) -> u8 {
    let error = Error::Io {
        operation: "write",
        path: path.to_path_buf(),
        cause: std::io::Error::new(e.kind(), e.to_string()),
    };
    fail(cli, &error, None)
}

/// Runs `proxy-config`: prints the proxy's configuration for the stack file, with all
/// traffic on the slot that serves now (read from the proxy; blue when it cannot be
/// read), so restarting the proxy with it changes nothing. Exit 0, or 2 for a stack file
/// the configuration cannot be generated for.
pub(crate) async fn proxy_config(cli: &Cli, config: &StackConfig) -> u8 {
    let active = match config.proxy.build_switch().active().await {
        Ok(state) => state.serving().unwrap_or(Slot::Blue),
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "odoo-bluegreen: cannot read the proxy's routing ({}): the configuration sends all traffic to blue",
                odoo_deploy::cli::error_chain(&e)
            );
            Slot::Blue
        }
    };
    let files = match proxy_files(config, active) {
        Ok(files) => files,
        Err(e) => return fail(cli, &e, None),
    };
    if cli.json {
        let value: Vec<odoo_deploy::output::ProxyFileOutput> = files
            .iter()
            .map(|f| odoo_deploy::output::ProxyFileOutput {
                what: f.what.to_string(),
                path: f.path.as_ref().map(|p| p.display().to_string()),
                text: f.text.clone(),
            })
            .collect();
        render::print_json("files", &value);
        return 0;
    }
    let mut out = std::io::stdout().lock();
    for ProxyFile { what, path, text } in &files {
        let place = path.as_ref().map_or_else(
            || "not named in the stack file".to_owned(),
            |p| p.display().to_string(),
        );
        let _ = writeln!(out, "# ==> {place} ({what}) <==\n{text}");
    }
    if let ProxyDriver::Nginx(nginx) = &config.proxy.driver {
        if let NginxMode::StateFile { state_dir } = &nginx.mode {
            let _ = writeln!(
                out,
                "# the marker files live in {} (written by the switch)",
                state_dir.display()
            );
        }
    }
    0
}

/// Runs `runbook`: the stack's runbook on stdout, or written to `output`. Exit 0, or 3
/// when the file cannot be written.
pub(crate) fn runbook(cli: &Cli, config: &StackConfig, output: Option<&Path>) -> u8 {
    let text = deploy_bluegreen::runbook::render(config);
    match output {
        None => {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            0
        }
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "odoo-bluegreen: runbook written to {}",
                    path.display()
                );
                0
            }
            Err(e) => io_fail(cli, path, &e),
        },
    }
}
