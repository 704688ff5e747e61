//! Migrations, one tree per backend under `migrations/`, embedded in the
//! binary. They run at start under a lock so that several replicas starting
//! at once migrate once: a PostgreSQL advisory lock, or a lock file beside the
//! SQLite database. First-start bootstrapping runs under the same lock.

use std::fs::File;

use anyhow::Context;
use diesel::RunQueryDsl;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::DbConnection;
use crate::config::DatabaseUrl;

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// An arbitrary constant shared by every Peil instance: "peil" in ASCII.
const ADVISORY_LOCK_KEY: i64 = 0x7065_696c;

/// Holds the deployment-wide migration lock until dropped.
pub struct MigrationLock {
    kind: LockKind,
}

enum LockKind {
    Postgres,
    SqliteFile(File),
}

impl MigrationLock {
    /// Blocks until this process holds the lock. On PostgreSQL the lock
    /// belongs to `conn`'s session: keep using that connection, and call
    /// [`MigrationLock::release`] with it.
    pub fn acquire(conn: &mut DbConnection, url: &DatabaseUrl) -> anyhow::Result<Self> {
        match (conn, url) {
            (DbConnection::Postgres(pg), _) => {
                diesel::sql_query(format!("SELECT pg_advisory_lock({ADVISORY_LOCK_KEY})"))
                    .execute(pg)
                    .context("taking the migration lock")?;
                Ok(Self {
                    kind: LockKind::Postgres,
                })
            }
            (DbConnection::Sqlite(_), DatabaseUrl::Sqlite(path)) => {
                let mut lock_path = path.clone().into_os_string();
                lock_path.push(".migrate-lock");
                let file = File::options()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&lock_path)
                    .with_context(|| format!("opening {}", lock_path.to_string_lossy()))?;
                file.lock().context("taking the migration lock")?;
                Ok(Self {
                    kind: LockKind::SqliteFile(file),
                })
            }
            (DbConnection::Sqlite(_), DatabaseUrl::Postgres(_)) => {
                anyhow::bail!("connection and URL disagree on the backend")
            }
        }
    }

    pub fn release(self, conn: &mut DbConnection) -> anyhow::Result<()> {
        match (self.kind, conn) {
            (LockKind::Postgres, DbConnection::Postgres(pg)) => {
                diesel::sql_query(format!("SELECT pg_advisory_unlock({ADVISORY_LOCK_KEY})"))
                    .execute(pg)
                    .context("releasing the migration lock")?;
            }
            // Closing the file releases the lock.
            (LockKind::SqliteFile(file), _) => drop(file),
            (LockKind::Postgres, DbConnection::Sqlite(_)) => {}
        }
        Ok(())
    }
}

/// Applies pending migrations; returns the versions applied now.
pub fn run_migrations(conn: &mut DbConnection) -> anyhow::Result<Vec<String>> {
    let applied = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE),
        DbConnection::Postgres(c) => c.run_pending_migrations(POSTGRES),
    }
    .map_err(|e| anyhow::anyhow!("running migrations: {e}"))?;
    Ok(applied.into_iter().map(|v| v.to_string()).collect())
}

pub fn has_pending_migrations(conn: &mut DbConnection) -> anyhow::Result<bool> {
    match conn {
        DbConnection::Sqlite(c) => c.has_pending_migration(SQLITE),
        DbConnection::Postgres(c) => c.has_pending_migration(POSTGRES),
    }
    .map_err(|e| anyhow::anyhow!("checking migrations: {e}"))
}
