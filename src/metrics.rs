//! `GET /metrics`: what Peil is doing, in the Prometheus (OpenMetrics)
//! text format. Counters and histograms are this instance's since it
//! started (requests and their latencies by route and status, emails and
//! webhook attempts by outcome, waves opened and closed here); gauges are
//! read from the database at each scrape, so they hold for every replica
//! (the outbox's and the webhook queue's depth and oldest age, waves by
//! state), with the connection pool's use.
//!
//! Where it is served is configuration (`metrics`): on its own address, or
//! on the main one with a bearer token, or — the default — on the main one
//! to loopback clients only, and only to requests that no proxy forwarded. Labels carry route patterns, never paths: an
//! answer link's token must not reach a scraper any more than a log.

use std::sync::atomic::AtomicU64;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use diesel::prelude::*;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::config::MetricsSettings;
use crate::db::schema::{outbox, waves, webhook_deliveries};
use crate::db::{Db, DbError};
use crate::error::ApiError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

type Latencies = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// This instance's metrics; handles are cheap clones of shared counters.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latencies: Latencies,
    emails: Family<OutcomeLabels, Counter>,
    webhook_attempts: Family<OutcomeLabels, Counter>,
    waves_opened: Counter,
    waves_closed: Counter,
    // Read at scrape time.
    database_up: Gauge,
    outbox_depth: Gauge,
    outbox_oldest: Gauge<f64, AtomicU64>,
    webhook_depth: Gauge,
    webhook_oldest: Gauge<f64, AtomicU64>,
    waves: Family<StateLabels, Gauge>,
    pool_connections: Gauge,
    pool_idle: Gauge,
    pool_max: Gauge,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("peil");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests completed, by method, route pattern and status",
            requests.clone(),
        );
        let latencies: Latencies = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route pattern",
            latencies.clone(),
        );
        let emails = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "emails",
            "Emails sent by this instance's outbox worker, by outcome (sent, retrying: failed for now, failed: for good)",
            emails.clone(),
        );
        let webhook_attempts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts by this instance, by outcome (delivered, failed)",
            webhook_attempts.clone(),
        );
        let waves_opened = Counter::default();
        registry.register(
            "waves_opened",
            "Waves this instance opened (on schedule or by hand)",
            waves_opened.clone(),
        );
        let waves_closed = Counter::default();
        registry.register(
            "waves_closed",
            "Waves this instance closed (on schedule or by hand)",
            waves_closed.clone(),
        );
        let database_up = Gauge::default();
        registry.register(
            "database_up",
            "1 when the database answered this scrape's queries, else 0",
            database_up.clone(),
        );
        let outbox_depth = Gauge::default();
        registry.register(
            "outbox_depth",
            "Emails waiting in the outbox (first attempt or retry), all instances",
            outbox_depth.clone(),
        );
        let outbox_oldest = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "outbox_oldest_age_seconds",
            "Age of the oldest email waiting in the outbox (0 when empty)",
            outbox_oldest.clone(),
        );
        let webhook_depth = Gauge::default();
        registry.register(
            "webhook_queue_depth",
            "Webhook deliveries waiting to be posted, all instances",
            webhook_depth.clone(),
        );
        let webhook_oldest = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "webhook_queue_oldest_age_seconds",
            "Age of the oldest webhook delivery waiting (0 when none)",
            webhook_oldest.clone(),
        );
        let waves = Family::<StateLabels, Gauge>::default();
        registry.register(
            "waves",
            "Waves by state (scheduled, open, closed, skipped), all instances",
            waves.clone(),
        );
        let pool_connections = Gauge::default();
        registry.register(
            "db_pool_connections",
            "Database connections open in this instance's pool",
            pool_connections.clone(),
        );
        let pool_idle = Gauge::default();
        registry.register(
            "db_pool_idle_connections",
            "Open database connections not in use",
            pool_idle.clone(),
        );
        let pool_max = Gauge::default();
        registry.register(
            "db_pool_max_connections",
            "The pool's limit (database.pool_size)",
            pool_max.clone(),
        );
        Self {
            registry,
            requests,
            latencies,
            emails,
            webhook_attempts,
            waves_opened,
            waves_closed,
            database_up,
            outbox_depth,
            outbox_oldest,
            webhook_depth,
            webhook_oldest,
            waves,
            pool_connections,
            pool_idle,
            pool_max,
        }
    }

    /// A completed request: its route pattern, never its path.
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status: status.to_string(),
            })
            .inc();
        self.latencies
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Emails of a recorded batch, by outcome.
    pub fn emails(&self, sent: u64, retrying: u64, failed: u64) {
        for (outcome, n) in [("sent", sent), ("retrying", retrying), ("failed", failed)] {
            if n > 0 {
                self.emails
                    .get_or_create(&OutcomeLabels { outcome })
                    .inc_by(n);
            }
        }
    }

    pub fn webhook_attempt(&self, delivered: bool) {
        let outcome = if delivered { "delivered" } else { "failed" };
        self.webhook_attempts
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn waves(&self, opened: u64, closed: u64) {
        self.waves_opened.inc_by(opened);
        self.waves_closed.inc_by(closed);
    }

    /// Reads the gauges and writes everything in the text format.
    pub async fn scrape(&self, db: &Db) -> String {
        let (connections, idle, max) = db.pool_state();
        self.pool_connections.set(i64::from(connections));
        self.pool_idle.set(i64::from(idle));
        self.pool_max.set(i64::from(max));
        match db.run(read_queues).await {
            Ok(queues) => {
                self.database_up.set(1);
                let now = Utc::now().naive_utc();
                let age = |oldest: Option<chrono::NaiveDateTime>| {
                    oldest.map_or(0.0, |t| {
                        ((now - t).num_milliseconds().max(0) as f64) / 1000.0
                    })
                };
                self.outbox_depth.set(queues.outbox.0);
                self.outbox_oldest.set(age(queues.outbox.1));
                self.webhook_depth.set(queues.webhooks.0);
                self.webhook_oldest.set(age(queues.webhooks.1));
                for (state, n) in queues.waves {
                    self.waves.get_or_create(&StateLabels { state }).set(n);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "metrics: the database did not answer");
                self.database_up.set(0);
            }
        }
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!(%error, "metrics: encoding failed");
        }
        text
    }
}

struct Queues {
    outbox: (i64, Option<chrono::NaiveDateTime>),
    webhooks: (i64, Option<chrono::NaiveDateTime>),
    waves: Vec<(String, i64)>,
}

fn read_queues(conn: &mut crate::db::DbConnection) -> Result<Queues, DbError> {
    let outbox = outbox::table
        .filter(crate::delivery::outbox::queued())
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::min(outbox::created_at),
        ))
        .first(conn)?;
    let webhooks = webhook_deliveries::table
        .filter(webhook_deliveries::status.eq("pending"))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::min(webhook_deliveries::created_at),
        ))
        .first(conn)?;
    let waves = waves::table
        .group_by(waves::status)
        .select((waves::status, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(Queues {
        outbox,
        webhooks,
        waves,
    })
}

/// `GET /metrics` on the main address: with `metrics.token` set, for
/// whoever sends it; without, for loopback clients only (behind a trusted
/// proxy, the client it forwarded, so a proxy on the same host does not
/// open it to the world).
pub async fn main_endpoint(
    req: HttpRequest,
    db: web::Data<Db>,
    metrics: web::Data<Metrics>,
    settings: web::Data<crate::config::Settings>,
) -> Result<HttpResponse, ApiError> {
    // A proxy on the same host is a loopback peer: a request that came
    // through one (it says so in a forwarding header) is not local.
    let forwarded = ["x-forwarded-for", "forwarded", "x-real-ip"]
        .iter()
        .any(|h| req.headers().contains_key(*h));
    let allowed = match &settings.metrics.token {
        Some(_) => authorised(&req, &settings.metrics)?,
        None => {
            !forwarded && crate::http::rate_limit::client_of(&req).is_some_and(|c| c.is_loopback())
        }
    };
    if !allowed {
        return Err(ApiError::Forbidden(
            "Metrics are served to loopback clients only: set metrics.token, or metrics.listen for an address of their own.",
        ));
    }
    Ok(text(metrics.scrape(&db).await))
}

/// `GET /metrics` on its own address (`metrics.listen`): the address is
/// the protection, with the token on top when set.
pub async fn own_endpoint(
    req: HttpRequest,
    db: web::Data<Db>,
    metrics: web::Data<Metrics>,
    settings: web::Data<MetricsSettings>,
) -> Result<HttpResponse, ApiError> {
    if settings.token.is_some() && !authorised(&req, &settings)? {
        return Err(ApiError::Forbidden("That is not the metrics token."));
    }
    Ok(text(metrics.scrape(&db).await))
}

/// Whether the request carries the metrics token; 401 when it carries none.
fn authorised(req: &HttpRequest, settings: &MetricsSettings) -> Result<bool, ApiError> {
    let Some(expected) = &settings.token else {
        return Ok(true);
    };
    use sha2::{Digest, Sha256};
    let sent = crate::auth::session::bearer_token(req)?;
    // Digests compared, so the comparison's time says nothing of the token.
    Ok(Sha256::digest(sent.as_bytes()) == Sha256::digest(expected.as_bytes()))
}

fn text(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(body)
}
