//! A person's history as a timeline: the placements they held, from which
//! day, and what each change between two of them was.

use chrono::NaiveDate;

/// A history event as mobility reads it: the placement after it.
#[derive(Debug, Clone, diesel::Queryable)]
pub struct Event {
    pub person_id: String,
    pub id: String,
    pub seq: i32,
    pub effective_date: NaiveDate,
    pub team_id: String,
    pub job_title: Option<String>,
    pub level: Option<i32>,
    pub status: String,
    pub exit_kind: Option<String>,
    pub supersedes_id: Option<String>,
}

/// One person's events still in force (a correction replaces the event it
/// supersedes), by day and then in recording order: as
/// [`crate::org::people::in_force`] orders them.
pub fn in_force(history: &[Event]) -> Vec<&Event> {
    let superseded: std::collections::HashSet<&str> = history
        .iter()
        .filter_map(|e| e.supersedes_id.as_deref())
        .collect();
    let mut events: Vec<&Event> = history
        .iter()
        .filter(|e| !superseded.contains(e.id.as_str()))
        .collect();
    events.sort_by_key(|e| (e.effective_date, e.seq));
    events
}

/// Where a person stood from a day on, until the next state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub from: NaiveDate,
    pub team: String,
    pub title: Option<String>,
    pub level: Option<i32>,
    pub active: bool,
    pub exit_kind: Option<String>,
}

impl State {
    /// Same team, title and level: the same role.
    fn same_role(&self, other: &Self) -> bool {
        self.team == other.team && self.title == other.title && self.level == other.level
    }
}

/// What one change of state was, on its day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<'a> {
    Hire {
        team: &'a str,
    },
    Rehire {
        team: &'a str,
    },
    Exit {
        team: &'a str,
        kind: ExitKind,
    },
    /// Active before and after: a move (team), and how the level went.
    Internal {
        from: &'a str,
        to: &'a str,
        step: Step,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    Voluntary,
    Involuntary,
    Other,
}

/// How a change between two active states counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// To a higher level.
    Promotion,
    /// To a lower level.
    Demotion,
    /// Another team or title at the same level (or where a level is
    /// missing on either side, so none can be compared).
    Lateral,
    /// Nothing that counts (e.g. a level recorded where there was none,
    /// same team and title).
    None,
}

/// The states of one person from their events in force ([`in_force`]).
/// Several events on one day make one state, the last one's.
pub fn states(events: &[&Event]) -> Vec<State> {
    let mut states: Vec<State> = Vec::with_capacity(events.len());
    for event in events {
        let state = State {
            from: event.effective_date,
            team: event.team_id.clone(),
            title: event.job_title.clone(),
            level: event.level,
            active: event.status == "active",
            exit_kind: event.exit_kind.clone(),
        };
        match states.last_mut() {
            Some(last) if last.from == state.from => *last = state,
            _ => states.push(state),
        }
    }
    // A day's events that change nothing leave the same state twice.
    states.dedup_by(|b, a| a.active == b.active && a.same_role(b) && a.exit_kind == b.exit_kind);
    states
}

/// What the change into `states[i]` was (`None` for none that counts).
pub fn change(states: &[State], i: usize) -> Option<Change<'_>> {
    let now = &states[i];
    let before = i.checked_sub(1).map(|j| &states[j]);
    match (before, now.active) {
        (None, true) => Some(Change::Hire { team: &now.team }),
        (None, false) => None,
        (Some(b), true) if !b.active => Some(Change::Rehire { team: &now.team }),
        (Some(b), false) if b.active => Some(Change::Exit {
            team: &b.team,
            kind: match now.exit_kind.as_deref() {
                Some("voluntary") => ExitKind::Voluntary,
                Some("involuntary") => ExitKind::Involuntary,
                _ => ExitKind::Other,
            },
        }),
        (Some(_), false) => None,
        (Some(b), true) => {
            let step = match (b.level, now.level) {
                (Some(x), Some(y)) if y > x => Step::Promotion,
                (Some(x), Some(y)) if y < x => Step::Demotion,
                _ if b.team != now.team || b.title != now.title => Step::Lateral,
                _ => Step::None,
            };
            (b.team != now.team || step != Step::None).then_some(Change::Internal {
                from: &b.team,
                to: &now.team,
                step,
            })
        }
    }
}

/// The state in effect at the start of `day` (after every change dated
/// before it), if any.
pub fn at(states: &[State], day: NaiveDate) -> Option<(usize, &State)> {
    let i = states.partition_point(|s| s.from < day);
    i.checked_sub(1).map(|j| (j, &states[j]))
}

/// The day the role of `states[i]` began: when the person last came into
/// this team, title and level, or (re)joined.
pub fn role_start(states: &[State], i: usize) -> NaiveDate {
    let mut start = i;
    while start > 0 && states[start - 1].active && states[start - 1].same_role(&states[i]) {
        start -= 1;
    }
    states[start].from
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(from: &str, team: &str, level: Option<i32>, active: bool) -> State {
        State {
            from: from.parse().unwrap(),
            team: team.to_owned(),
            title: Some("Engineer".to_owned()),
            level,
            active,
            exit_kind: (!active).then(|| "voluntary".to_owned()),
        }
    }

    #[test]
    fn changes_are_classified_by_what_changed() {
        let states = vec![
            state("2020-01-01", "a", Some(2), true),
            state("2021-01-01", "b", Some(2), true),
            state("2022-01-01", "b", Some(3), true),
            state("2022-06-01", "c", Some(2), true),
            state("2023-01-01", "c", Some(2), false),
            state("2024-01-01", "a", Some(4), true),
        ];
        assert_eq!(change(&states, 0), Some(Change::Hire { team: "a" }));
        assert_eq!(
            change(&states, 1),
            Some(Change::Internal {
                from: "a",
                to: "b",
                step: Step::Lateral
            })
        );
        assert_eq!(
            change(&states, 2),
            Some(Change::Internal {
                from: "b",
                to: "b",
                step: Step::Promotion
            })
        );
        assert_eq!(
            change(&states, 3),
            Some(Change::Internal {
                from: "b",
                to: "c",
                step: Step::Demotion
            })
        );
        assert_eq!(
            change(&states, 4),
            Some(Change::Exit {
                team: "c",
                kind: ExitKind::Voluntary
            })
        );
        assert_eq!(change(&states, 5), Some(Change::Rehire { team: "a" }));
        assert_eq!(role_start(&states, 2), "2022-01-01".parse().unwrap());
        assert_eq!(role_start(&states, 5), "2024-01-01".parse().unwrap());
        assert_eq!(at(&states, "2020-01-01".parse().unwrap()), None);
        assert_eq!(at(&states, "2020-01-02".parse().unwrap()).unwrap().0, 0);
        assert_eq!(at(&states, "2023-01-01".parse().unwrap()).unwrap().0, 3);
    }

    #[test]
    fn a_role_lasts_through_changes_that_are_no_change() {
        let mut later = state("2021-01-01", "a", Some(2), true);
        later.exit_kind = None;
        let states = vec![state("2020-01-01", "a", Some(2), true), later];
        assert_eq!(role_start(&states, 1), "2020-01-01".parse().unwrap());
        assert_eq!(change(&states, 1), None);
    }
}
