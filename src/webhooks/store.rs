//! Webhook endpoints, their deliveries and the delivery log in the database.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::EventType;
use crate::clock::to_stored;
use crate::db::DbConnection;
use crate::db::schema::{webhook_attempts, webhook_deliveries, webhooks};

#[derive(Debug, Clone, Queryable)]
pub struct WebhookRow {
    pub id: String,
    pub organisation_id: String,
    pub url: String,
    pub description: String,
    pub events: String,
    /// Sealed: see [`crate::crypto::ServerKeys::seal_webhook_secret`].
    pub secret: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i32,
    pub retry_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl WebhookRow {
    pub fn events(&self) -> Vec<EventType> {
        self.events
            .split(' ')
            .filter_map(EventType::parse)
            .collect()
    }
}

pub fn events_text(events: &[EventType]) -> String {
    let mut names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names.join(" ")
}

pub struct NewWebhook<'a> {
    pub id: &'a str,
    pub organisation_id: &'a str,
    pub url: &'a str,
    pub description: &'a str,
    pub events: &'a [EventType],
    pub sealed_secret: &'a str,
}

pub fn insert(
    conn: &mut DbConnection,
    new: &NewWebhook<'_>,
    now: NaiveDateTime,
) -> QueryResult<WebhookRow> {
    diesel::insert_into(webhooks::table)
        .values((
            webhooks::id.eq(new.id),
            webhooks::organisation_id.eq(new.organisation_id),
            webhooks::url.eq(new.url),
            webhooks::description.eq(new.description),
            webhooks::events.eq(events_text(new.events)),
            webhooks::secret.eq(new.sealed_secret),
            webhooks::enabled.eq(true),
            webhooks::consecutive_failures.eq(0),
            webhooks::created_at.eq(now),
            webhooks::updated_at.eq(now),
        ))
        .execute(conn)?;
    webhooks::table.find(new.id).first(conn)
}

pub fn list(conn: &mut DbConnection, organisation_id: &str) -> QueryResult<Vec<WebhookRow>> {
    webhooks::table
        .filter(webhooks::organisation_id.eq(organisation_id))
        .order((webhooks::created_at, webhooks::id))
        .load(conn)
}

pub fn find_in(
    conn: &mut DbConnection,
    organisation_id: &str,
    id: &str,
) -> QueryResult<WebhookRow> {
    webhooks::table
        .filter(webhooks::organisation_id.eq(organisation_id))
        .filter(webhooks::id.eq(id))
        .first(conn)
}

/// What a PATCH changes; `None` leaves a field as it is.
#[derive(Default)]
pub struct Changes {
    pub url: Option<String>,
    pub description: Option<String>,
    pub events: Option<Vec<EventType>>,
    pub enabled: Option<bool>,
}

pub fn update(
    conn: &mut DbConnection,
    id: &str,
    changes: &Changes,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let target = webhooks::table.find(id);
    if let Some(url) = &changes.url {
        diesel::update(target)
            .set(webhooks::url.eq(url))
            .execute(conn)?;
    }
    if let Some(description) = &changes.description {
        diesel::update(target)
            .set(webhooks::description.eq(description))
            .execute(conn)?;
    }
    if let Some(events) = &changes.events {
        diesel::update(target)
            .set(webhooks::events.eq(events_text(events)))
            .execute(conn)?;
    }
    match changes.enabled {
        // Enabled (again): a clean slate, and what waited goes at once.
        Some(true) => {
            let enabled = diesel::update(target.filter(webhooks::enabled.eq(false)))
                .set((
                    webhooks::enabled.eq(true),
                    webhooks::disabled_reason.eq(None::<String>),
                    webhooks::consecutive_failures.eq(0),
                    webhooks::retry_at.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?;
            if enabled > 0 {
                diesel::update(
                    webhook_deliveries::table
                        .filter(webhook_deliveries::webhook_id.eq(id))
                        .filter(webhook_deliveries::status.eq("pending"))
                        .filter(webhook_deliveries::next_attempt_at.gt(now)),
                )
                .set(webhook_deliveries::next_attempt_at.eq(now))
                .execute(conn)?;
            }
            enabled
        }
        Some(false) => diesel::update(target.filter(webhooks::enabled.eq(true)))
            .set((
                webhooks::enabled.eq(false),
                webhooks::disabled_reason.eq(Some("disabled by an admin")),
            ))
            .execute(conn)?,
        None => 0,
    };
    diesel::update(target)
        .set(webhooks::updated_at.eq(now))
        .execute(conn)?;
    Ok(())
}

pub fn set_secret(
    conn: &mut DbConnection,
    id: &str,
    sealed_secret: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(webhooks::table.find(id))
        .set((
            webhooks::secret.eq(sealed_secret),
            webhooks::updated_at.eq(now),
        ))
        .execute(conn)
}

/// An endpoint with its deliveries (their attempts go with them).
pub fn delete(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::webhook_id.eq(id)))
        .execute(conn)?;
    diesel::delete(webhooks::table.find(id)).execute(conn)
}

/// An erased person's `delivery.failed` events, sent or not, with their
/// attempts (DESIGN.md, invariant 7). Their bodies are the serialised
/// [`super::DeliveryFailed`], which names the person by id.
pub fn forget_failures_of_person(conn: &mut DbConnection, person_id: &str) -> QueryResult<usize> {
    diesel::delete(
        webhook_deliveries::table
            .filter(webhook_deliveries::event.eq(EventType::DeliveryFailed.as_str()))
            .filter(webhook_deliveries::payload.like(format!("%\"person_id\":\"{person_id}\"%"))),
    )
    .execute(conn)
}

/// A closing wave's `delivery.failed` events, sent or not: after the close
/// they would say whose invitation never arrived, that is, who could not
/// have answered (DESIGN.md, invariants 1 and 5). Part of the close.
pub fn forget_failures_of_wave(conn: &mut DbConnection, wave_id: &str) -> QueryResult<usize> {
    diesel::delete(
        webhook_deliveries::table
            .filter(webhook_deliveries::wave_id.eq(wave_id))
            .filter(webhook_deliveries::event.eq(EventType::DeliveryFailed.as_str())),
    )
    .execute(conn)
}

/// The organisation's endpoints that take `kind`.
pub fn subscribed(
    conn: &mut DbConnection,
    organisation_id: &str,
    kind: EventType,
) -> QueryResult<Vec<String>> {
    let endpoints: Vec<(String, String)> = webhooks::table
        .filter(webhooks::organisation_id.eq(organisation_id))
        .select((webhooks::id, webhooks::events))
        .load(conn)?;
    Ok(endpoints
        .into_iter()
        .filter(|(_, events)| events.split(' ').any(|e| e == kind.as_str()))
        .map(|(id, _)| id)
        .collect())
}

/// One delivery of `payload` per endpoint, due now.
#[allow(clippy::too_many_arguments)]
pub fn queue(
    conn: &mut DbConnection,
    organisation_id: &str,
    wave_id: &str,
    endpoints: &[String],
    event_id: &str,
    kind: EventType,
    payload: &str,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let now = to_stored(now);
    let rows: Vec<_> = endpoints
        .iter()
        .map(|webhook_id| {
            (
                webhook_deliveries::id.eq(uuid::Uuid::new_v4().to_string()),
                webhook_deliveries::event_id.eq(event_id),
                webhook_deliveries::webhook_id.eq(webhook_id),
                webhook_deliveries::organisation_id.eq(organisation_id),
                webhook_deliveries::wave_id.eq(wave_id),
                webhook_deliveries::event.eq(kind.as_str()),
                webhook_deliveries::payload.eq(payload),
                webhook_deliveries::status.eq("pending"),
                webhook_deliveries::attempts.eq(0),
                webhook_deliveries::next_attempt_at.eq(now),
                webhook_deliveries::created_at.eq(now),
            )
        })
        .collect();
    crate::batch_insert!(conn, webhook_deliveries::table, rows)
}

#[derive(Debug, Clone, Queryable)]
pub struct DeliveryRow {
    pub id: String,
    pub event_id: String,
    pub webhook_id: String,
    pub organisation_id: String,
    pub wave_id: String,
    pub event: String,
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable)]
pub struct AttemptRow {
    pub delivery_id: String,
    pub number: i32,
    pub attempted_at: NaiveDateTime,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
}

/// An endpoint's deliveries, newest first, after the `before` cursor (a
/// delivery id), each with its attempts.
pub fn deliveries(
    conn: &mut DbConnection,
    webhook_id: &str,
    status: Option<&str>,
    before: Option<&DeliveryRow>,
    limit: i64,
) -> QueryResult<Vec<(DeliveryRow, Vec<AttemptRow>)>> {
    let mut query = webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(webhook_id))
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(webhook_deliveries::status.eq(status.to_owned()));
    }
    if let Some(before) = before {
        query = query.filter(
            webhook_deliveries::created_at
                .lt(before.created_at)
                .or(webhook_deliveries::created_at
                    .eq(before.created_at)
                    .and(webhook_deliveries::id.lt(before.id.clone()))),
        );
    }
    let rows: Vec<DeliveryRow> = query
        .order((
            webhook_deliveries::created_at.desc(),
            webhook_deliveries::id.desc(),
        ))
        .limit(limit)
        .load(conn)?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut attempts = attempts_of(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut attempts)
                .into_iter()
                .partition(|a| a.delivery_id == row.id);
            attempts = rest;
            (row, mine)
        })
        .collect())
}

/// The delivery log of these deliveries, by delivery and then in order.
pub fn attempts_of(conn: &mut DbConnection, ids: &[&str]) -> QueryResult<Vec<AttemptRow>> {
    webhook_attempts::table
        .filter(webhook_attempts::delivery_id.eq_any(ids))
        .order((webhook_attempts::delivery_id, webhook_attempts::number))
        .load(conn)
}

pub fn find_delivery(
    conn: &mut DbConnection,
    webhook_id: &str,
    id: &str,
) -> QueryResult<DeliveryRow> {
    webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(webhook_id))
        .filter(webhook_deliveries::id.eq(id))
        .first(conn)
}

/// Queues a delivery again, due now, with a fresh allowance of attempts:
/// the same event id and body, so receivers that have it drop the copy.
pub fn redeliver(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(webhook_deliveries::table.find(id))
        .set((
            webhook_deliveries::status.eq("pending"),
            webhook_deliveries::attempts.eq(0),
            webhook_deliveries::next_attempt_at.eq(now),
            webhook_deliveries::delivered_at.eq(None::<NaiveDateTime>),
            webhook_deliveries::claimed_by.eq(None::<String>),
            webhook_deliveries::claimed_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
}
