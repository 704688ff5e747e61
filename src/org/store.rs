//! Organisations in the database.

use diesel::prelude::*;

use super::{NewOrganisation, Organisation};
use crate::db::DbConnection;
use crate::db::schema::organisations;

pub fn insert(conn: &mut DbConnection, new: &NewOrganisation) -> QueryResult<String> {
    let id = uuid::Uuid::new_v4().to_string();
    diesel::insert_into(organisations::table)
        .values((
            organisations::id.eq(&id),
            organisations::name.eq(new.name.as_str()),
            organisations::default_language.eq(new.default_language.as_str()),
            organisations::time_zone.eq(new.time_zone.name()),
            organisations::min_group_size.eq(i32::from(new.min_group_size.get())),
            organisations::created_at.eq(crate::db::now()),
        ))
        .execute(conn)?;
    Ok(id)
}

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    organisations::table.count().get_result(conn)
}

pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<Organisation>> {
    organisations::table
        .order((organisations::created_at, organisations::id))
        .load(conn)
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Organisation> {
    organisations::table.find(id).first(conn)
}

/// The organisation's time zone (stored valid; Amsterdam should it not parse).
pub fn time_zone(conn: &mut DbConnection, organisation_id: &str) -> QueryResult<chrono_tz::Tz> {
    let zone: String = organisations::table
        .find(organisation_id)
        .select(organisations::time_zone)
        .first(conn)?;
    Ok(zone.parse().unwrap_or(chrono_tz::Europe::Amsterdam))
}

/// The date `now` is in the organisation's time zone: the default effective date.
pub fn today_in(
    conn: &mut DbConnection,
    organisation_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> QueryResult<chrono::NaiveDate> {
    let zone = time_zone(conn, organisation_id)?;
    Ok(now.with_timezone(&zone).date_naive())
}

pub fn default_language(conn: &mut DbConnection, organisation_id: &str) -> QueryResult<String> {
    organisations::table
        .find(organisation_id)
        .select(organisations::default_language)
        .first(conn)
}
