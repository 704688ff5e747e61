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
