//! The outbox table: emails waiting to be sent.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{invitations, outbox};

/// Rows per INSERT: well under SQLite's 32,766 and PostgreSQL's 65,535 bind
/// parameters with eleven columns.
const CHUNK: usize = 2_000;

/// An invitation as its emails need it: whom it invites, in which language.
#[derive(Debug, Clone, Queryable)]
pub struct Invited {
    pub invitation_id: String,
    pub person_id: String,
    pub language: String,
}

/// Queues one email per invitation of wave `wave_id`: the invitation itself
/// (`reminder` 0) or reminder 1 or 2. Part of the caller's transaction.
pub fn queue(
    conn: &mut DbConnection,
    organisation_id: &str,
    wave_id: &str,
    invited: &[Invited],
    reminder: i32,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    // Both keys in sorted order, so the indexes (and the invitations' key the
    // foreign key looks up) are walked once instead of at random: see
    // `crate::surveys::waves::store::insert_invitations`.
    let mut invited: Vec<&Invited> = invited.iter().collect();
    invited.sort_unstable_by(|a, b| a.invitation_id.cmp(&b.invitation_id));
    let mut ids: Vec<String> = invited
        .iter()
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    ids.sort_unstable();
    let mut queued = 0;
    for (chunk, chunk_ids) in invited.chunks(CHUNK).zip(ids.chunks(CHUNK)) {
        let rows: Vec<_> = chunk
            .iter()
            .zip(chunk_ids)
            .map(|(invited, id)| {
                (
                    outbox::id.eq(id),
                    outbox::organisation_id.eq(organisation_id),
                    outbox::invitation_id.eq(&invited.invitation_id),
                    outbox::reminder.eq(reminder),
                    outbox::status.eq("queued"),
                    outbox::attempts.eq(0),
                    outbox::next_attempt_at.eq(now),
                    outbox::created_at.eq(now),
                    outbox::wave_id.eq(wave_id),
                    outbox::person_id.eq(&invited.person_id),
                    outbox::language.eq(&invited.language),
                )
            })
            .collect();
        queued += crate::batch_insert!(conn, outbox::table, rows)?;
    }
    // PostgreSQL plans the worker's claims from the table's statistics,
    // which autovacuum updates only a while later: straight after a wave
    // queued thousands of emails they still said "a few dozen queued", and
    // each claim joined and sorted every queued email (50-60 ms a batch at
    // 10,000) and updated its batch by scanning them all, instead of
    // reading its 500 off the index. ANALYZE counts this transaction's own
    // rows. It is only a speed-up: in a savepoint, so that a failure (a
    // timeout, a role that does not own the table) leaves the wave alone.
    // Its lock lets other writers be; two waves queueing at once take
    // turns at this step.
    if queued >= ANALYZE_AFTER
        && let DbConnection::Postgres(pg) = conn
        && let Err(error) = pg.transaction(|pg| diesel::sql_query("ANALYZE outbox").execute(pg))
    {
        tracing::warn!(%error, "renewing the outbox's statistics failed; the worker may claim slowly for a while");
    }
    Ok(queued)
}

/// Queued emails, as the SQL literal `status = 'queued'` that the outbox's
/// partial index on due emails is made for (a bound 'queued' cannot use it).
pub fn queued() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql(r#""outbox"."status" = 'queued'"#)
}

/// Rows no worker holds at `now`: never claimed, given back, or their lease
/// run out. Only these may be claimed; a resend refuses the others (a
/// worker is sending them). Each row is one or the other at any instant.
pub fn unleased(now: NaiveDateTime) -> Unleased {
    outbox::claimed_until
        .is_null()
        .or(outbox::claimed_until.lt(now))
}

pub type Unleased = diesel::dsl::Or<
    diesel::dsl::IsNull<outbox::claimed_until>,
    diesel::dsl::Lt<outbox::claimed_until, NaiveDateTime>,
>;

/// Rows queued at once from which the outbox's statistics are renewed.
const ANALYZE_AFTER: usize = 1_000;

/// Every email of a wave, sent or not: once it closes, nothing more goes
/// out (an invitation to a closed survey only disappoints), and the rows
/// would keep who was reminded, that is, who had not answered.
pub fn delete_for_wave(conn: &mut DbConnection, wave_id: &str) -> QueryResult<usize> {
    diesel::delete(
        outbox::table.filter(
            outbox::invitation_id.eq_any(
                invitations::table
                    .filter(invitations::wave_id.eq(wave_id))
                    .select(invitations::id),
            ),
        ),
    )
    .execute(conn)
}

/// Emails of one kind (invitations or reminders) of a wave, by state.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct DeliveryCounts {
    /// Waiting for their first attempt.
    pub queued: i64,
    /// Failed temporarily (the server unreachable, a 4xx): retried with back-off.
    pub retrying: i64,
    pub sent: i64,
    /// Failed permanently (a 5xx, an invalid address): see `…/undeliverable`.
    pub failed: i64,
    /// Not sent because the wave closed first, or the person had answered.
    pub cancelled: i64,
}

/// A wave's emails: the invitations, and the reminders.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    pub invitations: DeliveryCounts,
    pub reminders: DeliveryCounts,
}

pub fn delivery(conn: &mut DbConnection, wave_id: &str) -> QueryResult<Delivery> {
    let rows: Vec<(i32, String, i32, i64)> = outbox::table
        .inner_join(invitations::table)
        .filter(invitations::wave_id.eq(wave_id))
        .group_by((outbox::reminder, outbox::status, outbox::attempts))
        .select((
            outbox::reminder,
            outbox::status,
            outbox::attempts,
            diesel::dsl::count_star(),
        ))
        .load(conn)?;
    let mut delivery = Delivery::default();
    for (reminder, status, attempts, n) in rows {
        let tried = attempts > 0;
        let counts = if reminder == 0 {
            &mut delivery.invitations
        } else {
            &mut delivery.reminders
        };
        match status.as_str() {
            "queued" if tried => counts.retrying += n,
            "queued" => counts.queued += n,
            "sent" => counts.sent += n,
            "failed" => counts.failed += n,
            _ => counts.cancelled += n,
        }
    }
    Ok(delivery)
}
