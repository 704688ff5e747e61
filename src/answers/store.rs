//! Responses in the database: stored with a nullifier while the wave is
//! open, the invitations' "answered" flags brought up to date from those
//! nullifiers, and the wave's responses sealed when it closes.

use std::collections::{BTreeMap, HashMap, HashSet};

use diesel::prelude::*;
use rand::seq::SliceRandom;

use super::coarsen::{Tags, coarsen};
use crate::crypto::ServerKeys;
use crate::db::DbConnection;
use crate::db::schema::{invitations, people, responses, wave_participation};
use crate::error::ApiError;

/// An invitation with what answering it needs.
#[derive(Debug, Clone, Queryable)]
pub struct Invited {
    pub wave_id: String,
    pub team_id: String,
    pub language: String,
}

pub fn invitation(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Invited>> {
    invitations::table
        .filter(invitations::id.eq(id))
        .select((
            invitations::wave_id,
            invitations::team_id,
            invitations::language,
        ))
        .first(conn)
        .optional()
}

/// The names of the people of a team, to scrub from its comments.
pub fn team_names(conn: &mut DbConnection, team_id: &str) -> QueryResult<Vec<String>> {
    people::table
        .filter(people::team_id.eq(team_id))
        .select(people::name)
        .load(conn)
}

/// Whether the response with this nullifier exists: the link was used.
pub fn used(conn: &mut DbConnection, nullifier: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        responses::table.filter(responses::nullifier.eq(nullifier)),
    ))
    .get_result(conn)
}

/// Which of these nullifiers have answered.
pub fn used_among(conn: &mut DbConnection, nullifiers: &[String]) -> QueryResult<HashSet<String>> {
    let mut used = HashSet::new();
    for chunk in nullifiers.chunks(1_000) {
        used.extend(
            responses::table
                .filter(responses::nullifier.eq_any(chunk))
                .select(responses::nullifier.assume_not_null())
                .load::<String>(conn)?,
        );
    }
    Ok(used)
}

/// Stores a response unless its nullifier is taken; whether it was stored.
/// Its id is random; it holds no time and nothing about the person.
pub fn insert(
    conn: &mut DbConnection,
    wave_id: &str,
    team_id: &str,
    answers: &str,
    nullifier: &str,
) -> QueryResult<bool> {
    let row = (
        responses::id.eq(uuid::Uuid::new_v4().to_string()),
        responses::wave_id.eq(wave_id),
        responses::team_id.eq(team_id),
        responses::answers.eq(answers),
        responses::nullifier.eq(Some(nullifier)),
    );
    // ON CONFLICT DO NOTHING: the same link answered twice in one batch, or
    // through another replica, leaves the first answer and fails nothing
    // else in the transaction. (diesel offers it per backend only.)
    let inserted = match conn {
        DbConnection::Sqlite(c) => diesel::insert_into(responses::table)
            .values(row)
            .on_conflict(responses::nullifier)
            .do_nothing()
            .execute(c)?,
        DbConnection::Postgres(c) => diesel::insert_into(responses::table)
            .values(row)
            .on_conflict(responses::nullifier)
            .do_nothing()
            .execute(c)?,
    };
    Ok(inserted == 1)
}

/// Sets the "answered" flag of each invitation of the wave whose nullifier
/// is among its responses. Never in the transaction that stores a response:
/// flags change in batches, so neither a transaction id nor a write names
/// the invitation a response came from. Returns the invitations still
/// unanswered (whom a reminder goes to).
pub fn mark_answered(
    conn: &mut DbConnection,
    keys: &ServerKeys,
    wave_id: &str,
) -> Result<Vec<crate::delivery::outbox::Invited>, ApiError> {
    let open = crate::surveys::waves::store::unanswered_invitations(conn, wave_id)?;
    let used: HashSet<String> = responses::table
        .filter(responses::wave_id.eq(wave_id))
        .filter(responses::nullifier.is_not_null())
        .select(responses::nullifier.assume_not_null())
        .load(conn)?
        .into_iter()
        .collect();
    if used.is_empty() {
        return Ok(open);
    }
    let (answered, open): (Vec<_>, Vec<_>) = open.into_iter().partition(|invited| {
        keys.nullifier(&invited.invitation_id)
            .is_some_and(|n| used.contains(&n))
    });
    let answered: Vec<String> = answered.into_iter().map(|i| i.invitation_id).collect();
    for chunk in answered.chunks(500) {
        diesel::update(invitations::table.filter(invitations::id.eq_any(chunk)))
            .set(invitations::answered.eq(true))
            .execute(conn)?;
    }
    Ok(open)
}

/// Seals a closing wave's responses, in the closing transaction:
/// - the "answered" flags are brought up to date and counted into the
///   wave's participation, per group of at least k invited
///   (`wave_participation`); then every invitation of the wave is written
///   again, in random order and unflagged, so that after the close neither
///   a value nor (on PostgreSQL) a row version or position says whether
///   one person answered;
/// - every response is deleted and written again in random order, under a
///   new random id, without its nullifier and its comments (published by
///   now where the rules allow, and kept nowhere else), and with its team
///   tag coarsened to the groups the wave published ([`super::coarsen`]);
///   responses that even the whole organisation cannot cover are dropped.
///
/// After this nothing in a response — value, position, id or (on
/// PostgreSQL) transaction — says when, or from which link, it came.
/// Returns how many responses are kept.
pub fn seal(conn: &mut DbConnection, keys: &ServerKeys, wave_id: &str) -> Result<usize, ApiError> {
    mark_answered(conn, keys, wave_id)?;
    let wave = crate::surveys::waves::store::find(conn, wave_id)?;
    let parents: HashMap<String, Option<String>> =
        crate::org::teams::store::parents(conn, &wave.organisation_id)?;
    let k = usize::try_from(wave.min_group_size).unwrap_or(usize::MAX);
    let groups =
        |counts: &BTreeMap<String, usize>| coarsen(&parents, &wave.organisation_id, counts, k);
    // Copied: it only borrows the tree.
    record_participation(conn, wave_id, groups)?;
    unflag_invitations(conn, wave_id)?;

    let mut rows: Vec<(String, String)> = responses::table
        .filter(responses::wave_id.eq(wave_id))
        .select((responses::team_id, responses::answers))
        .load(conn)?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (team, _) in &rows {
        *counts.entry(team.clone()).or_default() += 1;
    }
    let tags = groups(&counts);
    // Comments are published (or not) by now, and kept nowhere else: a
    // stored text tagged with a group of 5 would be at rest what the API
    // only shows from max(10, k) (`crate::results::publish`).
    let comment_ids: Vec<String> = wave
        .template
        .as_deref()
        .map(crate::surveys::templates::decode)
        .transpose()?
        .map(|t| t.comment_questions().map(|q| q.id.clone()).collect())
        .unwrap_or_default();
    if !comment_ids.is_empty() {
        for (_, answers) in &mut rows {
            let mut map: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(answers).map_err(|e| ApiError::Unexpected(e.into()))?;
            let removed = comment_ids
                .iter()
                .filter(|id| map.remove(*id).is_some())
                .count();
            if removed > 0 {
                *answers =
                    serde_json::to_string(&map).map_err(|e| ApiError::Unexpected(e.into()))?;
            }
        }
    }
    rows.shuffle(&mut rand::rng());
    diesel::delete(responses::table.filter(responses::wave_id.eq(wave_id))).execute(conn)?;
    let sealed: Vec<_> = rows
        .into_iter()
        .filter_map(|(team_id, answers)| {
            let tag = tags.get(&team_id).cloned().flatten()?;
            Some((
                responses::id.eq(uuid::Uuid::new_v4().to_string()),
                responses::wave_id.eq(wave_id.to_owned()),
                responses::team_id.eq(tag.team_id),
                responses::answers.eq(answers),
                responses::nullifier.eq(None::<String>),
                responses::scope.eq(tag.scope.as_str()),
            ))
        })
        .collect();
    let count = sealed.len();
    for chunk in sealed.chunks(1_000) {
        crate::batch_insert!(conn, responses::table, chunk.to_vec())?;
    }
    Ok(count)
}

/// Participation from the flags, per group of at least k invited: a small
/// team's count would say whether its one or two people answered.
fn record_participation(
    conn: &mut DbConnection,
    wave_id: &str,
    groups: impl Fn(&BTreeMap<String, usize>) -> Tags,
) -> QueryResult<()> {
    let answered: HashMap<String, i64> = invitations::table
        .filter(invitations::wave_id.eq(wave_id))
        .filter(invitations::answered.eq(true))
        .group_by(invitations::team_id)
        .select((invitations::team_id, diesel::dsl::count_star()))
        .load(conn)?
        .into_iter()
        .collect();
    let invited: BTreeMap<String, usize> =
        crate::surveys::waves::store::team_counts(conn, wave_id)?
            .into_iter()
            .map(|(team, n)| (team, usize::try_from(n).unwrap_or(0)))
            .collect();
    let mut per_group: BTreeMap<(String, &'static str), (usize, i64)> = BTreeMap::new();
    for (team, tag) in groups(&invited) {
        let Some(tag) = tag else { continue };
        let group = per_group
            .entry((tag.team_id, tag.scope.as_str()))
            .or_default();
        group.0 += invited.get(&team).copied().unwrap_or(0);
        group.1 += answered.get(&team).copied().unwrap_or(0);
    }
    write_participation(
        conn,
        wave_id,
        per_group
            .into_iter()
            .map(|((team_id, scope), (invited, responded))| {
                (
                    team_id,
                    scope,
                    i64::try_from(invited).unwrap_or(i64::MAX),
                    responded,
                )
            }),
    )
}

/// Replaces a wave's participation counts: (tag team, scope, invited,
/// responded) per group.
pub fn write_participation(
    conn: &mut DbConnection,
    wave_id: &str,
    groups: impl Iterator<Item = (String, &'static str, i64, i64)>,
) -> QueryResult<()> {
    diesel::delete(wave_participation::table.filter(wave_participation::wave_id.eq(wave_id)))
        .execute(conn)?;
    let rows: Vec<_> = groups
        .map(|(team_id, scope, invited, responded)| {
            (
                wave_participation::wave_id.eq(wave_id.to_owned()),
                wave_participation::team_id.eq(team_id),
                wave_participation::scope.eq(scope),
                wave_participation::invited.eq(i32::try_from(invited).unwrap_or(i32::MAX)),
                wave_participation::responded.eq(i32::try_from(responded).unwrap_or(i32::MAX)),
            )
        })
        .collect();
    for chunk in rows.chunks(2_000) {
        crate::batch_insert!(conn, wave_participation::table, chunk.to_vec())?;
    }
    Ok(())
}

/// Writes every invitation of the wave again, unflagged, in random order:
/// updating only the answered ones would leave them with the closing
/// transaction's `xmin` on PostgreSQL, and flags set at reminder time would
/// stay visible in the rows' physical order.
fn unflag_invitations(conn: &mut DbConnection, wave_id: &str) -> QueryResult<()> {
    let mut rows: Vec<(String, String, String, String, String)> = invitations::table
        .filter(invitations::wave_id.eq(wave_id))
        .select((
            invitations::id,
            invitations::organisation_id,
            invitations::person_id,
            invitations::team_id,
            invitations::language,
        ))
        .load(conn)?;
    rows.shuffle(&mut rand::rng());
    diesel::delete(invitations::table.filter(invitations::wave_id.eq(wave_id))).execute(conn)?;
    let rows: Vec<_> = rows
        .into_iter()
        .map(|(id, organisation_id, person_id, team_id, language)| {
            (
                invitations::id.eq(id),
                invitations::organisation_id.eq(organisation_id),
                invitations::wave_id.eq(wave_id.to_owned()),
                invitations::person_id.eq(person_id),
                invitations::team_id.eq(team_id),
                invitations::language.eq(language),
                invitations::answered.eq(false),
            )
        })
        .collect();
    for chunk in rows.chunks(2_000) {
        crate::batch_insert!(conn, invitations::table, chunk.to_vec())?;
    }
    Ok(())
}
