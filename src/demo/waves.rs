//! The demo's past: waves of its pulse, one every two weeks before today,
//! opened, answered and closed through the same code as real ones, so
//! their results are published and sealed as any wave's are. Answers
//! differ by team and drift over time: each team has a level per theme,
//! around its climate (which also shapes who leaves and who moves on, see
//! `super::simulate`), and a slope per wave, and each person answers
//! around their team's level. Emails of past waves count as sent (none goes out).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use rand::RngExt;
use rand::rngs::ChaCha8Rng;

use crate::answers::answer::{Answer, DONT_KNOW};
use crate::crypto::ServerKeys;
use crate::db::schema::{invitations, outbox};
use crate::db::{self, DbConnection};
use crate::surveys::template::{Scale, Template, Theme};
use crate::surveys::waves::{self, Closing, Opening, Trigger};

/// Comments a few people write, in each language.
const COMMENTS: [(&str, &str); 6] = [
    (
        "Meer tijd om te leren naast het werk.",
        "More time to learn next to the work.",
    ),
    (
        "Duidelijkheid over interne vacatures.",
        "Clarity about internal openings.",
    ),
    (
        "Een mentor buiten mijn eigen team.",
        "A mentor outside my own team.",
    ),
    (
        "Regelmatiger ontwikkelgesprekken.",
        "More regular development talks.",
    ),
    (
        "Minder vergaderingen, meer focus.",
        "Fewer meetings, more focus.",
    ),
    (
        "Open feedback zonder gevolgen.",
        "Open feedback without consequences.",
    ),
];

/// How each team answers: a level per theme (1–5) and its drift per wave.
struct Mood {
    level: HashMap<(String, Theme), f64>,
    slope: HashMap<(String, Theme), f64>,
    participation: HashMap<String, f64>,
}

impl Mood {
    /// A team's mood, around its climate (−1 to 1; 0 for a team that has none).
    fn of_team(&mut self, rng: &mut ChaCha8Rng, team: &str, climate: f64) {
        if self.participation.contains_key(team) {
            return;
        }
        self.participation
            .insert(team.to_owned(), rng.random_range(0.45..0.9));
        for theme in Theme::ALL {
            let key = (team.to_owned(), theme);
            self.level.insert(
                key.clone(),
                3.4 + 0.8 * climate + rng.random_range(-0.4..0.4),
            );
            self.slope.insert(key, rng.random_range(-0.12..0.12));
        }
    }

    /// The team's level of `theme` at wave `index`, kept on the scale.
    fn at(&self, team: &str, theme: Theme, index: usize) -> f64 {
        let key = (team.to_owned(), theme);
        (self.level[&key] + self.slope[&key] * index as f64).clamp(1.2, 4.8)
    }
}

/// Opens, answers and closes `count` waves of `pulse_id`, two weeks
/// apart, the last one closed before `today`. Returns the waves and the
/// responses stored.
pub fn past_waves(
    conn: &mut DbConnection,
    keys: &ServerKeys,
    rng: &mut ChaCha8Rng,
    pulse_id: &str,
    count: usize,
    today: DateTime<Utc>,
    climates: &HashMap<String, f64>,
) -> anyhow::Result<(usize, usize)> {
    let mut mood = Mood {
        level: HashMap::new(),
        slope: HashMap::new(),
        participation: HashMap::new(),
    };
    let (mut opened, mut answered) = (0, 0);
    for index in 0..count {
        let weeks_back = 2 * i64::try_from(count - index)?;
        let opens = today - Duration::weeks(weeks_back);
        let wave = db::write(conn, |conn| -> anyhow::Result<Option<_>> {
            let pulse = crate::surveys::pulses::Pulse::locked(conn, pulse_id)?;
            Ok(
                match waves::open_locked(conn, &pulse, Trigger::Manual, opens)? {
                    Opening::Opened(wave) => Some(wave),
                    _ => None,
                },
            )
        })?;
        let Some(wave) = wave else { continue };
        opened += 1;
        let template = wave
            .template
            .as_deref()
            .map(crate::surveys::templates::decode)
            .transpose()?
            .ok_or_else(|| anyhow::anyhow!("a demo wave without a template"))?;
        let closes = wave
            .closes_at
            .map_or(opens + Duration::days(5), |t| t.and_utc());
        answered += db::write(conn, |conn| -> anyhow::Result<usize> {
            let invited: Vec<(String, String, String)> = invitations::table
                .filter(invitations::wave_id.eq(&wave.id))
                .select((invitations::id, invitations::team_id, invitations::language))
                .order(invitations::id)
                .load(conn)?;
            let mut stored = 0;
            for (invitation, team, language) in &invited {
                mood.of_team(rng, team, climates.get(team).copied().unwrap_or(0.0));
                if !rng.random_bool(mood.participation[team]) {
                    continue;
                }
                let answers = answers(rng, &template, &mood, team, index, language);
                let nullifier = keys
                    .nullifier(invitation)
                    .ok_or_else(|| anyhow::anyhow!("no nullifier"))?;
                let json = serde_json::to_string(&answers)?;
                if crate::answers::store::insert(conn, &wave.id, team, &json, &nullifier)? {
                    stored += 1;
                }
            }
            // Past waves' emails went out long ago.
            let ids: Vec<&String> = invited.iter().map(|(id, _, _)| id).collect();
            for chunk in ids.chunks(2_000) {
                diesel::update(outbox::table.filter(outbox::invitation_id.eq_any(chunk)))
                    .set((
                        outbox::status.eq("sent"),
                        outbox::sent_at.eq(Some(crate::clock::to_stored(opens))),
                    ))
                    .execute(conn)?;
            }
            Ok(stored)
        })?;
        waves::close_and_checkpoint(conn, keys, &wave.id, Closing::Now, closes)
            .map_err(|e| anyhow::anyhow!("closing a demo wave: {e}"))?;
    }
    Ok((opened, answered))
}

/// One person's answers: around the team's level, now and then "don't
/// know", a skip, or a comment.
fn answers(
    rng: &mut ChaCha8Rng,
    template: &Template,
    mood: &Mood,
    team: &str,
    index: usize,
    language: &str,
) -> BTreeMap<String, Answer> {
    let mut out = BTreeMap::new();
    for question in &template.questions {
        let level = mood.at(team, question.theme, index);
        match question.scale {
            Scale::Comment => {
                if rng.random_bool(0.15) {
                    let (nl, en) = COMMENTS[rng.random_range(0..COMMENTS.len())];
                    let text = if language == "nl" { nl } else { en };
                    out.insert(question.id.clone(), Answer::Text(text.to_owned()));
                }
            }
            _ if rng.random_bool(0.03) => {}
            _ if question.dont_know && rng.random_bool(0.04) => {
                out.insert(question.id.clone(), Answer::Text(DONT_KNOW.to_owned()));
            }
            Scale::Agree5 => {
                let scored = (level + rng.random_range(-1.4..1.4))
                    .round()
                    .clamp(1.0, 5.0) as i64;
                let given = if question.reverse { 6 - scored } else { scored };
                out.insert(question.id.clone(), Answer::Number(given));
            }
            Scale::Likelihood11 => {
                let scored = ((level - 1.0) * 2.5 + rng.random_range(-2.5..2.5))
                    .round()
                    .clamp(0.0, 10.0) as i64;
                let given = if question.reverse {
                    10 - scored
                } else {
                    scored
                };
                out.insert(question.id.clone(), Answer::Number(given));
            }
        }
    }
    out
}
