//! Answering a wave: the link's page and its JSON twin, and how a response
//! is stored so that nobody can tell whose it is.
//!
//! # How a response stays anonymous (DESIGN.md, invariant 1)
//! - A response row holds a random id, the wave, the team the answer counts
//!   for and the answers — no person, invitation, token, address, user agent
//!   or time. Comments are scrubbed of email addresses and of the names of
//!   the answering team's people before they are stored ([`answer::scrub`]).
//! - A link answers once through a *nullifier*: an HMAC of the link token
//!   under a key of its own ([`crate::crypto::ServerKeys::nullifier`]),
//!   stored with the response under a unique constraint. It finds no
//!   invitation without the server secret.
//! - The invitation's "answered" flag (which reminders read) is never set
//!   in the transaction that stores a response: the flags of a whole wave
//!   are set at once from the nullifiers, before reminders are queued and
//!   when the wave closes ([`store::mark_answered`]), and a reminder is
//!   checked against the nullifier itself before it goes out. At the close
//!   the flags are counted into the wave's participation, per group of at
//!   least k invited, and every invitation of the wave is written again,
//!   unflagged and in random order.
//! - When the wave closes, in the closing transaction, its responses are
//!   deleted and written again in random order under new random ids,
//!   without nullifiers or comments ([`store::seal`]; comments live on only
//!   in the published results, for groups of at least max(10, k)), each
//!   tagged with the smallest group around its team that the wave
//!   published ([`coarsen`]):
//!   a stored tag of two responses would be two people's answers, whatever
//!   the API hides. Answers and the close cannot
//!   interleave: an answer reads its wave under a share lock on PostgreSQL
//!   (SQLite's writers are serial). SQLite runs with `secure_delete`, so the
//!   old rows are zeroed, and the log is checkpointed and emptied after the
//!   close ([`crate::db::checkpoint`]); the responses table has no rowid. On
//!   PostgreSQL the old row versions stay in the table's files (never
//!   visible to SQL or a dump) until VACUUM reclaims them. After that, no value, order, id or transaction id in the
//!   table ties a response to a link. While a wave is open, someone who
//!   copies the database again and again could still match a new response
//!   to a newly flagged invitation; closing ends that window.
//! - A response is acknowledged only once its commit is on disk, so a crash
//!   right after "thank you" loses nothing: SQLite runs with `synchronous =
//!   FULL` (NORMAL would let the last commits before a power cut vanish
//!   while their people were already thanked), PostgreSQL with its default
//!   synchronous commit. Concurrent answers share one transaction and one
//!   flush ([`commit`]), which is what makes durable answers fast.

pub mod admission;
pub mod answer;
pub mod coarsen;
pub mod commit;
pub mod http;
pub mod page;
pub mod store;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use self::answer::{Answers, GivenAnswers};
use crate::clock::to_stored;
use crate::crypto::ServerKeys;
use crate::db::{Db, DbConnection};
use crate::domain::Language;
use crate::error::ApiError;
use crate::surveys::template::{DEFAULT_COMMENT_LENGTH, Scale, Template, Theme};
use crate::surveys::waves::store::{self as waves, WaveRow};

/// Where a link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Taking answers.
    Open,
    /// This link has answered.
    Answered,
    /// The wave has closed.
    Closed,
}

/// What a link shows: the wave's questions in the person's language.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Survey {
    pub state: LinkState,
    /// `nl` or `en`: the person's language, or the one asked for.
    pub language: String,
    pub title: String,
    pub intro: String,
    pub closes_at: Option<DateTime<Utc>>,
    /// The organisation's, in which the page shows the close time.
    #[serde(skip)]
    pub time_zone: chrono_tz::Tz,
    /// Results are shown only for groups of at least this many people.
    pub min_group_size: i32,
    pub questions: Vec<SurveyQuestion>,
}

/// One question as the person sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SurveyQuestion {
    pub id: String,
    pub theme: Theme,
    pub scale: Scale,
    pub required: bool,
    pub text: String,
    /// The answers to choose from, in order; empty for a comment.
    pub options: Vec<AnswerOption>,
    /// Comments only: the longest answer accepted, in characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
}

/// One choice: the value to send and its label.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AnswerOption {
    /// A number, or `"dont_know"`.
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
    pub label: String,
}

/// A language Peil speaks, if `raw` names one.
pub fn language(raw: Option<&str>) -> Option<&'static str> {
    raw?.parse::<Language>().ok().map(Language::as_str)
}

/// What a link shows at `now`: its survey in the language asked for (the
/// person's otherwise), or `None` for an unknown link. Reading changes
/// nothing: mail scanners open every link first.
pub async fn read(
    db: &Db,
    keys: &ServerKeys,
    token: String,
    now: DateTime<Utc>,
    language: Option<&'static str>,
) -> Result<Option<Survey>, ApiError> {
    let keys = keys.clone();
    db.run(move |conn| {
        let Some(link) = find_link_if_any(conn, &keys, &token)? else {
            return Ok(None);
        };
        let state = link.state(conn, now)?;
        Ok(Some(link.survey(state, language)))
    })
    .await
}

/// Answers a link: `given` makes the request's answers once the link (and
/// so its template) is known; they are checked on a read connection and
/// stored by group commit ([`commit`]). `None` for an unknown link, else
/// the link and what came of the answers.
pub async fn answer<F>(
    db: &Db,
    committer: &commit::Committer,
    keys: &ServerKeys,
    token: String,
    now: DateTime<Utc>,
    given: F,
) -> Result<Option<(Link, Outcome)>, ApiError>
where
    F: FnOnce(&Link) -> Result<GivenAnswers, ApiError> + Send + 'static,
{
    let keys = keys.clone();
    let found = db
        .run(move |conn| {
            let Some(link) = find_link_if_any(conn, &keys, &token)? else {
                return Ok(None);
            };
            let given = given(&link)?;
            let prepared = prepare(conn, &link, &given, now)?;
            Ok::<_, ApiError>(Some((link, prepared)))
        })
        .await?;
    Ok(match found {
        Some((link, prepared)) => Some((link, prepared.settle(committer).await?)),
        None => None,
    })
}

/// A link with its invitation and wave, or `NotFound` — the same for a
/// token that was never made and one whose invitation is gone.
pub struct Link {
    pub invitation: store::Invited,
    pub wave: WaveRow,
    pub template: Template,
    pub nullifier: String,
    pub time_zone: chrono_tz::Tz,
}

pub fn find_link(
    conn: &mut DbConnection,
    keys: &ServerKeys,
    token: &str,
) -> Result<Link, ApiError> {
    let id = keys.invitation_of(token).ok_or(ApiError::NotFound)?;
    let invitation = store::invitation(conn, &id)?.ok_or(ApiError::NotFound)?;
    let wave = waves::find(conn, &invitation.wave_id)?;
    let template = wave
        .template
        .as_deref()
        .map(crate::surveys::templates::decode)
        .transpose()?
        .ok_or(ApiError::NotFound)?;
    let nullifier = keys.nullifier(&id).ok_or(ApiError::NotFound)?;
    let time_zone = crate::org::store::time_zone(conn, &wave.organisation_id)?;
    Ok(Link {
        invitation,
        wave,
        template,
        nullifier,
        time_zone,
    })
}

/// [`find_link`], with an unknown link as `None`: the page answers it with
/// a page of its own.
pub fn find_link_if_any(
    conn: &mut DbConnection,
    keys: &ServerKeys,
    token: &str,
) -> Result<Option<Link>, ApiError> {
    match find_link(conn, keys, token) {
        Ok(link) => Ok(Some(link)),
        Err(ApiError::NotFound) => Ok(None),
        Err(other) => Err(other),
    }
}

impl Link {
    /// Open, answered or closed, at `now`.
    pub fn state(
        &self,
        conn: &mut DbConnection,
        now: DateTime<Utc>,
    ) -> Result<LinkState, ApiError> {
        if !self.wave.is_open_at(to_stored(now)) {
            return Ok(LinkState::Closed);
        }
        Ok(if store::used(conn, &self.nullifier)? {
            LinkState::Answered
        } else {
            LinkState::Open
        })
    }

    /// The survey in `language` (the person's when none is asked for).
    pub fn survey(&self, state: LinkState, language: Option<&str>) -> Survey {
        let language = self::language(language)
            .or_else(|| self::language(Some(&self.invitation.language)))
            .unwrap_or("en");
        let t = &self.template;
        let questions = t
            .questions
            .iter()
            .map(|q| SurveyQuestion {
                id: q.id.clone(),
                theme: q.theme,
                scale: q.scale,
                required: q.required,
                text: q.text.get(language).to_owned(),
                options: options(t, q, language),
                max_length: (!q.is_closed())
                    .then(|| q.max_length.unwrap_or(DEFAULT_COMMENT_LENGTH)),
            })
            .collect();
        Survey {
            state,
            language: language.to_owned(),
            title: t.title.get(language).to_owned(),
            intro: t.intro.get(language).to_owned(),
            closes_at: self.wave.closes_at.map(|c| c.and_utc()),
            time_zone: self.time_zone,
            min_group_size: self.wave.min_group_size,
            questions,
        }
    }
}

fn options(
    t: &Template,
    q: &crate::surveys::template::Question,
    language: &str,
) -> Vec<AnswerOption> {
    let mut options: Vec<AnswerOption> = match q.scale {
        Scale::Agree5 => t
            .labels
            .agree_5
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, label)| AnswerOption {
                value: (i + 1).into(),
                label: label.get(language).to_owned(),
            })
            .collect(),
        Scale::Likelihood11 => (0..=10)
            .map(|n| AnswerOption {
                value: n.into(),
                label: match (&t.labels.likelihood_11, n) {
                    (Some(ends), 0) => format!("0 – {}", ends.low.get(language)),
                    (Some(ends), 10) => format!("10 – {}", ends.high.get(language)),
                    _ => n.to_string(),
                },
            })
            .collect(),
        Scale::Comment => Vec::new(),
    };
    if q.dont_know
        && let Some(label) = &t.labels.dont_know
    {
        options.push(AnswerOption {
            value: answer::DONT_KNOW.into(),
            label: label.get(language).to_owned(),
        });
    }
    options
}

/// What an answer came to.
#[derive(Debug)]
pub enum Outcome {
    Stored,
    AlreadyAnswered,
    Closed,
    Invalid(Vec<crate::error::FieldError>),
}

/// What checking an answer came to: ready for the writer, or settled
/// already (the wave closed, the link answered, the answers invalid).
enum Prepared {
    Ready(commit::Checked),
    Settled(Outcome),
}

impl Prepared {
    /// The outcome: a ready answer is stored (group commit), and this
    /// returns once it is on disk.
    async fn settle(self, committer: &commit::Committer) -> Result<Outcome, ApiError> {
        match self {
            Self::Ready(answer) => committer.store(answer).await,
            Self::Settled(outcome) => Ok(outcome),
        }
    }
}

/// Checks the answers to a link against its template and scrubs them, on
/// a read connection. The writer checks the wave and the link again in the
/// transaction that stores them ([`commit`]).
fn prepare(
    conn: &mut DbConnection,
    link: &Link,
    given: &GivenAnswers,
    now: DateTime<Utc>,
) -> Result<Prepared, ApiError> {
    match link.state(conn, now)? {
        LinkState::Closed => return Ok(Prepared::Settled(Outcome::Closed)),
        LinkState::Answered => return Ok(Prepared::Settled(Outcome::AlreadyAnswered)),
        LinkState::Open => {}
    }
    // The team's names, to scrub from comments: only when there is text.
    let has_text = given
        .answers
        .values()
        .any(|v| v.as_str().is_some_and(|text| text != answer::DONT_KNOW));
    let names = if has_text {
        answer::name_words(
            store::team_names(conn, &link.invitation.team_id)?
                .iter()
                .map(String::as_str),
        )
    } else {
        Default::default()
    };
    let answers = match Answers::check(&link.template, given, &names) {
        Ok(answers) => answers,
        Err(problems) => return Ok(Prepared::Settled(Outcome::Invalid(problems))),
    };
    let answers = serde_json::to_string(&answers.0).map_err(|e| ApiError::Unexpected(e.into()))?;
    Ok(Prepared::Ready(commit::Checked {
        wave_id: link.wave.id.clone(),
        team_id: link.invitation.team_id.clone(),
        answers,
        nullifier: link.nullifier.clone(),
        at: now,
    }))
}
