//! The outbox table: emails waiting to be sent.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{invitations, outbox};

/// Rows per INSERT: well under SQLite's 32,766 and PostgreSQL's 65,535 bind
/// parameters with eight columns.
const CHUNK: usize = 2_000;

/// Queues one email per invitation: the invitation itself (`reminder` 0) or
/// reminder 1 or 2. Part of the caller's transaction.
pub fn queue(
    conn: &mut DbConnection,
    organisation_id: &str,
    invitation_ids: &[String],
    reminder: i32,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let mut queued = 0;
    for chunk in invitation_ids.chunks(CHUNK) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|invitation_id| {
                (
                    outbox::id.eq(uuid::Uuid::new_v4().to_string()),
                    outbox::organisation_id.eq(organisation_id),
                    outbox::invitation_id.eq(invitation_id),
                    outbox::reminder.eq(reminder),
                    outbox::status.eq("queued"),
                    outbox::attempts.eq(0),
                    outbox::next_attempt_at.eq(now),
                    outbox::created_at.eq(now),
                )
            })
            .collect();
        queued += crate::batch_insert!(conn, outbox::table, rows)?;
    }
    Ok(queued)
}

/// Emails for a wave that have not gone out yet are no longer wanted once it
/// closes: an invitation to a closed survey only disappoints.
pub fn cancel_for_wave(conn: &mut DbConnection, wave_id: &str) -> QueryResult<usize> {
    diesel::update(
        outbox::table.filter(outbox::status.eq("queued")).filter(
            outbox::invitation_id.eq_any(
                invitations::table
                    .filter(invitations::wave_id.eq(wave_id))
                    .select(invitations::id),
            ),
        ),
    )
    .set(outbox::status.eq("cancelled"))
    .execute(conn)
}

/// How many emails of a wave wait, per reminder number (0 = the invitation).
pub fn queued_for_wave(conn: &mut DbConnection, wave_id: &str) -> QueryResult<Vec<(i32, i64)>> {
    outbox::table
        .inner_join(invitations::table)
        .filter(invitations::wave_id.eq(wave_id))
        .filter(outbox::status.eq("queued"))
        .group_by(outbox::reminder)
        .select((outbox::reminder, diesel::dsl::count_star()))
        .order(outbox::reminder)
        .load(conn)
}
