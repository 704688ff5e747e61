//! Group commit: answers that arrive together are stored in one
//! transaction, so one disk flush acknowledges all of them.
//!
//! A response is acknowledged only once it is durably committed, and a
//! durable commit costs a flush (`fsync` on SQLite with `synchronous =
//! FULL`, the WAL flush on PostgreSQL). One transaction per answer would cap
//! Peil at a few thousand answers a second on any disk. Instead, request
//! handlers check their answers on a pooled connection and hand them to a
//! writer thread; the writer takes everything that is waiting (up to
//! [`MAX_BATCH`]), stores it in one transaction and only then answers each
//! request. While one batch is being flushed the next one gathers, so under
//! load batches grow by themselves and when idle an answer goes alone, with
//! no added wait.
//!
//! Inside the batch every answer is still checked on its own: its wave is
//! read again under a share lock (a close cannot interleave), and its
//! nullifier goes in with `ON CONFLICT DO NOTHING`, so a second answer
//! through the same link (in the same batch, or from another replica) is
//! told "already answered" without failing the others. If the batch's
//! transaction fails as a whole, each answer is retried in a transaction of
//! its own, so one bad answer cannot take its neighbours down with it.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use super::{Outcome, store};
use crate::clock::to_stored;
use crate::db::{Backend, Db, DbConnection, DbError};
use crate::error::ApiError;
use crate::surveys::waves::store::{self as waves, WaveRow};

/// Answers per transaction at most: large enough that a flush is shared by
/// every client waiting at 64-way concurrency, small enough that a batch
/// stays a short transaction.
pub const MAX_BATCH: usize = 128;

/// Answers waiting for a writer; requests beyond this wait to hand theirs in.
const QUEUE: usize = 4 * MAX_BATCH;

/// Checked answers, ready to store: what a response row will hold.
#[derive(Debug, Clone)]
pub struct Checked {
    pub wave_id: String,
    pub team_id: String,
    /// The scrubbed answers, as JSON.
    pub answers: String,
    pub nullifier: String,
    /// When the answer was given: the wave must still be open then.
    pub at: DateTime<Utc>,
}

struct Job {
    answer: Checked,
    reply: oneshot::Sender<Result<Outcome, ApiError>>,
}

/// Hands checked answers to the writer threads. Cloned into every HTTP
/// worker; the writers stop when the last clone is dropped, after storing
/// what they were given.
#[derive(Clone)]
pub struct Committer {
    jobs: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the writers: one on SQLite (it has one writer at a time
    /// anyway), two on PostgreSQL, so one batch gathers and runs its
    /// statements while the other waits for its flush.
    pub fn start(db: Db) -> Self {
        let writers = match db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => 2,
        };
        let (jobs, queue) = mpsc::channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..writers {
            let (db, queue) = (db.clone(), queue.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("peil-answers-{n}"))
                .spawn(move || write_batches(&db, &queue));
            if let Err(error) = spawned {
                // Another writer may still run; with none, answers fail as 500s.
                tracing::error!(%error, "cannot start an answer writer");
            }
        }
        Self { jobs }
    }

    /// Stores one checked answer; returns once it is committed (or not).
    pub async fn store(&self, answer: Checked) -> Result<Outcome, ApiError> {
        let (reply, outcome) = oneshot::channel();
        self.jobs.send(Job { answer, reply }).await.map_err(|_| {
            ApiError::Unexpected(anyhow::anyhow!("the answer writers have stopped"))
        })?;
        outcome
            .await
            .map_err(|_| ApiError::Unexpected(anyhow::anyhow!("an answer writer failed")))?
    }
}

/// A writer's loop: take what is waiting, store it, answer, repeat.
fn write_batches(db: &Db, queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let batch = {
            // Whoever holds the queue gathers the next batch while the
            // other writer (PostgreSQL) is busy committing.
            let Ok(mut queue) = queue.lock() else {
                return;
            };
            let Some(first) = queue.blocking_recv() else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        // A panic must not stop the writer: the batch's requests learn of
        // it when their reply is dropped, later answers still get stored.
        if std::panic::catch_unwind(AssertUnwindSafe(|| settle(db, batch))).is_err() {
            tracing::error!("storing a batch of answers panicked");
        }
    }
}

/// Stores a batch and replies to each of its requests.
fn settle(db: &Db, batch: Vec<Job>) {
    let (answers, replies): (Vec<Checked>, Vec<_>) =
        batch.into_iter().map(|j| (j.answer, j.reply)).unzip();
    let outcomes = match db.get() {
        Ok(mut conn) => match store_all(&mut conn, &answers) {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            // One by one only when the batch itself may be at fault: with
            // the database busy or gone, 128 retries would only queue
            // everyone behind them.
            Err(error) if answers.len() > 1 && !is_busy(&error) => {
                tracing::warn!(%error, size = answers.len(), "a batch of answers failed; storing them one by one");
                answers
                    .iter()
                    .map(|a| store_all(&mut conn, std::slice::from_ref(a)).map(|mut o| o.remove(0)))
                    .collect()
            }
            Err(error) if answers.len() == 1 => vec![Err(error)],
            Err(error) => {
                tracing::warn!(%error, size = answers.len(), "the database is busy; a batch of answers is refused");
                answers.iter().map(|_| Err(ApiError::Unavailable)).collect()
            }
        },
        Err(error) => answers
            .iter()
            .map(|_| Err(ApiError::from(DbError::Unavailable(error.to_string()))))
            .collect(),
    };
    for (reply, outcome) in replies.into_iter().zip(outcomes) {
        // The request may have gone (client hung up); its answer is stored.
        let _ = reply.send(outcome);
    }
}

/// Whether a failure is the database's state rather than the answers':
/// unreachable, or locked past the busy timeout (SQLite).
fn is_busy(error: &ApiError) -> bool {
    match error {
        ApiError::Unavailable => true,
        ApiError::Unexpected(error) => error
            .downcast_ref::<DbError>()
            .is_some_and(DbError::is_busy),
        _ => false,
    }
}

/// Stores `answers` in one write transaction; one outcome per answer.
fn store_all(conn: &mut DbConnection, answers: &[Checked]) -> Result<Vec<Outcome>, ApiError> {
    crate::db::write(conn, |conn| {
        let mut waves: HashMap<&str, WaveRow> = HashMap::new();
        let mut outcomes = Vec::with_capacity(answers.len());
        for answer in answers {
            let wave = match waves.get(answer.wave_id.as_str()) {
                Some(wave) => wave,
                // Locked for the rest of the transaction: the wave cannot
                // close (and be sealed) before these answers commit.
                None => waves
                    .entry(&answer.wave_id)
                    .or_insert(waves::find_shared(conn, &answer.wave_id)?),
            };
            let outcome = if !wave.is_open_at(to_stored(answer.at)) {
                Outcome::Closed
            } else if store::insert(
                conn,
                &answer.wave_id,
                &answer.team_id,
                &answer.answers,
                &answer.nullifier,
            )? {
                Outcome::Stored
            } else {
                Outcome::AlreadyAnswered
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    })
}
