//! Small groups leak at rest: if only two people of a team answered, two
//! stored responses tagged with that team *are* their answers, whatever the
//! API hides. So when a wave closes, every response's team tag is coarsened
//! (DESIGN.md, invariant 1) to the groups the wave publishes.
//!
//! The rule: the wave's pattern of published groups is decided on the
//! responses per team (`crate::results::suppress`, the same call that
//! `crate::results::publish` starts from), and each team's responses are
//! tagged with the smallest published group around the team:
//! - its own members, when that group is published (`Scope::Team`);
//! - else the nearest published subtree above it, standing for what is
//!   left of that subtree after the published groups inside it
//!   (`Scope::Subtree`);
//! - else the rest of the organisation (`Scope::Organisation`, the
//!   organisation's id as `team_id`). If not even the organisation is
//!   published (fewer than k responses in all), none of them could ever be
//!   shown, and they are deleted.
//!
//! Each tag then holds the remainder of a published group, which the
//! suppression rules keep at 0 or at least k; and the stored responses
//! hold exactly the groups the API shows, so results can be computed again
//! from them when a pulse's k is raised.

use std::collections::{BTreeMap, HashMap};

use crate::results::suppress::{Cells, Group, suppress};

/// What a response's `team_id` stands for after the close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The team's own members.
    Team,
    /// Somewhere in the team's subtree, outside its published groups.
    Subtree,
    /// Somewhere in the organisation (`team_id` holds the organisation's id).
    Organisation,
}

impl Scope {
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Team, Self::Subtree, Self::Organisation]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Team => "team",
            Self::Subtree => "subtree",
            Self::Organisation => "organisation",
        }
    }
}

/// A response's tag after the close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub team_id: String,
    pub scope: Scope,
}

/// For each team, the tag its set gets (`None`: dropped).
pub type Tags = BTreeMap<String, Option<Tag>>;

/// For each team that `counts` holds responses of (its own members'), the
/// tag they get, or `None` when they are deleted. `parents` is the
/// organisation's team tree (team → parent); a tagged team missing from it
/// (deleted since) hangs directly under the organisation.
pub fn coarsen(
    parents: &HashMap<String, Option<String>>,
    organisation_id: &str,
    counts: &BTreeMap<String, usize>,
    k: usize,
) -> Tags {
    let parents: BTreeMap<String, Option<String>> = parents
        .iter()
        .map(|(team, parent)| (team.clone(), parent.clone()))
        .collect();
    let sizes = counts
        .iter()
        .map(|(team, n)| (team.clone(), u32::try_from(*n).unwrap_or(u32::MAX)))
        .collect();
    let pattern = suppress(
        &parents,
        &sizes,
        u32::try_from(k.max(1)).unwrap_or(u32::MAX),
    );
    let mut tags = Tags::new();
    for (team, n) in counts {
        if *n > 0 {
            tags.insert(
                team.clone(),
                tag_in(&pattern, &parents, team, organisation_id),
            );
        }
    }
    tags
}

/// The tag of `team`'s responses under `pattern`: the smallest published
/// group around the team, walking up `parents`; `None` when not even the
/// organisation is published. Teams whose id a pattern does not publish
/// (a recomputation's placeholders) are walked past like small teams.
pub fn tag_in(
    pattern: &Cells,
    parents: &BTreeMap<String, Option<String>>,
    team: &str,
    organisation_id: &str,
) -> Option<Tag> {
    let tag = |team_id: &str, scope| {
        Some(Tag {
            team_id: team_id.to_owned(),
            scope,
        })
    };
    if pattern.is_published(&Group::Team(team.to_owned())) {
        return tag(team, Scope::Team);
    }
    // Up the tree; a cycle (which the API cannot make) ends the walk.
    let mut at = Some(team);
    for _ in 0..=parents.len() {
        let Some(current) = at else { break };
        if pattern.is_published(&Group::Subtree(current.to_owned())) {
            return tag(current, Scope::Subtree);
        }
        at = parents.get(current).and_then(|p| p.as_deref());
    }
    if pattern.is_published(&Group::Organisation) {
        return tag(organisation_id, Scope::Organisation);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(team, parent)` pairs and `(team, responses)` pairs.
    fn run(
        tree: &[(&str, Option<&str>)],
        counts: &[(&str, usize)],
        k: usize,
    ) -> BTreeMap<String, Option<(String, Scope)>> {
        let parents = tree
            .iter()
            .map(|(t, p)| (t.to_string(), p.map(str::to_owned)))
            .collect();
        let counts = counts.iter().map(|(t, n)| (t.to_string(), *n)).collect();
        coarsen(&parents, "org", &counts, k)
            .into_iter()
            .map(|(t, tag)| (t, tag.map(|tag| (tag.team_id, tag.scope))))
            .collect()
    }

    fn tag(team: &str, scope: Scope) -> Option<(String, Scope)> {
        Some((team.to_owned(), scope))
    }

    /// Every tag holds 0 or at least k responses.
    fn assert_no_small_tag(
        result: &BTreeMap<String, Option<(String, Scope)>>,
        counts: &[(&str, usize)],
        k: usize,
    ) {
        let mut per_tag: BTreeMap<(String, &str), usize> = BTreeMap::new();
        for (team, n) in counts {
            if let Some(Some((id, scope))) = result.get(*team) {
                *per_tag.entry((id.clone(), scope.as_str())).or_default() += n;
            }
        }
        for (tag, n) in per_tag {
            assert!(n >= k, "{tag:?} holds {n} < {k}");
        }
    }

    #[test]
    fn teams_of_at_least_k_keep_their_tag() {
        let tree = [("a", None), ("b", Some("a"))];
        let counts = [("a", 5), ("b", 7)];
        let result = run(&tree, &counts, 5);
        assert_eq!(result["a"], tag("a", Scope::Team));
        assert_eq!(result["b"], tag("b", Scope::Team));
    }

    #[test]
    fn small_teams_pool_into_the_nearest_subtree_that_reaches_k() {
        // DESIGN.md's example: a parent of 12 whose children have 5 and 5
        // would expose its own 2; here children of 3 and 4 pool at the parent.
        let tree = [
            ("p", None),
            ("c1", Some("p")),
            ("c2", Some("p")),
            ("q", None),
        ];
        let counts = [("p", 6), ("c1", 3), ("c2", 4), ("q", 9)];
        let result = run(&tree, &counts, 5);
        assert_eq!(result["p"], tag("p", Scope::Team));
        assert_eq!(result["c1"], tag("p", Scope::Subtree));
        assert_eq!(result["c2"], tag("p", Scope::Subtree));
        assert_eq!(result["q"], tag("q", Scope::Team));
        assert_no_small_tag(&result, &counts, 5);
    }

    #[test]
    fn a_small_remainder_takes_the_smallest_published_set_with_it() {
        // The parent's own 2: alone they would be "the parent's subtree
        // minus its children", so the smaller child is not published.
        let tree = [("p", None), ("c1", Some("p")), ("c2", Some("p"))];
        let counts = [("p", 2), ("c1", 5), ("c2", 6)];
        let result = run(&tree, &counts, 5);
        assert_eq!(result["p"], tag("p", Scope::Subtree));
        assert_eq!(
            result["c1"],
            tag("p", Scope::Subtree),
            "the smallest child is hidden with it"
        );
        assert_eq!(result["c2"], tag("c2", Scope::Team));
        assert_no_small_tag(&result, &counts, 5);
    }

    #[test]
    fn a_subtree_pool_can_join_the_remainder_too() {
        // c's own 3 and d's 4 pool at c's subtree; q's 4 are left over,
        // and that pool is the smallest placed set.
        let tree = [("p", None), ("c", Some("p")), ("d", Some("c")), ("q", None)];
        let counts = [("c", 3), ("d", 4), ("q", 4)];
        let result = run(&tree, &counts, 5);
        assert_eq!(result["q"], tag("org", Scope::Organisation));
        assert_eq!(result["c"], tag("org", Scope::Organisation));
        assert_eq!(result["d"], tag("org", Scope::Organisation));
        assert_no_small_tag(&result, &counts, 5);
    }

    #[test]
    fn a_wave_with_fewer_than_k_responses_keeps_none() {
        let tree = [("p", None), ("c", Some("p"))];
        let counts = [("p", 1), ("c", 3)];
        let result = run(&tree, &counts, 5);
        assert_eq!(result["p"], None);
        assert_eq!(result["c"], None);
    }

    #[test]
    fn a_deleted_team_hangs_under_the_organisation() {
        let tree = [("p", None)];
        let counts = [("p", 5), ("gone", 2), ("gone2", 3)];
        let result = run(&tree, &counts, 5);
        assert_eq!(result["p"], tag("p", Scope::Team));
        assert_eq!(result["gone"], tag("org", Scope::Organisation));
        assert_eq!(result["gone2"], tag("org", Scope::Organisation));
    }

    #[test]
    fn teams_in_a_cycle_are_not_lost() {
        let tree = [("a", Some("b")), ("b", Some("a")), ("c", None)];
        let counts = [("a", 2), ("b", 2), ("c", 5)];
        let result = run(&tree, &counts, 5);
        assert!(result.values().all(Option::is_some), "{result:?}");
        assert_no_small_tag(&result, &counts, 5);
    }

    #[test]
    fn every_tree_and_count_ends_with_no_small_tag() {
        for (tree, counts) in crate::sweep::small_trees(7, 2_000, 6) {
            let counts: Vec<(&str, usize)> =
                counts.iter().map(|(t, n)| (*t, *n as usize)).collect();
            let total: usize = counts.iter().map(|c| c.1).sum();
            for k in [3, 5] {
                let result = run(&tree, &counts, k);
                assert_no_small_tag(&result, &counts, k);
                let kept: usize = counts
                    .iter()
                    .filter(|(t, _)| matches!(result.get(*t), Some(Some(_))))
                    .map(|c| c.1)
                    .sum();
                assert_eq!(
                    kept,
                    if total >= k { total } else { 0 },
                    "{tree:?} {counts:?}"
                );
            }
        }
    }
}
