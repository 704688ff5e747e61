//! A synthetic organisation for demos, tests and benchmarks: a team tree
//! (up to five levels for the largest), people with Dutch and English
//! preferences, titles and levels, and several years of history — hires,
//! moves, promotions, exits and the odd rehire — written through the same
//! [`crate::org::people::save`] the API and imports use, so the history is
//! what real use would have recorded. Last, one active pulse over the whole
//! organisation, rotating the three shipped templates every other week,
//! stored through the same store as `POST /api/v1/pulses`.
//!
//! The content (names, tree, history, dates) is a pure function of the seed
//! and the size, through a ChaCha8 generator; ids are random UUIDs as
//! everywhere else.

mod names;
mod waves;

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::{DateTime, Months, NaiveDate, Utc};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use crate::auth::{password, store as account_store};
use crate::db::{self, Db, DbConnection};
use crate::domain::{
    EmailAddress, ExitKind, JobTitle, Language, Level, MinGroupSize, NewPassword, OrganisationName,
    PersonName, PersonStatus, Role, TimeZone,
};
use crate::org::people::store::PersonRow;
use crate::org::people::{PersonInput, save};
use crate::org::teams::store as team_store;
use crate::org::{NewOrganisation, store as org_store};
use crate::surveys::pulses::{PulseStatus, Timing, store as pulse_store};
use crate::surveys::templates;

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoSpec {
    pub people: usize,
    pub seed: u64,
    /// The history starts this many years before `today`.
    pub years: u32,
    pub today: NaiveDate,
    /// Past waves of the pulse, answered and closed, two weeks apart.
    pub waves: usize,
    /// People per leaf team, on average ([`TEAM_SIZE`] unless a benchmark
    /// wants a narrower tree).
    pub team_size: usize,
}

/// What was generated, to print.
#[derive(Debug, Clone, Default)]
pub struct DemoSummary {
    pub organisation_id: String,
    pub organisation_name: String,
    pub teams: usize,
    pub depth: usize,
    pub people: usize,
    pub active: usize,
    pub events: BTreeMap<&'static str, usize>,
    /// (role, email, one-time password)
    pub accounts: Vec<(Role, String, NewPassword)>,
    /// The biweekly pulse over the whole organisation.
    pub pulse_id: String,
    pub pulse_name: String,
    /// When its schedule opens the first wave.
    pub next_wave_at: Option<DateTime<Utc>>,
    /// Past waves closed, and the responses they hold.
    pub past_waves: usize,
    pub responses: usize,
}

/// People per leaf team, on average, by default.
pub const TEAM_SIZE: usize = 8;
/// People written per transaction (and per progress step).
const BATCH: usize = 500;

/// The demo's pulse: the three shipped templates in turn, every other week
/// or so. Five-field cron cannot say "every 14 days"; the first and third
/// Monday of the month come closest (two or three weeks apart).
pub const PULSE_NAME: &str = "Groei & veiligheid (biweekly)";
const PULSE_TEMPLATES: [&str; 3] = ["development", "career", "safety"];
const PULSE_CRON: &str = "0 9 * * 1#1,1#3";
const PULSE_OPEN_HOURS: i64 = 120;
const PULSE_REMINDER_HOURS: [i64; 1] = [72];

/// The shape of the tree for `people` in leaf teams of about `team_size`:
/// how many children each team has on each level (departments first). Its
/// depth grows with the leaves; the fan-outs are as even as they can be,
/// the deeper levels a step wider where they differ, and there are no more
/// departments than there are department names.
pub fn tree_shape(people: usize, team_size: usize) -> Vec<usize> {
    let leaves = people.div_ceil(team_size.max(1)).max(1);
    let depth = match leaves {
        0..=6 => 2,
        7..=60 => 3,
        61..=600 => 4,
        _ => 5,
    };
    let mut fanouts = vec![2; depth];
    while fanouts.iter().product::<usize>() < leaves {
        // Widen the narrowest level, the deepest among equals.
        let level = (0..depth)
            .rev()
            .filter(|&l| l > 0 || fanouts[0] < names::DEPARTMENTS.len())
            .min_by_key(|&l| fanouts[l])
            .unwrap_or(depth - 1);
        fanouts[level] += 1;
    }
    fanouts
}

struct Leaf {
    id: String,
    department: usize,
    /// How good a place to grow the team is, from −1 to 1: where it is
    /// low, people answer lower, leave more and move on less — so the
    /// demo's pulses and mobility tell the story Peil exists for.
    climate: f64,
}

/// A team's climate, from the seed and its place: drawn apart from the
/// generator's own stream, so adding it changed no other choice.
fn climate(seed: u64, leaf: usize) -> f64 {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (leaf as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    rng.random_range(-1.0..1.0)
}

/// Generates into `db`: a new organisation with an admin, an hr and a
/// manager account, its teams and people. `progress` is told how many
/// people are done after each batch.
pub fn generate(
    db: &Db,
    keys: &crate::crypto::ServerKeys,
    spec: &DemoSpec,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<DemoSummary> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut conn = db.get()?;
    let mut summary = DemoSummary {
        organisation_name: format!("Demo {}", spec.seed),
        ..DemoSummary::default()
    };

    let leaves = db::write(&mut conn, |conn| -> anyhow::Result<Vec<Leaf>> {
        let organisation = NewOrganisation {
            name: OrganisationName::parse(&summary.organisation_name)?,
            default_language: Language::Nl,
            time_zone: TimeZone::parse("Europe/Amsterdam")?,
            min_group_size: MinGroupSize::DEFAULT,
        };
        summary.organisation_id = org_store::insert(conn, &organisation)?;
        let organisation_id = summary.organisation_id.clone();
        build_tree(
            conn,
            &organisation_id,
            spec.people,
            spec.team_size,
            spec.seed,
            &mut summary,
        )
    })?;

    let start = spec
        .today
        .checked_sub_months(Months::new(12 * spec.years))
        .context("the history start date")?;
    let organisation_id = summary.organisation_id.clone();
    let mut done = 0;
    while done < spec.people {
        let batch = (spec.people - done).min(BATCH);
        db::write(&mut conn, |conn| -> anyhow::Result<()> {
            for index in done..done + batch {
                let person = simulate(&mut rng, index, &leaves, start, spec.today);
                write_person(conn, &organisation_id, &leaves, &person, &mut summary)?;
            }
            Ok(())
        })?;
        done += batch;
        progress(done);
    }

    summary.accounts = create_accounts(
        &mut conn,
        &summary.organisation_id,
        leaves.first().map(|l| l.id.as_str()),
    )?;
    summary.events = count_events(&mut conn, &summary.organisation_id)?;
    // Past waves open before the pulse's schedule starts (today): it
    // counts from its creation, which is their first opening.
    let today = spec
        .today
        .and_hms_opt(9, 0, 0)
        .context("today at nine")?
        .and_utc();
    let first_wave = today - chrono::Duration::weeks(2 * i64::try_from(spec.waves)?);
    let (pulse_id, _) = db::write(&mut conn, |conn| {
        create_pulse(conn, &summary.organisation_id, first_wave)
    })?;
    let climates = leaves.iter().map(|l| (l.id.clone(), l.climate)).collect();
    (summary.past_waves, summary.responses) = waves::past_waves(
        &mut conn, keys, &mut rng, &pulse_id, spec.waves, today, &climates,
    )?;
    let next_wave_at = db::write(&mut conn, |conn| -> anyhow::Result<_> {
        reschedule(conn, &pulse_id, Utc::now())
    })?;
    summary.pulse_id = pulse_id;
    summary.pulse_name = PULSE_NAME.to_owned();
    summary.next_wave_at = next_wave_at;
    Ok(summary)
}

/// Moves the pulse's schedule to start at `now` (after the past waves),
/// so the scheduler does not take their dates for missed firings; returns
/// its next firing.
fn reschedule(
    conn: &mut DbConnection,
    pulse_id: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    use crate::db::schema::pulses;
    use diesel::prelude::*;
    diesel::update(pulses::table.find(pulse_id))
        .set(pulses::schedule_from.eq(crate::clock::to_stored(now)))
        .execute(conn)?;
    let pulse = crate::surveys::pulses::Pulse::locked(conn, pulse_id)?;
    Ok(pulse
        .timing
        .firings(now, DateTime::<Utc>::MAX_UTC, 1)
        .first()
        .copied())
}

/// An active pulse over every top-level team, checked by the same rules as
/// the API's and stored through the same store; returns its id and its
/// first firing.
fn create_pulse(
    conn: &mut DbConnection,
    organisation_id: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<(String, Option<DateTime<Utc>>)> {
    let organisation = org_store::find(conn, organisation_id)?;
    let audience: Vec<String> = team_store::list(conn, organisation_id)?
        .into_iter()
        .filter(|t| t.parent_id.is_none())
        .map(|t| t.id)
        .collect();
    for key in PULSE_TEMPLATES {
        anyhow::ensure!(
            templates::latest(conn, organisation_id, key)?.is_some(),
            "the shipped template {key} is missing"
        );
    }
    let timing = Timing::check(
        PULSE_CRON,
        &organisation.time_zone,
        PULSE_OPEN_HOURS,
        &PULSE_REMINDER_HOURS,
        None,
        None,
        now,
    )
    .map_err(|problems| anyhow::anyhow!("the demo pulse's timing: {problems:?}"))?;
    let id = pulse_store::insert(
        conn,
        organisation_id,
        &pulse_store::PulseValues {
            name: crate::domain::PulseName::parse(PULSE_NAME)
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .as_str(),
            templates: serde_json::to_string(&PULSE_TEMPLATES)?,
            audience: serde_json::to_string(&audience)?,
            excluded_teams: "[]".to_owned(),
            cron: PULSE_CRON,
            time_zone: &organisation.time_zone,
            open_hours: i32::try_from(PULSE_OPEN_HOURS)?,
            reminder_hours: serde_json::to_string(&PULSE_REMINDER_HOURS)?,
            start_date: None,
            end_date: None,
            status: PulseStatus::Active.as_str(),
            min_group_size: organisation.min_group_size,
            schedule_from: crate::clock::to_stored(now),
        },
    )?;
    let next = timing
        .firings(now, DateTime::<Utc>::MAX_UTC, 1)
        .first()
        .copied();
    Ok((id, next))
}

fn build_tree(
    conn: &mut DbConnection,
    organisation_id: &str,
    people: usize,
    team_size: usize,
    seed: u64,
    summary: &mut DemoSummary,
) -> anyhow::Result<Vec<Leaf>> {
    let fanouts = tree_shape(people, team_size);
    summary.depth = fanouts.len();
    // (team id, department index) per level, top first.
    let mut level: Vec<(Option<String>, usize)> = vec![(None, 0)];
    for (depth_index, &children) in fanouts.iter().enumerate() {
        let mut next = Vec::new();
        for (parent, department) in &level {
            for child in 0..children {
                let department = if depth_index == 0 { child } else { *department };
                let name = names::team_name(depth_index, department, child);
                let row = team_store::insert(
                    conn,
                    &team_store::NewTeam {
                        organisation_id,
                        parent_id: parent.as_deref(),
                        name: &name,
                        external_id: None,
                    },
                )?;
                summary.teams += 1;
                next.push((Some(row.id), department));
            }
        }
        level = next;
    }
    Ok(level
        .into_iter()
        .filter_map(|(id, department)| id.map(|id| (id, department)))
        .enumerate()
        .map(|(i, (id, department))| Leaf {
            id,
            department,
            climate: climate(seed, i),
        })
        .collect())
}

/// One person's life in the organisation: a list of placements with dates.
struct Simulated {
    email: String,
    name: String,
    language: Language,
    steps: Vec<Step>,
}

struct Step {
    date: NaiveDate,
    leaf: usize,
    level: i64,
    status: PersonStatus,
    exit_kind: Option<ExitKind>,
}

fn random_date(rng: &mut ChaCha8Rng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let days = (to - from).num_days().max(1);
    from + chrono::Duration::days(rng.random_range(0..days))
}

fn simulate(
    rng: &mut ChaCha8Rng,
    index: usize,
    leaves: &[Leaf],
    start: NaiveDate,
    today: NaiveDate,
) -> Simulated {
    let dutch = rng.random_bool(0.7);
    let (first, last) = names::person(rng, dutch);
    let email = format!(
        "{}.{}.{index}@demo.example",
        names::email_part(first),
        names::email_part(last)
    );
    // Hired before the window (a tenured core) or within it.
    let hired = if rng.random_bool(0.6) {
        random_date(rng, start - chrono::Duration::days(365 * 8), start)
    } else {
        random_date(rng, start, today)
    };
    let mut step = Step {
        date: hired,
        leaf: rng.random_range(0..leaves.len()),
        level: rng.random_range(1..=4),
        status: PersonStatus::Active,
        exit_kind: None,
    };
    let mut steps = Vec::new();
    // Month by month: promotions, moves, exits, rehires; a team's climate
    // makes leaving likelier and moving on rarer where it is low.
    let mut month = hired.max(start);
    while let Some(next) = month
        .checked_add_months(Months::new(1))
        .filter(|next| *next <= today)
    {
        month = next;
        let roll: f64 = rng.random();
        let climate = leaves[step.leaf].climate;
        let leave = 0.010 * (1.0 - 0.6 * climate);
        let promote = leave + 0.012 * (1.0 + 0.3 * climate);
        let moving = promote + 0.008 * (1.0 + 0.4 * climate);
        let mut changed = None;
        match step.status {
            PersonStatus::Active if roll < leave => {
                // Where the climate is low, more of those who leave chose to.
                let voluntary = if climate < 0.0 { 8 } else { 6 };
                let kind = match rng.random_range(0..10) {
                    k if k < voluntary => ExitKind::Voluntary,
                    9 => ExitKind::Other,
                    _ => ExitKind::Involuntary,
                };
                changed = Some(Step {
                    status: PersonStatus::Left,
                    exit_kind: Some(kind),
                    ..copy(&step, month)
                });
            }
            PersonStatus::Active if roll < promote && step.level < 8 => {
                changed = Some(Step {
                    level: step.level + 1,
                    ..copy(&step, month)
                });
            }
            PersonStatus::Active if roll < moving => {
                // Most moves stay in the department.
                let same: Vec<usize> = (0..leaves.len())
                    .filter(|l| {
                        leaves[*l].department == leaves[step.leaf].department && *l != step.leaf
                    })
                    .collect();
                let leaf = if !same.is_empty() && rng.random_bool(0.7) {
                    same[rng.random_range(0..same.len())]
                } else {
                    rng.random_range(0..leaves.len())
                };
                if leaf != step.leaf {
                    changed = Some(Step {
                        leaf,
                        ..copy(&step, month)
                    });
                }
            }
            PersonStatus::Left if roll < 0.004 => {
                changed = Some(Step {
                    status: PersonStatus::Active,
                    exit_kind: None,
                    ..copy(&step, month)
                });
            }
            _ => {}
        }
        if let Some(new) = changed {
            steps.push(std::mem::replace(&mut step, new));
        }
    }
    steps.push(step);
    Simulated {
        email,
        name: format!("{first} {last}"),
        language: if dutch { Language::Nl } else { Language::En },
        steps,
    }
}

fn copy(step: &Step, date: NaiveDate) -> Step {
    Step {
        date,
        leaf: step.leaf,
        level: step.level,
        status: step.status,
        exit_kind: step.exit_kind,
    }
}

fn write_person(
    conn: &mut DbConnection,
    organisation_id: &str,
    leaves: &[Leaf],
    person: &Simulated,
    summary: &mut DemoSummary,
) -> anyhow::Result<()> {
    let mut row: Option<PersonRow> = None;
    for step in &person.steps {
        let input = PersonInput {
            email: EmailAddress::parse(&person.email)?,
            name: PersonName::parse(&person.name)?,
            team_id: leaves[step.leaf].id.clone(),
            language: person.language,
            job_title: Some(JobTitle::parse(names::title(step.level))?),
            level: Some(Level::new(step.level)?),
            external_id: None,
            status: step.status,
            exit_kind: step.exit_kind,
        };
        let (id, _) = save(conn, organisation_id, row.as_ref(), &input, step.date)?;
        row = Some(input.as_row(&id, organisation_id, crate::db::now()));
    }
    summary.people += 1;
    if row.is_some_and(|r| r.status == PersonStatus::Active.as_str()) {
        summary.active += 1;
    }
    Ok(())
}

/// Events by kind, as recorded.
fn count_events(
    conn: &mut DbConnection,
    organisation_id: &str,
) -> anyhow::Result<BTreeMap<&'static str, usize>> {
    use crate::db::schema::person_events;
    use diesel::prelude::*;
    let rows: Vec<(String, i64)> = person_events::table
        .filter(person_events::organisation_id.eq(organisation_id))
        .group_by(person_events::kind)
        .select((person_events::kind, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(kind, n)| {
            crate::org::people::EventKind::parse(&kind)
                .map(|k| (k.as_str(), usize::try_from(n).unwrap_or(0)))
        })
        .collect())
}

/// An admin, an hr and a manager (of the first leaf team) account, each
/// with a one-time password. Emails carry the organisation's id: accounts
/// are unique across the deployment, and demos may be generated repeatedly.
fn create_accounts(
    conn: &mut DbConnection,
    organisation_id: &str,
    manager_team: Option<&str>,
) -> anyhow::Result<Vec<(Role, String, NewPassword)>> {
    let tag: String = organisation_id.chars().take(8).collect();
    let mut accounts = Vec::new();
    for role in [Role::Admin, Role::Hr, Role::Manager] {
        let email = format!("{}.{tag}@demo.example", role.as_str());
        let one_time = password::one_time_password();
        let hash = password::hash(&one_time)?;
        account_store::insert_account(
            conn,
            &account_store::NewAccount {
                organisation_id,
                email: &email,
                password_hash: &hash,
                role: role.as_str(),
                team_id: if role == Role::Manager {
                    manager_team
                } else {
                    None
                },
            },
        )?;
        accounts.push((role, email, one_time));
    }
    Ok(accounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_grows_to_five_levels_at_the_large_end() {
        assert_eq!(tree_shape(20, TEAM_SIZE).len(), 2);
        assert_eq!(tree_shape(400, TEAM_SIZE).len(), 3);
        assert_eq!(tree_shape(2_000, TEAM_SIZE), vec![4, 4, 4, 4]);
        let fanouts = tree_shape(100_000, TEAM_SIZE);
        assert_eq!(fanouts, vec![6, 7, 7, 7, 7]);
        let leaves: usize = fanouts.iter().product();
        assert!(leaves >= 100_000 / TEAM_SIZE, "{leaves} leaves");
        assert!(leaves < 100_000 / 6, "teams of about eight, not six");
    }

    #[test]
    fn a_wider_team_size_gives_the_benchmark_tree_of_about_2000_teams() {
        // The results benchmark's shape: 100,000 people, 5 levels.
        let fanouts = tree_shape(100_000, 63);
        assert_eq!(fanouts, vec![4, 4, 4, 5, 5]);
        let teams: usize = (1..=fanouts.len())
            .map(|depth| fanouts[..depth].iter().product::<usize>())
            .sum();
        assert_eq!(teams, 2_004);
    }

    #[test]
    fn departments_never_outnumber_their_names() {
        let fanouts = tree_shape(1_000_000, 1);
        assert!(fanouts[0] <= names::DEPARTMENTS.len());
        assert!(fanouts.iter().product::<usize>() >= 1_000_000);
    }

    #[test]
    fn team_names_are_unique_among_siblings() {
        for depth in 0..5 {
            let names: std::collections::HashSet<String> = (0..30)
                .map(|child| names::team_name(depth, child % 12, child))
                .collect();
            if depth > 0 {
                assert_eq!(names.len(), 30, "depth {depth}");
            }
            assert!(
                names
                    .iter()
                    .all(|n| crate::domain::TeamName::parse(n).is_ok())
            );
        }
    }
}
