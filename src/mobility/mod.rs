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
use std::sync::Arc;

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

/// What every mobility answer is made from: the team tree and every
/// person's timeline.
pub struct History {
    pub teams: Vec<Team>,
    pub groups: Groups,
    states: Arc<Vec<Vec<State>>>,
}

/// A history added up over a period: every group's tally.
pub struct Computed {
    pub history: History,
    pub period: Period,
    pub tallies: Vec<Tally>,
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
    kept: crate::db::Kept<String, Version, Vec<Vec<State>>, KEPT>,
}

type Version = (i64, Option<NaiveDateTime>);

/// Organisations whose timelines are kept at once.
const KEPT: usize = 4;

impl Timelines {
    /// The organisation's timelines: kept ones if the history is unchanged.
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
        self.kept
            .get_or_load(organisation_id.to_owned(), version, || {
                all_states(conn, organisation_id)
            })
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

impl History {
    /// The tree and the timelines (kept ones while the history is unchanged).
    pub fn load(
        conn: &mut DbConnection,
        timelines: &Timelines,
        organisation_id: &str,
    ) -> QueryResult<Self> {
        let (teams, groups) = tree(conn, organisation_id)?;
        let states = timelines.of(conn, organisation_id)?;
        Ok(Self {
            teams,
            groups,
            states,
        })
    }

    /// Every group's tally over `period` (indexed as [`Groups`] says).
    pub fn tallies(&self, period: Period) -> Vec<Tally> {
        figures::tally(&self.groups, self.states.iter().map(Vec::as_slice), period)
    }

    /// `Engineering/Platform`, for a team in the tree.
    pub fn path(&self, team: &str) -> Option<String> {
        self.groups.team(team).map(|i| self.teams[i].path.clone())
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
        team == root
            || match (self.groups.team(team), self.groups.team(root)) {
                (Some(team), Some(root)) => self.groups.chain(team).contains(&root),
                _ => false,
            }
    }

    /// `team`'s ancestor at `depth` (1: the top level); a team shallower
    /// than `depth`, or not in the tree, stands for itself.
    fn at_depth<'a>(&'a self, team: &'a str, depth: usize) -> &'a str {
        let Some(index) = self.groups.team(team) else {
            return team;
        };
        let chain = self.groups.chain(index);
        let from_top = depth.min(chain.len());
        &self.teams[chain[chain.len() - from_top]].id
    }
}

/// Reads the tree and the history (or the timelines kept of it) and adds
/// everything up over `period`.
pub fn compute(
    conn: &mut DbConnection,
    timelines: &Timelines,
    organisation_id: &str,
    period: Period,
) -> QueryResult<Computed> {
    let history = History::load(conn, timelines, organisation_id)?;
    let tallies = history.tallies(period);
    Ok(Computed {
        history,
        period,
        tallies,
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
        let groups = &self.history.groups;
        let n = groups.teams();
        let index = match (kind, team) {
            (GroupKind::Organisation, _) => 2 * n,
            (GroupKind::Team, Some(team)) => groups.team(team)?,
            (GroupKind::Subtree, Some(team)) => n + groups.team(team)?,
            (_, None) => return None,
        };
        self.tallies.get(index)
    }

    /// Moves between teams in the period, counted per pair of teams — or of
    /// their ancestors at `depth` (1: the top level), for departments.
    pub fn flows(&self, depth: Option<usize>) -> BTreeMap<(String, String), u32> {
        let history = &self.history;
        let at = |team: &'_ str| -> String {
            depth.map_or(team, |d| history.at_depth(team, d)).to_owned()
        };
        let mut flows = BTreeMap::new();
        let within = |day| self.period.from <= day && day < self.period.to;
        for states in history.states.iter() {
            for (i, state) in states.iter().enumerate() {
                if !within(state.from) {
                    continue;
                }
                if let Some(Change::Internal { from, to, .. }) = timeline::change(states, i)
                    && from != to
                {
                    let (from, to) = (at(from), at(to));
                    if from != to {
                        *flows.entry((from, to)).or_default() += 1;
                    }
                }
            }
        }
        flows
    }
}
