//! Organisation templates in the database: one row per version.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::survey_templates as t;

pub fn max_version(
    conn: &mut DbConnection,
    organisation_id: &str,
    key: &str,
) -> QueryResult<Option<u32>> {
    let max: Option<i32> = t::table
        .filter(t::organisation_id.eq(organisation_id))
        .filter(t::template_key.eq(key))
        .select(diesel::dsl::max(t::version))
        .first(conn)?;
    Ok(max.and_then(|v| u32::try_from(v).ok()))
}

pub fn latest(
    conn: &mut DbConnection,
    organisation_id: &str,
    key: &str,
) -> QueryResult<Option<String>> {
    t::table
        .filter(t::organisation_id.eq(organisation_id))
        .filter(t::template_key.eq(key))
        .order(t::version.desc())
        .select(t::body)
        .first(conn)
        .optional()
}

pub fn version(
    conn: &mut DbConnection,
    organisation_id: &str,
    key: &str,
    version: u32,
) -> QueryResult<Option<String>> {
    t::table
        .filter(t::organisation_id.eq(organisation_id))
        .filter(t::template_key.eq(key))
        .filter(t::version.eq(i32::try_from(version).unwrap_or(i32::MAX)))
        .select(t::body)
        .first(conn)
        .optional()
}

/// The newest version of each key, ordered by key.
pub fn all_latest(conn: &mut DbConnection, organisation_id: &str) -> QueryResult<Vec<String>> {
    let rows: Vec<(String, i32, String)> = t::table
        .filter(t::organisation_id.eq(organisation_id))
        .order((t::template_key, t::version.desc()))
        .select((t::template_key, t::version, t::body))
        .load(conn)?;
    let mut out = Vec::new();
    let mut last_key: Option<String> = None;
    for (key, _, body) in rows {
        if last_key.as_deref() != Some(key.as_str()) {
            out.push(body);
            last_key = Some(key);
        }
    }
    Ok(out)
}

pub fn insert(
    conn: &mut DbConnection,
    organisation_id: &str,
    key: &str,
    version: u32,
    body: &str,
) -> QueryResult<()> {
    diesel::insert_into(t::table)
        .values((
            t::organisation_id.eq(organisation_id),
            t::template_key.eq(key),
            t::version.eq(i32::try_from(version).unwrap_or(i32::MAX)),
            t::body.eq(body),
            t::created_at.eq(crate::db::now()),
        ))
        .execute(conn)
        .map(|_| ())
}
