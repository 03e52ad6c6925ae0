//! `odoo-rpc`: talk to an Odoo server from a pipeline or a terminal.
//!
//! A thin binary over the `odoo-rpc` library: parse arguments, build the client,
//! run one command, print JSON on stdout, map the outcome to an exit code.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use deploy_core::SecretRef;
use futures_util::StreamExt;
use odoo_deploy::cli;
use odoo_rpc::{Client, Domain, Protocol, SearchOptions};
use secrecy::SecretString;
use serde_json::{Map, Value};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  Odoo answered with an error (access denied, validation error, missing record, ...)
  2  usage or configuration error (bad flag, missing credentials, unreadable secret file)
  3  transport or protocol failure (connection refused, timeout, HTTP error, undecodable body)

Secrets are never taken from the command line: the password comes from the environment
variable named by --password-env (default ODOO_PASSWORD) or from --password-file, the
API key from --api-key-env or --api-key-file.";

/// Talk to an Odoo server (16 to 19) over JSON-RPC, the /jsonrpc external API or JSON-2.
#[derive(Debug, Parser)]
#[command(name = "odoo-rpc", version, after_help = EXIT_CODES)]
struct Cli {
    /// Base URL of the Odoo server.
    #[arg(
        long,
        env = "ODOO_URL",
        default_value = "http://127.0.0.1:8069",
        global = true
    )]
    url: String,
    /// Database name.
    #[arg(long, env = "ODOO_DB", global = true)]
    db: Option<String>,
    /// Login of the user.
    #[arg(long, env = "ODOO_USER", global = true)]
    user: Option<String>,
    /// Name of the environment variable that holds the password.
    #[arg(
        long,
        value_name = "VAR",
        default_value = "ODOO_PASSWORD",
        global = true
    )]
    password_env: String,
    /// File whose content (trailing line breaks trimmed) is the password.
    #[arg(long, value_name = "PATH", global = true)]
    password_file: Option<PathBuf>,
    /// Name of the environment variable that holds an API key.
    #[arg(long, value_name = "VAR", global = true)]
    api_key_env: Option<String>,
    /// File whose content (trailing line breaks trimmed) is an API key.
    #[arg(long, value_name = "PATH", global = true)]
    api_key_file: Option<PathBuf>,
    /// Protocol: detected from the server version by default.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Auto, global = true)]
    protocol: ProtocolArg,
    /// Per-request timeout in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, global = true)]
    timeout: f64,
    /// Extra CA certificate (PEM) to trust for HTTPS; verification is always on.
    #[arg(long, value_name = "PEM", global = true)]
    ca_cert: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProtocolArg {
    Auto,
    Web,
    Jsonrpc,
    Json2,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the server version (`common.version`).
    Version,
    /// Check `/web/health`; exits 3 when the server reports a failure.
    Health {
        /// Also ask whether Odoo reaches its PostgreSQL (`db_server_status`).
        #[arg(long)]
        db_status: bool,
    },
    /// List the databases the server shows (fails when `list_db` is off).
    DbList,
    /// Authenticate and print the uid.
    Login,
    /// Call any model method: `call res.partner search_count '[[]]'`.
    Call {
        /// Model, e.g. `res.partner`.
        model: String,
        /// Method, e.g. `search_read`.
        method: String,
        /// Positional arguments as a JSON array.
        #[arg(default_value = "[]")]
        args: String,
        /// Keyword arguments as a JSON object.
        #[arg(long, default_value = "{}")]
        kwargs: String,
    },
    /// Read records matching a domain; without --limit or --order it streams the whole
    /// table page by page, in id order, with bounded memory.
    SearchRead {
        /// Model, e.g. `res.partner`.
        model: String,
        /// Domain in Odoo's list form, e.g. `[["is_company","=",true]]`.
        #[arg(long, default_value = "[]")]
        domain: String,
        /// Comma-separated field names (all fields when omitted).
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
        /// Maximum number of records.
        #[arg(long)]
        limit: Option<u64>,
        /// Sort order, e.g. `name asc, id desc`.
        #[arg(long)]
        order: Option<String>,
        /// Page size when streaming.
        #[arg(long, default_value_t = 1000)]
        page_size: usize,
    },
}

/// What went wrong, sorted by exit code.
enum Failure {
    Usage(String),
    Odoo(odoo_rpc::Error),
    Transport(odoo_rpc::Error),
    Unhealthy(String),
    Output(std::io::Error),
}

impl From<odoo_rpc::Error> for Failure {
    fn from(err: odoo_rpc::Error) -> Self {
        if err.is_server() {
            Failure::Odoo(err)
        } else if err.is_config() {
            Failure::Usage(cli::error_chain(&err))
        } else {
            Failure::Transport(err)
        }
    }
}

fn main() -> ExitCode {
    let cli: Cli = match cli::parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    cli::init_tracing("warn");
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => return report(Failure::Output(err)),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(failure),
    }
}

fn report(failure: Failure) -> ExitCode {
    let (code, text) = match failure {
        Failure::Usage(msg) => (2, msg),
        Failure::Odoo(err) => (1, cli::error_chain(&err)),
        Failure::Transport(err) => (3, cli::error_chain(&err)),
        Failure::Unhealthy(msg) => (3, msg),
        Failure::Output(err) => (3, format!("local i/o: {err}")),
    };
    let _ = writeln!(std::io::stderr(), "error: {text}");
    ExitCode::from(code)
}

/// The secret a flag names, read as every binary reads secrets.
fn read_secret(flag: &str, secret: &SecretRef) -> Result<SecretString, Failure> {
    odoo_deploy::cli::read_secret(flag, secret).map_err(Failure::Usage)
}

fn parse_json(what: &str, text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text)
        .map_err(|err| Failure::Usage(format!("{what} is not valid JSON: {err}")))
}

fn build_client(cli: &Cli) -> Result<Client, Failure> {
    if !(cli.timeout.is_finite() && cli.timeout > 0.0) {
        return Err(Failure::Usage(
            "--timeout must be a positive number of seconds".into(),
        ));
    }
    let mut builder = Client::builder(cli.url.as_str())
        .protocol(match cli.protocol {
            ProtocolArg::Auto => Protocol::Auto,
            ProtocolArg::Web => Protocol::Web,
            ProtocolArg::Jsonrpc => Protocol::JsonRpc,
            ProtocolArg::Json2 => Protocol::Json2,
        })
        .timeout(Duration::from_secs_f64(cli.timeout));
    if let Some(db) = &cli.db {
        builder = builder.database(db.as_str());
    }
    if let Some(user) = &cli.user {
        builder = builder.login(user.as_str());
    }
    // The password variable has a default (ODOO_PASSWORD): unset, there is none.
    let password = match &cli.password_file {
        Some(path) => Some(read_secret("--password-file", &SecretRef::file(path))?),
        None if std::env::var_os(&cli.password_env).is_none() => None,
        None => Some(read_secret(
            "--password-env",
            &SecretRef::env(cli.password_env.as_str()),
        )?),
    };
    if let Some(password) = password {
        builder = builder.password(password);
    }
    let api_key = match (&cli.api_key_file, &cli.api_key_env) {
        (Some(path), _) => Some(read_secret("--api-key-file", &SecretRef::file(path))?),
        (None, Some(var)) => Some(read_secret("--api-key-env", &SecretRef::env(var.as_str()))?),
        (None, None) => None,
    };
    if let Some(key) = api_key {
        builder = builder.api_key(key);
    }
    if let Some(path) = &cli.ca_cert {
        let pem = std::fs::read(path).map_err(|err| {
            Failure::Usage(format!("reading CA certificate {}: {err}", path.display()))
        })?;
        builder = builder.ca_certificate_pem(&pem);
    }
    Ok(builder.build()?)
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let client = build_client(&cli)?;
    let mut out = Output::new();
    match &cli.command {
        Command::Version => {
            let version = client.version().await?;
            out.typed(&odoo_deploy::output::RpcVersion {
                server_version: version.server_version,
                server_version_info: version.server_version_info,
                server_serie: version.server_serie,
                protocol_version: version.protocol_version,
                release: version.release,
            })?;
        }
        Command::Health { db_status } => {
            let health = if *db_status {
                client.health_with_db().await?
            } else {
                client.health().await?
            };
            out.typed(&odoo_deploy::output::RpcHealth {
                status: health.status.clone(),
                db_server_status: health.db_server_status,
                http_status: health.http_status,
            })?;
            if health.status != "pass" {
                return Err(Failure::Unhealthy(format!(
                    "server reports status {:?} (HTTP {})",
                    health.status, health.http_status
                )));
            }
        }
        Command::DbList => {
            let names = client.list_databases().await?;
            out.value(&Value::from(names))?;
        }
        Command::Login => {
            let uid = client.authenticate().await?;
            out.value(&Value::from(uid))?;
        }
        Command::Call {
            model,
            method,
            args,
            kwargs,
        } => {
            let args = match parse_json("ARGS_JSON", args)? {
                Value::Array(items) => items,
                _ => return Err(Failure::Usage("ARGS_JSON must be a JSON array".into())),
            };
            let kwargs: Map<String, Value> = match parse_json("--kwargs", kwargs)? {
                Value::Object(map) => map,
                _ => return Err(Failure::Usage("--kwargs must be a JSON object".into())),
            };
            let result = client.call_kw(model, method, args, kwargs).await?;
            out.value(&result)?;
        }
        Command::SearchRead {
            model,
            domain,
            fields,
            limit,
            order,
            page_size,
        } => {
            let domain = Domain::from_value(parse_json("--domain", domain)?)
                .map_err(|err| Failure::Usage(format!("--domain: {}", cli::error_chain(&err))))?;
            if limit.is_some() || order.is_some() {
                let mut opts = SearchOptions::default();
                if let Some(limit) = limit {
                    opts = opts.limit(*limit);
                }
                if let Some(order) = order {
                    opts = opts.order(order.as_str());
                }
                let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
                let rows: Vec<Value> = client.search_read(model, &domain, &fields, &opts).await?;
                out.value(&Value::Array(rows))?;
            } else {
                if *page_size == 0 {
                    return Err(Failure::Usage("--page-size must be at least 1".into()));
                }
                let mut stream = std::pin::pin!(client.search_read_stream::<Value>(
                    model,
                    domain,
                    fields.clone(),
                    *page_size
                ));
                out.begin_array()?;
                while let Some(row) = stream.next().await {
                    out.array_item(&row?)?;
                }
                out.end_array()?;
            }
        }
    }
    Ok(())
}

/// JSON on stdout: pretty on a terminal, compact when piped; arrays can be streamed.
struct Output {
    pretty: bool,
    first: bool,
    stdout: std::io::BufWriter<std::io::Stdout>,
}

impl Output {
    fn new() -> Self {
        Output {
            pretty: std::io::stdout().is_terminal(),
            first: true,
            stdout: std::io::BufWriter::new(std::io::stdout()),
        }
    }

    fn encode(&self, value: &Value) -> String {
        let text = if self.pretty {
            serde_json::to_string_pretty(value)
        } else {
            serde_json::to_string(value)
        };
        // Serializing a serde_json::Value cannot fail: its keys are strings.
        text.unwrap_or_default()
    }

    /// A typed output (see `odoo_deploy::output`).
    fn typed<T: serde::Serialize>(&mut self, value: &T) -> Result<(), Failure> {
        let value =
            serde_json::to_value(value).map_err(|e| Failure::Output(std::io::Error::other(e)))?;
        self.value(&value)
    }

    fn value(&mut self, value: &Value) -> Result<(), Failure> {
        let text = self.encode(value);
        writeln!(self.stdout, "{text}").map_err(Failure::Output)?;
        self.stdout.flush().map_err(Failure::Output)
    }

    fn begin_array(&mut self) -> Result<(), Failure> {
        write!(self.stdout, "[").map_err(Failure::Output)
    }

    fn array_item(&mut self, value: &Value) -> Result<(), Failure> {
        let text = self.encode(value);
        let sep = if self.first { "" } else { "," };
        self.first = false;
        if self.pretty {
            write!(self.stdout, "{sep}\n{text}").map_err(Failure::Output)
        } else {
            write!(self.stdout, "{sep}{text}").map_err(Failure::Output)
        }
    }

    fn end_array(&mut self) -> Result<(), Failure> {
        let tail = if self.pretty && !self.first {
            "\n]"
        } else {
            "]"
        };
        writeln!(self.stdout, "{tail}").map_err(Failure::Output)?;
        self.stdout.flush().map_err(Failure::Output)
    }
}
