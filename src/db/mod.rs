//! Storage: one diesel codebase over SQLite (the embedded default) and
//! PostgreSQL (production), chosen by the database URL's scheme.
//!
//! Rules every store follows:
//! - queries return `QueryResult`; [`Db::run`] turns them into [`DbError`] and
//!   runs them on the blocking pool, never on the async executor;
//! - a transaction that reads and then writes goes through [`write`], which is
//!   `BEGIN IMMEDIATE` on SQLite (a deferred transaction that later wants the
//!   write lock fails with SQLITE_BUSY whatever the busy timeout);
//! - SQL that differs per backend lives in one small helper that matches on
//!   [`DbConnection`], never scattered through the stores.

mod kept;
mod migrate;
pub mod schema;

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::R2D2Connection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::config::{DatabaseSettings, DatabaseUrl};

pub use kept::Kept;
pub use migrate::{MigrationLock, has_pending_migrations, run_migrations};

/// A connection to either backend; the variant is fixed by the URL scheme.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(diesel::SqliteConnection),
    Postgres(diesel::PgConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl DbConnection {
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Why a storage call failed, sorted by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached now; worth retrying later (HTTP 503).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Query(DieselError),
    #[error("storage task panicked")]
    Panicked,
}

impl From<DieselError> for DbError {
    fn from(error: DieselError) -> Self {
        match &error {
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => Self::Unavailable(info.message().to_owned()),
            _ => Self::Query(error),
        }
    }
}

impl DbError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Query(DieselError::NotFound))
    }

    /// SQLite's lock was held past the busy timeout: the database's state,
    /// not the statement, is at fault (SQLite reports it only as text).
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            Self::Query(DieselError::DatabaseError(_, info))
                if info.message().contains("database is locked")
                    || info.message().contains("database is busy")
        )
    }

    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            Self::Query(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

/// Opens one connection and prepares it: on SQLite the per-connection pragmas
/// (busy timeout first, so the others already wait for locks).
pub fn establish(settings: &DatabaseSettings) -> ConnectionResult<DbConnection> {
    let busy_timeout_ms = settings.busy_timeout_ms;
    match &settings.url {
        DatabaseUrl::Sqlite(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    ConnectionError::BadConnection(format!(
                        "cannot create {}: {e}",
                        parent.display()
                    ))
                })?;
            }
            let path = path.to_str().ok_or_else(|| {
                ConnectionError::InvalidConnectionUrl("the SQLite path is not UTF-8".into())
            })?;
            let mut conn = diesel::SqliteConnection::establish(path)?;
            let pragmas = [
                format!("PRAGMA busy_timeout = {busy_timeout_ms}"),
                // FULL: an answer acknowledged to an employee survives a power cut.
                "PRAGMA synchronous = FULL".to_owned(),
                "PRAGMA foreign_keys = ON".to_owned(),
                // Deleted rows (tokens, nullifiers) are overwritten, not left in free pages.
                "PRAGMA secure_delete = ON".to_owned(),
            ];
            for pragma in pragmas {
                conn.batch_execute(&pragma)
                    .map_err(|e| ConnectionError::BadConnection(format!("{pragma}: {e}")))?;
            }
            Ok(DbConnection::Sqlite(conn))
        }
        DatabaseUrl::Postgres(url) => {
            let url = with_connect_timeout(url, settings.connect_timeout_secs);
            let conn = diesel::PgConnection::establish(&url)?;
            Ok(DbConnection::Postgres(conn))
        }
    }
}

/// Puts a SQLite database in WAL mode (readers never block the writer). The
/// mode is stored in the file, so this runs once, at start; no-op on PostgreSQL.
pub fn enable_wal(conn: &mut DbConnection) -> QueryResult<()> {
    if let DbConnection::Sqlite(sqlite) = conn {
        sqlite.batch_execute("PRAGMA journal_mode = WAL")?;
    }
    Ok(())
}

/// Hands r2d2 connections of the configured backend.
#[derive(Debug)]
pub struct ConnectionManager {
    settings: DatabaseSettings,
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        establish(&self.settings).map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// The connection pool, shared by handlers and background work.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<ConnectionManager>,
    backend: Backend,
}

impl Db {
    /// Builds the pool without connecting: the first use connects, and an
    /// unreachable database then yields [`DbError::Unavailable`], not a crash.
    pub fn new(settings: &DatabaseSettings) -> Self {
        let backend = match settings.url {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        };
        let manager = ConnectionManager {
            settings: settings.clone(),
        };
        let pool = r2d2::Pool::builder()
            .max_size(settings.pool_size)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(settings.connect_timeout_secs))
            .error_handler(Box::new(PoolErrorLogger))
            .build_unchecked(manager);
        Self { pool, backend }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool's connections now: (open, idle, most allowed).
    pub fn pool_state(&self) -> (u32, u32, u32) {
        let state = self.pool.state();
        (
            state.connections,
            state.idle_connections,
            self.pool.max_size(),
        )
    }

    /// Runs `f` with a pooled connection on the blocking thread pool, inside
    /// the caller's tracing span.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut conn = pool
                .get()
                .map_err(|e| E::from(DbError::Unavailable(e.to_string())))?;
            f(&mut conn)
        })
        .await
        .map_err(|_| E::from(DbError::Panicked))?
    }

    /// A blocking connection, for the command line and start-up.
    pub fn get(&self) -> Result<r2d2::PooledConnection<ConnectionManager>, DbError> {
        self.pool
            .get()
            .map_err(|e| DbError::Unavailable(e.to_string()))
    }
}

#[derive(Debug)]
struct PoolErrorLogger;

impl r2d2::HandleError<diesel::r2d2::Error> for PoolErrorLogger {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        tracing::warn!(%error, "database connection failed");
    }
}

/// libpq waits forever for an unreachable host unless told otherwise.
fn with_connect_timeout(raw: &str, secs: u64) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if !url.query_pairs().any(|(k, _)| k == "connect_timeout") => {
            url.query_pairs_mut()
                .append_pair("connect_timeout", &secs.to_string());
            url.to_string()
        }
        _ => raw.to_owned(),
    }
}

/// SQLite databases (by file) whose checkpoint after a close could not
/// finish because readers held the log; [`checkpoint_if_owed`] retries.
static CHECKPOINTS_OWED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Moves SQLite's write-ahead log into the database file and empties it, so
/// that what a transaction deleted (with `secure_delete`: zeroed) is gone
/// from both files, not kept in older log frames. Called after a wave's
/// responses are sealed. SQLite's own automatic checkpoints never empty the
/// log, so one that readers blocked (SQLite answers `busy`, not an error)
/// is remembered and retried by the scheduler's next pass. Nothing to do
/// on PostgreSQL.
pub fn checkpoint(conn: &mut DbConnection) {
    #[derive(QueryableByName)]
    struct Outcome {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        busy: i32,
    }
    let Some(file) = sqlite_file(conn) else {
        return;
    };
    let DbConnection::Sqlite(sqlite) = conn else {
        return;
    };
    let done = match diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)")
        .get_result::<Outcome>(sqlite)
    {
        Ok(outcome) if outcome.busy == 0 => true,
        Ok(_) => {
            tracing::warn!("readers kept the SQLite log from being emptied; the scheduler retries");
            false
        }
        Err(error) => {
            tracing::warn!(%error, "checkpointing the SQLite log failed; the scheduler retries");
            false
        }
    };
    if let Ok(mut owed) = CHECKPOINTS_OWED.lock() {
        if done {
            owed.remove(&file);
        } else {
            owed.insert(file);
        }
    }
}

/// Retries a checkpoint that [`checkpoint`] could not finish on this
/// connection's database.
pub fn checkpoint_if_owed(conn: &mut DbConnection) {
    let anything_owed = CHECKPOINTS_OWED.lock().is_ok_and(|owed| !owed.is_empty());
    if anything_owed
        && let Some(file) = sqlite_file(conn)
        && CHECKPOINTS_OWED
            .lock()
            .is_ok_and(|owed| owed.contains(&file))
    {
        checkpoint(conn);
    }
}

/// The file of a SQLite connection's main database; `None` on PostgreSQL.
fn sqlite_file(conn: &mut DbConnection) -> Option<String> {
    #[derive(QueryableByName)]
    struct Database {
        #[diesel(sql_type = diesel::sql_types::Text)]
        file: String,
    }
    let DbConnection::Sqlite(sqlite) = conn else {
        return None;
    };
    diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
        .get_result::<Database>(sqlite)
        .ok()
        .map(|d| d.file)
}

/// Runs `f` in a transaction that may read and then write: `BEGIN IMMEDIATE`
/// on SQLite (writers queue on the busy timeout instead of failing), an
/// ordinary READ COMMITTED transaction on PostgreSQL, where a store that must
/// see a stable row takes it `FOR UPDATE` or relies on a constraint.
pub fn write<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<DieselError>,
{
    match conn {
        DbConnection::Postgres(_) => conn.transaction(f),
        DbConnection::Sqlite(sqlite) => {
            AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
            match f(conn) {
                Ok(value) => {
                    <DbConnection as Connection>::TransactionManager::commit_transaction(conn)?;
                    Ok(value)
                }
                Err(error) => {
                    // The caller's error matters more than a failed rollback.
                    let _ = <DbConnection as Connection>::TransactionManager::rollback_transaction(
                        conn,
                    );
                    Err(error)
                }
            }
        }
    }
}

/// A bulk insert of `rows` into `table` on whichever backend `conn` is: a
/// multi-row INSERT on SQLite, `COPY … FROM STDIN` (binary) on PostgreSQL.
/// diesel's multi-backend connection can do neither (the backends disagree
/// on `DEFAULT` in VALUES), so this branches to the concrete connection.
#[macro_export]
macro_rules! batch_insert {
    ($conn:expr, $table:expr, $rows:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite(c) => {
                diesel::insert_into($table).values($rows).execute(c)
            }
            // COPY: one stream instead of statements, the fastest way in.
            $crate::db::DbConnection::Postgres(c) => {
                diesel::copy_from($table).from_insertable($rows).execute(c)
            }
        }
    };
}

/// Now, in UTC, to the microsecond (what both backends store).
pub fn now() -> chrono::NaiveDateTime {
    crate::clock::to_stored(chrono::Utc::now())
}
