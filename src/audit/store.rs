//! Audit entries in the database.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::Entry;
use crate::db::DbConnection;
use crate::db::schema::audit_events;

#[derive(Debug, Clone, Queryable)]
pub struct AuditRow {
    pub id: String,
    pub organisation_id: String,
    pub occurred_at: NaiveDateTime,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub actor_label: Option<String>,
    pub client_address: Option<String>,
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub details: String,
}

pub fn insert(conn: &mut DbConnection, entry: &Entry) -> QueryResult<()> {
    let (target_kind, target_id) = match &entry.target {
        Some((kind, id)) => (Some(*kind), Some(id.as_str())),
        None => (None, None),
    };
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::id.eq(uuid::Uuid::new_v4().to_string()),
            audit_events::organisation_id.eq(&entry.actor.organisation_id),
            audit_events::occurred_at.eq(crate::db::now()),
            audit_events::actor_kind.eq(entry.actor.kind.as_str()),
            audit_events::actor_id.eq(entry.actor.id.as_deref()),
            audit_events::actor_label.eq(entry.actor.label.as_deref()),
            audit_events::client_address.eq(entry.actor.client.map(|a| a.to_string())),
            audit_events::action.eq(entry.action),
            audit_events::target_kind.eq(target_kind),
            audit_events::target_id.eq(target_id),
            audit_events::details.eq(entry.details.to_string()),
        ))
        .execute(conn)
        .map(drop)
}

/// What the log is filtered on; all optional.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub target_id: Option<String>,
    pub since: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
}

pub fn find(conn: &mut DbConnection, organisation_id: &str, id: &str) -> QueryResult<AuditRow> {
    audit_events::table
        .filter(audit_events::organisation_id.eq(organisation_id))
        .filter(audit_events::id.eq(id))
        .first(conn)
}

/// A page of the organisation's log, newest first, after `before`.
pub fn page(
    conn: &mut DbConnection,
    organisation_id: &str,
    filter: &Filter,
    before: Option<&AuditRow>,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let mut query = audit_events::table
        .filter(audit_events::organisation_id.eq(organisation_id))
        .into_boxed();
    if let Some(action) = &filter.action {
        // `pulse.` selects every pulse action.
        query = match action.strip_suffix('.') {
            Some(prefix) => query.filter(audit_events::action.like(format!("{prefix}.%"))),
            None => query.filter(audit_events::action.eq(action.clone())),
        };
    }
    if let Some(actor) = &filter.actor_id {
        query = query.filter(audit_events::actor_id.eq(actor.clone()));
    }
    if let Some(target) = &filter.target_id {
        query = query.filter(audit_events::target_id.eq(target.clone()));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_events::occurred_at.ge(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_events::occurred_at.lt(until));
    }
    if let Some(before) = before {
        query = query.filter(
            audit_events::occurred_at
                .lt(before.occurred_at)
                .or(audit_events::occurred_at
                    .eq(before.occurred_at)
                    .and(audit_events::id.lt(before.id.clone()))),
        );
    }
    query
        .order((audit_events::occurred_at.desc(), audit_events::id.desc()))
        .limit(limit)
        .load(conn)
}
