//! `Idempotency-Key`: a creating request sent twice with the same key (a
//! double click, a client's retry after a timeout) is carried out once; the
//! second gets the first one's response. Keys are per organisation and kept
//! for 24 hours. The response is stored in the same transaction as the work,
//! so after a crash either both exist or neither.

use actix_web::HttpRequest;
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::db::DbConnection;
use crate::db::schema::idempotency_keys;
use crate::error::ApiError;

pub const HEADER: &str = "Idempotency-Key";
pub const KEEP_HOURS: i64 = 24;

/// The key a request carries, if any; 1–255 visible ASCII characters.
pub fn key_of(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default().trim();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::Malformed(
            "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
        ));
    }
    Ok(Some(key.to_owned()))
}

/// A digest of what the request asks, to tell a retry from a different request.
pub fn request_hash(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    crate::crypto::hex(&hasher.finalize())
}

/// A stored response.
pub struct Replay {
    pub status: u16,
    pub body: String,
}

/// The stored response for this key, or `None`. A key reused for a different
/// request is refused.
pub fn replay(
    conn: &mut DbConnection,
    organisation_id: &str,
    key: &str,
    hash: &str,
) -> Result<Option<Replay>, ApiError> {
    let since = crate::db::now() - chrono::Duration::hours(KEEP_HOURS);
    let found: Option<(String, i32, String)> = idempotency_keys::table
        .filter(idempotency_keys::organisation_id.eq(organisation_id))
        .filter(idempotency_keys::idempotency_key.eq(key))
        .filter(idempotency_keys::created_at.gt(since))
        .select((
            idempotency_keys::request_hash,
            idempotency_keys::status,
            idempotency_keys::body,
        ))
        .first(conn)
        .optional()?;
    match found {
        None => Ok(None),
        Some((stored, _, _)) if stored != hash => Err(ApiError::Conflict(
            "This Idempotency-Key was used for a different request.".into(),
        )),
        Some((_, status, body)) => Ok(Some(Replay {
            status: u16::try_from(status).unwrap_or(200),
            body,
        })),
    }
}

/// Stores the response to replay; part of the caller's transaction.
pub fn remember(
    conn: &mut DbConnection,
    organisation_id: &str,
    key: &str,
    hash: &str,
    status: u16,
    body: &str,
) -> QueryResult<()> {
    // An expired entry for the same key makes room for the new one.
    let since = crate::db::now() - chrono::Duration::hours(KEEP_HOURS);
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::organisation_id.eq(organisation_id))
            .filter(idempotency_keys::idempotency_key.eq(key))
            .filter(idempotency_keys::created_at.le(since)),
    )
    .execute(conn)?;
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::organisation_id.eq(organisation_id),
            idempotency_keys::idempotency_key.eq(key),
            idempotency_keys::request_hash.eq(hash),
            idempotency_keys::status.eq(i32::from(status)),
            idempotency_keys::body.eq(body),
            idempotency_keys::created_at.eq(crate::db::now()),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Forgets keys older than the replay window.
pub fn sweep(conn: &mut DbConnection) -> QueryResult<usize> {
    let before = crate::db::now() - chrono::Duration::hours(KEEP_HOURS);
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.le(before)))
        .execute(conn)
}
