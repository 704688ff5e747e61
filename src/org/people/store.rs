//! People and their history events in the database.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{people, person_events};

#[derive(Debug, Clone, Queryable)]
pub struct PersonRow {
    pub id: String,
    pub organisation_id: String,
    pub email: String,
    pub name: String,
    pub team_id: String,
    pub language: String,
    pub job_title: Option<String>,
    pub level: Option<i32>,
    pub external_id: Option<String>,
    pub status: String,
    pub exit_kind: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Set once the person is erased: the row is then an anonymous placeholder.
    pub erased_at: Option<NaiveDateTime>,
}

/// A person's stored fields, as written.
pub struct PersonValues<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub team_id: &'a str,
    pub language: &'a str,
    pub job_title: Option<&'a str>,
    pub level: Option<i32>,
    pub external_id: Option<&'a str>,
    pub status: &'a str,
    pub exit_kind: Option<&'a str>,
}

pub fn insert(
    conn: &mut DbConnection,
    organisation_id: &str,
    v: &PersonValues<'_>,
) -> QueryResult<String> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = crate::db::now();
    diesel::insert_into(people::table)
        .values((
            people::id.eq(&id),
            people::organisation_id.eq(organisation_id),
            people::email.eq(v.email),
            people::name.eq(v.name),
            people::team_id.eq(v.team_id),
            people::language.eq(v.language),
            people::job_title.eq(v.job_title),
            people::level.eq(v.level),
            people::external_id.eq(v.external_id),
            people::status.eq(v.status),
            people::exit_kind.eq(v.exit_kind),
            people::created_at.eq(now),
            people::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(id)
}

pub fn update(conn: &mut DbConnection, id: &str, v: &PersonValues<'_>) -> QueryResult<usize> {
    diesel::update(people::table.find(id))
        .set((
            people::email.eq(v.email),
            people::name.eq(v.name),
            people::team_id.eq(v.team_id),
            people::language.eq(v.language),
            people::job_title.eq(v.job_title),
            people::level.eq(v.level),
            people::external_id.eq(v.external_id),
            people::status.eq(v.status),
            people::exit_kind.eq(v.exit_kind),
            people::updated_at.eq(crate::db::now()),
        ))
        .execute(conn)
}

/// A person of this organisation; another organisation's is `NotFound`.
pub fn find_in(conn: &mut DbConnection, organisation_id: &str, id: &str) -> QueryResult<PersonRow> {
    people::table
        .filter(people::organisation_id.eq(organisation_id))
        .filter(people::id.eq(id))
        .first(conn)
}

pub fn find_by_email(
    conn: &mut DbConnection,
    organisation_id: &str,
    email: &str,
) -> QueryResult<Option<PersonRow>> {
    people::table
        .filter(people::organisation_id.eq(organisation_id))
        .filter(people::email.eq(email))
        .first(conn)
        .optional()
}

pub fn find_by_external_id(
    conn: &mut DbConnection,
    organisation_id: &str,
    external_id: &str,
) -> QueryResult<Option<PersonRow>> {
    people::table
        .filter(people::organisation_id.eq(organisation_id))
        .filter(people::external_id.eq(external_id))
        .first(conn)
        .optional()
}

pub fn all_in(conn: &mut DbConnection, organisation_id: &str) -> QueryResult<Vec<PersonRow>> {
    people::table
        .filter(people::organisation_id.eq(organisation_id))
        .load(conn)
}

pub struct ListFilter<'a> {
    pub team_ids: Option<&'a [String]>,
    pub status: Option<&'a str>,
    /// Only people whose email sorts after this one (the cursor).
    pub after_email: Option<&'a str>,
    pub limit: i64,
}

/// A page of people ordered by email (unique per organisation).
pub fn list(
    conn: &mut DbConnection,
    organisation_id: &str,
    filter: &ListFilter<'_>,
) -> QueryResult<Vec<PersonRow>> {
    let mut query = people::table
        .filter(people::organisation_id.eq(organisation_id))
        .into_boxed();
    if let Some(team_ids) = filter.team_ids {
        query = query.filter(people::team_id.eq_any(team_ids));
    }
    if let Some(status) = filter.status {
        query = query.filter(people::status.eq(status));
    }
    if let Some(after) = filter.after_email {
        query = query.filter(people::email.gt(after));
    }
    query.order(people::email).limit(filter.limit).load(conn)
}

pub fn count_in_team(conn: &mut DbConnection, team_id: &str) -> QueryResult<i64> {
    people::table
        .filter(people::team_id.eq(team_id))
        .count()
        .get_result(conn)
}

#[derive(Debug, Clone, Queryable)]
pub struct EventRow {
    pub id: String,
    pub organisation_id: String,
    pub person_id: String,
    pub seq: i32,
    pub kind: String,
    pub effective_date: NaiveDate,
    pub team_id: String,
    pub job_title: Option<String>,
    pub level: Option<i32>,
    pub status: String,
    pub exit_kind: Option<String>,
    pub supersedes_id: Option<String>,
    pub recorded_at: NaiveDateTime,
}

pub struct NewEvent<'a> {
    pub organisation_id: &'a str,
    pub person_id: &'a str,
    pub kind: &'a str,
    pub effective_date: NaiveDate,
    pub team_id: &'a str,
    pub job_title: Option<&'a str>,
    pub level: Option<i32>,
    pub status: &'a str,
    pub exit_kind: Option<&'a str>,
    pub supersedes_id: Option<&'a str>,
}

pub fn insert_event(conn: &mut DbConnection, e: &NewEvent<'_>) -> QueryResult<String> {
    let id = uuid::Uuid::new_v4().to_string();
    let seq: Option<i32> = person_events::table
        .filter(person_events::person_id.eq(e.person_id))
        .select(diesel::dsl::max(person_events::seq))
        .first(conn)?;
    diesel::insert_into(person_events::table)
        .values((
            person_events::id.eq(&id),
            person_events::organisation_id.eq(e.organisation_id),
            person_events::person_id.eq(e.person_id),
            person_events::seq.eq(seq.unwrap_or(0) + 1),
            person_events::kind.eq(e.kind),
            person_events::effective_date.eq(e.effective_date),
            person_events::team_id.eq(e.team_id),
            person_events::job_title.eq(e.job_title),
            person_events::level.eq(e.level),
            person_events::status.eq(e.status),
            person_events::exit_kind.eq(e.exit_kind),
            person_events::supersedes_id.eq(e.supersedes_id),
            person_events::recorded_at.eq(crate::db::now()),
        ))
        .execute(conn)?;
    Ok(id)
}

/// A person's whole history, in the order it was recorded.
pub fn history(conn: &mut DbConnection, person_id: &str) -> QueryResult<Vec<EventRow>> {
    person_events::table
        .filter(person_events::person_id.eq(person_id))
        .order(person_events::seq)
        .load(conn)
}
