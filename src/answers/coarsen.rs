//! Small groups leak at rest: if only two people of a team answered, two
//! stored responses tagged with that team *are* their answers, whatever the
//! API hides. So when a wave closes, every response's team tag is coarsened
//! until no tag holds fewer than k responses (DESIGN.md, invariant 1).
//!
//! The rule, bottom-up over the team tree, deterministic:
//! - A team whose own members gave at least k responses keeps them, tagged
//!   with the team (`Scope::Team`).
//! - Smaller sets are pooled upwards: each team gathers the small sets of
//!   its descendants that are still unplaced, plus its own if it is small.
//!   Where such a pool reaches k, every response in it is tagged with that
//!   team's subtree (`Scope::Subtree`): the smallest enclosing group that
//!   covers it with at least k.
//! - What is still pooled at the top is tagged with the organisation
//!   (`Scope::Organisation`). If that pool is non-empty but below k, it
//!   would single out the few responses outside every placed set, so the
//!   smallest placed sets (a team's own, or a subtree's pool; fewest
//!   responses first, then team id) join it until it reaches k. If even all
//!   responses of the wave together are fewer than k, none of them could
//!   ever be shown, and they are deleted.
//!
//! Afterwards every tag holds 0 or at least k responses, and because the
//! tags partition the wave's responses, so does every set that can be
//! formed from them by adding and subtracting tags.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::org::teams::Hierarchy;

/// What a response's `team_id` stands for after the close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The team's own members.
    Team,
    /// Somewhere in the team's subtree.
    Subtree,
    /// Somewhere in the organisation (`team_id` holds the organisation's id).
    Organisation,
}

impl Scope {
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
    let k = k.max(1);
    // Tagged teams missing from the tree (deleted since) are top-level.
    let tree = Hierarchy::new(
        parents
            .iter()
            .map(|(team, parent)| (team.as_str(), parent.as_deref()))
            .chain(
                counts
                    .keys()
                    .filter(|team| !parents.contains_key(*team))
                    .map(|team| (team.as_str(), None)),
            ),
    );
    let mut tags = Tags::new();
    let tag = |team_id: &str, scope| {
        Some(Tag {
            team_id: team_id.to_owned(),
            scope,
        })
    };
    // Each set tagged so far, and per team the small sets still unplaced
    // in its subtree (fewer than k together).
    let mut placed: Vec<Placed<'_>> = Vec::new();
    let mut pools: BTreeMap<&str, Vec<(&str, usize)>> = BTreeMap::new();
    let order = tree.post_order();
    for &team in &order {
        let mut pool: Vec<(&str, usize)> = tree
            .children(Some(team))
            .flat_map(|child| pools.remove(child).unwrap_or_default())
            .collect();
        match counts.get(team).copied().unwrap_or(0) {
            0 => {}
            own if own >= k => {
                tags.insert(team.to_owned(), tag(team, Scope::Team));
                placed.push(Placed {
                    at: team,
                    members: vec![(team, own)],
                    total: own,
                });
            }
            own => pool.push((team, own)),
        }
        let total = pool.iter().map(|(_, n)| n).sum::<usize>();
        if total >= k {
            for (small, _) in &pool {
                tags.insert((*small).to_owned(), tag(team, Scope::Subtree));
            }
            placed.push(Placed {
                at: team,
                members: std::mem::take(&mut pool),
                total,
            });
        }
        pools.insert(team, pool);
    }
    let mut pool: Vec<(&str, usize)> = tree
        .children(None)
        .flat_map(|top| pools.remove(top).unwrap_or_default())
        .collect();
    // Teams in a parent cycle (the API cannot make one) hang from no root:
    // theirs join the top pool rather than being lost.
    let reached: BTreeSet<&str> = order.into_iter().collect();
    for (team, n) in counts {
        if *n > 0 && !reached.contains(team.as_str()) {
            pool.push((team.as_str(), *n));
        }
    }
    let mut total: usize = pool.iter().map(|(_, n)| n).sum();
    if total > 0 && total < k {
        // The leftovers would be told apart as "not in any placed set":
        // the smallest placed sets join them.
        placed.sort_by(|a, b| a.total.cmp(&b.total).then_with(|| a.at.cmp(b.at)));
        for set in placed {
            if total >= k {
                break;
            }
            total += set.total;
            pool.extend(set.members);
        }
    }
    let organisation = if total >= k {
        tag(organisation_id, Scope::Organisation)
    } else {
        None
    };
    for (team, _) in pool {
        tags.insert(team.to_owned(), organisation.clone());
    }
    tags
}

/// Responses of `members` (their own teams' sets), tagged at team `at`.
struct Placed<'a> {
    at: &'a str,
    members: Vec<(&'a str, usize)>,
    total: usize,
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
    fn a_small_remainder_at_the_top_takes_the_smallest_kept_sets_with_it() {
        // The parent's own 2 and nothing else small: alone they would be
        // "the parent's subtree minus its children".
        let tree = [("p", None), ("c1", Some("p")), ("c2", Some("p"))];
        let counts = [("p", 2), ("c1", 5), ("c2", 6)];
        let result = run(&tree, &counts, 5);
        assert_eq!(result["p"], tag("org", Scope::Organisation));
        assert_eq!(
            result["c1"],
            tag("org", Scope::Organisation),
            "the smallest kept set joins"
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
