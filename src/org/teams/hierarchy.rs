//! The team tree as bare parent links, children in id order: for walks
//! whose outcome must not depend on hash order (what a closing wave stores,
//! which cells are published). [`super::TeamTree`] is the one for names
//! and paths.

use std::collections::{BTreeMap, BTreeSet};

pub struct Hierarchy<'a> {
    children: BTreeMap<Option<&'a str>, BTreeSet<&'a str>>,
    parent: BTreeMap<&'a str, Option<&'a str>>,
}

impl<'a> Hierarchy<'a> {
    /// From (team, parent) pairs; a parent that is not itself among the
    /// teams makes a top-level team.
    pub fn new(links: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Self {
        let links: BTreeMap<&str, Option<&str>> = links.into_iter().collect();
        let mut children: BTreeMap<Option<&str>, BTreeSet<&str>> = BTreeMap::new();
        let mut parent = BTreeMap::new();
        for (&team, &up) in &links {
            let up = up.filter(|p| links.contains_key(p));
            children.entry(up).or_default().insert(team);
            parent.insert(team, up);
        }
        Self { children, parent }
    }

    pub fn is_leaf(&self, team: &'a str) -> bool {
        self.children(Some(team)).next().is_none()
    }

    /// The teams directly under `of` (`None`: the top-level teams).
    pub fn children(&self, of: Option<&'a str>) -> impl Iterator<Item = &'a str> + '_ {
        self.children.get(&of).into_iter().flatten().copied()
    }

    /// Every team reachable from the top, children before parents. Teams
    /// in a parent cycle (which the API cannot make) are not reachable.
    pub fn post_order(&self) -> Vec<&'a str> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for top in self.children(None) {
            self.walk(top, &mut out, &mut seen);
        }
        out
    }

    /// `team` and everything below it, children first.
    pub fn subtree(&self, team: &str) -> Vec<&'a str> {
        let mut out = Vec::new();
        if let Some((&team, _)) = self.parent.get_key_value(team) {
            self.walk(team, &mut out, &mut BTreeSet::new());
        }
        out
    }

    /// How many ancestors `team` has.
    pub fn depth(&self, team: &str) -> usize {
        let mut depth = 0;
        let mut at = self.parent.get(team).copied().flatten();
        while let Some(up) = at {
            depth += 1;
            at = self.parent.get(up).copied().flatten();
            if depth > self.parent.len() {
                break;
            }
        }
        depth
    }

    fn walk(&self, team: &'a str, out: &mut Vec<&'a str>, seen: &mut BTreeSet<&'a str>) {
        if !seen.insert(team) {
            return;
        }
        for child in self.children(Some(team)) {
            self.walk(child, out, seen);
        }
        out.push(team);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_in_id_order_children_first() {
        let tree = Hierarchy::new([
            ("p", None),
            ("b", Some("p")),
            ("a", Some("p")),
            ("x", Some("gone")),
        ]);
        assert_eq!(tree.post_order(), ["a", "b", "p", "x"]);
        assert_eq!(tree.children(None).collect::<Vec<_>>(), ["p", "x"]);
        assert_eq!(tree.subtree("p"), ["a", "b", "p"]);
        assert_eq!(tree.depth("a"), 1);
        assert!(tree.is_leaf("a") && !tree.is_leaf("p"));
    }
}
