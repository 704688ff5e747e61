//! `/api/v1/mobility/…`: mobility figures per team, subtree and
//! organisation, the organisation-wide report, and the flow matrix. JSON,
//! or CSV with `Accept: text/csv` for the report and the flows. Admin, HR
//! and `mobility:read` keys see everything; a manager their own subtree.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::figures::{Figures, Period};
use super::pulses::{Correlation, correlation};
use super::{Computed, GroupKind, History, Timelines};
use crate::auth::caller::{Caller, Permission, Reach};
use crate::clock::SharedClock;
use crate::db::Db;
use crate::error::{ApiError, FieldError, Missing, Problem, Refused};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(organisation_mobility)
        .service(team_mobility)
        .service(subtree_mobility)
        .service(mobility_report)
        .service(mobility_flows)
        .service(beside_pulses);
}

const DEFAULT_STUCK_MONTHS: u32 = 36;
/// Longest period asked at once.
const MAX_YEARS: u32 = 50;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// First day (in the organisation's time zone), included. Default: a
    /// year before `to`.
    #[param(value_type = Option<String>, format = Date)]
    pub from: Option<String>,
    /// The day after the last (in the organisation's time zone), excluded.
    /// Default: tomorrow, so the period ends with today.
    #[param(value_type = Option<String>, format = Date)]
    pub to: Option<String>,
    /// "Stuck" means in the same role longer than this many months (1 to
    /// 600; default 36).
    pub stuck_months: Option<u32>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FlowQuery {
    #[param(value_type = Option<String>, format = Date)]
    pub from: Option<String>,
    #[param(value_type = Option<String>, format = Date)]
    pub to: Option<String>,
    /// Count moves between the teams' ancestors at this depth (1: the top
    /// level), e.g. between departments; default: between teams.
    pub depth: Option<usize>,
}

/// The period asked for, checked, with the organisation's today.
fn period(from: Option<&str>, to: Option<&str>, today: NaiveDate) -> Result<Period, ApiError> {
    let mut errors = Vec::new();
    let day = |field: &str, text: Option<&str>, errors: &mut Vec<FieldError>| {
        text.and_then(|t| match t.parse::<NaiveDate>() {
            Ok(day) => Some(day),
            Err(_) => {
                errors.push(FieldError::new(field, "must be a date, YYYY-MM-DD"));
                None
            }
        })
    };
    let to_day = day("to", to, &mut errors);
    let from_day = day("from", from, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let to = to_day.unwrap_or_else(|| today.succ_opt().unwrap_or(today));
    let from = match from_day {
        Some(from) => from,
        None => to
            .checked_sub_months(Months::new(12))
            .ok_or_else(|| ApiError::field("to", "is too early"))?,
    };
    if from >= to {
        return Err(ApiError::field("to", "must be after from"));
    }
    if from.checked_add_months(Months::new(12 * MAX_YEARS)) < Some(to) {
        return Err(ApiError::field(
            "from",
            "the period may be at most 50 years",
        ));
    }
    Ok(Period { from, to })
}

/// Reads the history and adds it up, for the caller's organisation.
async fn computed(
    db: &Db,
    clock: &SharedClock,
    timelines: &web::Data<Timelines>,
    caller: &Caller,
    from: Option<String>,
    to: Option<String>,
) -> Result<Computed, ApiError> {
    let organisation_id = caller.organisation_id().to_owned();
    let now = clock.now();
    let timelines = timelines.clone();
    db.run(move |conn| {
        let zone = crate::org::store::time_zone(conn, &organisation_id)?;
        let today = now.with_timezone(&zone).date_naive();
        let period = period(from.as_deref(), to.as_deref(), today)?;
        Ok(super::compute(conn, &timelines, &organisation_id, period)?)
    })
    .await
}

fn stuck_months(asked: Option<u32>) -> Result<u32, ApiError> {
    let months = asked.unwrap_or(DEFAULT_STUCK_MONTHS);
    if !(1..=600).contains(&months) {
        return Err(ApiError::field("stuck_months", "must be between 1 and 600"));
    }
    Ok(months)
}

/// A group as the answers name it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GroupName {
    /// `team` (its own members), `subtree` or `organisation`.
    pub kind: &'static str,
    /// None for the organisation.
    pub team_id: Option<String>,
    /// `Engineering/Platform`; none for the organisation.
    pub path: Option<String>,
}

/// One group's figures over a period.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupFigures {
    pub group: GroupName,
    pub period: Period,
    pub figures: Figures,
}

/// One group's figures, if the caller may see its team.
fn group_figures(
    computed: &Computed,
    reach: &Reach,
    kind: GroupKind,
    team: Option<&str>,
    stuck: u32,
) -> Result<GroupFigures, ApiError> {
    let visible = match team {
        Some(team) => computed.history.reaches(reach, team),
        None => matches!(reach, Reach::Organisation),
    };
    let tally = computed
        .tally(kind, team)
        .filter(|_| visible)
        .ok_or(ApiError::NotFound)?;
    Ok(GroupFigures {
        group: name(computed, kind, team),
        period: computed.period,
        figures: tally.figures(computed.period, stuck),
    })
}

fn name(computed: &Computed, kind: GroupKind, team: Option<&str>) -> GroupName {
    GroupName {
        kind: match kind {
            GroupKind::Team => "team",
            GroupKind::Subtree => "subtree",
            GroupKind::Organisation => "organisation",
        },
        team_id: team.map(str::to_owned),
        path: team.and_then(|t| computed.history.path(t)),
    }
}

/// The organisation's mobility over a period (not for managers: theirs is
/// their subtree).
#[utoipa::path(
    tag = "mobility",
    security(("bearer" = [])),
    params(PeriodQuery),
    responses(
        (status = 200, description = "OK", body = GroupFigures),
        Refused,
        Missing,
        (status = 422, description = "A bad period or threshold", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/mobility/organisation")]
pub async fn organisation_mobility(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    timelines: web::Data<Timelines>,
    caller: Caller,
    query: web::Query<PeriodQuery>,
) -> Result<web::Json<GroupFigures>, ApiError> {
    let reach = caller.require(Permission::ReadMobility)?;
    let query = query.into_inner();
    let stuck = stuck_months(query.stuck_months)?;
    let computed = computed(&db, &clock, &timelines, &caller, query.from, query.to).await?;
    Ok(web::Json(group_figures(
        &computed,
        &reach,
        GroupKind::Organisation,
        None,
        stuck,
    )?))
}

/// A team's own members' mobility over a period.
#[utoipa::path(
    tag = "mobility",
    security(("bearer" = [])),
    params(("team_id" = String, Path, description = "The team's id"), PeriodQuery),
    responses(
        (status = 200, description = "OK", body = GroupFigures),
        Refused,
        Missing,
        (status = 422, description = "A bad period or threshold", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/mobility/teams/{team_id}")]
pub async fn team_mobility(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    timelines: web::Data<Timelines>,
    caller: Caller,
    team_id: web::Path<String>,
    query: web::Query<PeriodQuery>,
) -> Result<web::Json<GroupFigures>, ApiError> {
    one_team(
        db,
        clock,
        timelines,
        caller,
        team_id,
        query,
        GroupKind::Team,
    )
    .await
}

/// A team's subtree's mobility over a period: moves between its teams are
/// moves within.
#[utoipa::path(
    tag = "mobility",
    security(("bearer" = [])),
    params(("team_id" = String, Path, description = "The subtree's top team"), PeriodQuery),
    responses(
        (status = 200, description = "OK", body = GroupFigures),
        Refused,
        Missing,
        (status = 422, description = "A bad period or threshold", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/mobility/subtrees/{team_id}")]
pub async fn subtree_mobility(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    timelines: web::Data<Timelines>,
    caller: Caller,
    team_id: web::Path<String>,
    query: web::Query<PeriodQuery>,
) -> Result<web::Json<GroupFigures>, ApiError> {
    one_team(
        db,
        clock,
        timelines,
        caller,
        team_id,
        query,
        GroupKind::Subtree,
    )
    .await
}

async fn one_team(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    timelines: web::Data<Timelines>,
    caller: Caller,
    team_id: web::Path<String>,
    query: web::Query<PeriodQuery>,
    kind: GroupKind,
) -> Result<web::Json<GroupFigures>, ApiError> {
    let reach = caller.require(Permission::ReadMobility)?;
    let query = query.into_inner();
    let stuck = stuck_months(query.stuck_months)?;
    let computed = computed(&db, &clock, &timelines, &caller, query.from, query.to).await?;
    Ok(web::Json(group_figures(
        &computed,
        &reach,
        kind,
        Some(&team_id),
        stuck,
    )?))
}

/// Every group the caller may see, in one answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Report {
    pub period: Period,
    /// None for a manager.
    pub organisation: Option<Figures>,
    /// By path.
    pub teams: Vec<TeamFigures>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamFigures {
    pub team_id: String,
    pub path: String,
    /// The team's own members.
    pub team: Figures,
    /// The team and everything below it.
    pub subtree: Figures,
}

fn csv_response(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::VARY, "Accept, Authorization"))
        .body(body)
}

/// The organisation-wide report: the organisation, and every team's own
/// members and subtree (a manager: the teams of their subtree). With
/// `Accept: text/csv`, one row per group with the figures in columns.
#[utoipa::path(
    tag = "mobility",
    security(("bearer" = [])),
    params(PeriodQuery),
    responses(
        (status = 200, description = "OK", content(
            (Report = "application/json"),
            (String = "text/csv"),
        )),
        Refused,
        (status = 422, description = "A bad period or threshold", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/mobility/report")]
pub async fn mobility_report(
    req: HttpRequest,
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    timelines: web::Data<Timelines>,
    caller: Caller,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    let reach = caller.require(Permission::ReadMobility)?;
    let query = query.into_inner();
    let stuck = stuck_months(query.stuck_months)?;
    let computed = computed(&db, &clock, &timelines, &caller, query.from, query.to).await?;
    let period = computed.period;
    let visible = |team: &str| computed.history.reaches(&reach, team);
    let organisation = matches!(reach, Reach::Organisation).then(|| {
        computed
            .tally(GroupKind::Organisation, None)
            .map(|t| t.figures(period, stuck))
    });
    let teams: Vec<TeamFigures> = computed
        .history
        .teams
        .iter()
        .filter(|t| visible(&t.id))
        .filter_map(|t| {
            Some(TeamFigures {
                team_id: t.id.clone(),
                path: t.path.clone(),
                team: computed
                    .tally(GroupKind::Team, Some(&t.id))?
                    .figures(period, stuck),
                subtree: computed
                    .tally(GroupKind::Subtree, Some(&t.id))?
                    .figures(period, stuck),
            })
        })
        .collect();
    let report = Report {
        period,
        organisation: organisation.flatten(),
        teams,
    };
    if crate::http::accepts(&req, "text/csv") {
        let csv = report_csv(&report)?;
        caller
            .audit("export.mobility_report")
            .with(serde_json::json!({ "from": period.from, "to": period.to }))
            .record_now(&db)
            .await?;
        return Ok(csv_response(csv));
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::VARY, "Accept, Authorization"))
        .json(report))
}

const REPORT_COLUMNS: [&str; 35] = [
    "group_kind",
    "team_id",
    "path",
    "from",
    "to",
    "headcount_start",
    "headcount_end",
    "headcount_average",
    "hires",
    "rehires",
    "moves_in",
    "moves_out",
    "moves_within",
    "promotions",
    "demotions",
    "lateral_moves",
    "exits",
    "voluntary_exits",
    "involuntary_exits",
    "other_exits",
    "hire_rate",
    "rehire_rate",
    "move_in_rate",
    "move_out_rate",
    "promotion_rate",
    "lateral_move_rate",
    "exit_rate",
    "voluntary_exit_rate",
    "involuntary_exit_rate",
    "other_exit_rate",
    "internal_fill_share",
    "people_in_role",
    "median_months_in_role",
    "stuck_months",
    "stuck_share",
];

/// A CSV document of a header and rows.
fn csv_document(
    header: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<Vec<u8>, ApiError> {
    let unexpected = |e: csv::Error| ApiError::Unexpected(e.into());
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(header).map_err(unexpected)?;
    for row in rows {
        out.write_record(&row).map_err(unexpected)?;
    }
    out.into_inner()
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("{e}")))
}

fn report_csv(report: &Report) -> Result<Vec<u8>, ApiError> {
    let opt = |x: Option<f64>| x.map_or(String::new(), |x| x.to_string());
    let row = |kind: &str, id: &str, path: &str, f: &Figures| -> Vec<String> {
        let c = &f.counts;
        let r = &f.rates;
        vec![
            kind.to_owned(),
            id.to_owned(),
            path.to_owned(),
            report.period.from.to_string(),
            report.period.to.to_string(),
            f.headcount.start.to_string(),
            f.headcount.end.to_string(),
            f.headcount.average.to_string(),
            c.hires.to_string(),
            c.rehires.to_string(),
            c.moves_in.to_string(),
            c.moves_out.to_string(),
            c.moves_within.to_string(),
            c.promotions.to_string(),
            c.demotions.to_string(),
            c.lateral_moves.to_string(),
            c.exits.to_string(),
            c.voluntary_exits.to_string(),
            c.involuntary_exits.to_string(),
            c.other_exits.to_string(),
            opt(r.hires),
            opt(r.rehires),
            opt(r.moves_in),
            opt(r.moves_out),
            opt(r.promotions),
            opt(r.lateral_moves),
            opt(r.exits),
            opt(r.voluntary_exits),
            opt(r.involuntary_exits),
            opt(r.other_exits),
            opt(f.internal_fill_share),
            f.time_in_role.people.to_string(),
            opt(f.time_in_role.median_months),
            f.time_in_role.stuck_months.to_string(),
            opt(f.time_in_role.stuck_share),
        ]
    };
    let organisation = report
        .organisation
        .iter()
        .map(|f| row("organisation", "", "", f));
    let teams = report.teams.iter().flat_map(|t| {
        [
            row("team", &t.team_id, &t.path, &t.team),
            row("subtree", &t.team_id, &t.path, &t.subtree),
        ]
    });
    csv_document(&REPORT_COLUMNS, organisation.chain(teams))
}

/// Moves from one team (or department) to another.
#[derive(Debug, Serialize, ToSchema)]
pub struct Flow {
    /// None: a team outside a manager's subtree.
    pub from_team_id: Option<String>,
    pub from_path: Option<String>,
    pub to_team_id: Option<String>,
    pub to_path: Option<String>,
    pub moves: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Flows {
    pub period: Period,
    pub depth: Option<usize>,
    /// Most moves first.
    pub flows: Vec<Flow>,
}

/// The flow matrix: internal moves between teams in the period (or between
/// their ancestors at `depth`), as a list of pairs — which teams export
/// talent and which keep it. A manager sees the moves into, out of and
/// within their subtree; a team outside it is left unnamed.
#[utoipa::path(
    tag = "mobility",
    security(("bearer" = [])),
    params(FlowQuery),
    responses(
        (status = 200, description = "OK", content(
            (Flows = "application/json"),
            (String = "text/csv"),
        )),
        Refused,
        (status = 422, description = "A bad period or depth", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/mobility/flows")]
pub async fn mobility_flows(
    req: HttpRequest,
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    timelines: web::Data<Timelines>,
    caller: Caller,
    query: web::Query<FlowQuery>,
) -> Result<HttpResponse, ApiError> {
    let reach = caller.require(Permission::ReadMobility)?;
    let query = query.into_inner();
    if query.depth.is_some_and(|d| !(1..=50).contains(&d)) {
        return Err(ApiError::field("depth", "must be between 1 and 50"));
    }
    let computed = computed(&db, &clock, &timelines, &caller, query.from, query.to).await?;
    let history = &computed.history;
    let shown = |team: &str| history.reaches(&reach, team);
    let mut merged: std::collections::BTreeMap<(Option<String>, Option<String>), u32> =
        std::collections::BTreeMap::new();
    for ((from, to), moves) in computed.flows(query.depth) {
        let (from_shown, to_shown) = (shown(&from), shown(&to));
        if !from_shown && !to_shown {
            continue;
        }
        let key = (from_shown.then_some(from), to_shown.then_some(to));
        *merged.entry(key).or_default() += moves;
    }
    let mut list: Vec<Flow> = merged
        .into_iter()
        .map(|((from, to), moves)| Flow {
            from_path: from.as_deref().and_then(|t| history.path(t)),
            to_path: to.as_deref().and_then(|t| history.path(t)),
            from_team_id: from,
            to_team_id: to,
            moves,
        })
        .collect();
    list.sort_by(|a, b| {
        b.moves
            .cmp(&a.moves)
            .then_with(|| a.from_path.cmp(&b.from_path))
    });
    let flows = Flows {
        period: computed.period,
        depth: query.depth,
        flows: list,
    };
    if crate::http::accepts(&req, "text/csv") {
        caller
            .audit("export.mobility_flows")
            .with(serde_json::json!({
                "from": flows.period.from,
                "to": flows.period.to,
                "depth": flows.depth,
            }))
            .record_now(&db)
            .await?;
        let text = |x: &Option<String>| x.clone().unwrap_or_default();
        let rows = flows.flows.iter().map(|f| {
            vec![
                text(&f.from_team_id),
                text(&f.from_path),
                text(&f.to_team_id),
                text(&f.to_path),
                f.moves.to_string(),
            ]
        });
        let body = csv_document(
            &[
                "from_team_id",
                "from_path",
                "to_team_id",
                "to_path",
                "moves",
            ],
            rows,
        )?;
        return Ok(csv_response(body));
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::VARY, "Accept, Authorization"))
        .json(flows))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BesideQuery {
    /// The window after each score: this many months from the day its wave
    /// closed (1 to 24; default 3).
    pub months: Option<u32>,
}

/// A team's latest score whose window has passed, and what followed.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamBeside {
    pub team_id: String,
    pub path: String,
    pub wave_id: String,
    /// The day the wave closed, in the organisation's time zone.
    pub closed_on: NaiveDate,
    /// The published theme score of the team's own members (1–5).
    pub score: f64,
    /// Its favourable share.
    pub favourable: f64,
    /// Respondents behind it (at least the wave's k: suppressed cells are
    /// never used).
    pub respondents: u32,
    /// `[closed_on, closed_on + months)`.
    pub window: Period,
    pub average_headcount: f64,
    /// Moves out of the team to another team, per 100 average headcount,
    /// annualised.
    pub internal_move_rate: Option<f64>,
    pub exit_rate: Option<f64>,
    pub voluntary_exit_rate: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ThemeBeside {
    /// `development_opportunities`, `career_outlook` or `psychological_safety`.
    pub theme: String,
    /// By path.
    pub teams: Vec<TeamBeside>,
    /// Across the teams: the score against each later rate.
    pub internal_move_rate: Correlation,
    pub exit_rate: Correlation,
    pub voluntary_exit_rate: Correlation,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Beside {
    pub months: u32,
    pub themes: Vec<ThemeBeside>,
}

/// Mobility beside the pulses: per team and theme, the latest published
/// score of the team's own members whose window of `months` after the
/// wave's close has passed, next to the team's internal-move and exit rates
/// in that window; and across teams, how score and rate go together
/// (Pearson's r, 95% interval, the number of teams). Needs both
/// `mobility:read` and `results:read` for a key. Team level only: a
/// response is never linked to a person, so what leavers answered cannot
/// be asked, by design. A manager sees, and correlates, their own subtree.
#[utoipa::path(
    tag = "mobility",
    security(("bearer" = [])),
    params(BesideQuery),
    responses(
        (status = 200, description = "OK", body = Beside),
        Refused,
        (status = 422, description = "A bad window", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/mobility/pulses")]
pub async fn beside_pulses(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    timelines: web::Data<Timelines>,
    caller: Caller,
    query: web::Query<BesideQuery>,
) -> Result<web::Json<Beside>, ApiError> {
    // Theme scores are results: an integration needs both scopes.
    let reach = caller.require(Permission::ReadMobility)?;
    caller.require(Permission::ReadResults)?;
    let months = query.months.unwrap_or(3);
    if !(1..=24).contains(&months) {
        return Err(ApiError::field("months", "must be between 1 and 24"));
    }
    let organisation_id = caller.organisation_id().to_owned();
    let now = clock.now();
    let timelines = timelines.clone();
    let beside = db
        .run(move |conn| -> Result<Beside, ApiError> {
            let zone = crate::org::store::time_zone(conn, &organisation_id)?;
            let today = now.with_timezone(&zone).date_naive();
            let history = History::load(conn, &timelines, &organisation_id)?;
            let cells = crate::results::store::theme_history(conn, &organisation_id, "team", None)?;
            beside(&history, &reach, cells, months, zone, today)
        })
        .await?;
    Ok(web::Json(beside))
}

fn beside(
    history: &History,
    reach: &Reach,
    cells: Vec<crate::results::store::HistoryRow>,
    months: u32,
    zone: chrono_tz::Tz,
    today: NaiveDate,
) -> Result<Beside, ApiError> {
    use std::collections::{BTreeMap, HashMap};
    /// A team's published score and the window after it.
    struct Scored {
        closed_on: NaiveDate,
        window: Period,
        wave_id: String,
        score: f64,
        favourable: f64,
        respondents: u32,
    }
    // Per (theme, team): the latest usable cell; the history is oldest first.
    let mut latest: BTreeMap<(String, String), Scored> = BTreeMap::new();
    for row in cells {
        let (Some(closed_at), None, Some(figures)) = (
            row.closed_at,
            row.cell.suppressed.as_ref(),
            row.cell.figures.as_deref(),
        ) else {
            continue;
        };
        if !history.reaches(reach, &row.team_id) || history.groups.team(&row.team_id).is_none() {
            continue;
        }
        let closed_on = closed_at.and_utc().with_timezone(&zone).date_naive();
        let Some(end) = closed_on.checked_add_months(Months::new(months)) else {
            continue;
        };
        if end > today {
            continue; // Its window has not passed yet (today may still change).
        }
        let theme: crate::results::publish::ThemeFigures = serde_json::from_str(figures)
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("stored theme figures: {e}")))?;
        latest.insert(
            (row.cell.measure.clone(), row.team_id.clone()),
            Scored {
                closed_on,
                window: Period {
                    from: closed_on,
                    to: end,
                },
                wave_id: row.wave_id,
                score: theme.score,
                favourable: theme.favourable,
                respondents: theme.n,
            },
        );
    }
    let mut windows: HashMap<Period, Vec<super::figures::Tally>> = HashMap::new();
    let mut themes: BTreeMap<String, Vec<TeamBeside>> = BTreeMap::new();
    for ((theme, team), scored) in latest {
        let Scored {
            closed_on,
            window,
            wave_id,
            score,
            favourable,
            respondents,
        } = scored;
        let tallies = windows
            .entry(window)
            .or_insert_with(|| history.tallies(window));
        let Some(index) = history.groups.team(&team) else {
            continue;
        };
        let figures = tallies[index].figures(window, DEFAULT_STUCK_MONTHS);
        themes.entry(theme).or_default().push(TeamBeside {
            path: history.teams[index].path.clone(),
            team_id: team,
            wave_id,
            closed_on,
            score,
            favourable,
            respondents,
            window,
            average_headcount: figures.headcount.average,
            internal_move_rate: figures.rates.moves_out,
            exit_rate: figures.rates.exits,
            voluntary_exit_rate: figures.rates.voluntary_exits,
        });
    }
    let themes = themes
        .into_iter()
        .map(|(theme, mut teams)| {
            teams.sort_by(|a, b| a.path.cmp(&b.path));
            let against = |rate: fn(&TeamBeside) -> Option<f64>| {
                let points: Vec<(f64, f64)> = teams
                    .iter()
                    .filter_map(|t| Some((t.score, rate(t)?)))
                    .collect();
                correlation(&points)
            };
            ThemeBeside {
                internal_move_rate: against(|t| t.internal_move_rate),
                exit_rate: against(|t| t.exit_rate),
                voluntary_exit_rate: against(|t| t.voluntary_exit_rate),
                theme,
                teams,
            }
        })
        .collect();
    Ok(Beside { months, themes })
}
