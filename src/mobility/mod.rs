//! Internal mobility ("doorstroom"): inflow, internal moves and outflow per
//! team, subtree and organisation, from the people's dated history (see
//! `org::people`). Pulses say how people feel about growing; this says
//! what they do: join, move up or sideways, get stuck, leave.
//!
//! These are counts from HR's own records, which HR already holds; they
//! are not survey answers and are not suppressed. A manager sees them for
//! their own subtree only, and never the people behind them. Responses are
//! never linked to a person, so "what did the leavers answer" cannot be
//! asked: the pulses only meet mobility at team level.
//!
//! [`timeline`] turns one person's history into states and changes;
//! [`figures`] adds every change up per group in one pass and defines each
//! figure; [`http`] serves them.

pub mod figures;
pub mod http;
pub mod pulses;
pub mod timeline;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::NaiveDateTime;

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::person_events;
use figures::{Groups, Period, Tally};
use timeline::{Change, Event, State};

/// A team as the figures name it.
#[derive(Debug, Clone)]
pub struct Team {
    pub id: String,
    pub parent: Option<String>,
    pub path: String,
}

/// Everything a mobility answer is made from: the tree, every person's
/// states, and every group's tally over the period.
pub struct Computed {
    pub period: Period,
    pub teams: Vec<Team>,
    pub groups: Groups,
    pub tallies: Vec<Tally>,
    states: Arc<Vec<Vec<State>>>,
}

/// Every person's timeline, per organisation, kept between requests for as
/// long as the history has not changed: dashboards read mobility far more
/// often than HR records change. The history only grows (a correction is a
/// new event), so its version is how many events it holds and the latest
/// recorded; both come from an index. A few organisations are kept. (A
/// writer that ever rewrites events in place must change that version
/// too: an erasure moving events to a placeholder, say.)
#[derive(Default)]
pub struct Timelines {
    kept: Mutex<Vec<Kept>>,
}

type Version = (i64, Option<NaiveDateTime>);
/// An organisation's timelines and the version of the history they hold.
type Kept = (String, Version, Arc<Vec<Vec<State>>>);

/// Organisations whose timelines are kept at once.
const KEPT: usize = 4;

impl Timelines {
    /// The organisation's timelines: kept ones if the history is unchanged.
    /// (A change between reading the version and the history only makes
    /// the next request read again.)
    pub fn of(
        &self,
        conn: &mut DbConnection,
        organisation_id: &str,
    ) -> QueryResult<Arc<Vec<Vec<State>>>> {
        let version: Version = person_events::table
            .filter(person_events::organisation_id.eq(organisation_id))
            .select((
                diesel::dsl::count_star(),
                diesel::dsl::max(person_events::recorded_at),
            ))
            .first(conn)?;
        let kept = |kept: &[Kept]| {
            kept.iter()
                .find(|(o, v, _)| o == organisation_id && *v == version)
                .map(|(_, _, states)| states.clone())
        };
        if let Some(states) = kept(&self.kept.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(states);
        }
        let states = Arc::new(all_states(conn, organisation_id)?);
        let mut all = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|(o, _, _)| o != organisation_id);
        all.push((organisation_id.to_owned(), version, states.clone()));
        if all.len() > KEPT {
            all.remove(0);
        }
        Ok(states)
    }
}

/// The organisation's team tree: teams in a stable order, each with the
/// chain of itself and its ancestors.
fn tree(conn: &mut DbConnection, organisation_id: &str) -> QueryResult<(Vec<Team>, Groups)> {
    let outline = crate::org::teams::store::outline(conn, organisation_id)?;
    let parents: HashMap<&str, Option<&str>> = outline
        .iter()
        .map(|(id, parent, _)| (id.as_str(), parent.as_deref()))
        .collect();
    let mut paths = crate::org::teams::paths(
        outline
            .iter()
            .map(|(id, parent, name)| (id.as_str(), parent.as_deref(), name.as_str())),
    );
    let mut teams: Vec<Team> = outline
        .iter()
        .map(|(id, parent, _)| Team {
            id: id.clone(),
            parent: parent.clone(),
            path: paths.remove(id.as_str()).unwrap_or_default(),
        })
        .collect();
    teams.sort_by(|a, b| a.path.cmp(&b.path).then_with(|| a.id.cmp(&b.id)));
    let chains: Vec<(String, Vec<String>)> = teams
        .iter()
        .map(|team| {
            let mut chain = vec![team.id.clone()];
            let mut up = team.parent.as_deref();
            // Bounded by the tree's size: a cycle (which the API cannot
            // make) stops rather than loops.
            while let Some(parent) = up.filter(|_| chain.len() <= parents.len()) {
                if !parents.contains_key(parent) || chain.iter().any(|c| c == parent) {
                    break;
                }
                chain.push(parent.to_owned());
                up = parents.get(parent).copied().flatten();
            }
            (team.id.clone(), chain)
        })
        .collect();
    Ok((teams, Groups::new(&chains)))
}

/// Every person's states, from the organisation's whole history.
fn all_states(conn: &mut DbConnection, organisation_id: &str) -> QueryResult<Vec<Vec<State>>> {
    let events = history(conn, organisation_id)?;
    Ok(events
        .chunk_by(|a, b| a.person_id == b.person_id)
        .map(|history| timeline::states(&timeline::in_force(history)))
        .collect())
}

/// The organisation's whole history, by person and in recording order:
/// the one query every mobility answer starts from.
pub fn history(conn: &mut DbConnection, organisation_id: &str) -> QueryResult<Vec<Event>> {
    person_events::table
        .filter(person_events::organisation_id.eq(organisation_id))
        .order((person_events::person_id, person_events::seq))
        .select((
            person_events::person_id,
            person_events::id,
            person_events::seq,
            person_events::kind,
            person_events::effective_date,
            person_events::team_id,
            person_events::job_title,
            person_events::level,
            person_events::status,
            person_events::exit_kind,
            person_events::supersedes_id,
        ))
        .load(conn)
}

/// Reads the tree and the history (or the timelines kept of it) and adds
/// everything up over `period`.
pub fn compute(
    conn: &mut DbConnection,
    timelines: &Timelines,
    organisation_id: &str,
    period: Period,
) -> QueryResult<Computed> {
    let (teams, groups) = tree(conn, organisation_id)?;
    let states = timelines.of(conn, organisation_id)?;
    let tallies = figures::tally(&groups, states.iter().map(Vec::as_slice), period);
    Ok(Computed {
        period,
        teams,
        groups,
        tallies,
        states,
    })
}

/// Which kind of group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    Team,
    Subtree,
    Organisation,
}

impl Computed {
    /// A group's tally; `None` for a team not in the tree.
    pub fn tally(&self, kind: GroupKind, team: Option<&str>) -> Option<&Tally> {
        let n = self.groups.teams();
        let index = match (kind, team) {
            (GroupKind::Organisation, _) => 2 * n,
            (GroupKind::Team, Some(team)) => self.groups.team(team)?,
            (GroupKind::Subtree, Some(team)) => n + self.groups.team(team)?,
            (_, None) => return None,
        };
        self.tallies.get(index)
    }

    /// Every group's tally over another period, from the same history
    /// (indexed as [`Groups`] says).
    pub fn tallies_over(&self, period: Period) -> Vec<Tally> {
        figures::tally(&self.groups, self.states.iter().map(Vec::as_slice), period)
    }

    /// Whether a caller of this reach may see `team`'s figures.
    pub fn reaches(&self, reach: &crate::auth::caller::Reach, team: &str) -> bool {
        match reach {
            crate::auth::caller::Reach::Organisation => true,
            crate::auth::caller::Reach::Subtree(root) => self.is_within(team, root),
        }
    }

    /// Whether `team` is `root` or below it.
    pub fn is_within(&self, team: &str, root: &str) -> bool {
        let mut current = Some(team);
        let mut steps = 0;
        while let Some(id) = current {
            if id == root {
                return true;
            }
            steps += 1;
            if steps > self.teams.len() {
                return false;
            }
            current = self
                .groups
                .team(id)
                .and_then(|i| self.teams[i].parent.as_deref());
        }
        false
    }

    /// Moves between teams in the period, counted per pair of teams — or of
    /// their ancestors at `depth` (1: the top level), for departments. A
    /// team shallower than `depth` stands for itself.
    pub fn flows(&self, depth: Option<usize>) -> BTreeMap<(String, String), u32> {
        let at_depth = |team: &str| -> String {
            let Some(depth) = depth else {
                return team.to_owned();
            };
            let mut chain = vec![team];
            while let Some(parent) = self
                .groups
                .team(chain[chain.len() - 1])
                .and_then(|i| self.teams[i].parent.as_deref())
                .filter(|_| chain.len() <= self.teams.len())
            {
                chain.push(parent);
            }
            chain.reverse();
            chain[depth.min(chain.len()) - 1].to_owned()
        };
        let mut flows = BTreeMap::new();
        let within = |day| self.period.from <= day && day < self.period.to;
        for states in self.states.iter() {
            for (i, state) in states.iter().enumerate() {
                if !within(state.from) {
                    continue;
                }
                if let Some(Change::Internal { from, to, .. }) = timeline::change(states, i)
                    && from != to
                {
                    let (from, to) = (at_depth(from), at_depth(to));
                    if from != to {
                        *flows.entry((from, to)).or_default() += 1;
                    }
                }
            }
        }
        flows
    }
}
