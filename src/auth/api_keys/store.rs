//! API keys in the database.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::super::caller::{KeyCaller, Scope};
use crate::db::DbConnection;
use crate::db::schema::api_keys;

#[derive(Debug, Clone, Queryable)]
pub struct ApiKeyRow {
    pub id: String,
    pub organisation_id: String,
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub scopes: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

impl ApiKeyRow {
    pub fn scopes(&self) -> Vec<Scope> {
        self.scopes.split(' ').filter_map(Scope::parse).collect()
    }
}

pub struct NewApiKey<'a> {
    pub organisation_id: &'a str,
    pub name: &'a str,
    pub prefix: &'a str,
    pub secret_hash: &'a str,
    pub scopes: &'a [Scope],
}

pub fn insert(conn: &mut DbConnection, new: &NewApiKey<'_>) -> QueryResult<ApiKeyRow> {
    let id = uuid::Uuid::new_v4().to_string();
    let scopes: Vec<&str> = new.scopes.iter().map(|s| s.as_str()).collect();
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::id.eq(&id),
            api_keys::organisation_id.eq(new.organisation_id),
            api_keys::name.eq(new.name),
            api_keys::prefix.eq(new.prefix),
            api_keys::secret_hash.eq(new.secret_hash),
            api_keys::scopes.eq(scopes.join(" ")),
            api_keys::created_at.eq(crate::db::now()),
        ))
        .execute(conn)?;
    api_keys::table.find(&id).first(conn)
}

pub fn list(conn: &mut DbConnection, organisation_id: &str) -> QueryResult<Vec<ApiKeyRow>> {
    api_keys::table
        .filter(api_keys::organisation_id.eq(organisation_id))
        .order((api_keys::created_at, api_keys::id))
        .load(conn)
}

pub fn find_in(conn: &mut DbConnection, organisation_id: &str, id: &str) -> QueryResult<ApiKeyRow> {
    api_keys::table
        .filter(api_keys::organisation_id.eq(organisation_id))
        .filter(api_keys::id.eq(id))
        .first(conn)
}

pub fn revoke(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::update(
        api_keys::table
            .find(id)
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(Some(crate::db::now())))
    .execute(conn)
}

/// The live key with this digest, recording its use. `last_used_at` is
/// written at most once a minute, so a busy integration costs no write per call.
pub fn touch_live_key(conn: &mut DbConnection, digest: &str) -> QueryResult<Option<KeyCaller>> {
    let Some(key) = api_keys::table
        .filter(api_keys::secret_hash.eq(digest))
        .filter(api_keys::revoked_at.is_null())
        .first::<ApiKeyRow>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let now = crate::db::now();
    if key
        .last_used_at
        .is_none_or(|used| now - used > chrono::Duration::minutes(1))
    {
        diesel::update(api_keys::table.find(&key.id))
            .set(api_keys::last_used_at.eq(Some(now)))
            .execute(conn)?;
    }
    Ok(Some(KeyCaller {
        scopes: key.scopes(),
        key_id: key.id,
        name: key.name,
        organisation_id: key.organisation_id,
    }))
}
