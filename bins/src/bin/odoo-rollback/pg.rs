//! How to reach PostgreSQL, and the secrets the command line names.

use super::*;

/// How to reach PostgreSQL.
#[derive(Debug, Args)]
pub(crate) struct PgArgs {
    /// Environment variable holding a postgres://user[:password]@host[:port][/db] URL.
    #[arg(long, value_name = "VAR", conflicts_with_all = ["host", "port", "user"])]
    pub(crate) db_url_env: Option<String>,
    /// Host name, IP address or Unix socket directory (without --db-url-env).
    #[arg(long, default_value = "localhost")]
    pub(crate) host: String,
    /// Port (without --db-url-env).
    #[arg(long, default_value_t = 5432)]
    pub(crate) port: u16,
    /// Role to connect as (required without --db-url-env).
    #[arg(long)]
    pub(crate) user: Option<String>,
    /// Environment variable holding the password.
    #[arg(long, value_name = "VAR", conflicts_with = "password_file")]
    pub(crate) password_env: Option<String>,
    /// File whose content (trailing line breaks trimmed) is the password.
    #[arg(long, value_name = "PATH")]
    pub(crate) password_file: Option<PathBuf>,
    /// Directory holding pg_dump and pg_restore [default: found on PATH].
    #[arg(long, value_name = "DIR")]
    pub(crate) pg_bin: Option<PathBuf>,
}

/// The secret a flag names (`--password-env VAR`, `--password-file PATH`), read as
/// every binary and stack file reads secrets.
pub(crate) fn flag_secret(flag: &str, secret: &SecretRef) -> Result<SecretString, Failure> {
    cli::read_secret(flag, secret).map_err(Failure::Usage)
}

impl PgArgs {
    /// The connection, to `db` when given (else the URL's database, else `postgres`).
    pub(crate) fn connection(&self, db: Option<&str>) -> Result<PgConnection, Failure> {
        let mut conn = match &self.db_url_env {
            Some(var) => {
                let url = flag_secret("--db-url-env", &SecretRef::env(var))?;
                PgConnection::from_url(secrecy::ExposeSecret::expose_secret(&url))?
            }
            None => {
                let user = self.user.as_deref().ok_or_else(|| {
                    Failure::Usage(
                        "no database connection: give --db-url-env VAR, or --user (with --host, \
                         --port and --password-env or --password-file)"
                            .to_owned(),
                    )
                })?;
                PgConnection::new(&self.host, self.port, user, "postgres")
            }
        };
        if let Some(db) = db {
            conn.dbname = db.to_owned();
        }
        if let Some(var) = &self.password_env {
            conn = conn.with_password(flag_secret("--password-env", &SecretRef::env(var))?);
        } else if let Some(path) = &self.password_file {
            conn = conn.with_password(flag_secret("--password-file", &SecretRef::file(path))?);
        }
        Ok(conn)
    }

    pub(crate) fn tools(&self) -> PgTools {
        self.pg_bin
            .as_ref()
            .map_or_else(PgTools::default, PgTools::in_dir)
    }
}

/// A directory that must exist already (read-only uses must not create a typo's
/// directory).
pub(crate) fn existing_dir(flag: &str, path: &Path) -> Result<(), Failure> {
    if path.is_dir() {
        Ok(())
    } else {
        Err(Failure::Usage(format!(
            "{flag} {}: no such directory",
            path.display()
        )))
    }
}
