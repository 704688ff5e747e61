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

use super::publish::{
    Cell, CommentFigures, Figures, Known, Measure, Publication, comment_minimum,
    participation_cells, publish_answers,
};
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
    /// A published comment cell's texts: sealing keeps no comment in the
    /// stored responses, so these are all there is to publish again.
    pub comments: Option<CommentFigures>,
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
    // Comments come from the cells before, not from the stored responses.
    publication
        .cells
        .retain(|cell| !matches!(cell.measure, Measure::Comments(_)));
    for question in template.comment_questions() {
        let again = comments_again(
            teams_of(response_units),
            &response_units.organisation_id,
            &question.id,
            before,
            &publication.pattern,
            k,
        );
        publication.cells.extend(again);
    }
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
    let invited_pattern =
        super::suppress::suppress_from(&participation_units.parents, &invited, k, &already);
    let mut cells = participation_cells(&invited_pattern, &responded);
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

fn teams_of(units: &Units) -> BTreeMap<String, Option<String>> {
    units
        .parents
        .iter()
        .filter(|(team, _)| !is_placeholder(team))
        .map(|(team, parent)| (team.clone(), parent.clone()))
        .collect()
}

/// A comment question's cells with `k`, from its cells before: each
/// published group before is a unit of what it held beyond the published
/// groups inside it (0 or at least the old minimum); the rules run on
/// those with max(10, k), and a cell still published shows the texts it
/// showed before (the same group, the same people).
fn comments_again(
    teams: BTreeMap<String, Option<String>>,
    organisation_id: &str,
    question_id: &str,
    before: &[Before],
    pattern: &super::suppress::Cells,
    k: u32,
) -> Vec<Cell> {
    let measure = Measure::Comments(question_id.to_owned());
    let mine: Vec<&Before> = before.iter().filter(|b| b.measure == measure).collect();
    let published: Vec<(&Group, &CommentFigures)> = mine
        .iter()
        .filter_map(|b| Some((&b.group, b.comments.as_ref()?)))
        // A leaf's subtree is its team: one group.
        .filter(|(g, _)| !matches!(g, Group::Subtree(t) if !teams.values().any(|p| p.as_deref() == Some(t.as_str()))))
        .collect();
    let members = |group: &Group| -> BTreeSet<String> {
        match group {
            Group::Organisation => teams.keys().cloned().collect(),
            Group::Team(t) => BTreeSet::from([format!("own:{t}")]),
            Group::Subtree(top) => teams
                .keys()
                .filter(|t| {
                    let mut at = Some(t.as_str());
                    for _ in 0..=teams.len() {
                        let Some(current) = at else { return false };
                        if current == top {
                            return true;
                        }
                        at = teams.get(current).and_then(|p| p.as_deref());
                    }
                    false
                })
                .cloned()
                .collect(),
        }
    };
    // Team(X) is inside Subtree(Y) when X is in Y's subtree.
    let inside = |inner: &Group, outer: &Group| -> bool {
        if inner == outer {
            return false;
        }
        let outer_teams = members(outer);
        match inner {
            Group::Organisation => false,
            Group::Team(t) => matches!(outer, Group::Organisation) || outer_teams.contains(t),
            Group::Subtree(_) => {
                let inner_teams = members(inner);
                !matches!(outer, Group::Team(_)) && inner_teams.is_subset(&outer_teams)
            }
        }
    };
    let mut units = Units::new(&teams, organisation_id);
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for (group, figures) in &published {
        let maximal: u32 = published
            .iter()
            .filter(|(h, _)| inside(h, group))
            .filter(|(h, _)| {
                !published
                    .iter()
                    .any(|(m, _)| inside(h, m) && inside(m, group))
            })
            .map(|(_, f)| f.n)
            .sum();
        let tag = match group {
            Group::Team(t) => Tag {
                team_id: t.clone(),
                scope: Scope::Team,
            },
            Group::Subtree(t) => Tag {
                team_id: t.clone(),
                scope: Scope::Subtree,
            },
            Group::Organisation => Tag {
                team_id: organisation_id.to_owned(),
                scope: Scope::Organisation,
            },
        };
        let unit = units.unit(&tag);
        *counts.entry(unit).or_default() += figures.n.saturating_sub(maximal);
    }
    let old: Vec<Before> = mine.iter().map(|b| (*b).clone()).collect();
    let mut already = units.unknown(&counts, &old, |m| *m == measure);
    for (group, why) in &pattern.suppressed {
        already.entry(group.clone()).or_insert(*why);
    }
    for b in &mine {
        if let Some(why) = b.suppressed {
            already.entry(b.group.clone()).or_insert(why);
        }
    }
    let decided =
        super::suppress::suppress_from(&units.parents, &counts, comment_minimum(k), &already);
    let texts: BTreeMap<&Group, &CommentFigures> = mine
        .iter()
        .filter_map(|b| Some((&b.group, b.comments.as_ref()?)))
        .collect();
    decided
        .sizes
        .keys()
        .filter(|g| !is_placeholder_group(g))
        .map(|group| {
            let outcome = match (decided.suppressed.get(group), texts.get(group)) {
                (None, Some(figures)) => {
                    let mut comments = figures.comments.clone();
                    rand::seq::SliceRandom::shuffle(comments.as_mut_slice(), &mut rand::rng());
                    Ok(Figures::Comments(CommentFigures {
                        n: figures.n,
                        comments,
                    }))
                }
                (Some(why), _) => Err(*why),
                (None, None) => Err(Suppressed::BelowMinimum),
            };
            Cell {
                group: group.clone(),
                measure: measure.clone(),
                outcome,
            }
        })
        .collect()
}
