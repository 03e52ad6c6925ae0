//! PostgreSQL connection parameters and the client programs (`pg_dump`, `pg_restore`).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use secrecy::{ExposeSecret, SecretString};
use tokio::io::AsyncReadExt;

use crate::error::{Error, Result};
use crate::names;

/// How much of a program's standard error is kept for an error message.
const STDERR_KEEP: usize = 64 * 1024;

/// Where and as whom to connect to PostgreSQL.
///
/// The client programs get these through the `PGHOST`, `PGPORT`, `PGUSER`,
/// `PGDATABASE` and `PGPASSWORD` environment variables, never on their command line;
/// the SQL client gets them directly. `Debug` shows the password as `[REDACTED]`.
///
/// ```
/// use deploy_rollback::PgConnection;
///
/// let conn = PgConnection::from_url("postgres://odoo:s3cret@127.0.0.1:5432/prod")?;
/// assert_eq!((conn.host.as_str(), conn.port, conn.user.as_str(), conn.dbname.as_str()),
///            ("127.0.0.1", 5432, "odoo", "prod"));
/// assert!(!format!("{conn:?}").contains("s3cret"));
/// # Ok::<(), deploy_rollback::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PgConnection {
    /// Host name, IP address, or a Unix socket directory (starting with `/`).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Role to connect as.
    pub user: String,
    /// Password, when the server asks for one.
    pub password: Option<SecretString>,
    /// Database to connect to.
    pub dbname: String,
}

impl PgConnection {
    /// Parameters without a password.
    #[must_use]
    pub fn new(
        host: impl Into<String>,
        port: u16,
        user: impl Into<String>,
        dbname: impl Into<String>,
    ) -> Self {
        PgConnection {
            host: host.into(),
            port,
            user: user.into(),
            password: None,
            dbname: dbname.into(),
        }
    }

    /// Parses `postgres://user[:password]@host[:port][/dbname]` (also `postgresql://`).
    /// Defaults: port 5432, database `postgres`. Percent-encoded parts are decoded.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for anything else.
    pub fn from_url(url: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidInput {
            what: "postgres url",
            reason: reason.to_owned(),
        };
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| bad("must start with postgres:// or postgresql://"))?;
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, p.split('?').next().unwrap_or_default()),
            None => (rest.split('?').next().unwrap_or_default(), ""),
        };
        let (userinfo, hostport) = authority
            .rsplit_once('@')
            .ok_or_else(|| bad("must name a user (user@host)"))?;
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (decode(u)?, Some(SecretString::from(decode(p)?))),
            None => (decode(userinfo)?, None),
        };
        let parse_port = |p: &str| p.parse::<u16>().map_err(|_| bad("bad port"));
        let (host, port) = if let Some(after) = hostport.strip_prefix('[') {
            let (h, rest) = after.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            match rest.strip_prefix(':') {
                Some(p) => (h, parse_port(p)?),
                None if rest.is_empty() => (h, 5432),
                None => return Err(bad("bad host")),
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, parse_port(p)?),
                None => (hostport, 5432),
            }
        };
        if host.is_empty() || user.is_empty() {
            return Err(bad("host and user must not be empty"));
        }
        let dbname = if path.is_empty() {
            "postgres".to_owned()
        } else {
            decode(path)?
        };
        Ok(PgConnection {
            host: host.to_owned(),
            port,
            user,
            password,
            dbname,
        })
    }

    /// Sets the password.
    #[must_use]
    pub fn with_password(mut self, password: SecretString) -> Self {
        self.password = Some(password);
        self
    }

    /// The same server and credentials, another database.
    #[must_use]
    pub fn with_dbname(&self, dbname: impl Into<String>) -> Self {
        PgConnection {
            dbname: dbname.into(),
            ..self.clone()
        }
    }

    /// A command for a client program with the connection in its environment.
    pub(crate) fn command(&self, program: &Path) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(program);
        cmd.env("PGHOST", &self.host)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", &self.user)
            .env("PGDATABASE", &self.dbname)
            .env_remove("PGSERVICE")
            .env_remove("PGPASSFILE")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        match &self.password {
            Some(p) => cmd.env("PGPASSWORD", p.expose_secret()),
            None => cmd.env_remove("PGPASSWORD"),
        };
        cmd
    }

    /// Opens an SQL connection (no TLS: meant for loopback or a private network) and
    /// drives it on a background task.
    pub(crate) async fn connect(&self) -> Result<tokio_postgres::Client> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name("deploy-rollback");
        if let Some(p) = &self.password {
            config.password(p.expose_secret());
        }
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| Error::pg("connect", e))?;
        let db = self.dbname.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(database = %db, error = %e, "postgresql connection closed with an error");
            }
        });
        Ok(client)
    }
}

fn decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::InvalidInput {
                    what: "postgres url",
                    reason: "bad percent-encoding".to_owned(),
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::InvalidInput {
        what: "postgres url",
        reason: "not UTF-8 after percent-decoding".to_owned(),
    })
}

/// Where the PostgreSQL client programs are.
///
/// By default they are looked up on `PATH`. Their major version must be at least the
/// server's (a `pg_dump` older than the server refuses to dump).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgTools {
    /// Directory holding `pg_dump` and `pg_restore` (for example
    /// `/usr/lib/postgresql/16/bin`); `None` uses `PATH`.
    pub bin_dir: Option<PathBuf>,
}

impl PgTools {
    /// The tools in `bin_dir`.
    #[must_use]
    pub fn in_dir(bin_dir: impl Into<PathBuf>) -> Self {
        PgTools {
            bin_dir: Some(bin_dir.into()),
        }
    }

    /// The path (or bare name) of a program.
    #[must_use]
    pub fn program(&self, name: &str) -> PathBuf {
        match &self.bin_dir {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        }
    }
}

/// Reads a child's stream to the end, keeping only its last [`STDERR_KEEP`] bytes.
pub(crate) async fn read_tail<R: tokio::io::AsyncRead + Unpin>(mut r: R) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(buf.get(..n).unwrap_or_default());
                if kept.len() > 2 * STDERR_KEEP {
                    let cut = kept.len() - STDERR_KEEP;
                    kept.drain(..cut);
                }
            }
        }
    }
    if kept.len() > STDERR_KEEP {
        let cut = kept.len() - STDERR_KEEP;
        kept.drain(..cut);
    }
    String::from_utf8_lossy(&kept).trim().to_owned()
}

/// Runs a program to completion, capturing stdout (whole) and stderr (tail).
pub(crate) async fn run(mut cmd: tokio::process::Command, program: &str) -> Result<String> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| Error::CommandSpawn {
        program: program.to_owned(),
        cause: e,
    })?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out_task = async move {
        let mut out = Vec::new();
        if let Some(mut s) = stdout {
            // A read error shows up as a failed exit status or a short listing.
            let _ = s.read_to_end(&mut out).await;
        }
        out
    };
    let err_task = async move {
        match stderr {
            Some(s) => read_tail(s).await,
            None => String::new(),
        }
    };
    let (out, err, status) = tokio::join!(out_task, err_task, child.wait());
    let status = status.map_err(|e| Error::CommandSpawn {
        program: program.to_owned(),
        cause: e,
    })?;
    if !status.success() {
        return Err(Error::CommandFailed {
            program: program.to_owned(),
            code: status.code(),
            stderr: err,
        });
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Checks a database name (PostgreSQL identifier limit, safe as a directory name).
pub(crate) fn check_db_name(name: &str) -> Result<()> {
    names::check("database", name, names::PG_MAX_IDENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let c = PgConnection::from_url("postgresql://postgres@127.0.0.1:55432/postgres").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.user.as_str()),
            ("127.0.0.1", 55432, "postgres")
        );
        assert!(c.password.is_none());
        let c = PgConnection::from_url("postgres://u:p%40ss@db.local").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.dbname.as_str()),
            ("db.local", 5432, "postgres")
        );
        assert_eq!(c.password.unwrap().expose_secret(), "p@ss");
        let c = PgConnection::from_url("postgres://u@[::1]:6000/x?sslmode=disable").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.dbname.as_str()),
            ("::1", 6000, "x")
        );
        for bad in [
            "mysql://u@h/db",
            "postgres://h/db",
            "postgres://u@h:notaport/db",
        ] {
            assert!(
                matches!(PgConnection::from_url(bad), Err(Error::InvalidInput { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let c = PgConnection::new("h", 1, "u", "d").with_password(SecretString::from("hunter2"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
