//! Pulses in the database.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{pulses, waves};

#[derive(Debug, Clone, Queryable)]
pub struct PulseRow {
    pub id: String,
    pub organisation_id: String,
    pub name: String,
    pub templates: String,
    pub audience: String,
    pub excluded_teams: String,
    pub cron: String,
    pub time_zone: String,
    pub open_hours: i32,
    pub reminder_hours: String,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub status: String,
    pub min_group_size: i32,
    pub waves_opened: i32,
    pub schedule_from: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// What the API writes; lists as JSON text.
pub struct PulseValues<'a> {
    pub name: &'a str,
    pub templates: String,
    pub audience: String,
    pub excluded_teams: String,
    pub cron: &'a str,
    pub time_zone: &'a str,
    pub open_hours: i32,
    pub reminder_hours: String,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub status: &'a str,
    pub min_group_size: i32,
    pub schedule_from: NaiveDateTime,
}

pub fn insert(
    conn: &mut DbConnection,
    organisation_id: &str,
    v: &PulseValues<'_>,
) -> QueryResult<String> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = crate::db::now();
    diesel::insert_into(pulses::table)
        .values((
            pulses::id.eq(&id),
            pulses::organisation_id.eq(organisation_id),
            pulses::name.eq(v.name),
            pulses::templates.eq(&v.templates),
            pulses::audience.eq(&v.audience),
            pulses::excluded_teams.eq(&v.excluded_teams),
            pulses::cron.eq(v.cron),
            pulses::time_zone.eq(v.time_zone),
            pulses::open_hours.eq(v.open_hours),
            pulses::reminder_hours.eq(&v.reminder_hours),
            pulses::start_date.eq(v.start_date),
            pulses::end_date.eq(v.end_date),
            pulses::status.eq(v.status),
            pulses::min_group_size.eq(v.min_group_size),
            pulses::waves_opened.eq(0),
            pulses::schedule_from.eq(v.schedule_from),
            pulses::created_at.eq(now),
            pulses::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(id)
}

pub fn update(conn: &mut DbConnection, id: &str, v: &PulseValues<'_>) -> QueryResult<usize> {
    diesel::update(pulses::table.find(id))
        .set((
            pulses::name.eq(v.name),
            pulses::templates.eq(&v.templates),
            pulses::audience.eq(&v.audience),
            pulses::excluded_teams.eq(&v.excluded_teams),
            pulses::cron.eq(v.cron),
            pulses::time_zone.eq(v.time_zone),
            pulses::open_hours.eq(v.open_hours),
            pulses::reminder_hours.eq(&v.reminder_hours),
            pulses::start_date.eq(v.start_date),
            pulses::end_date.eq(v.end_date),
            pulses::status.eq(v.status),
            pulses::min_group_size.eq(v.min_group_size),
            pulses::schedule_from.eq(v.schedule_from),
            pulses::updated_at.eq(crate::db::now()),
        ))
        .execute(conn)
}

/// A pulse of this organisation; another organisation's is `NotFound`.
pub fn find_in(conn: &mut DbConnection, organisation_id: &str, id: &str) -> QueryResult<PulseRow> {
    pulses::table
        .filter(pulses::organisation_id.eq(organisation_id))
        .filter(pulses::id.eq(id))
        .first(conn)
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<PulseRow> {
    pulses::table.find(id).first(conn)
}

pub fn list(conn: &mut DbConnection, organisation_id: &str) -> QueryResult<Vec<PulseRow>> {
    pulses::table
        .filter(pulses::organisation_id.eq(organisation_id))
        .order((pulses::created_at, pulses::id))
        .load(conn)
}

/// Every active pulse of every organisation: what the scheduler looks at.
pub fn active_ids(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    pulses::table
        .filter(pulses::status.eq("active"))
        .order(pulses::id)
        .select(pulses::id)
        .load(conn)
}

/// Takes the pulse for this transaction: on PostgreSQL a row lock that
/// queues every other writer of this pulse (an opener, an edit) behind it;
/// on SQLite the transaction already holds the database's write lock.
pub fn lock(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::update(pulses::table.find(id))
        .set(pulses::updated_at.eq(pulses::updated_at))
        .execute(conn)
}

/// Raises (never lowers) the k of the pulse's waves to `k`.
pub fn raise_wave_k(conn: &mut DbConnection, id: &str, k: i32) -> QueryResult<usize> {
    diesel::update(
        waves::table
            .filter(waves::pulse_id.eq(id))
            .filter(waves::min_group_size.lt(k)),
    )
    .set(waves::min_group_size.eq(k))
    .execute(conn)
}

/// Counts one more opened wave and returns how many were opened before it.
/// On PostgreSQL the UPDATE also locks the row until the transaction ends,
/// which queues every other opener of this pulse behind this one.
pub fn count_opened_wave(conn: &mut DbConnection, id: &str) -> QueryResult<i32> {
    diesel::update(pulses::table.find(id))
        .set(pulses::waves_opened.eq(pulses::waves_opened + 1))
        .execute(conn)?;
    let after: i32 = pulses::table
        .find(id)
        .select(pulses::waves_opened)
        .first(conn)?;
    Ok(after - 1)
}

/// The latest firing this pulse has handled (opened or skipped).
pub fn last_scheduled(conn: &mut DbConnection, id: &str) -> QueryResult<Option<NaiveDateTime>> {
    waves::table
        .filter(waves::pulse_id.eq(id))
        .select(diesel::dsl::max(waves::scheduled_at))
        .first(conn)
}

/// Waves that opened (skipped firings don't count).
pub fn count_opened(conn: &mut DbConnection, id: &str) -> QueryResult<i64> {
    waves::table
        .filter(waves::pulse_id.eq(id))
        .filter(waves::status.ne("skipped"))
        .count()
        .get_result(conn)
}

pub fn delete(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::delete(pulses::table.find(id)).execute(conn)
}

/// The name of a pulse whose audience or exclusions name this team, if any.
pub fn naming_team(
    conn: &mut DbConnection,
    organisation_id: &str,
    team_id: &str,
) -> QueryResult<Option<String>> {
    let rows: Vec<(String, String, String)> = pulses::table
        .filter(pulses::organisation_id.eq(organisation_id))
        .select((pulses::name, pulses::audience, pulses::excluded_teams))
        .load(conn)?;
    Ok(rows.into_iter().find_map(|(name, audience, excluded)| {
        let names = |json: &str| {
            serde_json::from_str::<Vec<String>>(json)
                .is_ok_and(|ids| ids.iter().any(|id| id == team_id))
        };
        (names(&audience) || names(&excluded)).then_some(name)
    }))
}
