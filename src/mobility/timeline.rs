//! A person's history as a timeline: the placements they held, from which
//! day, and what each change between two of them was.

use chrono::NaiveDate;

/// A history event as mobility reads it: the placement after it.
#[derive(Debug, Clone, diesel::Queryable)]
pub struct Event {
    pub person_id: String,
    pub id: String,
    pub seq: i32,
    /// What the event records (`joined`, `moved`, …): only that part of
    /// the placement it holds is taken from it (see [`states`]).
    pub kind: String,
    pub effective_date: NaiveDate,
    pub team_id: String,
    pub job_title: Option<String>,
    pub level: Option<i32>,
    pub status: String,
    pub exit_kind: Option<String>,
    pub supersedes_id: Option<String>,
}

impl crate::org::people::Recorded for Event {
    fn id(&self) -> &str {
        &self.id
    }
    fn seq(&self) -> i32 {
        self.seq
    }
    fn effective_date(&self) -> NaiveDate {
        self.effective_date
    }
    fn supersedes(&self) -> Option<&str> {
        self.supersedes_id.as_deref()
    }
}

/// One person's events in force, as the people's history reads them
/// ([`crate::org::people::in_force`]).
pub fn in_force(history: &[Event]) -> Vec<&Event> {
    crate::org::people::in_force(history)
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
/// An event holds the whole placement as it was when it was recorded, but
/// only its own part is taken: a move its team, a title change its title,
/// and so on (a joining or rejoining all of it). So a change recorded
/// later but dated earlier (back-dated) changes only what it says, rather
/// than replaying the placement of its recording day. Several events on
/// one day make one state.
pub fn states(events: &[&Event]) -> Vec<State> {
    let mut states: Vec<State> = Vec::with_capacity(events.len());
    let mut current: Option<State> = None;
    for event in events {
        let whole = State {
            from: event.effective_date,
            team: event.team_id.clone(),
            title: event.job_title.clone(),
            level: event.level,
            active: event.status == "active",
            exit_kind: event.exit_kind.clone(),
        };
        let state = match (current.take(), event.kind.as_str()) {
            (Some(mut now), "moved") => {
                now.team = whole.team;
                now
            }
            (Some(mut now), "title_changed") => {
                now.title = whole.title;
                now
            }
            (Some(mut now), "level_changed") => {
                now.level = whole.level;
                now
            }
            (Some(mut now), "left") => {
                now.active = false;
                now.exit_kind = whole.exit_kind;
                now
            }
            // Joining, rejoining, or nothing before: the whole placement.
            _ => whole,
        };
        let state = State {
            from: event.effective_date,
            ..state
        };
        current = Some(state.clone());
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
/// this team, title and level, or (re)joined. A level first recorded
/// where there was none is no new role.
pub fn role_start(states: &[State], i: usize) -> NaiveDate {
    let mut start = i;
    while start > 0 && states[start - 1].active && {
        let (before, after) = (&states[start - 1], &states[start]);
        before.team == after.team
            && before.title == after.title
            && (before.level == after.level || before.level.is_none())
    } {
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

    fn event(id: &str, seq: i32, kind: &str, date: &str, team: &str, level: i32) -> Event {
        Event {
            person_id: "p".into(),
            id: id.into(),
            seq,
            kind: kind.into(),
            effective_date: date.parse().unwrap(),
            team_id: team.into(),
            job_title: Some("Engineer".into()),
            level: Some(level),
            status: "active".into(),
            exit_kind: None,
            supersedes_id: None,
        }
    }

    #[test]
    fn a_back_dated_change_changes_only_what_it_says() {
        // Promoted on 1 March (recorded first), then a move back-dated to
        // 1 February, recorded when the person was already at level 3.
        let history = vec![
            event("j", 1, "joined", "2020-01-01", "a", 2),
            event("p", 2, "level_changed", "2025-03-01", "a", 3),
            event("m", 3, "moved", "2025-02-01", "b", 3),
        ];
        let states = states(&in_force(&history));
        let placed: Vec<(&str, Option<i32>)> =
            states.iter().map(|s| (s.team.as_str(), s.level)).collect();
        assert_eq!(placed, [("a", Some(2)), ("b", Some(2)), ("b", Some(3))]);
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
    }

    #[test]
    fn a_correction_takes_the_place_of_what_it_corrects() {
        // Joined and promoted the same day; the joining is then corrected
        // (another team): the promotion, recorded after the joining, stays.
        let mut corrected = event("c", 3, "joined", "2024-05-01", "b", 2);
        corrected.supersedes_id = Some("j".into());
        let history = vec![
            event("j", 1, "joined", "2024-05-01", "a", 2),
            event("p", 2, "level_changed", "2024-05-01", "a", 3),
            corrected,
        ];
        let states = states(&in_force(&history));
        assert_eq!(states.len(), 1);
        assert_eq!((states[0].team.as_str(), states[0].level), ("b", Some(3)));
    }

    #[test]
    fn a_level_recorded_for_the_first_time_starts_no_new_role() {
        let mut first = state("2020-01-01", "a", None, true);
        first.exit_kind = None;
        let mut known = state("2024-01-01", "a", Some(3), true);
        known.exit_kind = None;
        let states = vec![first, known];
        assert_eq!(role_start(&states, 1), "2020-01-01".parse().unwrap());
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
