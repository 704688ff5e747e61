//! Webhooks: events pushed to the endpoints an organisation registers
//! (`/api/v1/webhooks`, admin only), signed by the Standard Webhooks
//! convention so receivers can check they come from Peil.
//!
//! Durable and at least once. An event is queued by [`emit`] inside the
//! transaction that makes it happen — a wave opening or closing, results
//! published, an email failing for good — one delivery per endpoint that
//! takes that event type, so an event exists exactly when its cause was
//! committed. The worker ([`sender`]) claims due deliveries with a lease
//! (several replicas never post the same one at once), posts them, and
//! retries failures with exponential back-off. Every attempt and every
//! redelivery carries the same `webhook-id`, so receivers drop duplicates;
//! the body is stored and sent byte for byte the same each time, and only
//! `webhook-timestamp` and the signature over it change.
//!
//! An endpoint that keeps failing is probed with one delivery at a time,
//! backing off between probes; after `webhooks.disable_after_failures`
//! failures in a row it is disabled. Its deliveries (and events that come
//! while it is disabled) wait, and go out once an admin enables it again.
//!
//! Endpoints may not point into the network Peil runs in: see [`address`].

pub mod address;
pub mod http;
pub mod sender;
pub mod store;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use crate::db::DbConnection;

/// The kinds of event an endpoint can take.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
pub enum EventType {
    /// A wave opened and its invitations were queued.
    #[serde(rename = "wave.opened")]
    WaveOpened,
    /// A wave closed: it takes no more answers.
    #[serde(rename = "wave.closed")]
    WaveClosed,
    /// A wave's results were published (at its close, or again when its
    /// pulse's k was raised).
    #[serde(rename = "results.published")]
    ResultsPublished,
    /// A person's invitation email failed permanently (see `…/undeliverable`).
    #[serde(rename = "delivery.failed")]
    DeliveryFailed,
}

impl EventType {
    pub const ALL: [Self; 4] = [
        Self::WaveOpened,
        Self::WaveClosed,
        Self::ResultsPublished,
        Self::DeliveryFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WaveOpened => "wave.opened",
            Self::WaveClosed => "wave.closed",
            Self::ResultsPublished => "results.published",
            Self::DeliveryFailed => "delivery.failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// `data` of `wave.opened`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaveOpened {
    pub wave_id: String,
    pub pulse_id: String,
    pub number: Option<i32>,
    pub opened_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    /// People invited.
    pub invited: i32,
}

/// `data` of `wave.closed`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaveClosed {
    pub wave_id: String,
    pub pulse_id: String,
    pub closed_at: DateTime<Utc>,
    pub invited: i32,
    /// What the wave's emails came to.
    pub delivery: crate::delivery::outbox::Delivery,
}

/// `data` of `results.published`: where to read them, not the figures
/// themselves, so a receiver reads them with the access its key has.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultsPublished {
    pub wave_id: String,
    pub pulse_id: String,
    /// The publication's sequence number, as in the results feed.
    pub publication: i32,
    /// The minimum group size k the results were published with.
    pub min_group_size: i32,
    pub published_at: DateTime<Utc>,
    /// The wave's results (organisation level), relative to the API's address.
    pub results: String,
    /// The wave's teams × questions heatmap, likewise.
    pub heatmap: String,
}

/// `data` of `delivery.failed`: a person's invitation could not be
/// delivered; `GET /api/v1/waves/{wave_id}/undeliverable` says what the
/// mail server said. Reminders are left out (who is reminded is who has not
/// answered), and when the wave closes its `delivery.failed` events are
/// deleted, delivered or not: afterwards they would say who could not have
/// answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryFailed {
    pub wave_id: String,
    pub person_id: String,
}

/// The body every delivery posts (Standard Webhooks' recommended shape).
#[derive(Debug, Serialize)]
struct Envelope<'a, T> {
    #[serde(rename = "type")]
    event: &'static str,
    timestamp: DateTime<Utc>,
    data: &'a T,
}

/// Queues `data` as an event of `kind` about `wave_id` for every endpoint
/// of the organisation that takes it (enabled or not: a disabled endpoint
/// gets it once enabled again). Part of the caller's transaction; without
/// such an endpoint it writes nothing.
pub fn emit<T: Serialize>(
    conn: &mut DbConnection,
    organisation_id: &str,
    wave_id: &str,
    kind: EventType,
    data: &T,
    now: DateTime<Utc>,
) -> Result<usize, crate::error::ApiError> {
    emit_all(conn, organisation_id, kind, [(wave_id, data)], now)
}

/// [`emit`] for several events of one kind, each about its wave: the
/// organisation's endpoints are looked up once.
pub fn emit_all<'a, T: Serialize + 'a>(
    conn: &mut DbConnection,
    organisation_id: &str,
    kind: EventType,
    events: impl IntoIterator<Item = (&'a str, &'a T)>,
    now: DateTime<Utc>,
) -> Result<usize, crate::error::ApiError> {
    let endpoints = store::subscribed(conn, organisation_id, kind)?;
    if endpoints.is_empty() {
        return Ok(0);
    }
    let mut queued = 0;
    for (wave_id, data) in events {
        let payload = serde_json::to_string(&Envelope {
            event: kind.as_str(),
            timestamp: now,
            data,
        })
        .map_err(|e| crate::error::ApiError::Unexpected(e.into()))?;
        let event_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        queued += store::queue(
            conn,
            organisation_id,
            wave_id,
            &endpoints,
            &event_id,
            kind,
            &payload,
            now,
        )?;
    }
    Ok(queued)
}

/// The prefix of a signing secret, as Standard Webhooks writes them.
pub const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The `webhook-signature` header for a message: `v1,` and the base64
/// HMAC-SHA256, under the secret's bytes, of `{id}.{timestamp}.{body}`.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip_by_name() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert_eq!(EventType::parse("wave.deleted"), None);
    }

    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        // The example in the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, id, 1614265330, body).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_ne!(
            signature(secret, id, 1614265331, body),
            signature(secret, id, 1614265330, body)
        );
        assert_eq!(signature("whsec_not base64!", id, 1, body), None);
    }

    #[test]
    fn new_secrets_are_random_and_usable() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(a.starts_with(SECRET_PREFIX));
        assert!(signature(&a, "msg_1", 1, "{}").is_some());
    }
}
