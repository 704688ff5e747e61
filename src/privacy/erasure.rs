//! `POST /api/v1/people/{id}/erase`: a person's right to erasure (GDPR
//! art. 17), kept as DESIGN.md's invariant 7 says.
//!
//! In one transaction: the person's email address, name, job title and
//! external id are replaced by an anonymous placeholder, and the job titles
//! in their history by stand-ins ("Title 1", "Title 2", … in the order they
//! held them, so that a change of title still counts as one); their
//! invitations (the link tokens derive from them) and any email left of
//! them are deleted, and so are webhook events that name them; the audit
//! log records it. After it commits, SQLite's write-ahead log is
//! checkpointed and the mail folder's copies of their emails are deleted
//! (the next retention pass deletes any a crash left). What stays: their
//! dated history, on the placeholder, so mobility's counts hold; and every
//! anonymous response and published result, which never named them.
//!
//! Only someone who has left, and is in no wave that is still open, can be
//! erased: an active placeholder would be invited again, and taking an
//! invitation out of an open wave would move its participation count and
//! so say whether they had answered (DESIGN.md, invariants 1 and 5).
//! Erasing twice changes nothing.

use std::collections::HashSet;

use actix_web::{post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::caller::{Caller, Permission};
use crate::clock::{SharedClock, to_stored};
use crate::config::{MailTransport, Settings};
use crate::db::schema::{invitations, outbox, people};
use crate::db::{self, Db, DbConnection};
use crate::domain::PersonStatus;
use crate::error::{ApiError, Missing, Problem, Refused};
use crate::org::people::store as people_store;

/// What the placeholder is called in lists.
pub const PLACEHOLDER_NAME: &str = "Erased person";

/// The placeholder's address: unique per person, and in `.invalid`, which
/// no mail ever reaches (RFC 2606).
pub fn placeholder_email(person_id: &str) -> String {
    format!("erased-{person_id}@erased.invalid")
}

/// What an erasure removed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Erasure {
    pub person_id: String,
    pub erased_at: DateTime<Utc>,
    /// Invitations deleted, with the link tokens derived from them.
    pub invitations: usize,
    /// Copies deleted from the mail folder (`.eml` files).
    pub files: usize,
    /// Job titles in their history replaced by stand-ins.
    pub titles: usize,
    /// Webhook `delivery.failed` events that named the person.
    pub webhook_events: usize,
}

/// Erase a person who has left: their personal data, invitations and
/// emails go; their history stays on an anonymous placeholder, and
/// responses and results are unchanged. Admin and hr accounts only.
#[utoipa::path(
    tag = "people",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The person's id")),
    responses(
        (status = 200, description = "Erased (or already was: nothing more to remove)", body = Erasure),
        Refused,
        Missing,
        (status = 409, description = "The person is still active (record that they left first), or in a wave that is still open", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/people/{id}/erase")]
pub async fn erase_person(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    settings: web::Data<Settings>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<Erasure>, ApiError> {
    caller.require(Permission::WritePeople)?;
    if caller.account_id().is_none() {
        return Err(ApiError::Forbidden(
            "Erasure needs an admin or hr account; API keys cannot erase.",
        ));
    }
    let organisation_id = caller.organisation_id().to_owned();
    let now = to_stored(clock.now());
    let audit = caller.audit("person.erased").on("person", &id);
    let (mut erasure, invitation_ids) = db
        .run(move |conn| {
            db::write(conn, |conn| {
                let person = people_store::find_in(conn, &organisation_id, &id)?;
                if let Some(erased_at) = person.erased_at {
                    return Ok((nothing_left(person.id, erased_at.and_utc()), HashSet::new()));
                }
                if person.status != PersonStatus::Left.as_str() {
                    return Err(ApiError::Conflict(format!(
                        "This person is active and would be invited again: record that they left (DELETE /api/v1/people/{}), then erase.",
                        person.id
                    )));
                }
                if let Some(closes_at) = open_wave_of(conn, &person.id)? {
                    return Err(ApiError::Conflict(format!(
                        "This person is invited to a wave that is still open: erase them once it has closed (it closes at {}).",
                        closes_at.and_utc().to_rfc3339()
                    )));
                }
                // Of two erasures at once, one finds the placeholder made.
                let Some((erasure, ids)) = erase(conn, &person.id, now)? else {
                    let erased_at = people_store::find_in(conn, &organisation_id, &id)?
                        .erased_at
                        .unwrap_or(now);
                    return Ok((nothing_left(person.id, erased_at.and_utc()), HashSet::new()));
                };
                audit
                    .with(serde_json::json!({
                        "invitations": erasure.invitations,
                        "titles": erasure.titles,
                        "webhook_events": erasure.webhook_events,
                    }))
                    .record(conn)?;
                Ok::<_, ApiError>((erasure, ids))
            })
            // What the placeholder replaced is gone from SQLite's files too.
            .inspect(|_| db::checkpoint(conn))
        })
        .await?;
    if let MailTransport::Folder(dir) = &settings.mail.transport
        && !invitation_ids.is_empty()
    {
        erasure.files = super::retention::delete_files(dir.clone(), invitation_ids).await;
    }
    Ok(web::Json(erasure))
}

fn nothing_left(person_id: String, erased_at: DateTime<Utc>) -> Erasure {
    Erasure {
        person_id,
        erased_at,
        invitations: 0,
        files: 0,
        titles: 0,
        webhook_events: 0,
    }
}

/// When the open (not yet closed) wave the person is invited to closes.
fn open_wave_of(
    conn: &mut DbConnection,
    person_id: &str,
) -> diesel::QueryResult<Option<chrono::NaiveDateTime>> {
    use crate::db::schema::waves;
    invitations::table
        .inner_join(waves::table)
        .filter(invitations::person_id.eq(person_id))
        .filter(waves::closed_at.is_null())
        .select(waves::closes_at)
        .first::<Option<chrono::NaiveDateTime>>(conn)
        .optional()
        .map(|found| found.map(|closes_at| closes_at.unwrap_or_default()))
}

/// The erasure's writes; `None` when another erasure made the placeholder
/// first. Returns what went and the invitation ids whose files are to be
/// deleted. Call inside a write transaction.
fn erase(
    conn: &mut DbConnection,
    person_id: &str,
    now: chrono::NaiveDateTime,
) -> diesel::QueryResult<Option<(Erasure, HashSet<String>)>> {
    let made = diesel::update(
        people::table
            .find(person_id)
            .filter(people::erased_at.is_null()),
    )
    .set((
        people::email.eq(placeholder_email(person_id)),
        people::name.eq(PLACEHOLDER_NAME),
        people::job_title.eq(None::<String>),
        people::external_id.eq(None::<String>),
        people::erased_at.eq(Some(now)),
        people::updated_at.eq(now),
    ))
    .execute(conn)?;
    if made == 0 {
        return Ok(None);
    }
    let ids: HashSet<String> = invitations::table
        .filter(invitations::person_id.eq(person_id))
        .select(invitations::id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let theirs = invitations::table
        .filter(invitations::person_id.eq(person_id))
        .select(invitations::id);
    diesel::delete(outbox::table.filter(outbox::invitation_id.eq_any(theirs))).execute(conn)?;
    let invitations =
        diesel::delete(invitations::table.filter(invitations::person_id.eq(person_id)))
            .execute(conn)?;
    let webhook_events = crate::webhooks::store::forget_failures_of_person(conn, person_id)?;
    let titles = stand_in_titles(conn, person_id)?;
    Ok(Some((
        Erasure {
            person_id: person_id.to_owned(),
            erased_at: now.and_utc(),
            invitations,
            files: 0,
            titles,
            webhook_events,
        },
        ids,
    )))
}

/// Replaces each job title in the person's history by "Title n", n in the
/// order they first held it: the same title stays the same stand-in, so
/// every change of title mobility counts is still one. Returns how many
/// events changed.
fn stand_in_titles(conn: &mut DbConnection, person_id: &str) -> diesel::QueryResult<usize> {
    use crate::db::schema::person_events;
    let events: Vec<(String, Option<String>)> = person_events::table
        .filter(person_events::person_id.eq(person_id))
        .order(person_events::seq)
        .select((person_events::id, person_events::job_title))
        .load(conn)?;
    let mut stand_ins: Vec<String> = Vec::new();
    let mut changed = 0;
    for (event_id, title) in events {
        let Some(title) = title else { continue };
        let n = match stand_ins.iter().position(|t| *t == title) {
            Some(n) => n,
            None => {
                stand_ins.push(title);
                stand_ins.len() - 1
            }
        };
        changed += diesel::update(person_events::table.find(event_id))
            .set(person_events::job_title.eq(format!("Title {}", n + 1)))
            .execute(conn)?;
    }
    Ok(changed)
}
