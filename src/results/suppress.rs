//! Which groups' numbers may be published for one question of one wave
//! (DESIGN.md, invariants 2 and 3).
//!
//! The groups are every team's own members ([`Group::Team`]), every team's
//! subtree ([`Group::Subtree`]) and the organisation ([`Group::Organisation`]).
//! They nest (a laminar family): a subtree holds its team and its children's
//! subtrees. A group's size here is the number of responses that answered
//! the question.
//!
//! 1. **Below the minimum**: a group with fewer than k is suppressed.
//! 2. **Complementary**: for every published group G and every choice of
//!    published groups inside G that do not overlap, what remains of G is 0
//!    or at least k — otherwise those few could be computed by subtraction
//!    (a parent of 12 with published children of 5 and 5 exposes 2). The
//!    check works out, per group, every remainder such a choice can leave
//!    (bottom-up over the tree, a sumset of the children's), so no
//!    combination is missed; only remainders under k are told apart, the
//!    rest count as one.
//! 3. Where a remainder is too small, the smallest published group inside G
//!    (fewest responses, then the deepest, then by id) is suppressed too,
//!    and the check runs again, until nothing is too small. Every step
//!    hides one more group, so it ends; it is deterministic; and hiding the
//!    smallest group first keeps the most responses in published cells.
//!    (A suppressed group's own published parts stay published: hiding a
//!    group adds its size to its parent's remainder, which only helps.)
//!
//! The same rule serves comments with max(10, k).
//!
//! Cost: O(k²) per team per round of step 3, whatever the group sizes; a
//! round per group hidden in step 3.

use std::collections::BTreeMap;

use crate::org::teams::Hierarchy;

/// A group of one wave.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// A team's own members.
    Team(String),
    /// A team and everything below it.
    Subtree(String),
    Organisation,
}

/// Why a group's cell is not published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed {
    /// Fewer than k.
    BelowMinimum,
    /// Publishing it would let a smaller number be computed by subtraction.
    Complementary,
}

/// For one question: each group's size and whether it is suppressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cells {
    pub sizes: BTreeMap<Group, u32>,
    pub suppressed: BTreeMap<Group, Suppressed>,
}

impl Cells {
    pub fn is_published(&self, group: &Group) -> bool {
        self.sizes.contains_key(group) && !self.suppressed.contains_key(group)
    }
}

/// Decides the cells of one question. `parents` is the team tree (team →
/// parent; a parent outside it makes a top-level team, and so does a
/// counted team missing from it), `counts` each team's own responses to
/// the question (missing: 0), `k` the minimum.
pub fn suppress(
    parents: &BTreeMap<String, Option<String>>,
    counts: &BTreeMap<String, u32>,
    k: u32,
) -> Cells {
    suppress_from(parents, counts, k, &BTreeMap::new())
}

/// As [`suppress`], with `already` suppressed before anything else (a
/// question's cells start from the wave's: see `super::publish`). Entries
/// for groups the tree does not have are ignored.
pub fn suppress_from(
    parents: &BTreeMap<String, Option<String>>,
    counts: &BTreeMap<String, u32>,
    k: u32,
    already: &BTreeMap<Group, Suppressed>,
) -> Cells {
    let tree = tree_of(parents, counts.keys());
    let mut sizes = BTreeMap::new();
    let mut subtree = BTreeMap::new();
    for team in tree.post_order() {
        let own = counts.get(team).copied().unwrap_or(0);
        let below: u32 = tree.children(Some(team)).map(|c| subtree[c]).sum();
        subtree.insert(team, own + below);
        sizes.insert(Group::Team(team.to_owned()), own);
        // A leaf's subtree is its team: one group, decided once (below).
        if !tree.is_leaf(team) {
            sizes.insert(Group::Subtree(team.to_owned()), own + below);
        }
    }
    let total: u32 = tree.children(None).map(|t| subtree[t]).sum();
    sizes.insert(Group::Organisation, total);

    // Too small is the first reason to give, whatever else holds.
    let mut suppressed: BTreeMap<Group, Suppressed> = sizes
        .iter()
        .filter(|(_, n)| **n < k)
        .map(|(g, _)| (g.clone(), Suppressed::BelowMinimum))
        .collect();
    for (group, why) in already {
        if sizes.contains_key(group) {
            suppressed.entry(group.clone()).or_insert(*why);
        }
    }
    settle(&tree, &sizes, &mut suppressed, k);
    for team in tree.post_order().into_iter().filter(|t| tree.is_leaf(t)) {
        let as_team = Group::Team(team.to_owned());
        let as_subtree = Group::Subtree(team.to_owned());
        sizes.insert(as_subtree.clone(), sizes[&as_team]);
        if let Some(why) = suppressed.get(&as_team).copied() {
            suppressed.insert(as_subtree, why);
        }
    }
    Cells { sizes, suppressed }
}

/// Every group's size, with nothing suppressed.
pub fn group_sizes(
    parents: &BTreeMap<String, Option<String>>,
    counts: &BTreeMap<String, u32>,
) -> BTreeMap<Group, u32> {
    // With k = 0 no size is too small and no remainder is.
    suppress(parents, counts, 0).sizes
}

/// The tree of `parents`, where a `counted` team missing from it (deleted
/// since) and a team in a parent cycle (which the API cannot make) are
/// top-level, so that no response falls outside the tree.
pub fn tree_of<'a>(
    parents: &'a BTreeMap<String, Option<String>>,
    counted: impl Iterator<Item = &'a String>,
) -> Hierarchy<'a> {
    let mut links: BTreeMap<&str, Option<&str>> = parents
        .iter()
        .map(|(t, p)| (t.as_str(), p.as_deref()))
        .collect();
    for team in counted {
        links.entry(team.as_str()).or_insert(None);
    }
    let reached: std::collections::BTreeSet<&str> = Hierarchy::new(links.clone())
        .post_order()
        .into_iter()
        .collect();
    for (team, parent) in &mut links {
        if !reached.contains(team) {
            *parent = None;
        }
    }
    Hierarchy::new(links)
}

/// Step 3 in one bottom-up pass. Hiding a group inside G only ever turns a
/// remainder below G from 0 into its size or its own remainders (0 or at
/// least k), so no group below G can break the rule anew: only G and the
/// groups above it. So each group is settled — its smallest published
/// group inside hidden until its remainders are 0 or at least k — before
/// the walk moves up, which makes the same choices as starting again from
/// the bottom after every hidden group, in one pass instead of one per
/// hidden group.
fn settle<'a>(
    tree: &Hierarchy<'a>,
    sizes: &BTreeMap<Group, u32>,
    suppressed: &mut BTreeMap<Group, Suppressed>,
    k: u32,
) {
    let order: Vec<&'a str> = tree.post_order();
    let mut left: BTreeMap<&'a str, Remainders> = BTreeMap::new();
    let too_small =
        |group: &Group, inside: &Remainders, suppressed: &BTreeMap<Group, Suppressed>| {
            !suppressed.contains_key(group) && sizes[group] > 0 && inside.too_small()
        };
    // Everything below `top` (all when `None`) computed again.
    let refresh = |top: Option<&str>,
                   suppressed: &BTreeMap<Group, Suppressed>,
                   left: &mut BTreeMap<&'a str, Remainders>| {
        let below: Option<std::collections::HashSet<&'a str>> =
            top.map(|t| tree.subtree(t).into_iter().filter(|d| *d != t).collect());
        for &team in &order {
            if below.as_ref().is_none_or(|b| b.contains(team)) && left.contains_key(team) {
                let inside = inside_of(tree, sizes, suppressed, k, team, left);
                left.insert(team, with_own_group(tree, suppressed, team, inside));
            }
        }
    };
    for &team in &order {
        let group = Group::Subtree(team.to_owned());
        loop {
            let inside = inside_of(tree, sizes, suppressed, k, team, &left);
            if tree.is_leaf(team) || !too_small(&group, &inside, suppressed) {
                left.insert(team, with_own_group(tree, suppressed, team, inside));
                break;
            }
            let hide = smallest_inside(tree, sizes, suppressed, &group);
            suppressed.insert(hide, Suppressed::Complementary);
            refresh(Some(team), suppressed, &mut left);
        }
    }
    loop {
        let mut inside = Remainders::just(0, k);
        for top in tree.children(None) {
            inside = inside.plus(&left[top]);
        }
        if !too_small(&Group::Organisation, &inside, suppressed) {
            break;
        }
        let hide = smallest_inside(tree, sizes, suppressed, &Group::Organisation);
        suppressed.insert(hide, Suppressed::Complementary);
        refresh(None, suppressed, &mut left);
    }
}

/// What `team`'s subtree can be left with using published groups strictly
/// inside it: its own members (none if their group is taken) and each
/// child's subtree.
fn inside_of(
    tree: &Hierarchy<'_>,
    sizes: &BTreeMap<Group, u32>,
    suppressed: &BTreeMap<Group, Suppressed>,
    k: u32,
    team: &str,
    left: &BTreeMap<&str, Remainders>,
) -> Remainders {
    let as_team = Group::Team(team.to_owned());
    let mut inside = Remainders::just(sizes[&as_team], k);
    if !suppressed.contains_key(&as_team) {
        inside.add(0);
    }
    if tree.is_leaf(team) {
        return inside;
    }
    for child in tree.children(Some(team)) {
        inside = inside.plus(&left[child]);
    }
    inside
}

/// A subtree's remainders with its own group: 0 too when it is published
/// (a leaf's subtree is its team, already counted).
fn with_own_group(
    tree: &Hierarchy<'_>,
    suppressed: &BTreeMap<Group, Suppressed>,
    team: &str,
    mut inside: Remainders,
) -> Remainders {
    if !tree.is_leaf(team) && !suppressed.contains_key(&Group::Subtree(team.to_owned())) {
        inside.add(0);
    }
    inside
}

/// The next group to hide, if some published group's remainder is too
/// small: the smallest published group inside the first such group. The
/// restarting form of [`settle`], kept to check that both choose alike.
#[cfg(test)]
fn too_revealing(
    tree: &Hierarchy<'_>,
    sizes: &BTreeMap<Group, u32>,
    suppressed: &BTreeMap<Group, Suppressed>,
    k: u32,
) -> Option<Group> {
    let published = |g: &Group| !suppressed.contains_key(g);
    // For each team: every remainder its subtree can be left with by
    // taking away published groups that do not overlap, the subtree group
    // itself included.
    let mut left: BTreeMap<&str, Remainders> = BTreeMap::new();
    let check = |group: Group, inside: &Remainders| -> Option<Group> {
        if !published(&group) || sizes[&group] == 0 {
            return None;
        }
        inside
            .too_small()
            .then(|| smallest_inside(tree, sizes, suppressed, &group))
    };
    for team in tree.post_order() {
        let as_team = Group::Team(team.to_owned());
        let own = sizes[&as_team];
        // The team's own members: all left, or none if their group is taken.
        let mut inside = Remainders::just(own, k);
        if published(&as_team) {
            inside.add(0);
        }
        if tree.is_leaf(team) {
            left.insert(team, inside);
            continue;
        }
        for child in tree.children(Some(team)) {
            inside = inside.plus(&left[child]);
        }
        let group = Group::Subtree(team.to_owned());
        let publish_subtree = published(&group);
        if let Some(hide) = check(group, &inside) {
            return Some(hide);
        }
        if publish_subtree {
            inside.add(0);
        }
        left.insert(team, inside);
    }
    let mut inside = Remainders::just(0, k);
    for top in tree.children(None) {
        inside = inside.plus(&left[top]);
    }
    check(Group::Organisation, &inside)
}

/// The smallest published group strictly inside `outer` (fewest responses,
/// then deepest, then by id), or `outer` itself when there is none.
fn smallest_inside(
    tree: &Hierarchy<'_>,
    sizes: &BTreeMap<Group, u32>,
    suppressed: &BTreeMap<Group, Suppressed>,
    outer: &Group,
) -> Group {
    let teams: Vec<&str> = match outer {
        Group::Organisation => tree.post_order(),
        Group::Subtree(team) => tree.subtree(team),
        Group::Team(_) => Vec::new(),
    };
    let mut candidates: Vec<(u32, std::cmp::Reverse<usize>, Group)> = Vec::new();
    for team in teams {
        for group in [
            Group::Team(team.to_owned()),
            Group::Subtree(team.to_owned()),
        ] {
            // A leaf's subtree is its team, decided with it.
            if &group == outer || suppressed.contains_key(&group) || !sizes.contains_key(&group) {
                continue;
            }
            candidates.push((sizes[&group], std::cmp::Reverse(tree.depth(team)), group));
        }
    }
    candidates.sort();
    candidates
        .into_iter()
        .next()
        .map_or_else(|| outer.clone(), |(_, _, g)| g)
}

/// The remainders a group can be left with, as far as the rule cares:
/// each of 0 to k − 1 exactly, and "k or more" as one (adding members to a
/// remainder of at least k never makes it smaller). Kept this small, a
/// check costs O(k²) per team, however many people a group has.
#[derive(Debug, Clone)]
struct Remainders {
    small: Vec<bool>,
    large: bool,
}

impl Remainders {
    fn just(n: u32, k: u32) -> Self {
        let mut out = Self {
            small: vec![false; k as usize],
            large: false,
        };
        out.add(n);
        out
    }

    fn add(&mut self, n: u32) {
        match self.small.get_mut(n as usize) {
            Some(slot) => *slot = true,
            None => self.large = true,
        }
    }

    /// What one remainder of each can leave together.
    fn plus(&self, other: &Self) -> Self {
        let k = self.small.len();
        let mut out = Self {
            small: vec![false; k],
            large: (self.large && other.any()) || (other.large && self.any()),
        };
        for (a, _) in self.small.iter().enumerate().filter(|(_, x)| **x) {
            for (b, _) in other.small.iter().enumerate().filter(|(_, x)| **x) {
                match out.small.get_mut(a + b) {
                    Some(slot) => *slot = true,
                    None => out.large = true,
                }
            }
        }
        out
    }

    fn any(&self) -> bool {
        self.large || self.small.contains(&true)
    }

    /// Some remainder from 1 to k − 1.
    fn too_small(&self) -> bool {
        self.small.iter().skip(1).any(|x| *x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(tree: &[(&str, Option<&str>)], counts: &[(&str, u32)], k: u32) -> Cells {
        let parents = tree
            .iter()
            .map(|(t, p)| ((*t).to_owned(), p.map(str::to_owned)))
            .collect();
        let counts = counts.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect();
        suppress(&parents, &counts, k)
    }

    fn team(id: &str) -> Group {
        Group::Team(id.to_owned())
    }

    fn subtree(id: &str) -> Group {
        Group::Subtree(id.to_owned())
    }

    /// Checked by brute force, apart from the bitsets above: every
    /// published cell has at least k, and for every published group and
    /// every set of non-overlapping published groups inside it, what
    /// remains is 0 or at least k.
    fn assert_safe(tree: &[(&str, Option<&str>)], counts: &[(&str, u32)], k: u32, cells: &Cells) {
        let index: BTreeMap<&str, usize> =
            tree.iter().enumerate().map(|(i, (t, _))| (*t, i)).collect();
        let own = |t: &str| counts.iter().find(|(c, _)| *c == t).map_or(0, |(_, n)| *n);
        // Each group as a set of teams (a bitmask) and its size.
        let members = |group: &Group| -> u32 {
            match group {
                Group::Organisation => (1 << tree.len()) - 1,
                Group::Team(t) => 1 << index[t.as_str()],
                Group::Subtree(t) => {
                    let mut mask = 0;
                    for (i, (member, _)) in tree.iter().enumerate() {
                        let mut at = Some(*member);
                        while let Some(x) = at {
                            if x == t {
                                mask |= 1 << i;
                                break;
                            }
                            at = tree.iter().find(|(c, _)| *c == x).and_then(|(_, p)| *p);
                        }
                    }
                    mask
                }
            }
        };
        let size = |mask: u32| -> u32 {
            tree.iter()
                .enumerate()
                .filter(|(i, _)| mask >> i & 1 == 1)
                .map(|(_, (t, _))| own(t))
                .sum()
        };
        let published: Vec<(Group, u32)> = cells
            .sizes
            .keys()
            .filter(|g| cells.is_published(g))
            .map(|g| (g.clone(), members(g)))
            .collect();
        for (group, mask) in &published {
            assert!(size(*mask) >= k, "{group:?} published with {}", size(*mask));
            assert_eq!(cells.sizes[group], size(*mask), "{group:?}");
            let inside: Vec<u32> = published
                .iter()
                .filter(|(g, m)| g != group && m & !mask == 0)
                .map(|(_, m)| *m)
                .collect();
            for family in 0u32..(1 << inside.len()) {
                let mut union = 0;
                let mut disjoint = true;
                for (i, m) in inside.iter().enumerate() {
                    if family >> i & 1 == 1 {
                        disjoint &= union & m == 0;
                        union |= m;
                    }
                }
                let rest = size(*mask) - size(union);
                assert!(
                    !disjoint || rest == 0 || rest >= k,
                    "{group:?} minus {union:b} leaves {rest}: {cells:?}"
                );
            }
        }
    }

    #[test]
    fn a_group_below_k_is_suppressed_as_such() {
        let tree = [("a", None)];
        let cells = run(&tree, &[("a", 4)], 5);
        assert_eq!(cells.suppressed[&team("a")], Suppressed::BelowMinimum);
        assert_eq!(cells.suppressed[&subtree("a")], Suppressed::BelowMinimum);
        assert_eq!(
            cells.suppressed[&Group::Organisation],
            Suppressed::BelowMinimum
        );
        let cells = run(&tree, &[("a", 5)], 5);
        assert!(cells.is_published(&team("a")) && cells.is_published(&Group::Organisation));
    }

    #[test]
    fn a_parent_one_larger_than_its_only_published_child_hides_one() {
        // p has 1 of its own and a child c of 6: subtree(p) − c = 1.
        let tree = [("p", None), ("c", Some("p"))];
        let counts = [("p", 1), ("c", 6)];
        let cells = run(&tree, &counts, 5);
        assert_safe(&tree, &counts, 5, &cells);
        assert!(
            !cells.is_published(&team("c")) || !cells.is_published(&subtree("p")),
            "{cells:?}"
        );
    }

    #[test]
    fn a_parent_of_12_with_children_5_5_2_hides_a_child() {
        // DESIGN.md: the residual rule, not pairwise checks.
        let tree = [
            ("p", None),
            ("a", Some("p")),
            ("b", Some("p")),
            ("c", Some("p")),
        ];
        let counts = [("a", 5), ("b", 5), ("c", 2)];
        let cells = run(&tree, &counts, 5);
        assert_safe(&tree, &counts, 5, &cells);
        assert_eq!(cells.suppressed[&team("c")], Suppressed::BelowMinimum);
        assert!(
            cells.is_published(&subtree("p")),
            "the parent stays: {cells:?}"
        );
        assert_eq!(
            cells.suppressed[&team("a")],
            Suppressed::Complementary,
            "the smallest, by id"
        );
        assert_eq!(cells.suppressed[&subtree("a")], Suppressed::Complementary);
        assert!(cells.is_published(&team("b")));
    }

    #[test]
    fn settling_in_one_pass_hides_what_restarting_hides() {
        for (tree, counts) in crate::sweep::small_trees(11, 3_000, 7) {
            for k in [3, 5] {
                let parents: BTreeMap<String, Option<String>> = tree
                    .iter()
                    .map(|(t, p)| (t.to_string(), p.map(str::to_owned)))
                    .collect();
                let sizes_in: BTreeMap<String, u32> =
                    counts.iter().map(|(t, n)| (t.to_string(), *n)).collect();
                let settled = suppress(&parents, &sizes_in, k);
                // The same start, then the restarting loop.
                let hierarchy = tree_of(&parents, sizes_in.keys());
                let mut reference: BTreeMap<Group, Suppressed> = settled
                    .sizes
                    .iter()
                    .filter(|(_, n)| **n < k)
                    .map(|(g, _)| (g.clone(), Suppressed::BelowMinimum))
                    .filter(|(g, _)| match g {
                        Group::Subtree(t) => !hierarchy.is_leaf(t),
                        _ => true,
                    })
                    .collect();
                let mut sizes = settled.sizes.clone();
                sizes.retain(|g, _| match g {
                    Group::Subtree(t) => !hierarchy.is_leaf(t),
                    _ => true,
                });
                while let Some(group) = too_revealing(&hierarchy, &sizes, &reference, k) {
                    reference.insert(group, Suppressed::Complementary);
                }
                let mut expected = reference.clone();
                for (g, why) in &reference {
                    if let Group::Team(t) = g
                        && hierarchy.is_leaf(t)
                    {
                        expected.insert(Group::Subtree(t.clone()), *why);
                    }
                }
                assert_eq!(settled.suppressed, expected, "{tree:?} {counts:?} k={k}");
            }
        }
    }

    #[test]
    fn every_small_tree_ends_safe() {
        for (tree, counts) in crate::sweep::small_trees(11, 3_000, 7) {
            for k in [3, 5] {
                let cells = run(&tree, &counts, k);
                assert_safe(&tree, &counts, k, &cells);
            }
        }
    }
}
