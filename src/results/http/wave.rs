//! `/api/v1/waves/{id}/results…`: a wave's published results for the
//! organisation, a team's own members, or a team's subtree. A closed wave
//! shows its latest publication; an open wave only participation, for
//! groups of at least k invited, as of the last batch of answered flags
//! (DESIGN.md, invariants 3 and 5).

use std::collections::BTreeMap;

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{GroupRef, Reason, decode};
use crate::auth::caller::{Caller, Permission, Reach};
use crate::db::{Db, DbConnection};
use crate::error::{ApiError, Missing, Problem, Refused};
use crate::results::publish::{
    self, CommentFigures, Figures, ParticipationFigures, QuestionFigures, ThemeFigures,
};
use crate::results::store::{self, CellRow};
use crate::results::suppress::{Group, group_sizes};
use crate::surveys::template::{Scale, Theme};
use crate::surveys::waves::store::WaveRow;

/// Participation: figures, or why not.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ParticipationCell {
    pub suppressed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(flatten)]
    pub figures: Option<ParticipationFigures>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QuestionCell {
    pub question_id: String,
    pub theme: Theme,
    pub scale: Scale,
    /// Scored 6 − x (10 − x) before anything is counted.
    pub reverse: bool,
    pub suppressed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(flatten)]
    pub figures: Option<QuestionFigures>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ThemeCell {
    pub theme: Theme,
    pub suppressed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(flatten)]
    pub figures: Option<ThemeFigures>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CommentCell {
    pub question_id: String,
    pub theme: Theme,
    pub suppressed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(flatten)]
    pub figures: Option<CommentFigures>,
}

/// One group's results for one wave.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WaveResults {
    pub wave_id: String,
    pub pulse_id: String,
    /// False while the wave is open: then only participation is shown.
    pub published: bool,
    pub published_at: Option<DateTime<Utc>>,
    /// The k the results were published with.
    pub min_group_size: i32,
    pub group: GroupRef,
    pub participation: ParticipationCell,
    /// Closed questions, in the template's order.
    pub questions: Vec<QuestionCell>,
    /// The themes of the template's 1–5 questions.
    pub themes: Vec<ThemeCell>,
    pub comments: Vec<CommentCell>,
}

/// A wave's results for the organisation; for a manager, for their subtree.
#[utoipa::path(
    tag = "results",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The wave's id")),
    responses(
        (status = 200, description = "OK", body = WaveResults),
        Refused,
        Missing,
        (status = 409, description = "A skipped firing, or a wave closed before results were published", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/waves/{id}/results")]
pub async fn organisation_results(
    db: web::Data<Db>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<WaveResults>, ApiError> {
    let reach = caller.require(Permission::ReadResults)?;
    let group = super::own_view(&reach);
    read(db, caller, reach, id.into_inner(), group).await
}

/// A wave's results for a team's own members (not the teams below it).
#[utoipa::path(
    tag = "results",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The wave's id"),
        ("team_id" = String, Path, description = "The team's id"),
    ),
    responses(
        (status = 200, description = "OK", body = WaveResults),
        Refused,
        Missing,
        (status = 409, description = "A skipped firing, or a wave closed before results were published", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/waves/{id}/results/teams/{team_id}")]
pub async fn team_results(
    db: web::Data<Db>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<web::Json<WaveResults>, ApiError> {
    let reach = caller.require(Permission::ReadResults)?;
    let (id, team) = path.into_inner();
    read(db, caller, reach, id, Group::Team(team)).await
}

/// A wave's results for a team and every team below it.
#[utoipa::path(
    tag = "results",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The wave's id"),
        ("team_id" = String, Path, description = "The subtree's top team"),
    ),
    responses(
        (status = 200, description = "OK", body = WaveResults),
        Refused,
        Missing,
        (status = 409, description = "A skipped firing, or a wave closed before results were published", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/waves/{id}/results/subtrees/{team_id}")]
pub async fn subtree_results(
    db: web::Data<Db>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<web::Json<WaveResults>, ApiError> {
    let reach = caller.require(Permission::ReadResults)?;
    let (id, team) = path.into_inner();
    read(db, caller, reach, id, Group::Subtree(team)).await
}

async fn read(
    db: web::Data<Db>,
    caller: Caller,
    reach: Reach,
    wave_id: String,
    group: Group,
) -> Result<web::Json<WaveResults>, ApiError> {
    let organisation_id = caller.organisation_id().to_owned();
    let results = db
        .run(move |conn| {
            let wave = crate::surveys::waves::store::find_in(conn, &organisation_id, &wave_id)?;
            let lineage = super::lineage(conn, &organisation_id, &group)?;
            let group_ref = super::group_ref(&lineage, &reach, &group)?;
            match wave.status.as_str() {
                // Participation rolls up the whole tree.
                "open" => {
                    let parents = crate::org::teams::store::parents(conn, &organisation_id)?;
                    open_results(conn, &wave, &parents, group, group_ref)
                }
                "closed" => closed_results(conn, &wave, group, group_ref),
                _ => Err(ApiError::Conflict("This firing never opened.".into())),
            }
        })
        .await?;
    Ok(web::Json(results))
}

/// An open wave: participation only, from the invited counts frozen at
/// open and the answered flags as last set in a batch, under the current
/// team tree.
fn open_results(
    conn: &mut DbConnection,
    wave: &WaveRow,
    parents: &BTreeMap<String, Option<String>>,
    group: Group,
    group_ref: GroupRef,
) -> Result<WaveResults, ApiError> {
    let invited: BTreeMap<String, u32> = crate::surveys::waves::store::team_counts(conn, &wave.id)?
        .into_iter()
        .map(|(team, n)| (team, u32::try_from(n).unwrap_or(0)))
        .collect();
    let responded = group_sizes(parents, &store::answered_per_team(conn, &wave.id)?);
    let k = crate::results::store::minimum(wave.min_group_size)?;
    let cell = publish::participation(parents, &invited, &responded, k, &BTreeMap::new())
        .into_iter()
        .find(|cell| cell.group == group);
    let participation = match cell.map(|c| c.outcome) {
        Some(Ok(Figures::Participation(figures))) => ParticipationCell {
            suppressed: false,
            reason: None,
            figures: Some(figures),
        },
        Some(Err(why)) => suppressed_cell(why.into()),
        // A group with nobody invited.
        _ => suppressed_cell(Reason::BelowMinimum),
    };
    Ok(WaveResults {
        wave_id: wave.id.clone(),
        pulse_id: wave.pulse_id.clone(),
        published: false,
        published_at: None,
        min_group_size: wave.min_group_size,
        group: group_ref,
        participation,
        questions: Vec::new(),
        themes: Vec::new(),
        comments: Vec::new(),
    })
}

fn suppressed_cell(reason: Reason) -> ParticipationCell {
    ParticipationCell {
        suppressed: true,
        reason: Some(reason),
        figures: None,
    }
}

/// A closed wave: its latest publication's cells for the group.
fn closed_results(
    conn: &mut DbConnection,
    wave: &WaveRow,
    group: Group,
    group_ref: GroupRef,
) -> Result<WaveResults, ApiError> {
    let publication = store::latest_publication(conn, &wave.id)?.ok_or_else(|| {
        ApiError::Conflict("This wave closed before Peil published results.".into())
    })?;
    let template = wave
        .template
        .as_deref()
        .map(crate::surveys::templates::decode)
        .transpose()?
        .ok_or(ApiError::NotFound)?;
    let (group_kind, team_id) = store::group_key(&group, &wave.organisation_id);
    let cells: BTreeMap<(String, String), CellRow> =
        store::group_cells(conn, publication.seq, group_kind, &team_id)?
            .into_iter()
            .map(|row| ((row.measure_kind.clone(), row.measure.clone()), row))
            .collect();
    // A team created after the close has no cells: nobody of it answered.
    let cell = |kind: &str, measure: &str| cells.get(&(kind.to_owned(), measure.to_owned()));
    let participation = match cell("participation", "") {
        Some(row) => {
            let (suppressed, reason, figures) = decode(row)?;
            ParticipationCell {
                suppressed,
                reason,
                figures,
            }
        }
        None => suppressed_cell(Reason::BelowMinimum),
    };
    let mut questions = Vec::new();
    for question in template.closed_questions() {
        let (suppressed, reason, figures) = cell("question", &question.id)
            .map(decode)
            .transpose()?
            .unwrap_or((true, Some(Reason::BelowMinimum), None));
        questions.push(QuestionCell {
            question_id: question.id.clone(),
            theme: question.theme,
            scale: question.scale,
            reverse: question.reverse,
            suppressed,
            reason,
            figures,
        });
    }
    let mut themes = Vec::new();
    for theme in template.themes() {
        let Some(row) = cell("theme", theme.as_str()) else {
            continue; // No 1–5 item of this theme: no theme score.
        };
        let (suppressed, reason, figures) = decode(row)?;
        themes.push(ThemeCell {
            theme,
            suppressed,
            reason,
            figures,
        });
    }
    let mut comments = Vec::new();
    for question in template.comment_questions() {
        let (suppressed, reason, figures) = cell("comments", &question.id)
            .map(decode)
            .transpose()?
            .unwrap_or((true, Some(Reason::BelowMinimum), None));
        comments.push(CommentCell {
            question_id: question.id.clone(),
            theme: question.theme,
            suppressed,
            reason,
            figures,
        });
    }
    Ok(WaveResults {
        wave_id: wave.id.clone(),
        pulse_id: wave.pulse_id.clone(),
        published: true,
        published_at: Some(publication.published_at.and_utc()),
        min_group_size: publication.min_group_size,
        group: group_ref,
        participation,
        questions,
        themes,
        comments,
    })
}
