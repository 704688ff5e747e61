//! Publishing a closed wave again with a raised k (DESIGN.md, invariant
//! 2), from what the close left: responses tagged with the wave's
//! published groups (`crate::answers::coarsen`) and participation counted
//! per group of at least k invited.
//!
//! Each tag becomes a unit: a team's own members where the tag is the team,
//! and for what is left of a subtree (or of the organisation) a placeholder
//! team under it. Those units form every group published before exactly,
//! and nothing finer. So:
//! - a group that no answer measure published before stays suppressed,
//!   with the reason it had (its members are not known apart any more);
//! - each measure's suppressed cells stay suppressed with their reasons;
//! - placeholders are never published themselves;
//! - the rules then run with the new k, which can only hide more.
//!
//! Afterwards the stored tags are coarsened again to the new pattern, so
//! that no tag holds fewer than the new k.

use std::collections::{BTreeMap, BTreeSet};

use super::publish::{Known, Measure, Publication, participation, publish_answers};
use super::score::Response;
use super::suppress::{Group, Suppressed, group_sizes};
use crate::answers::coarsen::{Scope, Tag, tag_in};
use crate::surveys::template::Template;

/// What stands for "the rest of a subtree" (or of the organisation) among
/// team ids: no team id starts with a NUL.
const REST: &str = "\u{0}rest";

fn rest_of(team: Option<&str>) -> String {
    match team {
        Some(team) => format!("{REST}:{team}"),
        None => REST.to_owned(),
    }
}

fn is_placeholder(team: &str) -> bool {
    team.starts_with(REST)
}

fn is_placeholder_group(group: &Group) -> bool {
    match group {
        Group::Team(t) | Group::Subtree(t) => is_placeholder(t),
        Group::Organisation => false,
    }
}

/// A cell of the latest publication, as far as recomputing needs it.
#[derive(Debug, Clone)]
pub struct Before {
    pub group: Group,
    pub measure: Measure,
    /// `None`: published.
    pub suppressed: Option<Suppressed>,
}

/// The units of a wave's stored tags: the team tree with placeholders.
pub struct Units {
    parents: BTreeMap<String, Option<String>>,
    organisation_id: String,
}

impl Units {
    /// `teams` is the tree the wave was published on.
    pub fn new(teams: &BTreeMap<String, Option<String>>, organisation_id: &str) -> Self {
        Self {
            parents: teams.clone(),
            organisation_id: organisation_id.to_owned(),
        }
    }

    /// The unit a stored tag stands for, adding its placeholder if needed.
    pub fn unit(&mut self, tag: &Tag) -> String {
        match tag.scope {
            Scope::Team => tag.team_id.clone(),
            Scope::Subtree => {
                let unit = rest_of(Some(&tag.team_id));
                self.parents.insert(unit.clone(), Some(tag.team_id.clone()));
                unit
            }
            Scope::Organisation => {
                self.parents.insert(REST.to_owned(), None);
                REST.to_owned()
            }
        }
    }

    /// What must stay suppressed: every group of the units that `before`
    /// did not publish for any of `measures`, with the reason it had, and
    /// every placeholder.
    fn unknown(
        &self,
        counts: &BTreeMap<String, u32>,
        before: &[Before],
        measures: impl Fn(&Measure) -> bool,
    ) -> BTreeMap<Group, Suppressed> {
        let mut published = BTreeSet::new();
        let mut reasons = BTreeMap::new();
        for cell in before.iter().filter(|c| measures(&c.measure)) {
            match cell.suppressed {
                None => {
                    published.insert(cell.group.clone());
                }
                Some(why) => {
                    reasons.entry(cell.group.clone()).or_insert(why);
                }
            }
        }
        group_sizes(&self.parents, counts)
            .into_keys()
            .filter(|g| is_placeholder_group(g) || !published.contains(g))
            .map(|g| {
                let why = reasons.get(&g).copied().unwrap_or(Suppressed::BelowMinimum);
                (g, why)
            })
            .collect()
    }

    /// The tag a unit's members get under `pattern`.
    fn tag(&self, pattern: &super::suppress::Cells, unit: &str) -> Option<Tag> {
        tag_in(pattern, &self.parents, unit, &self.organisation_id)
    }
}

/// A wave published again: its cells, and the new tag of each unit.
pub struct Republished {
    pub publication: Publication,
    /// Per response unit, its new tag (`None`: deleted).
    pub response_tags: BTreeMap<String, Option<Tag>>,
    /// Per participation unit, its new tag (`None`: dropped).
    pub participation_tags: BTreeMap<String, Option<Tag>>,
}

/// Publishes again with `k`. `responses` and `participation` are per unit
/// (see [`Units::unit`]); `before` are the cells of the latest publication.
pub fn republish(
    template: &Template,
    response_units: &Units,
    responses: &[(String, Response)],
    participation_units: &Units,
    participation_counts: &BTreeMap<String, (u32, u32)>,
    before: &[Before],
    k: u32,
) -> Republished {
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for (unit, _) in responses {
        *counts.entry(unit.clone()).or_default() += 1;
    }
    let answers = |m: &Measure| !matches!(m, Measure::Participation);
    let mut known = Known {
        pattern: response_units.unknown(&counts, before, answers),
        ..Known::default()
    };
    for cell in before {
        if let Some(why) = cell.suppressed {
            known
                .measures
                .entry(cell.measure.key())
                .or_default()
                .insert(cell.group.clone(), why);
        }
    }
    let mut publication = publish_answers(template, &response_units.parents, responses, k, &known);
    let response_tags = counts
        .keys()
        .map(|unit| (unit.clone(), response_units.tag(&publication.pattern, unit)))
        .collect();

    let invited: BTreeMap<String, u32> = participation_counts
        .iter()
        .map(|(unit, (invited, _))| (unit.clone(), *invited))
        .collect();
    let responded: BTreeMap<String, u32> = participation_counts
        .iter()
        .map(|(unit, (_, responded))| (unit.clone(), *responded))
        .collect();
    let already =
        participation_units.unknown(&invited, before, |m| matches!(m, Measure::Participation));
    let responded = group_sizes(&participation_units.parents, &responded);
    let mut cells = participation(
        &participation_units.parents,
        &invited,
        &responded,
        k,
        &already,
    );
    let invited_pattern =
        super::suppress::suppress_from(&participation_units.parents, &invited, k, &already);
    let participation_tags = invited
        .keys()
        .map(|unit| {
            (
                unit.clone(),
                participation_units.tag(&invited_pattern, unit),
            )
        })
        .collect();

    cells.append(&mut publication.cells);
    cells.retain(|cell| !is_placeholder_group(&cell.group));
    publication.cells = cells;
    Republished {
        publication,
        response_tags,
        participation_tags,
    }
}
