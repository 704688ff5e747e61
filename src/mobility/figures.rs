//! Mobility figures for every group at once — each team's own members,
//! each team's subtree, the organisation — over a period `[from, to)` of
//! calendar days in the organisation's time zone. One pass over every
//! person's timeline; each fact is added to the groups around its team (a
//! team's subtree holds it, and so does every ancestor's), so the cost is
//! the history's size times the tree's depth.
//!
//! Definitions (the API documentation repeats them):
//! - A person counts in a group on a day when, after that day's changes,
//!   they are active in one of its teams. Headcount at the start is the
//!   count before `from`'s changes, at the end after the last day's
//!   (before `to`'s); the average is person-days over days.
//! - Hires and rehires count in the group of the team joined; exits, by
//!   kind, in the group of the team left.
//! - A move (another team) into the group from outside it is a move in,
//!   out of it a move out, between two of its teams a move within (so an
//!   organisation has moves within only).
//! - Promotions (a higher level), demotions (a lower one) and lateral moves
//!   (another team or title at the same level, or where a level is missing
//!   on either side) count in the group of the team the person was in
//!   before: a team's promotions are its people's.
//! - Rates: per 100 average headcount, annualised (× 365 / days); none
//!   when the average headcount is 0.
//! - Internal fill share: of everyone who came into a team of the group
//!   (hires, rehires, moves in and within), the share who came from another
//!   team of the organisation.
//! - Time in role: for everyone in the group at the end, the time since
//!   they came into their team, title and level (or were (re)hired); bands
//!   and "stuck" count calendar months back from `to`.

use std::collections::HashMap;

use chrono::{Months, NaiveDate};
use serde::Serialize;
use utoipa::ToSchema;

use super::timeline::{self, Change, ExitKind, State, Step};

/// Which groups a team's facts are added to, by index: its own group, the
/// subtree of itself and of each ancestor, and the organisation.
pub struct Groups {
    /// Team id → its index.
    index: HashMap<String, usize>,
    /// Per team: the indices of itself and its ancestors.
    ancestors: Vec<Vec<usize>>,
}

impl Groups {
    /// From every team with its ancestors (itself first).
    pub fn new(teams: &[(String, Vec<String>)]) -> Self {
        let index: HashMap<String, usize> = teams
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (id.clone(), i))
            .collect();
        let ancestors = teams
            .iter()
            .map(|(_, chain)| chain.iter().filter_map(|a| index.get(a).copied()).collect())
            .collect();
        Self { index, ancestors }
    }

    pub fn teams(&self) -> usize {
        self.ancestors.len()
    }

    pub fn team(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// A team and its ancestors, by index, itself first.
    pub fn chain(&self, team: usize) -> &[usize] {
        &self.ancestors[team]
    }

    /// The groups of a fact about `team`, as tally indices: own group
    /// `i`, subtree `n + a`, organisation `2n`. A team not in the tree
    /// (gone since) counts for the organisation only.
    fn of(&self, team: &str) -> impl Iterator<Item = usize> + '_ {
        let n = self.teams();
        let own = self.team(team);
        let subtrees = own
            .map(|i| self.ancestors[i].as_slice())
            .unwrap_or_default();
        own.into_iter()
            .chain(subtrees.iter().map(move |a| n + a))
            .chain(std::iter::once(2 * n))
    }
}

/// What one group adds up to before it is turned into figures.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    person_days: i64,
    start: u32,
    end: u32,
    hires: u32,
    rehires: u32,
    moves_in: u32,
    moves_out: u32,
    moves_within: u32,
    promotions: u32,
    demotions: u32,
    lateral_moves: u32,
    exits: [u32; 3],
    /// Per person in the group at the end: the day their role began.
    role_starts: Vec<NaiveDate>,
}

/// A period of calendar days, `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    pub fn days(self) -> i64 {
        (self.to - self.from).num_days()
    }
}

/// Every group's tally over `period`, from every person's states.
/// Indexing as in [`Groups`].
pub fn tally<'a>(
    groups: &Groups,
    people: impl IntoIterator<Item = &'a [State]>,
    period: Period,
) -> Vec<Tally> {
    let mut tallies = vec![Tally::default(); 2 * groups.teams() + 1];
    let within = |day: NaiveDate| period.from <= day && day < period.to;
    for states in people {
        for (i, state) in states.iter().enumerate() {
            if state.active {
                // The days of this state inside the period.
                let until = states
                    .get(i + 1)
                    .map_or(period.to, |s| s.from.min(period.to));
                let days = (until - state.from.max(period.from)).num_days();
                if days > 0 {
                    for g in groups.of(&state.team) {
                        tallies[g].person_days += days;
                    }
                }
            }
            if !within(state.from) {
                continue;
            }
            let Some(change) = timeline::change(states, i) else {
                continue;
            };
            match change {
                Change::Hire { team } => groups.of(team).for_each(|g| tallies[g].hires += 1),
                Change::Rehire { team } => groups.of(team).for_each(|g| tallies[g].rehires += 1),
                Change::Exit { team, kind } => {
                    let k = match kind {
                        ExitKind::Voluntary => 0,
                        ExitKind::Involuntary => 1,
                        ExitKind::Other => 2,
                    };
                    groups.of(team).for_each(|g| tallies[g].exits[k] += 1);
                }
                Change::Internal { from, to, step } => {
                    if from != to {
                        let out: Vec<usize> = groups.of(from).collect();
                        let into: Vec<usize> = groups.of(to).collect();
                        for &g in &out {
                            if into.contains(&g) {
                                tallies[g].moves_within += 1;
                            } else {
                                tallies[g].moves_out += 1;
                            }
                        }
                        for &g in into.iter().filter(|g| !out.contains(g)) {
                            tallies[g].moves_in += 1;
                        }
                    }
                    for g in groups.of(from) {
                        let t = &mut tallies[g];
                        match step {
                            Step::Promotion => t.promotions += 1,
                            Step::Demotion => t.demotions += 1,
                            Step::Lateral => t.lateral_moves += 1,
                            Step::None => {}
                        }
                    }
                }
            }
        }
        if let Some((_, state)) = timeline::at(states, period.from).filter(|(_, s)| s.active) {
            groups.of(&state.team).for_each(|g| tallies[g].start += 1);
        }
        if let Some((i, state)) = timeline::at(states, period.to).filter(|(_, s)| s.active) {
            let began = timeline::role_start(states, i);
            for g in groups.of(&state.team) {
                tallies[g].end += 1;
                tallies[g].role_starts.push(began);
            }
        }
    }
    tallies
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Headcount {
    /// Before the first day's changes.
    pub start: u32,
    /// After the last day's changes.
    pub end: u32,
    /// Person-days over days, to two decimals.
    pub average: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Counts {
    pub hires: u32,
    pub rehires: u32,
    pub moves_in: u32,
    pub moves_out: u32,
    /// Between two teams of the group.
    pub moves_within: u32,
    pub promotions: u32,
    pub demotions: u32,
    pub lateral_moves: u32,
    pub exits: u32,
    pub voluntary_exits: u32,
    pub involuntary_exits: u32,
    pub other_exits: u32,
}

/// Per 100 average headcount, annualised; none when the average is 0.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rates {
    pub hires: Option<f64>,
    pub rehires: Option<f64>,
    pub moves_in: Option<f64>,
    pub moves_out: Option<f64>,
    pub promotions: Option<f64>,
    pub lateral_moves: Option<f64>,
    pub exits: Option<f64>,
    pub voluntary_exits: Option<f64>,
    pub involuntary_exits: Option<f64>,
    pub other_exits: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Band {
    /// `0-6`, `6-12`, `12-24`, `24-36`, `36-60`, `60+` months.
    pub months: &'static str,
    pub people: u32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimeInRole {
    /// People in the group at the end.
    pub people: u32,
    /// Months (30.44 days), to one decimal; none without people.
    pub median_months: Option<f64>,
    pub bands: Vec<Band>,
    /// The threshold: in the same role longer than this many months.
    pub stuck_months: u32,
    pub stuck: u32,
    pub stuck_share: Option<f64>,
}

/// One group's mobility over a period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Figures {
    pub headcount: Headcount,
    pub counts: Counts,
    pub rates: Rates,
    /// Of everyone who came into a team of the group, the share from
    /// another team of the organisation; none if nobody came.
    pub internal_fill_share: Option<f64>,
    pub time_in_role: TimeInRole,
}

const BANDS: [(&str, u32, Option<u32>); 6] = [
    ("0-6", 0, Some(6)),
    ("6-12", 6, Some(12)),
    ("12-24", 12, Some(24)),
    ("24-36", 24, Some(36)),
    ("36-60", 36, Some(60)),
    ("60+", 60, None),
];

fn round(x: f64, places: i32) -> f64 {
    let factor = 10f64.powi(places);
    (x * factor).round() / factor
}

fn months_before(day: NaiveDate, months: u32) -> NaiveDate {
    day.checked_sub_months(Months::new(months))
        .unwrap_or(NaiveDate::MIN)
}

impl Tally {
    pub fn figures(&self, period: Period, stuck_months: u32) -> Figures {
        let days = period.days().max(1);
        let average = self.person_days as f64 / days as f64;
        let rate = |n: u32| {
            (average > 0.0).then(|| round(f64::from(n) * 100.0 / average * 365.0 / days as f64, 2))
        };
        let exits: u32 = self.exits.iter().sum();
        let came = self.hires + self.rehires + self.moves_in + self.moves_within;
        let internal = self.moves_in + self.moves_within;
        // A role that began before `to − m months` has lasted over m months.
        let longer_than = |m: u32| {
            let cut = months_before(period.to, m);
            self.role_starts.iter().filter(|s| **s < cut).count() as u32
        };
        let bands = BANDS
            .iter()
            .map(|&(label, low, high)| Band {
                months: label,
                people: longer_than(low).saturating_sub(high.map_or(0, longer_than)),
            })
            .collect();
        let mut lengths: Vec<i64> = self
            .role_starts
            .iter()
            .map(|s| (period.to - *s).num_days())
            .collect();
        lengths.sort_unstable();
        let median = match lengths.len() {
            0 => None,
            n if n % 2 == 1 => Some(lengths[n / 2] as f64),
            n => Some((lengths[n / 2 - 1] + lengths[n / 2]) as f64 / 2.0),
        };
        let people = self.role_starts.len() as u32;
        let stuck = longer_than(stuck_months);
        Figures {
            headcount: Headcount {
                start: self.start,
                end: self.end,
                average: round(average, 2),
            },
            counts: Counts {
                hires: self.hires,
                rehires: self.rehires,
                moves_in: self.moves_in,
                moves_out: self.moves_out,
                moves_within: self.moves_within,
                promotions: self.promotions,
                demotions: self.demotions,
                lateral_moves: self.lateral_moves,
                exits,
                voluntary_exits: self.exits[0],
                involuntary_exits: self.exits[1],
                other_exits: self.exits[2],
            },
            rates: Rates {
                hires: rate(self.hires),
                rehires: rate(self.rehires),
                moves_in: rate(self.moves_in),
                moves_out: rate(self.moves_out),
                promotions: rate(self.promotions),
                lateral_moves: rate(self.lateral_moves),
                exits: rate(exits),
                voluntary_exits: rate(self.exits[0]),
                involuntary_exits: rate(self.exits[1]),
                other_exits: rate(self.exits[2]),
            },
            internal_fill_share: (came > 0)
                .then(|| round(f64::from(internal) / f64::from(came), 4)),
            time_in_role: TimeInRole {
                people,
                median_months: median.map(|d| round(d / 30.4375, 1)),
                bands,
                stuck_months,
                stuck,
                stuck_share: (people > 0).then(|| round(f64::from(stuck) / f64::from(people), 4)),
            },
        }
    }
}
