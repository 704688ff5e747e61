//! Waves, their per-team invited counts, and invitations in the database.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::Invitee;
use crate::db::DbConnection;
use crate::db::schema::{invitations, people, wave_teams, waves};
use crate::surveys::pulses::Pulse;

/// Rows per INSERT (seven columns): under every backend's bind limit.
const CHUNK: usize = 2_000;

#[derive(Debug, Clone, Queryable)]
pub struct WaveRow {
    pub id: String,
    pub organisation_id: String,
    pub pulse_id: String,
    pub scheduled_at: Option<NaiveDateTime>,
    pub opened_by: String,
    pub status: String,
    pub number: Option<i32>,
    pub template_key: Option<String>,
    pub template_version: Option<i32>,
    pub template: Option<String>,
    pub min_group_size: i32,
    pub opened_at: Option<NaiveDateTime>,
    pub closes_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub reminders: String,
    pub reminders_queued: i32,
    pub invited: i32,
    pub created_at: NaiveDateTime,
    /// Delivery counts, kept when the wave closes and its outbox rows go.
    pub delivery: Option<String>,
}

impl WaveRow {
    /// Open and not yet at its close time: answers, invitations and
    /// reminders are still wanted. (The scheduler closes it at that time;
    /// until its pass runs, this is what counts.)
    pub fn is_open_at(&self, now: NaiveDateTime) -> bool {
        self.status == "open" && self.closes_at.is_some_and(|t| t > now)
    }

    pub fn reminder_times(&self) -> anyhow::Result<Vec<DateTime<Utc>>> {
        let raw: Vec<String> = serde_json::from_str(&self.reminders)?;
        raw.iter()
            .map(|t| Ok(DateTime::parse_from_rfc3339(t)?.with_timezone(&Utc)))
            .collect()
    }
}

pub fn insert(conn: &mut DbConnection, w: &WaveRow) -> QueryResult<()> {
    diesel::insert_into(waves::table)
        .values((
            waves::id.eq(&w.id),
            waves::organisation_id.eq(&w.organisation_id),
            waves::pulse_id.eq(&w.pulse_id),
            waves::scheduled_at.eq(w.scheduled_at),
            waves::opened_by.eq(&w.opened_by),
            waves::status.eq(&w.status),
            waves::number.eq(w.number),
            waves::template_key.eq(&w.template_key),
            waves::template_version.eq(w.template_version),
            waves::template.eq(&w.template),
            waves::min_group_size.eq(w.min_group_size),
            waves::opened_at.eq(w.opened_at),
            waves::closes_at.eq(w.closes_at),
            waves::closed_at.eq(w.closed_at),
            waves::reminders.eq(&w.reminders),
            waves::reminders_queued.eq(w.reminders_queued),
            waves::invited.eq(w.invited),
            waves::created_at.eq(w.created_at),
            waves::delivery.eq(&w.delivery),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn insert_skipped(
    conn: &mut DbConnection,
    pulse: &Pulse,
    at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(waves::table)
        .values((
            waves::id.eq(uuid::Uuid::new_v4().to_string()),
            waves::organisation_id.eq(&pulse.row.organisation_id),
            waves::pulse_id.eq(&pulse.row.id),
            waves::scheduled_at.eq(Some(at)),
            waves::opened_by.eq("schedule"),
            waves::status.eq("skipped"),
            waves::min_group_size.eq(pulse.row.min_group_size),
            waves::reminders.eq("[]"),
            waves::created_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Whether a firing of this pulse was opened or skipped already.
pub fn firing_handled(
    conn: &mut DbConnection,
    pulse_id: &str,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        waves::table
            .filter(waves::pulse_id.eq(pulse_id))
            .filter(waves::scheduled_at.eq(at)),
    ))
    .get_result(conn)
}

pub fn insert_team_counts(
    conn: &mut DbConnection,
    wave_id: &str,
    per_team: &BTreeMap<&str, i32>,
) -> QueryResult<()> {
    let rows: Vec<_> = per_team
        .iter()
        .map(|(team, n)| {
            (
                wave_teams::wave_id.eq(wave_id),
                wave_teams::team_id.eq(*team),
                wave_teams::invited.eq(*n),
            )
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        crate::batch_insert!(conn, wave_teams::table, chunk.to_vec())?;
    }
    Ok(())
}

/// Creates the invitations; returns them, with whom and in which language
/// they invite, in the order of `invitees`.
pub fn insert_invitations(
    conn: &mut DbConnection,
    organisation_id: &str,
    wave_id: &str,
    invitees: &[Invitee],
) -> QueryResult<Vec<crate::delivery::outbox::Invited>> {
    // Rows go in by person, with the (random) ids handed out in sorted
    // order: every index the insert touches (the primary key, wave + person,
    // the people key the foreign key looks up) is then walked once, page
    // after page, instead of at a random page per row, which on a large
    // table is most of the cost. See BENCHMARKS.md, "Opening a wave".
    let mut order: Vec<usize> = (0..invitees.len()).collect();
    order.sort_unstable_by(|&a, &b| invitees[a].person_id.cmp(&invitees[b].person_id));
    let mut sorted_ids: Vec<String> = order
        .iter()
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    sorted_ids.sort_unstable();
    let mut ids = vec![String::new(); invitees.len()];
    for (&i, id) in order.iter().zip(&sorted_ids) {
        ids[i].clone_from(id);
    }
    for (chunk, chunk_ids) in order.chunks(CHUNK).zip(sorted_ids.chunks(CHUNK)) {
        let rows: Vec<_> = chunk
            .iter()
            .zip(chunk_ids)
            .map(|(&i, id)| {
                let invitee = &invitees[i];
                (
                    invitations::id.eq(id),
                    invitations::organisation_id.eq(organisation_id),
                    invitations::wave_id.eq(wave_id),
                    invitations::person_id.eq(&invitee.person_id),
                    invitations::team_id.eq(&invitee.team_id),
                    invitations::language.eq(&invitee.language),
                    invitations::answered.eq(false),
                )
            })
            .collect();
        crate::batch_insert!(conn, invitations::table, rows)?;
    }
    Ok(ids
        .into_iter()
        .zip(invitees)
        .map(
            |(invitation_id, invitee)| crate::delivery::outbox::Invited {
                invitation_id,
                person_id: invitee.person_id.clone(),
                language: invitee.language.clone(),
            },
        )
        .collect())
}

/// (person id, team id, language) of every active person of the organisation.
pub fn active_people(
    conn: &mut DbConnection,
    organisation_id: &str,
) -> QueryResult<Vec<(String, String, String)>> {
    people::table
        .filter(people::organisation_id.eq(organisation_id))
        .filter(people::status.eq("active"))
        .select((people::id, people::team_id, people::language))
        .load(conn)
}

pub fn unanswered_invitations(
    conn: &mut DbConnection,
    wave_id: &str,
) -> QueryResult<Vec<crate::delivery::outbox::Invited>> {
    invitations::table
        .filter(invitations::wave_id.eq(wave_id))
        .filter(invitations::answered.eq(false))
        .select((
            invitations::id,
            invitations::person_id,
            invitations::language,
        ))
        .load(conn)
}

/// Closes the wave if it is open (and, with `due_by`, if its close time is
/// at or before that moment).
pub fn mark_closed(
    conn: &mut DbConnection,
    wave_id: &str,
    now: NaiveDateTime,
    due_by: Option<NaiveDateTime>,
) -> QueryResult<usize> {
    let open = waves::table
        .filter(waves::id.eq(wave_id))
        .filter(waves::status.eq("open"));
    let closed = (waves::status.eq("closed"), waves::closed_at.eq(Some(now)));
    match due_by {
        Some(due_by) => diesel::update(open.filter(waves::closes_at.le(due_by)))
            .set(closed)
            .execute(conn),
        None => diesel::update(open).set(closed).execute(conn),
    }
}

pub fn set_delivery_summary(
    conn: &mut DbConnection,
    wave_id: &str,
    summary: &str,
) -> QueryResult<usize> {
    diesel::update(waves::table.find(wave_id))
        .set(waves::delivery.eq(Some(summary)))
        .execute(conn)
}

/// Whether the pulse has a wave that is open.
pub fn has_open_wave(conn: &mut DbConnection, pulse_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        waves::table
            .filter(waves::pulse_id.eq(pulse_id))
            .filter(waves::status.eq("open")),
    ))
    .get_result(conn)
}

/// Moves the reminder counter from `from` to `to`; 0 rows when another
/// replica moved it first.
pub fn advance_reminders(
    conn: &mut DbConnection,
    wave_id: &str,
    from: i32,
    to: i32,
) -> QueryResult<usize> {
    diesel::update(
        waves::table
            .filter(waves::id.eq(wave_id))
            .filter(waves::status.eq("open"))
            .filter(waves::reminders_queued.eq(from)),
    )
    .set(waves::reminders_queued.eq(to))
    .execute(conn)
}

/// [`WaveRow::is_open_at`] as a filter, for the database to answer.
pub fn open_at(now: NaiveDateTime) -> OpenAt {
    waves::status.eq("open").and(waves::closes_at.gt(now))
}

pub type OpenAt = diesel::dsl::And<
    diesel::dsl::Eq<waves::status, &'static str>,
    diesel::dsl::Gt<waves::closes_at, NaiveDateTime>,
>;

/// Moves the close of a wave that is open and not yet due to close.
pub fn set_closes_at(
    conn: &mut DbConnection,
    wave_id: &str,
    closes_at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        waves::table
            .filter(waves::id.eq(wave_id))
            .filter(open_at(now)),
    )
    .set(waves::closes_at.eq(Some(closes_at)))
    .execute(conn)
}

pub fn find_in(conn: &mut DbConnection, organisation_id: &str, id: &str) -> QueryResult<WaveRow> {
    waves::table
        .filter(waves::organisation_id.eq(organisation_id))
        .filter(waves::id.eq(id))
        .first(conn)
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<WaveRow> {
    waves::table.find(id).first(conn)
}

/// The wave, read so that it cannot close before this transaction ends. On
/// PostgreSQL a share lock on its row: closing updates the row, so a close
/// waits for the answers in progress, and an answer waits for a close in
/// progress and then sees it closed. SQLite's write transactions are serial
/// already.
pub fn find_shared(conn: &mut DbConnection, id: &str) -> QueryResult<WaveRow> {
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query("SELECT id FROM waves WHERE id = $1 FOR SHARE")
            .bind::<diesel::sql_types::Text, _>(id)
            .execute(pg)?;
    }
    find(conn, id)
}

pub struct WaveFilter<'a> {
    pub pulse_id: Option<&'a str>,
    pub status: Option<&'a str>,
    pub limit: i64,
}

/// Newest first.
pub fn list(
    conn: &mut DbConnection,
    organisation_id: &str,
    filter: &WaveFilter<'_>,
) -> QueryResult<Vec<WaveRow>> {
    let mut query = waves::table
        .filter(waves::organisation_id.eq(organisation_id))
        .into_boxed();
    if let Some(pulse_id) = filter.pulse_id {
        query = query.filter(waves::pulse_id.eq(pulse_id));
    }
    if let Some(status) = filter.status {
        query = query.filter(waves::status.eq(status));
    }
    query
        .order((waves::created_at.desc(), waves::id.desc()))
        .limit(filter.limit)
        .load(conn)
}

/// Open waves whose close time has come, across organisations.
pub fn due_to_close(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<Vec<String>> {
    waves::table
        .filter(waves::status.eq("open"))
        .filter(waves::closes_at.le(now))
        .select(waves::id)
        .load(conn)
}

/// Open waves that still have reminders to queue.
pub fn with_reminders_left(conn: &mut DbConnection) -> QueryResult<Vec<WaveRow>> {
    waves::table
        .filter(waves::status.eq("open"))
        .filter(waves::reminders.ne("[]"))
        .load(conn)
}

/// Invited counts per team, frozen at open.
pub fn team_counts(conn: &mut DbConnection, wave_id: &str) -> QueryResult<Vec<(String, i32)>> {
    wave_teams::table
        .filter(wave_teams::wave_id.eq(wave_id))
        .select((wave_teams::team_id, wave_teams::invited))
        .order(wave_teams::team_id)
        .load(conn)
}
