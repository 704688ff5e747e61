//! The team tree: departments and teams, the groups results roll up. A team
//! is identified by id, optionally by an HR system's `external_id`, and by
//! its path of names from the root (`Engineering/Platform`), which is why
//! sibling names are unique and names contain no `/`.

mod hierarchy;
pub mod http;
pub mod store;

pub use hierarchy::Hierarchy;

use std::collections::{HashMap, HashSet};

use store::TeamRow;

/// Every team's path (as [`TeamTree::path`] gives it) from (id, parent,
/// name) rows, each made once from its parent's: for answers that name
/// every team, without loading whole team rows. A parent that is not among
/// the teams makes a top-level team; a team on a cycle (which the API never
/// makes) is named alone.
pub fn paths<'a>(
    teams: impl IntoIterator<Item = (&'a str, Option<&'a str>, &'a str)>,
) -> HashMap<&'a str, String> {
    let teams: Vec<_> = teams.into_iter().collect();
    let known: HashSet<&str> = teams.iter().map(|t| t.0).collect();
    let mut children: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    let mut stack: Vec<(&str, String)> = Vec::new();
    for &(id, parent, name) in &teams {
        match parent.filter(|p| known.contains(p)) {
            Some(parent) => children.entry(parent).or_default().push((id, name)),
            None => stack.push((id, name.to_owned())),
        }
    }
    let mut paths = HashMap::with_capacity(teams.len());
    while let Some((id, path)) = stack.pop() {
        for (child, name) in children.remove(id).into_iter().flatten() {
            stack.push((child, format!("{path}/{name}")));
        }
        paths.insert(id, path);
    }
    for (id, _, name) in teams {
        paths.entry(id).or_insert_with(|| name.to_owned());
    }
    paths
}

/// An organisation's teams, indexed for walking up and down the tree.
pub struct TeamTree {
    teams: HashMap<String, TeamRow>,
    children: HashMap<String, Vec<String>>,
}

impl TeamTree {
    pub fn new(rows: Vec<TeamRow>) -> Self {
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        for row in &rows {
            if let Some(parent) = &row.parent_id {
                children
                    .entry(parent.clone())
                    .or_default()
                    .push(row.id.clone());
            }
        }
        let teams = rows.into_iter().map(|r| (r.id.clone(), r)).collect();
        Self { teams, children }
    }

    pub fn get(&self, id: &str) -> Option<&TeamRow> {
        self.teams.get(id)
    }

    /// The ids from `id` up to its root, `id` first. Stops on a cycle, which
    /// the API never creates, rather than looping on corrupt data.
    pub fn ancestors(&self, id: &str) -> Vec<&str> {
        let mut chain = Vec::new();
        let mut seen = HashSet::new();
        let mut current = self.teams.get(id);
        while let Some(team) = current {
            if !seen.insert(team.id.as_str()) {
                break;
            }
            chain.push(team.id.as_str());
            current = team.parent_id.as_deref().and_then(|p| self.teams.get(p));
        }
        chain
    }

    /// `Engineering/Platform`: names from the root down.
    pub fn path(&self, id: &str) -> String {
        let mut names: Vec<&str> = self
            .ancestors(id)
            .iter()
            .filter_map(|a| self.teams.get(*a).map(|t| t.name.as_str()))
            .collect();
        names.reverse();
        names.join("/")
    }

    /// Whether `id` is `root` or lies below it.
    pub fn is_within(&self, id: &str, root: &str) -> bool {
        self.ancestors(id).contains(&root)
    }

    /// Every team in `root`'s subtree, `root` included.
    pub fn subtree(&self, root: &str) -> Vec<&TeamRow> {
        let mut out = Vec::new();
        let mut stack = vec![root];
        let mut seen = HashSet::new();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            if let Some(team) = self.teams.get(id) {
                out.push(team);
            }
            if let Some(kids) = self.children.get(id) {
                stack.extend(kids.iter().map(String::as_str));
            }
        }
        out
    }

    /// Whether a sibling under `parent` other than `except` has this name.
    pub fn sibling_named(&self, parent: Option<&str>, name: &str, except: Option<&str>) -> bool {
        self.teams.values().any(|t| {
            t.parent_id.as_deref() == parent
                && t.name.eq_ignore_ascii_case(name)
                && Some(t.id.as_str()) != except
        })
    }

    pub fn all(&self) -> impl Iterator<Item = &TeamRow> {
        self.teams.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(id: &str, parent: Option<&str>, name: &str) -> TeamRow {
        TeamRow {
            id: id.into(),
            organisation_id: "o".into(),
            parent_id: parent.map(Into::into),
            name: name.into(),
            external_id: None,
            created_at: chrono::NaiveDateTime::default(),
        }
    }

    #[test]
    fn paths_subtrees_and_ancestry() {
        let tree = TeamTree::new(vec![
            team("e", None, "Engineering"),
            team("p", Some("e"), "Platform"),
            team("d", Some("p"), "Data"),
            team("s", None, "Sales"),
        ]);
        assert_eq!(tree.path("d"), "Engineering/Platform/Data");
        let all = paths(
            tree.all()
                .map(|t| (t.id.as_str(), t.parent_id.as_deref(), t.name.as_str())),
        );
        assert_eq!(all.len(), 4);
        for id in ["e", "p", "d", "s"] {
            assert_eq!(all[id], tree.path(id), "{id}");
        }
        assert!(tree.is_within("d", "e"));
        assert!(!tree.is_within("e", "d"));
        assert!(!tree.is_within("s", "e"));
        let mut sub: Vec<&str> = tree.subtree("p").iter().map(|t| t.id.as_str()).collect();
        sub.sort();
        assert_eq!(sub, vec!["d", "p"]);
        assert!(tree.sibling_named(Some("e"), "platform", None));
        assert!(!tree.sibling_named(Some("e"), "platform", Some("p")));
    }
}
