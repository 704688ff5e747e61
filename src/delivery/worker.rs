//! The outbox worker: claims due emails, renders them, sends them, and
//! records what happened.
//!
//! Claiming is a lease: a round marks up to `mail.batch_size` due rows as
//! its own until `mail.lease_secs` from now, in one conditional UPDATE, so
//! workers on several replicas never take the same row (on PostgreSQL the
//! UPDATE re-checks the lease on rows another worker just claimed; on
//! SQLite writers queue). A worker that dies mid-round leaves its lease to
//! run out; the emails are then sent again — the same bytes, the same
//! `Message-ID`, the same link — which is the window no SMTP client can close.
//!
//! Nothing goes out for a wave that has closed, and no reminder goes to
//! someone who has answered: both are cancelled when claimed. A batch
//! claimed ahead (the pipeline in [`Worker::run`]) is checked again just
//! before it is sent: only rows its claim still holds go out, so a wave
//! closed meanwhile or a lease run out under a slow rate limit sends nothing,
//! and its reminders are checked against the answers again.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::mailer::{Mailer, SendError};
use super::message::{Draft, Letter, Rendered, Sender, Wording};
use crate::clock::to_stored;
use crate::config::MailSettings;
use crate::crypto::ServerKeys;
use crate::db::schema::{invitations, organisations, outbox, people, waves};
use crate::db::{self, Db, DbConnection};
use crate::error::ApiError;
use crate::surveys::waves::store::WaveRow;

pub struct Worker {
    db: Db,
    mailer: Arc<Mailer>,
    keys: ServerKeys,
    settings: MailSettings,
    sender: Sender,
    public_url: url::Url,
    metrics: Arc<crate::metrics::Metrics>,
}

/// Emails claimed and rendered, waiting to be sent.
pub struct Batch {
    claim: String,
    now: DateTime<Utc>,
    /// The waves of the batch's emails.
    waves: Vec<String>,
    /// Each email with its wave, an index into `waves`.
    ready: Vec<(usize, Rendered)>,
    /// Emails that could not even be written (permanent), and later all.
    outcomes: Vec<(String, Result<(), SendError>)>,
    attempts: HashMap<String, i32>,
    /// Reminders to check against the answers again just before they go,
    /// by outbox id: those of a batch claimed ahead, which waits up to two
    /// sends. A batch claimed from the front goes at once, and its claim has
    /// just checked them.
    recheck: HashSet<String>,
    /// Rows claimed, cancelled ones included: a full batch means more may
    /// be due at once.
    claimed: usize,
    /// The due order's key of the last row claimed: where the claim of the
    /// batch after it may start.
    last: Option<DueKey>,
    /// Claimed after a key (see [`claim_due`]), not from the front.
    ahead: bool,
}

/// A row's place in the order emails are claimed: when due, then id.
type DueKey = (NaiveDateTime, String);

/// A run of claims, each starting after the last full batch before it.
#[derive(Clone)]
struct Chain {
    after: DueKey,
    since: std::time::Instant,
}

/// How long a run of claims goes on before a claim starts at the front
/// again. Rows can become due behind the run's key while it lasts (a batch
/// another instance gave back, a wave opened a moment earlier with ids that
/// sort lower); they wait at most this long, however long the backlog.
const CHAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Batches claimed and rendered ahead of the one being sent, at most. Two:
/// a claim that takes longer than one send now and then (another writer,
/// a busy database) does not leave the connections waiting.
const AHEAD: usize = 2;

/// A claim or a record under way, carried from one batch to the next.
type InFlight<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Where the claim after this one may start: after its last row, when it
/// took a full batch (more may be due right behind it) and the run it
/// belongs to is younger than [`CHAIN_LIMIT`]. Otherwise the next claim
/// starts at the front, and takes whatever became due behind.
fn continues(outcome: &Result<Batch, ApiError>, size: usize, run: Option<&Chain>) -> Option<Chain> {
    let batch = outcome
        .as_ref()
        .ok()
        .filter(|batch| batch.claimed >= size)?;
    let after = batch.last.clone()?;
    let since = match (batch.ahead, run) {
        (true, Some(run)) => run.since,
        _ => std::time::Instant::now(),
    };
    (since.elapsed() < CHAIN_LIMIT).then_some(Chain { after, since })
}

/// Says why a claim failed, unless the database is known to be down (the
/// health check reports that).
fn claim_failed(error: &ApiError) {
    if !matches!(error, ApiError::Unavailable) {
        tracing::warn!(%error, "claiming emails failed; retrying");
    }
}

/// A batch on its way back from the SMTP server: what happened to each.
pub struct Sent {
    claim: String,
    now: DateTime<Utc>,
    outcomes: Vec<(String, Result<(), SendError>)>,
    attempts: HashMap<String, i32>,
}

/// Where a batch's emails stand just before it goes.
struct Standing {
    /// Per wave of the batch: still taking answers.
    open: Vec<bool>,
    /// The rows this claim still holds; `None` when it holds every one.
    held: Option<HashSet<String>>,
    /// Invitations of reminders checked again whose person has answered.
    answered: HashSet<String>,
}

/// A batch checked just before it goes: the emails that may, and the
/// outcomes so far.
struct Checked {
    sent: Sent,
    ready: Vec<Rendered>,
}

impl Batch {
    /// Whether anything is to be sent or recorded (not only cancellations).
    fn has_mail(&self) -> bool {
        !self.ready.is_empty() || !self.outcomes.is_empty()
    }
}

/// A claimed email with what it needs to be written.
#[derive(Queryable)]
struct Claimed {
    outbox_id: String,
    reminder: i32,
    due_at: NaiveDateTime,
    queued_at: NaiveDateTime,
    attempts: i32,
    invitation_id: String,
    wave_id: String,
    language: String,
    email: String,
    name: String,
}

/// What a wave contributes to each of its emails.
struct WaveFacts {
    /// Still taking answers now (`WaveRow::is_open_at`).
    open: bool,
    closes_at: DateTime<Utc>,
    titles: Option<crate::surveys::template::Texts>,
    min_group_size: i32,
    organisation: String,
    time_zone: chrono_tz::Tz,
}

impl Worker {
    pub fn new(
        db: Db,
        mailer: Arc<Mailer>,
        keys: ServerKeys,
        settings: MailSettings,
        public_url: url::Url,
    ) -> Self {
        let sender = Sender {
            from: settings.from.clone(),
            reply_to: settings.reply_to.clone(),
        };
        Self {
            db,
            mailer,
            keys,
            settings,
            sender,
            public_url,
            metrics: Arc::default(),
        }
    }

    /// Counts what it sends in these metrics (`GET /metrics`).
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Sends until `stop` says so, pipelined: while one batch is on the
    /// wire, the ones before it are recorded and claims go on ahead (up to
    /// [`AHEAD`] batches claimed and rendered) as long as each finds a full
    /// batch. Neither is waited for while a batch goes out: a claim or a
    /// record runs on across batches, so one that takes longer than a send
    /// now and then does not leave the connections idle. A batch is sent
    /// only when no earlier one waits for its record besides the one being
    /// recorded, so none waits for it longer than a send. With `until_idle`,
    /// returns once a claim finds nothing due (for benchmarks and tools);
    /// otherwise waits `mail.poll_interval_ms` and looks again. Whatever was
    /// sent is recorded before it returns, and whatever was claimed but not
    /// sent is given back.
    pub async fn run(
        &self,
        clock: &crate::clock::SharedClock,
        stop: &mut tokio::sync::watch::Receiver<bool>,
        until_idle: bool,
    ) {
        let idle = std::time::Duration::from_millis(self.settings.poll_interval_ms);
        let size = self.settings.batch_size;
        // Batches claimed and rendered, oldest first; the claim under way;
        // and where the next claim ahead starts (after the last full batch).
        let mut ready: VecDeque<Batch> = VecDeque::new();
        let mut claiming: Option<InFlight<'_, Result<Batch, ApiError>>> = None;
        let mut chain: Option<Chain> = None;
        // Batches sent and not yet recorded, and the record under way.
        let mut unrecorded: VecDeque<Sent> = VecDeque::new();
        let mut recording: Option<InFlight<'_, ()>> = None;
        loop {
            let outcome = match ready.pop_front() {
                Some(batch) => Ok(batch),
                None => {
                    let outcome = match claiming.take() {
                        Some(claim) => claim.await,
                        None => self.prepare(clock.now(), None).await,
                    };
                    chain = continues(&outcome, size, chain.as_ref());
                    outcome
                }
            };
            let batch = match outcome {
                Ok(batch) if batch.has_mail() => batch,
                outcome => {
                    // Nothing to send now (or the claim failed): record what
                    // went out, then wait unless something was cancelled.
                    self.record_all(&mut recording, &mut unrecorded).await;
                    // A claim after a key that found nothing says nothing of
                    // the rows before it: the next claim starts at the front.
                    let done = match outcome {
                        Ok(batch) => batch.claimed == 0 && !batch.ahead,
                        Err(error) => {
                            claim_failed(&error);
                            true
                        }
                    };
                    if done && claiming.is_none() && ready.is_empty() {
                        if until_idle {
                            return;
                        }
                        tokio::select! {
                            _ = stop.changed() => return,
                            () = tokio::time::sleep(idle) => {}
                        }
                    }
                    continue;
                }
            };
            // A sent batch waits for its record through at most one send:
            // far within its lease, which a record needs still running.
            if !unrecorded.is_empty()
                && let Some(record) = recording.take()
            {
                record.await;
            }
            // The check and the send go first, claims and records after: on
            // a few cores, a database call started at the same time takes
            // the CPU from them (each check took 0.1–2.8 ms with a claim
            // and a record started beside it, and a batch's lanes started
            // up to 2.5 ms late; now 0.1–0.3 ms and none).
            let checked = self.check(batch, clock.now()).await;
            let mut sending = std::pin::pin!(self.send(checked));
            let sent = loop {
                if claiming.is_none()
                    && ready.len() < AHEAD
                    && let Some(run) = &chain
                {
                    claiming = Some(Box::pin(self.prepare(clock.now(), Some(run.after.clone()))));
                }
                if recording.is_none()
                    && let Some(next) = unrecorded.pop_front()
                {
                    recording = Some(Box::pin(self.record_or_warn(next)));
                }
                // Biased: the send is polled first, so its lanes start first.
                tokio::select! {
                    biased;
                    sent = &mut sending => break sent,
                    outcome = async { claiming.as_mut().expect("checked").await }, if claiming.is_some() => {
                        claiming = None;
                        chain = continues(&outcome, size, chain.as_ref());
                        match outcome {
                            Ok(next) => ready.push_back(next),
                            Err(error) => claim_failed(&error),
                        }
                    }
                    () = async { recording.as_mut().expect("checked").await }, if recording.is_some() => {
                        recording = None;
                    }
                }
            };
            unrecorded.push_back(sent);
            if *stop.borrow() {
                self.record_all(&mut recording, &mut unrecorded).await;
                if let Some(claim) = claiming.take()
                    && let Ok(claimed) = claim.await
                {
                    ready.push_back(claimed);
                }
                for unsent in ready.drain(..) {
                    self.release(unsent).await;
                }
                return;
            }
        }
    }

    /// Records every sent batch, the one being recorded first.
    async fn record_all<'a>(
        &'a self,
        recording: &mut Option<InFlight<'a, ()>>,
        unrecorded: &mut VecDeque<Sent>,
    ) {
        if let Some(record) = recording.take() {
            record.await;
        }
        while let Some(sent) = unrecorded.pop_front() {
            self.record_or_warn(sent).await;
        }
    }

    /// Claims the next batch and renders it: database and CPU, no network.
    /// A batch claimed while the one before it (up to `after`) is still on
    /// its way starts after it: see [`claim_due`].
    async fn prepare(&self, now: DateTime<Utc>, after: Option<DueKey>) -> Result<Batch, ApiError> {
        let claim = uuid::Uuid::new_v4().to_string();
        let lease = self.lease();
        let size = self.settings.batch_size;
        let claim_id = claim.clone();
        let keys = self.keys.clone();
        let ahead = after.is_some();
        let Claim {
            claimed,
            facts,
            cancelled,
            last,
        } = self
            .db
            .run(move |conn| {
                db::write(conn, |conn| {
                    claim_due(conn, &keys, &claim_id, now, lease, size, after)
                })
            })
            .await?;
        let mut waves: Vec<String> = claimed.iter().map(|c| c.wave_id.clone()).collect();
        waves.sort_unstable();
        waves.dedup();
        let mut batch = Batch {
            claim,
            now,
            waves,
            ready: Vec::new(),
            outcomes: Vec::new(),
            attempts: claimed
                .iter()
                .map(|c| (c.outbox_id.clone(), c.attempts))
                .collect(),
            recheck: claimed
                .iter()
                .filter(|c| ahead && c.reminder > 0)
                .map(|c| c.outbox_id.clone())
                .collect(),
            claimed: claimed.len() + cancelled,
            last,
            ahead,
        };
        if claimed.is_empty() {
            return Ok(batch);
        }
        // The templates run once per wave, language and kind of email; each
        // email then only fills in its name and link.
        let mut drafts: HashMap<(&str, &str, bool), Result<Arc<Draft>, String>> = HashMap::new();
        let mut letters = Vec::with_capacity(claimed.len());
        for c in &claimed {
            let draft = drafts
                .entry((&c.wave_id, &c.language, c.reminder > 0))
                .or_insert_with(|| self.draft(c, &facts))
                .clone();
            let wave = batch
                .waves
                .binary_search(&c.wave_id)
                .expect("the batch's waves are its emails' waves");
            letters.push(
                draft
                    .and_then(|draft| Ok((wave, draft, self.letter(c)?)))
                    .map_err(|why| (c.outbox_id.clone(), why)),
            );
        }
        let rendered = tokio::task::spawn_blocking(move || {
            letters
                .into_iter()
                .map(|letter| {
                    letter.and_then(|(wave, draft, l)| {
                        draft
                            .render(&l)
                            .map(|message| (wave, message))
                            .map_err(|e| (l.outbox_id.clone(), e.0))
                    })
                })
                .collect::<Vec<Result<(usize, Rendered), (String, String)>>>()
        })
        .await
        .map_err(|_| ApiError::Unexpected(anyhow::anyhow!("rendering emails panicked")))?;
        for r in rendered {
            match r {
                Ok(message) => batch.ready.push(message),
                Err((id, why)) => batch.outcomes.push((id, Err(SendError::Permanent(why)))),
            }
        }
        Ok(batch)
    }

    fn lease(&self) -> Duration {
        Duration::seconds(i64::try_from(self.settings.lease_secs).unwrap_or(120))
    }

    /// Checks a prepared batch just before it goes, at `now`: only what its
    /// claim still holds may go.
    async fn check(&self, batch: Batch, now: DateTime<Utc>) -> Checked {
        let Batch {
            claim,
            now: claimed_at,
            waves,
            ready,
            outcomes,
            attempts,
            recheck,
            ..
        } = batch;
        let ready = self
            .still_held(&claim, claimed_at, &waves, &recheck, ready, now)
            .await;
        Checked {
            sent: Sent {
                claim,
                now,
                outcomes,
                attempts,
            },
            ready,
        }
    }

    /// Sends a checked batch.
    async fn send(&self, checked: Checked) -> Sent {
        let Checked { mut sent, ready } = checked;
        if !ready.is_empty() {
            sent.outcomes.extend(self.mailer.send_all(ready).await);
        }
        sent
    }

    /// The messages of waves still open at `now` whose rows this claim
    /// still holds. A batch claimed ahead waits a whole send before it goes:
    /// meanwhile its wave may have closed (closing deletes the rows) or its
    /// close time passed, which is checked every time. With a slow rate
    /// limit its lease may also run low: past half the lease, the rows are
    /// renewed from `now` and counted, and read one by one if some are no
    /// longer this claim's. Before that they are not read again: no other
    /// claim can take a row whose lease runs (replicas' clocks are far
    /// closer than half a lease), a resend refuses an email a worker holds,
    /// and retention only touches closed waves. Erasure deletes a person's
    /// rows at once; an email of theirs already claimed may still go, as
    /// one already on the wire would. The read was on the path of every
    /// batch: up to a fifth of its time on PostgreSQL. Reminders claimed
    /// ahead are the exception: a batch that holds some reads whether their
    /// people have answered (flags, then nullifiers), and cancels those. If
    /// the database cannot say, nothing is sent: the rows go again once the
    /// lease runs out.
    async fn still_held(
        &self,
        claim: &str,
        claimed_at: DateTime<Utc>,
        waves: &[String],
        recheck: &HashSet<String>,
        ready: Vec<(usize, Rendered)>,
        now: DateTime<Utc>,
    ) -> Vec<Rendered> {
        if ready.is_empty() {
            return Vec::new();
        }
        // Under a slow rate limit, two sends are long enough for someone to
        // answer.
        let reminded: Vec<String> = ready
            .iter()
            .filter(|(_, m)| recheck.contains(&m.outbox_id))
            .map(|(_, m)| m.invitation_id.clone())
            .collect();
        let keys = self.keys.clone();
        let lease = self.lease();
        let renew = now - claimed_at >= lease / 2;
        let ids: Vec<String> = match renew {
            true => ready.iter().map(|(_, m)| m.outbox_id.clone()).collect(),
            false => Vec::new(),
        };
        let (claim_id, wave_ids) = (claim.to_owned(), waves.to_vec());
        let held = self
            .db
            .run(move |conn| {
                let check = |conn: &mut DbConnection| {
                    let reminded: Vec<&str> = reminded.iter().map(String::as_str).collect();
                    let answered = answered_among(conn, &keys, &reminded)?;
                    // Only while the wave still takes answers: its close
                    // time may have passed before the scheduler closed it.
                    let open: HashSet<String> = waves::table
                        .filter(waves::id.eq_any(&wave_ids))
                        .filter(crate::surveys::waves::store::open_at(to_stored(now)))
                        .select(waves::id)
                        .load::<String>(conn)?
                        .into_iter()
                        .collect();
                    let open: Vec<bool> = wave_ids.iter().map(|w| open.contains(w)).collect();
                    if !renew {
                        return Ok::<_, ApiError>(Standing {
                            open,
                            held: None,
                            answered,
                        });
                    }
                    let mine = |chunk: &[String]| {
                        outbox::table
                            .filter(outbox::id.eq_any(chunk.to_vec()))
                            .filter(outbox::claimed_by.eq(claim_id.clone()))
                            .filter(outbox::status.eq("queued"))
                    };
                    let mut renewed = 0;
                    for chunk in ids.chunks(1_000) {
                        renewed += diesel::update(mine(chunk))
                            .set(outbox::claimed_until.eq(to_stored(now + lease)))
                            .execute(conn)?;
                    }
                    if renewed == ids.len() {
                        return Ok(Standing {
                            open,
                            held: None,
                            answered,
                        });
                    }
                    let mut held = HashSet::new();
                    for chunk in ids.chunks(1_000) {
                        held.extend(mine(chunk).select(outbox::id).load::<String>(conn)?);
                    }
                    Ok(Standing {
                        open,
                        held: Some(held),
                        answered,
                    })
                };
                if renew {
                    db::write(conn, check)
                } else {
                    check(conn)
                }
            })
            .await;
        match held {
            Ok(Standing {
                open,
                held,
                answered,
            }) => {
                let (unwanted, ready): (Vec<_>, Vec<_>) = ready
                    .into_iter()
                    .filter(|(wave, m)| {
                        open[*wave] && held.as_ref().is_none_or(|h| h.contains(&m.outbox_id))
                    })
                    .map(|(_, m)| m)
                    .partition(|m| {
                        recheck.contains(&m.outbox_id) && answered.contains(&m.invitation_id)
                    });
                if !unwanted.is_empty() {
                    self.cancel_unwanted(claim.to_owned(), unwanted).await;
                }
                ready
            }
            Err(error) => {
                tracing::warn!(%error, "checking a batch's claim failed; it goes after the lease");
                Vec::new()
            }
        }
    }

    /// Cancels reminders to people who answered after their claim. If that
    /// fails they stay unsent all the same: claimed again after the lease,
    /// they are cancelled then.
    async fn cancel_unwanted(&self, claim: String, unwanted: Vec<Rendered>) {
        let ids: Vec<String> = unwanted.into_iter().map(|m| m.outbox_id).collect();
        let cancelled = self
            .db
            .run(move |conn| {
                db::write(conn, |conn| {
                    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                    cancel(conn, &claim, &ids).map_err(ApiError::from)
                })
            })
            .await;
        if let Err(error) = cancelled {
            tracing::warn!(%error, "cancelling reminders to people who answered failed; they are cancelled when claimed again");
        }
    }

    /// Records what happened to each email of a sent batch.
    async fn record(&self, sent: Sent) -> Result<(), ApiError> {
        let Sent {
            claim,
            now,
            outcomes,
            attempts,
        } = sent;
        if outcomes.is_empty() {
            return Ok(());
        }
        let (mut delivered, mut retrying, mut failed) = (0, 0, 0);
        for (_, outcome) in &outcomes {
            match outcome {
                Ok(()) => delivered += 1,
                Err(SendError::Temporary(_)) => retrying += 1,
                Err(SendError::Permanent(_)) => failed += 1,
            }
        }
        let settings = (self.settings.retry_base_secs, self.settings.retry_max_secs);
        self.db
            .run(move |conn| {
                db::write(conn, |conn| {
                    record(conn, &claim, &outcomes, &attempts, now, settings)
                })
            })
            .await?;
        self.metrics.emails(delivered, retrying, failed);
        if failed > 0 || retrying > 0 {
            // Counts only: an SMTP error may quote the address, which stays out of logs.
            tracing::warn!(
                sent = delivered,
                retrying,
                failed,
                "some emails were not delivered"
            );
        }
        Ok(())
    }

    async fn record_or_warn(&self, sent: Sent) {
        if let Err(error) = self.record(sent).await {
            tracing::warn!(%error, "recording sent emails failed; they go again after the lease");
        }
    }

    /// Gives a claimed batch back unsent (at shutdown), so that another
    /// worker need not wait for the lease to run out.
    async fn release(&self, batch: Batch) {
        let claim = batch.claim;
        let released = self
            .db
            .run(move |conn| {
                diesel::update(outbox::table.filter(outbox::claimed_by.eq(&claim)))
                    .set((
                        outbox::claimed_by.eq(None::<String>),
                        outbox::claimed_until.eq(None::<NaiveDateTime>),
                    ))
                    .execute(conn)
                    .map_err(ApiError::from)
            })
            .await;
        if let Err(error) = released {
            tracing::warn!(%error, "releasing unsent emails failed; their lease runs out instead");
        }
    }

    /// What the emails of `c`'s wave say in its language, as a draft.
    fn draft(&self, c: &Claimed, facts: &HashMap<String, WaveFacts>) -> Result<Arc<Draft>, String> {
        let wave = facts.get(&c.wave_id).ok_or("the wave is gone")?;
        let wording = Wording {
            language: c.language.clone(),
            reminder: c.reminder > 0,
            organisation: wave.organisation.clone(),
            title: wave
                .titles
                .as_ref()
                .map(|t| t.get(&c.language).to_owned())
                .unwrap_or_default(),
            closes_at: wave.closes_at,
            time_zone: wave.time_zone,
            min_group_size: wave.min_group_size,
        };
        Draft::new(&wording, &self.sender)
            .map(Arc::new)
            .map_err(|e| e.0)
    }

    /// What is `c`'s own: its address, its name, its link.
    fn letter(&self, c: &Claimed) -> Result<Letter, String> {
        let token = self
            .keys
            .invitation_token(&c.invitation_id)
            .ok_or("the invitation id is not a UUID")?;
        // Appended, not joined: a public URL with a path keeps it.
        let link = format!(
            "{}/s/{token}",
            self.public_url.as_str().trim_end_matches('/')
        );
        Ok(Letter {
            outbox_id: c.outbox_id.clone(),
            invitation_id: c.invitation_id.clone(),
            queued_at: c.queued_at,
            to_email: c.email.clone(),
            to_name: c.name.clone(),
            link,
        })
    }
}

/// What a claim took: the emails to send with their waves, how many it
/// cancelled, and the key of the last row it read.
#[derive(Default)]
struct Claim {
    claimed: Vec<Claimed>,
    facts: HashMap<String, WaveFacts>,
    cancelled: usize,
    last: Option<DueKey>,
}

/// Takes up to `batch` due emails for this claim, and cancels those that
/// must no longer go out. Part of one write transaction.
///
/// With `after`, only rows after that key in due order: the worker's
/// batches still on their way hold the rows before it, and a claim that
/// started at the front would read past every one of them (1,000 rows a
/// claim, the largest part of its read). Rows due behind it meanwhile (a
/// lease run out, a batch given back, a wave queued a moment earlier) wait
/// for the next claim from the front: after a claim that finds less than a
/// full batch, and at least every [`CHAIN_LIMIT`].
fn claim_due(
    conn: &mut DbConnection,
    keys: &ServerKeys,
    claim: &str,
    now: DateTime<Utc>,
    lease: Duration,
    batch: usize,
    after: Option<DueKey>,
) -> Result<Claim, ApiError> {
    let stored_now = to_stored(now);
    // PostgreSQL would read a claim with two parallel workers, started for
    // each claim: on a few cores that costs far more than reading 500 rows
    // off an index saves (a claim that found nothing took 20 ms).
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query("SET LOCAL max_parallel_workers_per_gather = 0").execute(pg)?;
    }
    // What may be claimed: queued, due, and no lease running. The SELECT and
    // the UPDATE must ask the same, so it is written once.
    let claimable = || {
        super::outbox::queued()
            .and(outbox::next_attempt_at.le(stored_now))
            .and(super::outbox::unleased(stored_now))
    };
    // Read with what each email needs, then claimed: by primary key, in the
    // order they fell due. The person's name and address as they are now;
    // the rest is the row's.
    let mut query = outbox::table
        .inner_join(people::table.on(people::id.eq(outbox::person_id)))
        .filter(claimable())
        .into_boxed();
    if let Some((due_at, id)) = after {
        // One row-value comparison, which both backends read off the due
        // index (spelled with OR, it would scan from `due_at` on).
        use diesel::sql_types::{Bool, Text, Timestamp};
        query = query.filter(
            diesel::dsl::sql::<Bool>(r#"("outbox"."next_attempt_at", "outbox"."id") > ("#)
                .bind::<Timestamp, _>(due_at)
                .sql(", ")
                .bind::<Text, _>(id)
                .sql(")"),
        );
    }
    let mut claimed: Vec<Claimed> = query
        .order((outbox::next_attempt_at, outbox::id))
        .limit(i64::try_from(batch).unwrap_or(500))
        .select((
            outbox::id,
            outbox::reminder,
            outbox::next_attempt_at,
            outbox::created_at,
            outbox::attempts,
            outbox::invitation_id,
            outbox::wave_id,
            outbox::language,
            people::email,
            people::name,
        ))
        .load(conn)?;
    let Some(last) = claimed.last() else {
        return Ok(Claim::default());
    };
    let last = Some((last.due_at, last.outbox_id.clone()));
    let due: Vec<&str> = claimed.iter().map(|c| c.outbox_id.as_str()).collect();
    // Due and free are checked again in the UPDATE itself: a row another
    // worker claimed since the SELECT, or claimed, tried and put back to
    // wait, is left alone (and then read no further: its values would be
    // the SELECT's, not the row's).
    let taken = diesel::update(
        outbox::table
            .filter(outbox::id.eq_any(&due))
            .filter(claimable()),
    )
    .set((
        outbox::claimed_by.eq(claim),
        outbox::claimed_until.eq(to_stored(now + lease)),
    ))
    .execute(conn)?;
    if taken < due.len() {
        // Another replica was quicker to some (PostgreSQL; SQLite's writers
        // take turns): keep only this claim's.
        let mine: HashSet<String> = outbox::table
            .filter(outbox::id.eq_any(&due))
            .filter(outbox::claimed_by.eq(claim))
            .select(outbox::id)
            .load::<String>(conn)?
            .into_iter()
            .collect();
        claimed.retain(|c| mine.contains(&c.outbox_id));
    }

    let mut wave_ids: Vec<&str> = claimed.iter().map(|c| c.wave_id.as_str()).collect();
    wave_ids.sort_unstable();
    wave_ids.dedup();
    let facts = wave_facts(conn, &wave_ids, now)?;

    let reminded: Vec<&str> = claimed
        .iter()
        .filter(|c| c.reminder > 0)
        .map(|c| c.invitation_id.as_str())
        .collect();
    let answered = answered_among(conn, keys, &reminded)?;
    // A closed wave's emails and a reminder to someone who answered stay unsent.
    let (keep, drop): (Vec<Claimed>, Vec<Claimed>) = claimed.into_iter().partition(|c| {
        facts.get(&c.wave_id).is_some_and(|w| w.open)
            && !(c.reminder > 0 && answered.contains(&c.invitation_id))
    });
    let dropped: Vec<&str> = drop.iter().map(|c| c.outbox_id.as_str()).collect();
    if !dropped.is_empty() {
        cancel(conn, claim, &dropped)?;
    }
    Ok(Claim {
        claimed: keep,
        facts,
        cancelled: dropped.len(),
        last,
    })
}

/// Emails this claim holds that are not to go out after all (their wave
/// closed, or a reminder's person answered): cancelled, and no longer held.
fn cancel(conn: &mut DbConnection, claim: &str, ids: &[&str]) -> QueryResult<usize> {
    diesel::update(
        outbox::table
            .filter(outbox::id.eq_any(ids))
            .filter(outbox::claimed_by.eq(claim))
            .filter(outbox::status.eq("queued")),
    )
    .set((
        outbox::status.eq("cancelled"),
        outbox::claimed_by.eq(None::<String>),
        outbox::claimed_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)
}

/// Of these reminders' invitations, those whose person has answered: by
/// the invitation's flag, and, since the flags lag behind the responses
/// (src/answers/mod.rs), by the reminder's own link among the responses'
/// nullifiers. Nothing is read when there are no reminders.
fn answered_among(
    conn: &mut DbConnection,
    keys: &ServerKeys,
    reminded: &[&str],
) -> Result<HashSet<String>, ApiError> {
    if reminded.is_empty() {
        return Ok(HashSet::new());
    }
    let mut answered = HashSet::new();
    for chunk in reminded.chunks(1_000) {
        answered.extend(
            invitations::table
                .filter(invitations::id.eq_any(chunk))
                .filter(invitations::answered.eq(true))
                .select(invitations::id)
                .load::<String>(conn)?,
        );
    }
    let by_link: Vec<(&str, String)> = reminded
        .iter()
        .filter(|id| !answered.contains(**id))
        .filter_map(|id| Some((*id, keys.nullifier(id)?)))
        .collect();
    let nullifiers: Vec<String> = by_link.iter().map(|(_, n)| n.clone()).collect();
    let used = crate::answers::store::used_among(conn, &nullifiers)?;
    answered.extend(
        by_link
            .into_iter()
            .filter(|(_, n)| used.contains(n))
            .map(|(id, _)| id.to_owned()),
    );
    Ok(answered)
}

/// The waves of a batch with their organisation's name and zone.
fn wave_facts(
    conn: &mut DbConnection,
    wave_ids: &[&str],
    now: DateTime<Utc>,
) -> Result<HashMap<String, WaveFacts>, ApiError> {
    let rows: Vec<(WaveRow, String, String)> = waves::table
        .inner_join(organisations::table)
        .filter(waves::id.eq_any(wave_ids))
        .select((
            waves::all_columns,
            organisations::name,
            organisations::time_zone,
        ))
        .load(conn)?;
    let mut facts = HashMap::new();
    for (wave, organisation, zone) in rows {
        let titles = wave
            .template
            .as_deref()
            .map(crate::surveys::templates::decode)
            .transpose()?
            .map(|t| t.title);
        facts.insert(
            wave.id.clone(),
            WaveFacts {
                open: wave.is_open_at(to_stored(now)),
                closes_at: wave
                    .closes_at
                    .map_or(DateTime::<Utc>::MIN_UTC, |t| t.and_utc()),
                titles,
                min_group_size: wave.min_group_size,
                organisation,
                time_zone: zone.parse().unwrap_or(chrono_tz::Europe::Amsterdam),
            },
        );
    }
    Ok(facts)
}

/// The wait before attempt `n + 1` after `n` failed ones: base × 2^(n − 1), capped.
pub fn backoff(attempts: i32, base_secs: u64, max_secs: u64) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let secs = base_secs.saturating_mul(1u64 << exponent).min(max_secs);
    Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
}

/// Writes the outcomes of a round, for the rows this claim still holds.
fn record(
    conn: &mut DbConnection,
    claim: &str,
    outcomes: &[(String, Result<(), SendError>)],
    attempts: &HashMap<String, i32>,
    now: DateTime<Utc>,
    (base, max): (u64, u64),
) -> Result<(), ApiError> {
    let stored_now = to_stored(now);
    let sent: Vec<&str> = outcomes
        .iter()
        .filter(|(_, o)| o.is_ok())
        .map(|(id, _)| id.as_str())
        .collect();
    for chunk in sent.chunks(1_000) {
        diesel::update(
            outbox::table
                .filter(outbox::id.eq_any(chunk))
                .filter(outbox::claimed_by.eq(claim)),
        )
        .set((
            outbox::status.eq("sent"),
            outbox::sent_at.eq(Some(stored_now)),
            outbox::attempts.eq(outbox::attempts + 1),
            outbox::last_error.eq(None::<String>),
            outbox::claimed_by.eq(None::<String>),
            outbox::claimed_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    }
    let mut failed = Vec::new();
    for (id, outcome) in outcomes {
        let Err(error) = outcome else { continue };
        let tried = attempts.get(id).copied().unwrap_or(0) + 1;
        let mine = outbox::table
            .filter(outbox::id.eq(id))
            .filter(outbox::claimed_by.eq(claim));
        let recorded = match error {
            SendError::Temporary(why) => diesel::update(mine)
                .set((
                    outbox::attempts.eq(tried),
                    outbox::next_attempt_at.eq(to_stored(now + backoff(tried, base, max))),
                    outbox::last_error.eq(Some(truncate(why))),
                    outbox::claimed_by.eq(None::<String>),
                    outbox::claimed_until.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?,
            SendError::Permanent(why) => diesel::update(mine)
                .set((
                    outbox::status.eq("failed"),
                    outbox::attempts.eq(tried),
                    outbox::last_error.eq(Some(truncate(why))),
                    outbox::claimed_by.eq(None::<String>),
                    outbox::claimed_until.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?,
        };
        if matches!(error, SendError::Permanent(_)) && recorded > 0 {
            failed.push(id.as_str());
        }
    }
    announce_failures(conn, &failed, now)
}

/// A `delivery.failed` webhook event for each invitation email that just
/// failed for good, in the transaction that records it. Not for reminders:
/// a reminder goes only to those who had not answered, and an event that
/// outlives the wave would keep exactly what closing erases from the outbox.
fn announce_failures(
    conn: &mut DbConnection,
    failed: &[&str],
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    if failed.is_empty() {
        return Ok(());
    }
    let rows: Vec<(String, String, String)> = outbox::table
        .filter(outbox::id.eq_any(failed))
        .filter(outbox::reminder.eq(0))
        .select((outbox::organisation_id, outbox::wave_id, outbox::person_id))
        .load(conn)?;
    // Per organisation (a batch rarely spans more than one), its endpoints
    // looked up once however many failed.
    let mut per_organisation: HashMap<String, Vec<crate::webhooks::DeliveryFailed>> =
        HashMap::new();
    for (organisation_id, wave_id, person_id) in rows {
        per_organisation
            .entry(organisation_id)
            .or_default()
            .push(crate::webhooks::DeliveryFailed { wave_id, person_id });
    }
    for (organisation_id, failures) in &per_organisation {
        crate::webhooks::emit_all(
            conn,
            organisation_id,
            crate::webhooks::EventType::DeliveryFailed,
            failures.iter().map(|f| (f.wave_id.as_str(), f)),
            now,
        )?;
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(claimed: usize, ahead: bool) -> Result<Batch, ApiError> {
        Ok(Batch {
            claim: "claim".into(),
            now: Utc::now(),
            waves: Vec::new(),
            ready: Vec::new(),
            outcomes: Vec::new(),
            attempts: HashMap::new(),
            recheck: HashSet::new(),
            claimed,
            last: (claimed > 0).then(|| (chrono::NaiveDateTime::MIN, format!("row {claimed}"))),
            ahead,
        })
    }

    #[test]
    fn a_run_of_claims_goes_on_after_full_batches_for_at_most_its_limit() {
        // A full batch from the front starts a run, after its last row.
        let run = continues(&batch(500, false), 500, None).expect("a run starts");
        assert_eq!(run.after.1, "row 500");
        // A full batch claimed after the key goes on with the same run.
        let next = continues(&batch(500, true), 500, Some(&run)).expect("it goes on");
        assert_eq!(next.since, run.since);
        // Less than a full batch, or a failed claim, ends it.
        assert!(continues(&batch(499, true), 500, Some(&run)).is_none());
        assert!(continues(&Err(ApiError::Unavailable), 500, Some(&run)).is_none());
        // So does its age: the next claim starts at the front again.
        let old = Chain {
            since: std::time::Instant::now() - CHAIN_LIMIT,
            ..run.clone()
        };
        assert!(continues(&batch(500, true), 500, Some(&old)).is_none());
        // A full batch from the front starts a new run, however old the last.
        let fresh = continues(&batch(500, false), 500, Some(&old)).expect("a new run");
        assert!(fresh.since > old.since);
    }

    #[test]
    fn back_off_doubles_up_to_the_cap() {
        assert_eq!(backoff(1, 30, 3600), Duration::seconds(30));
        assert_eq!(backoff(2, 30, 3600), Duration::seconds(60));
        assert_eq!(backoff(5, 30, 3600), Duration::seconds(480));
        assert_eq!(backoff(9, 30, 3600), Duration::seconds(3600));
        assert_eq!(backoff(1_000, 30, 3600), Duration::seconds(3600));
    }
}
