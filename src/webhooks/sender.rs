//! The webhook worker: claims due deliveries, posts them signed, and
//! records what each receiver answered.
//!
//! A round claims up to `webhooks.batch_size` due deliveries of enabled
//! endpoints whose back-off has passed, as a lease (like the email outbox:
//! a crashed worker's deliveries go again once the lease runs out, with the
//! same id and body). An endpoint that failed last time gets one delivery
//! per round — a probe — so a receiver that is down sees one request per
//! back-off, not the whole backlog. A 2xx within `webhooks.timeout_secs` is
//! a success; anything else (another status, a timeout, a refused
//! connection, an address the guard refuses) is a failure.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use futures_util::StreamExt;

use super::address;
use crate::clock::{SharedClock, to_stored};
use crate::config::WebhookSettings;
use crate::crypto::ServerKeys;
use crate::db::schema::{webhook_attempts, webhook_deliveries, webhooks};
use crate::db::{self, Db, DbConnection};
use crate::delivery::worker::backoff;
use crate::error::ApiError;

pub struct Sender {
    db: Db,
    keys: ServerKeys,
    settings: WebhookSettings,
    client: reqwest::Client,
    metrics: Arc<crate::metrics::Metrics>,
}

/// A claimed delivery with what it takes to post it.
#[derive(Queryable)]
struct Claimed {
    id: String,
    event_id: String,
    payload: String,
    webhook_id: String,
    url: String,
    secret: String,
}

/// What one attempt came to.
struct Outcome {
    delivery_id: String,
    webhook_id: String,
    /// The receiver's status, if it answered.
    status_code: Option<u16>,
    error: Option<String>,
    duration_ms: i32,
}

impl Outcome {
    fn succeeded(&self) -> bool {
        self.error.is_none() && self.status_code.is_some_and(|s| (200..300).contains(&s))
    }
}

impl Sender {
    pub fn new(db: Db, keys: ServerKeys, settings: WebhookSettings) -> anyhow::Result<Self> {
        let mut client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(settings.timeout_secs))
            .connect_timeout(std::time::Duration::from_secs(settings.timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would resolve and reach what
            // the resolver below refuses.
            .no_proxy()
            .user_agent(concat!("Peil-Webhooks/", env!("CARGO_PKG_VERSION")));
        if !settings.allow_private_addresses {
            client = client.dns_resolver(Arc::new(address::Resolver));
        }
        Ok(Self {
            db,
            keys,
            settings,
            client: client.build()?,
            metrics: Arc::default(),
        })
    }

    /// Counts its attempts in these metrics (`GET /metrics`).
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Delivers until `stop` says so: a round, then another at once if the
    /// round was full, else after `webhooks.poll_interval_ms`. A round in
    /// progress is finished and recorded before it returns.
    pub async fn run(&self, clock: &SharedClock, stop: &mut tokio::sync::watch::Receiver<bool>) {
        let idle = std::time::Duration::from_millis(self.settings.poll_interval_ms);
        loop {
            let full = match self.round(clock).await {
                Ok(claimed) => claimed >= self.settings.batch_size,
                Err(ApiError::Unavailable) => false,
                Err(error) => {
                    tracing::warn!(%error, "a webhook round failed; retrying");
                    false
                }
            };
            if *stop.borrow() {
                return;
            }
            if !full {
                tokio::select! {
                    _ = stop.changed() => return,
                    () = tokio::time::sleep(idle) => {}
                }
            }
        }
    }

    /// Claims, posts and records one batch; how many it claimed.
    pub async fn round(&self, clock: &SharedClock) -> Result<usize, ApiError> {
        let now = clock.now();
        let claim = uuid::Uuid::new_v4().to_string();
        let lease = Duration::seconds(i64::try_from(self.settings.lease_secs).unwrap_or(60));
        let batch = self.settings.batch_size;
        let claim_id = claim.clone();
        let claimed = self
            .db
            .run(move |conn| db::write(conn, |conn| claim_due(conn, &claim_id, now, lease, batch)))
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let count = claimed.len();
        let outcomes: Vec<Outcome> = futures_util::stream::iter(claimed)
            .map(|c| self.post(c, clock))
            .buffer_unordered(self.settings.concurrency)
            .collect()
            .await;
        let settings = self.settings.clone();
        let now = clock.now();
        let tried: Vec<bool> = outcomes.iter().map(Outcome::succeeded).collect();
        self.db
            .run(move |conn| {
                db::write(conn, |conn| record(conn, &claim, &outcomes, now, &settings))
            })
            .await?;
        for delivered in tried {
            self.metrics.webhook_attempt(delivered);
        }
        Ok(count)
    }

    /// Posts one delivery, signed at the moment it goes.
    async fn post(&self, c: Claimed, clock: &SharedClock) -> Outcome {
        let started = Instant::now();
        let mut outcome = Outcome {
            delivery_id: c.id.clone(),
            webhook_id: c.webhook_id.clone(),
            status_code: None,
            error: None,
            duration_ms: 0,
        };
        let result = self.try_post(&c, clock.now().timestamp()).await;
        outcome.duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        match result {
            Ok(status) => {
                outcome.status_code = Some(status);
                if !(200..300).contains(&status) {
                    outcome.error = Some(format!("the receiver answered {status}"));
                }
            }
            Err(error) => outcome.error = Some(error),
        }
        outcome
    }

    async fn try_post(&self, c: &Claimed, timestamp: i64) -> Result<u16, String> {
        // Checked again at every delivery: the settings may have changed
        // since the endpoint was registered.
        let url =
            address::check_url(&c.url, &self.settings).map_err(|why| format!("the URL {why}"))?;
        let secret = self
            .keys
            .open_webhook_secret(&c.webhook_id, &c.secret)
            .ok_or("the signing secret cannot be read with this server secret")?;
        let signature = super::signature(&secret, &c.event_id, timestamp, &c.payload)
            .ok_or("the signing secret is not valid")?;
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &c.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(c.payload.clone())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        Ok(response.status().as_u16())
    }
}

/// A transport error in words, with its causes (reqwest's own text is terse).
fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(500).collect()
}

/// Takes up to `batch` due deliveries for this claim: of enabled endpoints
/// past their back-off, at most one per endpoint that is failing. Part of
/// one write transaction.
fn claim_due(
    conn: &mut DbConnection,
    claim: &str,
    now: DateTime<Utc>,
    lease: Duration,
    batch: usize,
) -> Result<Vec<Claimed>, ApiError> {
    let now = to_stored(now);
    let free = webhook_deliveries::claimed_until
        .is_null()
        .or(webhook_deliveries::claimed_until.lt(now));
    let candidates: Vec<(String, String, i32)> = webhook_deliveries::table
        .inner_join(webhooks::table)
        .filter(webhook_deliveries::status.eq("pending"))
        .filter(webhook_deliveries::next_attempt_at.le(now))
        .filter(free)
        .filter(webhooks::enabled.eq(true))
        .filter(webhooks::retry_at.is_null().or(webhooks::retry_at.le(now)))
        .order((
            webhook_deliveries::next_attempt_at,
            webhook_deliveries::created_at,
            webhook_deliveries::id,
        ))
        .select((
            webhook_deliveries::id,
            webhook_deliveries::webhook_id,
            webhooks::consecutive_failures,
        ))
        .limit(i64::try_from(batch).unwrap_or(50).saturating_mul(4))
        .load(conn)?;
    let mut probed: HashSet<String> = HashSet::new();
    let mut due: Vec<String> = Vec::new();
    for (id, webhook_id, failures) in candidates {
        if failures > 0 {
            // A failing endpoint gets one probe, across replicas too: the
            // probe holds the endpoint's `retry_at` for the lease, and
            // recording its outcome sets the next back-off.
            if probed.contains(&webhook_id)
                || diesel::update(
                    webhooks::table
                        .find(&webhook_id)
                        .filter(webhooks::retry_at.is_null().or(webhooks::retry_at.le(now))),
                )
                .set(webhooks::retry_at.eq(Some(now + lease)))
                .execute(conn)?
                    == 0
            {
                continue;
            }
            probed.insert(webhook_id);
        }
        due.push(id);
        if due.len() == batch {
            break;
        }
    }
    if due.is_empty() {
        return Ok(Vec::new());
    }
    // The lease is checked again in the UPDATE: a row another worker took
    // since the SELECT stays theirs.
    diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq_any(&due))
            .filter(webhook_deliveries::status.eq("pending"))
            .filter(free),
    )
    .set((
        webhook_deliveries::claimed_by.eq(claim),
        webhook_deliveries::claimed_until.eq(now + lease),
    ))
    .execute(conn)?;
    Ok(webhook_deliveries::table
        .inner_join(webhooks::table)
        .filter(webhook_deliveries::id.eq_any(&due))
        .filter(webhook_deliveries::claimed_by.eq(claim))
        .select((
            webhook_deliveries::id,
            webhook_deliveries::event_id,
            webhook_deliveries::payload,
            webhooks::id,
            webhooks::url,
            webhooks::secret,
        ))
        .load(conn)?)
}

/// Writes a round's outcomes, for the deliveries this claim still holds:
/// the log, each delivery's state, and each endpoint's run of failures.
fn record(
    conn: &mut DbConnection,
    claim: &str,
    outcomes: &[Outcome],
    now: DateTime<Utc>,
    settings: &WebhookSettings,
) -> Result<(), ApiError> {
    let stored_now = to_stored(now);
    let retry = |attempts: i32| {
        to_stored(now + backoff(attempts, settings.retry_base_secs, settings.retry_max_secs))
    };
    // Per endpoint: whether anything got through this round.
    let mut endpoints: HashMap<&str, bool> = HashMap::new();
    for outcome in outcomes {
        let mine = webhook_deliveries::table
            .filter(webhook_deliveries::id.eq(&outcome.delivery_id))
            .filter(webhook_deliveries::claimed_by.eq(claim));
        let Some(attempts) = mine
            .select(webhook_deliveries::attempts)
            .first::<i32>(conn)
            .optional()?
        else {
            // The lease ran out and another worker took it; theirs to record.
            continue;
        };
        let attempts = attempts + 1;
        let number = webhook_attempts::table
            .filter(webhook_attempts::delivery_id.eq(&outcome.delivery_id))
            .select(diesel::dsl::max(webhook_attempts::number))
            .first::<Option<i32>>(conn)?
            .unwrap_or(0)
            + 1;
        diesel::insert_into(webhook_attempts::table)
            .values((
                webhook_attempts::delivery_id.eq(&outcome.delivery_id),
                webhook_attempts::number.eq(number),
                webhook_attempts::attempted_at.eq(stored_now),
                webhook_attempts::status_code.eq(outcome.status_code.map(i32::from)),
                webhook_attempts::error.eq(&outcome.error),
                webhook_attempts::duration_ms.eq(outcome.duration_ms),
            ))
            .execute(conn)?;
        let succeeded = outcome.succeeded();
        *endpoints.entry(outcome.webhook_id.as_str()).or_default() |= succeeded;
        let (status, delivered_at, next) = if succeeded {
            ("delivered", Some(stored_now), stored_now)
        } else if attempts >= settings.max_attempts {
            ("failed", None, stored_now)
        } else {
            ("pending", None, retry(attempts))
        };
        diesel::update(mine)
            .set((
                webhook_deliveries::status.eq(status),
                webhook_deliveries::attempts.eq(attempts),
                webhook_deliveries::delivered_at.eq(delivered_at),
                webhook_deliveries::next_attempt_at.eq(next),
                webhook_deliveries::claimed_by.eq(None::<String>),
                webhook_deliveries::claimed_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
    }
    for (webhook_id, succeeded) in endpoints {
        let endpoint = webhooks::table.find(webhook_id);
        if succeeded {
            let recovered = diesel::update(endpoint.filter(webhooks::consecutive_failures.gt(0)))
                .set((
                    webhooks::consecutive_failures.eq(0),
                    webhooks::retry_at.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?;
            if recovered > 0 {
                // Back: what waited without being tried goes now, not at
                // the endpoint's back-off; what failed keeps its own.
                diesel::update(
                    webhook_deliveries::table
                        .filter(webhook_deliveries::webhook_id.eq(webhook_id))
                        .filter(webhook_deliveries::status.eq("pending"))
                        .filter(webhook_deliveries::attempts.eq(0))
                        .filter(webhook_deliveries::next_attempt_at.gt(stored_now)),
                )
                .set(webhook_deliveries::next_attempt_at.eq(stored_now))
                .execute(conn)?;
            }
            continue;
        }
        // One more failure, counted in the row itself, so that replicas
        // recording at once both count.
        diesel::update(endpoint)
            .set(webhooks::consecutive_failures.eq(webhooks::consecutive_failures + 1))
            .execute(conn)?;
        let Some(failures) = endpoint
            .select(webhooks::consecutive_failures)
            .first::<i32>(conn)
            .optional()?
        else {
            continue; // Deleted meanwhile.
        };
        diesel::update(endpoint)
            .set(webhooks::retry_at.eq(Some(retry(failures))))
            .execute(conn)?;
        let disabled = diesel::update(
            endpoint
                .filter(webhooks::enabled.eq(true))
                .filter(webhooks::consecutive_failures.ge(settings.disable_after_failures)),
        )
        .set((
            webhooks::enabled.eq(false),
            webhooks::disabled_reason.eq(Some(format!("failed {failures} times in a row"))),
        ))
        .execute(conn)?;
        if disabled > 0 {
            tracing::warn!(
                webhook_id,
                failures,
                "webhook endpoint disabled after failing"
            );
        }
    }
    Ok(())
}
