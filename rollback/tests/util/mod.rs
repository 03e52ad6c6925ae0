//! Test harness for deploy-rollback: the PostgreSQL test cluster, throwaway databases
//! with random names (dropped even when a test fails), seeded data and snapshots.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use deploy_rollback::{PgConnection, PgTools};

/// The test cluster's URL from `DEPLOY_TEST_PG`. Fails the test (never skips it) when
/// the variable is missing.
pub fn pg_url() -> String {
    match std::env::var("DEPLOY_TEST_PG") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "DEPLOY_TEST_PG is not set: these tests need the throwaway PostgreSQL cluster. \
             Run scripts/ensure-postgres.sh (or scripts/test.sh), e.g. \
             `eval \"$(scripts/ensure-postgres.sh)\" && cargo test -p deploy-rollback`"
        ),
    }
}

/// The maintenance connection (database `postgres`).
pub fn admin() -> PgConnection {
    PgConnection::from_url(&pg_url()).unwrap()
}

/// The server's own client programs when the harness names them, else PATH.
pub fn tools() -> PgTools {
    match std::env::var("DEPLOY_TEST_PG_BIN") {
        Ok(dir) if !dir.is_empty() => PgTools::in_dir(dir),
        _ => PgTools::default(),
    }
}

/// A random lower-case name with a prefix, usable as a database name.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{:08x}", fastrand::u32(..))
}

/// Opens an SQL client on one database of the test cluster.
pub async fn client(db: &str) -> tokio_postgres::Client {
    let conn = admin().with_dbname(db);
    let mut config = tokio_postgres::Config::new();
    config
        .host(&conn.host)
        .port(conn.port)
        .user(&conn.user)
        .dbname(db);
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {db} on {}: {e}", pg_url()));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Runs SQL on the maintenance database from synchronous code (Drop).
fn admin_sql_blocking(sql: String) {
    let url = pg_url();
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            if let Ok((client, connection)) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls).await
            {
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                if let Err(e) = client.batch_execute(&sql).await {
                    eprintln!("cleanup failed: {sql}: {e}");
                }
            }
        });
    })
    .join();
}

/// A throwaway database `rbt_<random>`; on drop, every database whose name starts with
/// it (the live one, `<name>_replaced_*`, `<name>_restore_*`) is dropped.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        let name = unique("rbt");
        let admin = client("postgres").await;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
        TestDb { name }
    }

    pub fn connection(&self) -> PgConnection {
        admin().with_dbname(&self.name)
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        client(&self.name).await
    }

    /// Several tables and a few thousand rows, shaped like a tiny Odoo database.
    pub async fn seed(&self) {
        self.client()
            .await
            .batch_execute(
                "CREATE TABLE res_partner (id serial PRIMARY KEY, name text NOT NULL, email text, active boolean NOT NULL DEFAULT true);
                 CREATE TABLE sale_order (id serial PRIMARY KEY, partner_id int REFERENCES res_partner(id), amount numeric(12,2), state text);
                 CREATE TABLE ir_module_module (id serial PRIMARY KEY, name text UNIQUE, state text);
                 CREATE TABLE ir_attachment (id serial PRIMARY KEY, name text, store_fname text, checksum text);
                 INSERT INTO res_partner (name, email) SELECT 'Partner ' || g, 'p' || g || '@example.com' FROM generate_series(1, 2000) g;
                 INSERT INTO sale_order (partner_id, amount, state)
                     SELECT 1 + (g % 2000), (g * 7 % 1000) / 3.0, CASE WHEN g % 3 = 0 THEN 'sale' ELSE 'draft' END
                     FROM generate_series(1, 3000) g;
                 INSERT INTO ir_module_module (name, state) VALUES ('base', 'installed'), ('web', 'installed'), ('sale', 'installed');
                 INSERT INTO ir_attachment (name, store_fname, checksum)
                     SELECT 'doc' || g || '.pdf', 'ab/' || md5(g::text), md5(g::text) FROM generate_series(1, 500) g;",
            )
            .await
            .unwrap();
    }

    /// A table whose dump is several MB even compressed (md5 text of random values).
    pub async fn seed_big(&self, rows: u32) {
        self.client()
            .await
            .batch_execute(&format!(
                "CREATE TABLE big AS SELECT g AS id, md5(random()::text) || md5(random()::text) || md5(random()::text) AS payload
                 FROM generate_series(1, {rows}) g"
            ))
            .await
            .unwrap();
    }

    /// Every row of the seeded tables as text, in id order, per table.
    pub async fn snapshot(&self) -> BTreeMap<String, Vec<String>> {
        snapshot_of(&self.name).await
    }
}

pub async fn snapshot_of(db: &str) -> BTreeMap<String, Vec<String>> {
    let c = client(db).await;
    let mut out = BTreeMap::new();
    for table in [
        "res_partner",
        "sale_order",
        "ir_module_module",
        "ir_attachment",
    ] {
        let rows = c
            .query(&format!("SELECT t::text FROM {table} t ORDER BY id"), &[])
            .await
            .unwrap();
        out.insert(
            table.to_owned(),
            rows.iter().map(|r| r.get::<_, String>(0)).collect(),
        );
    }
    out
}

pub async fn database_exists(name: &str) -> bool {
    client("postgres")
        .await
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap()
        .is_some()
}

pub async fn databases_like(prefix: &str) -> Vec<String> {
    client("postgres")
        .await
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE $1 || '%' ORDER BY 1",
            &[&prefix],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // DROP DATABASE cannot run inside a DO block; one statement per database.
        let url = pg_url();
        let names: Vec<String> = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let Ok((client, connection)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                else {
                    return Vec::new();
                };
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                client
                    .query(
                        "SELECT datname FROM pg_database WHERE datname LIKE $1 || '%'",
                        &[&name],
                    )
                    .await
                    .map(|rows| rows.iter().map(|r| r.get::<_, String>(0)).collect())
                    .unwrap_or_default()
            })
        })
        .join()
        .unwrap_or_default();
        for db in names {
            admin_sql_blocking(format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"));
        }
    }
}

/// A fake Odoo data_dir with `filestore/<db>/` holding a few content-addressed files.
pub fn fake_filestore(data_dir: &Path, db: &str, files: usize) -> PathBuf {
    let root = data_dir.join("filestore").join(db);
    for i in 0..files {
        let content: Vec<u8> = (0..(512 + i * 97)).map(|_| fastrand::u8(..)).collect();
        let name = format!("{:040x}", fastrand::u128(..));
        let dir = root.join(&name[..2]);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(&name), content).unwrap();
    }
    std::fs::create_dir_all(root.join("checklist")).unwrap();
    root
}

/// Every file under `dir` (relative path -> content).
pub fn files_of(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                out.insert(
                    format!("{}/", path.strip_prefix(dir).unwrap().display()),
                    Vec::new(),
                );
                stack.push(path);
            } else {
                out.insert(
                    path.strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    out
}
