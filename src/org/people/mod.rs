//! People: who can be invited, and the dated history of their joining,
//! moves, title and level changes and leaving, which mobility figures are
//! computed from.
//!
//! Every history event holds the person's placement (team, title, level,
//! status) *after* it, so consecutive events show what changed. A correction
//! is a new event that supersedes an older one; both stay in the history, and
//! the person's current placement is that of the latest event still in force.

pub mod http;
pub mod import;
pub mod store;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use store::{EventRow, PersonRow, PersonValues};

use crate::db::DbConnection;
use crate::domain::{
    EmailAddress, ExitKind, ExternalId, JobTitle, Language, Level, PersonName, PersonStatus,
};

/// What a history event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Joined,
    /// Joined again after having left: a new period of employment.
    Rejoined,
    Moved,
    TitleChanged,
    LevelChanged,
    Left,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Joined => "joined",
            Self::Rejoined => "rejoined",
            Self::Moved => "moved",
            Self::TitleChanged => "title_changed",
            Self::LevelChanged => "level_changed",
            Self::Left => "left",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Joined,
            Self::Rejoined,
            Self::Moved,
            Self::TitleChanged,
            Self::LevelChanged,
            Self::Left,
        ]
        .into_iter()
        .find(|k| k.as_str() == raw)
    }
}

/// A person, every field valid: what the API and imports write.
#[derive(Debug, Clone)]
pub struct PersonInput {
    pub email: EmailAddress,
    pub name: PersonName,
    pub team_id: String,
    pub language: Language,
    pub job_title: Option<JobTitle>,
    pub level: Option<Level>,
    pub external_id: Option<ExternalId>,
    pub status: PersonStatus,
    pub exit_kind: Option<ExitKind>,
}

impl PersonInput {
    fn values(&self) -> PersonValues<'_> {
        PersonValues {
            email: self.email.as_str(),
            name: self.name.as_str(),
            team_id: &self.team_id,
            language: self.language.as_str(),
            job_title: self.job_title.as_ref().map(JobTitle::as_str),
            level: self.level.map(Level::get),
            external_id: self.external_id.as_ref().map(ExternalId::as_str),
            status: self.status.as_str(),
            // Only someone who left has a reason for leaving.
            exit_kind: match self.status {
                PersonStatus::Left => Some(self.exit_kind.unwrap_or(ExitKind::Other).as_str()),
                PersonStatus::Active => None,
            },
        }
    }

    /// The row `save` leaves behind for this input, without reading it back
    /// (timestamps are the caller's to know; they don't drive history).
    pub fn as_row(&self, id: &str, organisation_id: &str, at: chrono::NaiveDateTime) -> PersonRow {
        let v = self.values();
        PersonRow {
            id: id.to_owned(),
            organisation_id: organisation_id.to_owned(),
            email: v.email.to_owned(),
            name: v.name.to_owned(),
            team_id: v.team_id.to_owned(),
            language: v.language.to_owned(),
            job_title: v.job_title.map(str::to_owned),
            level: v.level,
            external_id: v.external_id.map(str::to_owned),
            status: v.status.to_owned(),
            exit_kind: v.exit_kind.map(str::to_owned),
            created_at: at,
            updated_at: at,
            erased_at: None,
        }
    }

    /// The same person as the stored row says, for comparing and patching.
    pub fn from_row(row: &PersonRow) -> Result<Self, crate::domain::Invalid> {
        Ok(Self {
            email: EmailAddress::parse(&row.email)?,
            name: PersonName::parse(&row.name)?,
            team_id: row.team_id.clone(),
            language: row.language.parse()?,
            job_title: row.job_title.as_deref().map(JobTitle::parse).transpose()?,
            level: row.level.map(|l| Level::new(i64::from(l))).transpose()?,
            external_id: row
                .external_id
                .as_deref()
                .map(ExternalId::parse)
                .transpose()?,
            status: row.status.parse()?,
            exit_kind: row.exit_kind.as_deref().map(str::parse).transpose()?,
        })
    }
}

/// The part of a person that history tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Placement<'a> {
    team_id: &'a str,
    job_title: Option<&'a str>,
    level: Option<i32>,
    status: &'a str,
}

impl<'a> Placement<'a> {
    fn of(v: &'a PersonValues<'a>) -> Self {
        Self {
            team_id: v.team_id,
            job_title: v.job_title,
            level: v.level,
            status: v.status,
        }
    }
}

/// The events that a change of placement from `before` to `after` records.
fn events_for(before: Option<&Placement<'_>>, after: &Placement<'_>) -> Vec<EventKind> {
    let Some(before) = before else {
        let mut events = vec![EventKind::Joined];
        if after.status == "left" {
            events.push(EventKind::Left);
        }
        return events;
    };
    match (before.status, after.status) {
        ("left", "active") => vec![EventKind::Rejoined],
        ("active", "left") => vec![EventKind::Left],
        _ => {
            let mut events = Vec::new();
            if before.team_id != after.team_id {
                events.push(EventKind::Moved);
            }
            if before.job_title != after.job_title {
                events.push(EventKind::TitleChanged);
            }
            if before.level != after.level {
                events.push(EventKind::LevelChanged);
            }
            events
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Created,
    Updated,
    Unchanged,
}

/// Creates or updates a person inside the caller's write transaction, and
/// records the history events the change implies, dated `effective`.
/// Uniqueness of email and external id is the caller's to check first.
pub fn save(
    conn: &mut DbConnection,
    organisation_id: &str,
    existing: Option<&PersonRow>,
    input: &PersonInput,
    effective: NaiveDate,
) -> diesel::QueryResult<(String, Saved)> {
    let values = input.values();
    let after = Placement::of(&values);
    let (id, saved, events) = match existing {
        None => {
            let id = store::insert(conn, organisation_id, &values)?;
            (id, Saved::Created, events_for(None, &after))
        }
        Some(row) => {
            let before_values = PersonValues {
                email: &row.email,
                name: &row.name,
                team_id: &row.team_id,
                language: &row.language,
                job_title: row.job_title.as_deref(),
                level: row.level,
                external_id: row.external_id.as_deref(),
                status: &row.status,
                exit_kind: row.exit_kind.as_deref(),
            };
            let events = events_for(Some(&Placement::of(&before_values)), &after);
            let unchanged = events.is_empty()
                && before_values.email == values.email
                && before_values.name == values.name
                && before_values.language == values.language
                && before_values.external_id == values.external_id
                && before_values.exit_kind == values.exit_kind;
            if unchanged {
                return Ok((row.id.clone(), Saved::Unchanged));
            }
            store::update(conn, &row.id, &values)?;
            (row.id.clone(), Saved::Updated, events)
        }
    };
    for kind in events {
        store::insert_event(
            conn,
            &store::NewEvent {
                organisation_id,
                person_id: &id,
                kind: kind.as_str(),
                effective_date: effective,
                team_id: values.team_id,
                job_title: values.job_title,
                level: values.level,
                status: values.status,
                exit_kind: values.exit_kind,
                supersedes_id: None,
            },
        )?;
    }
    Ok((id, saved))
}

/// What [`in_force`] needs of a history event, whatever row it was read as.
pub trait Recorded {
    fn id(&self) -> &str;
    /// Its place in the person's recording order.
    fn seq(&self) -> i32;
    fn effective_date(&self) -> NaiveDate;
    /// The event this one corrects.
    fn supersedes(&self) -> Option<&str>;
}

impl Recorded for EventRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn seq(&self) -> i32 {
        self.seq
    }
    fn effective_date(&self) -> NaiveDate {
        self.effective_date
    }
    fn supersedes(&self) -> Option<&str> {
        self.supersedes_id.as_deref()
    }
}

/// The events still in force (a correction replaces the event it
/// supersedes), latest last by effective date and then by recording order
/// — a correction in the place of the first event of its chain, not after
/// everything recorded since.
pub fn in_force<E: Recorded>(history: &[E]) -> Vec<&E> {
    use std::collections::{HashMap, HashSet};
    let superseded: HashSet<&str> = history.iter().filter_map(|e| e.supersedes()).collect();
    let by_id: HashMap<&str, &E> = history.iter().map(|e| (e.id(), e)).collect();
    let place = |event: &E| {
        let mut root = event;
        // Bounded: a chain is never longer than the history.
        for _ in 0..history.len() {
            match root.supersedes().and_then(|id| by_id.get(id)) {
                Some(earlier) => root = earlier,
                None => break,
            }
        }
        root.seq()
    };
    let mut events: Vec<(&E, i32)> = history
        .iter()
        .filter(|e| !superseded.contains(e.id()))
        .map(|e| (e, place(e)))
        .collect();
    events.sort_by_key(|(e, place)| (e.effective_date(), *place, e.seq()));
    events.into_iter().map(|(e, _)| e).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement<'a>(
        team: &'a str,
        title: Option<&'a str>,
        level: Option<i32>,
        status: &'a str,
    ) -> Placement<'a> {
        Placement {
            team_id: team,
            job_title: title,
            level,
            status,
        }
    }

    #[test]
    fn events_follow_what_changed() {
        let a = placement("t1", Some("Engineer"), Some(3), "active");
        assert_eq!(events_for(None, &a), vec![EventKind::Joined]);
        let gone = placement("t1", Some("Engineer"), Some(3), "left");
        assert_eq!(
            events_for(None, &gone),
            vec![EventKind::Joined, EventKind::Left]
        );
        let promoted = placement("t2", Some("Lead"), Some(4), "active");
        assert_eq!(
            events_for(Some(&a), &promoted),
            vec![
                EventKind::Moved,
                EventKind::TitleChanged,
                EventKind::LevelChanged
            ]
        );
        assert_eq!(events_for(Some(&a), &gone), vec![EventKind::Left]);
        assert_eq!(
            events_for(Some(&gone), &promoted),
            vec![EventKind::Rejoined]
        );
        assert!(events_for(Some(&a), &a).is_empty());
    }
}
