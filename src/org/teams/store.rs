//! Teams in the database.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{accounts, teams};

#[derive(Debug, Clone, Queryable)]
pub struct TeamRow {
    pub id: String,
    pub organisation_id: String,
    pub parent_id: Option<String>,
    pub name: String,
    pub external_id: Option<String>,
    pub created_at: NaiveDateTime,
}

pub fn list(conn: &mut DbConnection, organisation_id: &str) -> QueryResult<Vec<TeamRow>> {
    teams::table
        .filter(teams::organisation_id.eq(organisation_id))
        .order((teams::name, teams::id))
        .load(conn)
}

/// A team of this organisation; another organisation's is `NotFound`.
pub fn find_in(conn: &mut DbConnection, organisation_id: &str, id: &str) -> QueryResult<TeamRow> {
    teams::table
        .filter(teams::organisation_id.eq(organisation_id))
        .filter(teams::id.eq(id))
        .first(conn)
}

/// Every team's id, parent and name, unordered: the tree's outline, for
/// answers that name thousands of teams.
pub fn outline(
    conn: &mut DbConnection,
    organisation_id: &str,
) -> QueryResult<Vec<(String, Option<String>, String)>> {
    teams::table
        .filter(teams::organisation_id.eq(organisation_id))
        .select((teams::id, teams::parent_id, teams::name))
        .load(conn)
}

/// Every team's parent (None for a top-level team): the tree as results
/// and sealing walk it.
pub fn parents<C: FromIterator<(String, Option<String>)>>(
    conn: &mut DbConnection,
    organisation_id: &str,
) -> QueryResult<C> {
    Ok(teams::table
        .filter(teams::organisation_id.eq(organisation_id))
        .select((teams::id, teams::parent_id))
        .load::<(String, Option<String>)>(conn)?
        .into_iter()
        .collect())
}

/// A team and its ancestors up to the root, the team first: what naming
/// it and checking a manager's reach need, without loading the whole tree.
/// Empty when the team is not this organisation's. Stops on a cycle, which
/// the API never creates.
pub fn lineage(
    conn: &mut DbConnection,
    organisation_id: &str,
    id: &str,
) -> QueryResult<Vec<TeamRow>> {
    let mut chain: Vec<TeamRow> = Vec::new();
    let mut next = Some(id.to_owned());
    while let Some(id) = next.take() {
        if chain.iter().any(|t| t.id == id) {
            break;
        }
        let Some(team) = find_in(conn, organisation_id, &id).optional()? else {
            break;
        };
        next = team.parent_id.clone();
        chain.push(team);
    }
    Ok(chain)
}

pub struct NewTeam<'a> {
    pub organisation_id: &'a str,
    pub parent_id: Option<&'a str>,
    pub name: &'a str,
    pub external_id: Option<&'a str>,
}

pub fn insert(conn: &mut DbConnection, new: &NewTeam<'_>) -> QueryResult<TeamRow> {
    let id = uuid::Uuid::new_v4().to_string();
    diesel::insert_into(teams::table)
        .values((
            teams::id.eq(&id),
            teams::organisation_id.eq(new.organisation_id),
            teams::parent_id.eq(new.parent_id),
            teams::name.eq(new.name),
            teams::external_id.eq(new.external_id),
            teams::created_at.eq(crate::db::now()),
        ))
        .execute(conn)?;
    teams::table.find(&id).first(conn)
}

pub fn update(
    conn: &mut DbConnection,
    id: &str,
    parent_id: Option<&str>,
    name: &str,
    external_id: Option<&str>,
) -> QueryResult<usize> {
    diesel::update(teams::table.find(id))
        .set((
            teams::parent_id.eq(parent_id),
            teams::name.eq(name),
            teams::external_id.eq(external_id),
        ))
        .execute(conn)
}

pub fn delete(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::delete(teams::table.find(id)).execute(conn)
}

pub fn count_children(conn: &mut DbConnection, id: &str) -> QueryResult<i64> {
    teams::table
        .filter(teams::parent_id.eq(id))
        .count()
        .get_result(conn)
}

pub fn count_accounts(conn: &mut DbConnection, id: &str) -> QueryResult<i64> {
    accounts::table
        .filter(accounts::team_id.eq(id))
        .count()
        .get_result(conn)
}
