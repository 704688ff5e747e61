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
    states: Vec<Vec<State>>,
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
    let events: Vec<Event> = person_events::table
        .filter(person_events::organisation_id.eq(organisation_id))
        .order((person_events::person_id, person_events::seq))
        .select((
            person_events::person_id,
            person_events::id,
            person_events::seq,
            person_events::effective_date,
            person_events::team_id,
            person_events::job_title,
            person_events::level,
            person_events::status,
            person_events::exit_kind,
            person_events::supersedes_id,
        ))
        .load(conn)?;
    Ok(events
        .chunk_by(|a, b| a.person_id == b.person_id)
        .map(|history| timeline::states(&timeline::in_force(history)))
        .collect())
}

/// Reads the tree and the history and adds everything up over `period`.
pub fn compute(
    conn: &mut DbConnection,
    organisation_id: &str,
    period: Period,
) -> QueryResult<Computed> {
    let (teams, groups) = tree(conn, organisation_id)?;
    let states = all_states(conn, organisation_id)?;
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
        for states in &self.states {
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
