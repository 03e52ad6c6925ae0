//! The throwaway PostgreSQL cluster of the test command (`DEPLOY_TEST_PG`, set by
//! scripts/ensure-postgres.sh): its address, psql on it, databases dropped after a test.
//! Standard library only, so that odoo-fixtures' tests (which this crate depends on)
//! include this file by path instead of depending on the crate.

use std::process::Command;

/// The test cluster's user, host and port, from `DEPLOY_TEST_PG`; fails, never skips,
/// without it.
pub fn pg_server() -> (String, String, u16) {
    let url = std::env::var("DEPLOY_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "DEPLOY_TEST_PG is not set: this test needs the throwaway PostgreSQL cluster \
             (`eval \"$(scripts/ensure-postgres.sh)\"`, or scripts/test.sh)"
        )
    });
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .expect("DEPLOY_TEST_PG starts with postgres://");
    let authority = rest.split('/').next().unwrap();
    let (user, hostport) = authority
        .rsplit_once('@')
        .expect("a user in DEPLOY_TEST_PG");
    let user = user.split(':').next().unwrap().to_owned();
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
    (
        user,
        host.to_owned(),
        port.parse().expect("a port in DEPLOY_TEST_PG"),
    )
}

/// `psql` on database `db` of the test cluster, quiet, without the user's psqlrc.
pub fn psql_command(db: &str) -> Command {
    let (user, host, port) = pg_server();
    let mut command = Command::new("psql");
    command
        .args([
            "-X",
            "-q",
            "-h",
            &host,
            "-p",
            &port.to_string(),
            "-U",
            &user,
        ])
        .args(["-d", db]);
    command
}

/// Runs `sql` on database `db` of the test cluster; its unaligned, tuples-only output.
pub fn psql(db: &str, sql: &str) -> String {
    let out = psql_command(db)
        .args(["-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql (Debian's postgresql-client)");
    assert!(
        out.status.success(),
        "psql on {db}: {sql}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A database name on the test cluster, dropped (if it was made) when this is dropped.
pub struct ScratchDb(pub String);

impl ScratchDb {
    /// `<prefix>_<8 hex>`.
    pub fn new(prefix: &str) -> Self {
        ScratchDb(format!("{prefix}_{:08x}", fastrand::u32(..)))
    }

    /// `sql` on it.
    pub fn sql(&self, sql: &str) -> String {
        psql(&self.0, sql)
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        if std::env::var_os("DEPLOY_TEST_PG").is_some() {
            let _ = psql_command("postgres")
                .arg("-c")
                .arg(format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.0
                ))
                .output();
        }
    }
}

/// The test cluster's Unix socket directory (`DEPLOY_TEST_PG_SOCKET`), which the slot and
/// one-off containers mount at `/var/run/postgresql`: no network between them.
pub fn pg_socket_dir() -> String {
    std::env::var("DEPLOY_TEST_PG_SOCKET").unwrap_or_else(|_| {
        panic!("DEPLOY_TEST_PG_SOCKET is not set: this needs the throwaway PostgreSQL cluster (`eval \"$(scripts/ensure-postgres.sh)\"`, or scripts/test.sh)")
    })
}

/// The `docker run` options that give a container of the fake image the test cluster:
/// its socket mounted, and `HOST`/`PORT`/`USER` as the official Odoo image reads them.
pub fn pg_container_args() -> Vec<String> {
    let (user, _host, port) = pg_server();
    vec![
        "-v".to_owned(),
        format!("{}:/var/run/postgresql", pg_socket_dir()),
        "-e".to_owned(),
        "HOST=/var/run/postgresql".to_owned(),
        "-e".to_owned(),
        format!("PORT={port}"),
        "-e".to_owned(),
        format!("USER={user}"),
    ]
}

/// Runs `odoo <args>` in a one-off container of `image` on the test cluster, as a site
/// runs `-i` or `-u` by hand.
pub fn odoo_one_off(image: &str, args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(["run", "--rm"])
        .args(pg_container_args())
        .arg(image)
        .arg("odoo")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("docker run: {e}"))
}

/// `text` (a test stack file) with slots that reach the test cluster as
/// [`pg_container_args`] does, serving `db`.
pub fn with_pg_slots(text: &str, db: &str) -> String {
    let (user, _host, port) = pg_server();
    let socket = pg_socket_dir();
    text.replacen(
        "[slots]\n",
        // The database server as the official image reads it: HOST, PORT, USER (the
        // update's one-off container gets the slots' environment, not their args).
        &format!(
            "[slots]\nvolumes = [{{ source = {socket:?}, target = \"/var/run/postgresql\" }}]\n\
             env = {{ HOST = \"/var/run/postgresql\", PORT = \"{port}\", USER = {user:?} }}\n"
        ),
        1,
    )
    .replacen("database = \"demo\"", &format!("database = {db:?}"), 1)
}

/// A PostgreSQL URL of `db` on the test cluster over TCP.
pub fn pg_url(db: &str) -> String {
    let (user, _host, port) = pg_server();
    format!("postgres://{user}@127.0.0.1:{port}/{db}")
}
