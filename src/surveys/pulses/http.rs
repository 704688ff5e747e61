//! `/api/v1/pulses`: recurring survey programs, their schedule preview, and
//! HR's "send now". All need `WritePulses` (admin, hr, a `pulses:write` key).

use std::collections::HashSet;

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::store::{self, PulseRow, PulseValues};
use super::{MAX_TEMPLATES, Pulse, PulseStatus, Timing};
use crate::auth::caller::{Caller, Permission};
use crate::clock::{SharedClock, to_stored};
use crate::db::{self, Db, DbConnection};
use crate::domain::{MinGroupSize, PulseName};
use crate::error::{ApiError, FieldError, InvalidFields, Missing, Problem, Refused};
use crate::http::json::double_option;
use crate::http::{ValidJson, idempotency};
use crate::org::teams::TeamTree;
use crate::surveys::templates;
use crate::surveys::waves::http::Wave;
use crate::surveys::waves::{self, Opening, Trigger};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_pulses)
        .service(create_pulse)
        .service(get_pulse)
        .service(update_pulse)
        .service(delete_pulse)
        .service(preview_schedule)
        .service(send_now);
}

/// A pulse as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PulseView {
    pub id: String,
    pub name: String,
    /// Template keys; more than one rotate, wave by wave.
    pub templates: Vec<String>,
    /// Team ids whose subtrees are invited.
    pub audience: Vec<String>,
    /// Team ids whose subtrees are left out.
    pub excluded_teams: Vec<String>,
    /// Five fields: minute hour day-of-month month day-of-week.
    pub cron: String,
    pub time_zone: String,
    /// How long each wave stays open.
    pub open_hours: u32,
    /// Hours after opening at which those who have not answered are reminded.
    pub reminder_hours: Vec<u32>,
    pub start_date: Option<NaiveDate>,
    /// Not included: no wave opens on or after this date.
    pub end_date: Option<NaiveDate>,
    pub status: PulseStatus,
    /// The minimum group size k for this pulse's results.
    pub min_group_size: i32,
    pub waves_opened: i32,
    /// When the schedule opens the next wave (none while paused or ended).
    pub next_wave_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PulseView {
    fn new(pulse: &Pulse, last_scheduled: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        let row = &pulse.row;
        Self {
            id: row.id.clone(),
            name: row.name.clone(),
            templates: pulse.templates.clone(),
            audience: pulse.audience.clone(),
            excluded_teams: pulse.excluded_teams.clone(),
            cron: row.cron.clone(),
            time_zone: row.time_zone.clone(),
            open_hours: pulse.timing.open_hours,
            reminder_hours: pulse.timing.reminder_hours.clone(),
            start_date: row.start_date,
            end_date: row.end_date,
            status: pulse.status,
            min_group_size: row.min_group_size,
            waves_opened: row.waves_opened,
            next_wave_at: upcoming(pulse, last_scheduled, now, 1).first().copied(),
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
        }
    }
}

/// The next `count` firings that will open a wave.
fn upcoming(
    pulse: &Pulse,
    last_scheduled: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    count: usize,
) -> Vec<DateTime<Utc>> {
    if pulse.status == PulseStatus::Paused {
        return Vec::new();
    }
    let mut from = now.max(pulse.row.schedule_from.and_utc());
    if let Some(last) = last_scheduled {
        from = from.max(last);
    }
    pulse.timing.firings(from, DateTime::<Utc>::MAX_UTC, count)
}

fn view(conn: &mut DbConnection, row: PulseRow, now: DateTime<Utc>) -> Result<PulseView, ApiError> {
    let last = store::last_scheduled(conn, &row.id)?.map(|t| t.and_utc());
    let pulse = Pulse::from_row(row)?;
    Ok(PulseView::new(&pulse, last, now))
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(default)]
pub struct CreatePulse {
    pub name: String,
    /// One template key, or several to rotate through (1–12).
    pub templates: Vec<String>,
    /// Team ids; each team's whole subtree is invited.
    pub audience: Vec<String>,
    /// Team ids inside the audience whose subtrees are left out.
    pub excluded_teams: Vec<String>,
    /// Five fields, e.g. `0 9 * * 1` for Mondays at 9:00.
    pub cron: String,
    /// An IANA zone; absent: the organisation's.
    pub time_zone: Option<String>,
    /// How long each wave stays open, 1 to 1440 hours.
    pub open_hours: i64,
    /// At most two, each within the window, increasing, e.g. `[72]`.
    pub reminder_hours: Vec<i64>,
    pub start_date: Option<NaiveDate>,
    /// Not included.
    pub end_date: Option<NaiveDate>,
    /// Absent: active.
    pub status: Option<PulseStatus>,
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(default)]
pub struct UpdatePulse {
    pub name: Option<String>,
    pub templates: Option<Vec<String>>,
    pub audience: Option<Vec<String>>,
    pub excluded_teams: Option<Vec<String>>,
    pub cron: Option<String>,
    pub time_zone: Option<String>,
    pub open_hours: Option<i64>,
    pub reminder_hours: Option<Vec<i64>>,
    /// Null clears it. Absent: unchanged.
    #[serde(deserialize_with = "double_option")]
    #[schema(value_type = Option<NaiveDate>)]
    pub start_date: Option<Option<NaiveDate>>,
    /// Null clears it. Absent: unchanged.
    #[serde(deserialize_with = "double_option")]
    #[schema(value_type = Option<NaiveDate>)]
    pub end_date: Option<Option<NaiveDate>>,
    /// `paused` stops new waves (open ones run to their close); `active`
    /// resumes from now: firings during the pause are not caught up.
    pub status: Option<PulseStatus>,
    /// k may be raised at any time; once a wave has opened it can no longer be lowered.
    pub min_group_size: Option<i64>,
}

/// Everything a pulse is made of, before checking.
struct Draft {
    name: String,
    templates: Vec<String>,
    audience: Vec<String>,
    excluded_teams: Vec<String>,
    cron: String,
    time_zone: String,
    open_hours: i64,
    reminder_hours: Vec<i64>,
    start_date: Option<NaiveDate>,
    end_date: Option<NaiveDate>,
    status: PulseStatus,
    min_group_size: i64,
}

/// Checks a draft against the organisation (templates and teams exist) and
/// the rules of timing; every bad field is named.
fn check(
    conn: &mut DbConnection,
    organisation_id: &str,
    draft: &Draft,
    now: DateTime<Utc>,
) -> Result<Timing, ApiError> {
    let mut errors: Vec<FieldError> = Vec::new();
    if let Err(e) = PulseName::parse(&draft.name) {
        errors.push(FieldError::new("name", e.0));
    }
    if draft.templates.is_empty() || draft.templates.len() > MAX_TEMPLATES {
        errors.push(FieldError::new(
            "templates",
            format!("must name 1 to {MAX_TEMPLATES} templates"),
        ));
    }
    for (i, key) in draft.templates.iter().enumerate() {
        if templates::latest(conn, organisation_id, key)?.is_none() {
            errors.push(FieldError::new(
                format!("templates.{i}"),
                "is not a template of this organisation (see GET /api/v1/templates)",
            ));
        }
    }
    let tree = TeamTree::new(crate::org::teams::store::list(conn, organisation_id)?);
    if draft.audience.is_empty() {
        errors.push(FieldError::new("audience", "must name at least one team"));
    }
    let mut seen = HashSet::new();
    for (i, id) in draft.audience.iter().enumerate() {
        if tree.get(id).is_none() {
            errors.push(FieldError::new(
                format!("audience.{i}"),
                "is not a team of this organisation",
            ));
        } else if !seen.insert(id.as_str()) {
            errors.push(FieldError::new(format!("audience.{i}"), "is listed twice"));
        }
    }
    for (i, id) in draft.excluded_teams.iter().enumerate() {
        if tree.get(id).is_none() {
            errors.push(FieldError::new(
                format!("excluded_teams.{i}"),
                "is not a team of this organisation",
            ));
        } else if !draft.audience.iter().any(|root| tree.is_within(id, root)) {
            errors.push(FieldError::new(
                format!("excluded_teams.{i}"),
                "is not inside the audience",
            ));
        }
    }
    let known_audience: Vec<&String> = draft
        .audience
        .iter()
        .filter(|id| tree.get(id).is_some())
        .collect();
    if !known_audience.is_empty()
        && known_audience.iter().all(|root| {
            draft
                .excluded_teams
                .iter()
                .any(|excluded| tree.is_within(root, excluded))
        })
    {
        errors.push(FieldError::new(
            "excluded_teams",
            "leaves no team in the audience",
        ));
    }
    if let Err(e) = MinGroupSize::new(draft.min_group_size) {
        errors.push(FieldError::new("min_group_size", e.0));
    }
    let timing = Timing::check(
        &draft.cron,
        &draft.time_zone,
        draft.open_hours,
        &draft.reminder_hours,
        draft.start_date,
        draft.end_date,
        now,
    );
    match timing {
        Ok(timing) if errors.is_empty() => Ok(timing),
        Ok(_) => Err(ApiError::Validation(errors)),
        Err(problems) => {
            errors.extend(
                problems
                    .into_iter()
                    .map(|(field, detail)| FieldError::new(field, detail)),
            );
            Err(ApiError::Validation(errors))
        }
    }
}

fn values<'a>(draft: &'a Draft, schedule_from: DateTime<Utc>) -> Result<PulseValues<'a>, ApiError> {
    Ok(PulseValues {
        name: draft.name.trim(),
        templates: to_json(&draft.templates)?,
        audience: to_json(&draft.audience)?,
        excluded_teams: to_json(&draft.excluded_teams)?,
        cron: draft.cron.trim(),
        time_zone: &draft.time_zone,
        open_hours: i32::try_from(draft.open_hours).unwrap_or(i32::MAX),
        reminder_hours: to_json(&draft.reminder_hours)?,
        start_date: draft.start_date,
        end_date: draft.end_date,
        status: draft.status.as_str(),
        min_group_size: i32::try_from(draft.min_group_size).unwrap_or(i32::MAX),
        schedule_from: to_stored(schedule_from),
    })
}

/// A list as the JSON text it is stored as.
fn to_json<T: Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| ApiError::Unexpected(e.into()))
}

/// Every pulse of the organisation, oldest first.
#[utoipa::path(
    tag = "pulses",
    security(("bearer" = [])),
    responses((status = 200, description = "OK", body = Vec<PulseView>), Refused)
)]
#[get("/pulses")]
pub async fn list_pulses(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    caller: Caller,
) -> Result<web::Json<Vec<PulseView>>, ApiError> {
    caller.require(Permission::WritePulses)?;
    let organisation_id = caller.organisation_id().to_owned();
    let now = clock.now();
    let pulses = db
        .run(move |conn| {
            store::list(conn, &organisation_id)?
                .into_iter()
                .map(|row| view(conn, row, now))
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await?;
    Ok(web::Json(pulses))
}

/// Create a pulse. Its k is the organisation's default at this moment.
#[utoipa::path(
    tag = "pulses",
    security(("bearer" = [])),
    request_body = CreatePulse,
    responses((status = 201, description = "Created", body = PulseView), Refused, InvalidFields)
)]
#[post("/pulses")]
pub async fn create_pulse(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    caller: Caller,
    body: ValidJson<CreatePulse>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WritePulses)?;
    let request = body.into_inner()?;
    let organisation_id = caller.organisation_id().to_owned();
    let now = clock.now();
    let audit = caller.audit("pulse.created");
    let pulse = db
        .run(move |conn| {
            db::write(conn, |conn| {
                let organisation = crate::org::store::find(conn, &organisation_id)?;
                let draft = Draft {
                    name: request.name,
                    templates: request.templates,
                    audience: request.audience,
                    excluded_teams: request.excluded_teams,
                    cron: request.cron,
                    time_zone: request.time_zone.unwrap_or(organisation.time_zone),
                    open_hours: request.open_hours,
                    reminder_hours: request.reminder_hours,
                    start_date: request.start_date,
                    end_date: request.end_date,
                    status: request.status.unwrap_or(PulseStatus::Active),
                    min_group_size: i64::from(organisation.min_group_size),
                };
                check(conn, &organisation_id, &draft, now)?;
                let id = store::insert(conn, &organisation_id, &values(&draft, now)?)?;
                audit
                    .on("pulse", &id)
                    .with(serde_json::json!({ "name": draft.name, "min_group_size": draft.min_group_size }))
                    .record(conn)?;
                let row = store::find_in(conn, &organisation_id, &id)?;
                view(conn, row, now)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(pulse))
}

/// One pulse.
#[utoipa::path(
    tag = "pulses",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The pulse's id")),
    responses((status = 200, description = "OK", body = PulseView), Refused, Missing)
)]
#[get("/pulses/{id}")]
pub async fn get_pulse(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<PulseView>, ApiError> {
    caller.require(Permission::WritePulses)?;
    let organisation_id = caller.organisation_id().to_owned();
    let now = clock.now();
    let pulse = db
        .run(move |conn| {
            let row = store::find_in(conn, &organisation_id, &id)?;
            view(conn, row, now)
        })
        .await?;
    Ok(web::Json(pulse))
}

/// Change a pulse. Future waves only: open and past waves keep what they
/// pinned. A new cadence (cron or time zone) or a resume counts from now.
#[utoipa::path(
    tag = "pulses",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The pulse's id")),
    request_body = UpdatePulse,
    responses((status = 200, description = "OK", body = PulseView), Refused, Missing, InvalidFields)
)]
#[patch("/pulses/{id}")]
pub async fn update_pulse(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    caller: Caller,
    id: web::Path<String>,
    body: ValidJson<UpdatePulse>,
) -> Result<web::Json<PulseView>, ApiError> {
    caller.require(Permission::WritePulses)?;
    let request = body.into_inner()?;
    let organisation_id = caller.organisation_id().to_owned();
    let now = clock.now();
    let fields: Vec<&str> = [
        ("name", request.name.is_some()),
        ("templates", request.templates.is_some()),
        ("audience", request.audience.is_some()),
        ("excluded_teams", request.excluded_teams.is_some()),
        ("cron", request.cron.is_some()),
        ("time_zone", request.time_zone.is_some()),
        ("open_hours", request.open_hours.is_some()),
        ("reminder_hours", request.reminder_hours.is_some()),
        ("start_date", request.start_date.is_some()),
        ("end_date", request.end_date.is_some()),
        ("status", request.status.is_some()),
        ("min_group_size", request.min_group_size.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    let audit = caller.audit("pulse.updated");
    let pulse = db
        .run(move |conn| {
            db::write(conn, |conn| {
                let found = store::find_in(conn, &organisation_id, &id)?;
                // Read again under the lock: concurrent edits queue, none is lost.
                let current = Pulse::locked(conn, &found.id)?;
                let row = &current.row;
                let draft = Draft {
                    name: request.name.unwrap_or_else(|| row.name.clone()),
                    templates: request
                        .templates
                        .unwrap_or_else(|| current.templates.clone()),
                    audience: request.audience.unwrap_or_else(|| current.audience.clone()),
                    excluded_teams: request
                        .excluded_teams
                        .unwrap_or_else(|| current.excluded_teams.clone()),
                    cron: request.cron.unwrap_or_else(|| row.cron.clone()),
                    time_zone: request.time_zone.unwrap_or_else(|| row.time_zone.clone()),
                    open_hours: request.open_hours.unwrap_or(i64::from(row.open_hours)),
                    reminder_hours: request.reminder_hours.unwrap_or_else(|| {
                        current
                            .timing
                            .reminder_hours
                            .iter()
                            .map(|h| i64::from(*h))
                            .collect()
                    }),
                    start_date: request.start_date.unwrap_or(row.start_date),
                    end_date: request.end_date.unwrap_or(row.end_date),
                    status: request.status.unwrap_or(current.status),
                    min_group_size: request
                        .min_group_size
                        .unwrap_or(i64::from(row.min_group_size)),
                };
                if draft.min_group_size < i64::from(row.min_group_size)
                    && store::count_opened(conn, &row.id)? > 0
                {
                    return Err(ApiError::field(
                        "min_group_size",
                        format!(
                            "may not be lowered below {} once a wave has opened",
                            row.min_group_size
                        ),
                    ));
                }
                check(conn, &organisation_id, &draft, now)?;
                // A new cadence, new dates or a resume count from now: no
                // firing before this edit is taken for a missed wave.
                let timing_changed = draft.cron.trim() != row.cron
                    || draft.time_zone != row.time_zone
                    || draft.start_date != row.start_date
                    || draft.end_date != row.end_date;
                let resumed =
                    current.status == PulseStatus::Paused && draft.status == PulseStatus::Active;
                let schedule_from = if timing_changed || resumed {
                    now.max(row.schedule_from.and_utc())
                } else {
                    row.schedule_from.and_utc()
                };
                store::update(conn, &row.id, &values(&draft, schedule_from)?)?;
                // A raised k holds for every wave of the pulse, past ones
                // too: their results are published again with it.
                store::raise_wave_k(
                    conn,
                    &row.id,
                    i32::try_from(draft.min_group_size).unwrap_or(i32::MAX),
                )?;
                let republished = crate::results::store::republish_pulse(conn, &row.id, now)?;
                // k is what a works council checks: the entry says what it became.
                audit
                    .on("pulse", &row.id)
                    .with(serde_json::json!({
                        "fields": fields,
                        "min_group_size": draft.min_group_size,
                        "republished_waves": republished,
                    }))
                    .record(conn)?;
                let row = store::find_in(conn, &organisation_id, &row.id)?;
                Ok::<_, ApiError>((view(conn, row, now)?, republished))
            })
            .map(|(pulse, republished)| {
                // What the new tags replaced is gone from SQLite's files too.
                if republished > 0 {
                    db::checkpoint(conn);
                }
                pulse
            })
        })
        .await?;
    Ok(web::Json(pulse))
}

/// Delete a pulse that has not opened a wave yet; pause one that has.
#[utoipa::path(
    tag = "pulses",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The pulse's id")),
    responses(
        (status = 204, description = "Deleted"),
        Refused,
        Missing,
        (status = 409, description = "The pulse has opened waves: pause it instead", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/pulses/{id}")]
pub async fn delete_pulse(
    db: web::Data<Db>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WritePulses)?;
    let organisation_id = caller.organisation_id().to_owned();
    let audit = caller.audit("pulse.deleted");
    db.run(move |conn| {
        db::write(conn, |conn| {
            let row = store::find_in(conn, &organisation_id, &id)?;
            store::lock(conn, &row.id)?;
            if store::count_opened(conn, &row.id)? > 0 {
                return Err(ApiError::Conflict(
                    "This pulse has opened waves, whose results stay; pause it instead.".into(),
                ));
            }
            store::delete(conn, &row.id)?;
            audit
                .on("pulse", &row.id)
                .with(serde_json::json!({ "name": row.name }))
                .record(conn)?;
            Ok(())
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ScheduleQuery {
    /// How many upcoming waves, 1 to 100 (default 5).
    pub count: Option<u32>,
}

/// One upcoming wave.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlannedWave {
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub reminders_at: Vec<DateTime<Utc>>,
    /// The template the rotation gives it, if no wave is sent by hand before.
    pub template: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Schedule {
    pub pulse_id: String,
    pub status: PulseStatus,
    /// Empty while the pulse is paused or after its end date.
    pub waves: Vec<PlannedWave>,
}

/// The next waves the schedule will open, with their close and reminder times.
#[utoipa::path(
    tag = "pulses",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The pulse's id"), ScheduleQuery),
    responses((status = 200, description = "OK", body = Schedule), Refused, Missing, InvalidFields)
)]
#[get("/pulses/{id}/schedule")]
pub async fn preview_schedule(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<ScheduleQuery>,
) -> Result<web::Json<Schedule>, ApiError> {
    caller.require(Permission::WritePulses)?;
    let count = query.count.unwrap_or(5);
    if !(1..=100).contains(&count) {
        return Err(ApiError::field("count", "must be between 1 and 100"));
    }
    let organisation_id = caller.organisation_id().to_owned();
    let now = clock.now();
    let (pulse, last) = db
        .run(move |conn| -> Result<_, ApiError> {
            let row = store::find_in(conn, &organisation_id, &id)?;
            let last = store::last_scheduled(conn, &row.id)?.map(|t| t.and_utc());
            Ok((Pulse::from_row(row)?, last))
        })
        .await?;
    let opened = u32::try_from(pulse.row.waves_opened).unwrap_or(0);
    let waves = upcoming(&pulse, last, now, count as usize)
        .into_iter()
        .enumerate()
        .map(|(i, opens_at)| PlannedWave {
            opens_at,
            closes_at: opens_at + pulse.timing.window(),
            reminders_at: pulse
                .timing
                .reminder_hours
                .iter()
                .map(|h| opens_at + chrono::Duration::hours(i64::from(*h)))
                .collect(),
            template: pulse.template_for(opened + i as u32).to_owned(),
        })
        .collect();
    Ok(web::Json(Schedule {
        pulse_id: pulse.row.id.clone(),
        status: pulse.status,
        waves,
    }))
}

/// Open a wave now ("send now"): the audience is snapshot and invitations
/// are queued at once; it closes a window from now. With an
/// `Idempotency-Key`, a repeat (a double click) answers with the same wave
/// instead of opening another.
#[utoipa::path(
    tag = "pulses",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The pulse's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h instead of opening a second wave"),
    ),
    responses(
        (status = 201, description = "Opened", body = Wave),
        (status = 400, description = "A malformed Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        Refused,
        Missing,
        (status = 409, description = "A wave of this pulse is open, nobody is in the audience, or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/pulses/{id}/waves")]
pub async fn send_now(
    req: HttpRequest,
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    metrics: web::Data<crate::metrics::Metrics>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WritePulses)?;
    let key = idempotency::key_of(&req)?;
    let organisation_id = caller.organisation_id().to_owned();
    let hash = idempotency::request_hash(&[b"send-now", id.as_bytes()]);
    let now = clock.now();
    let audit = caller.audit("wave.sent_now");
    let (status, body, opened) = db
        .run(move |conn| -> Result<(u16, String, bool), ApiError> {
            if let Some(key) = &key
                && let Some(replay) = idempotency::replay(conn, &organisation_id, key, &hash)?
            {
                return Ok((replay.status, replay.body, false));
            }
            let outcome = db::write(conn, |conn| -> Result<String, ApiError> {
                let row = store::find_in(conn, &organisation_id, &id)?;
                let wave = match waves::open(conn, &row.id, Trigger::Manual, now)? {
                    Opening::Opened(wave) => wave,
                    Opening::PulseHasOpenWave => {
                        return Err(ApiError::Conflict(
                            "A wave of this pulse is open: close it before sending another.".into(),
                        ));
                    }
                    Opening::NobodyToInvite => {
                        return Err(ApiError::Conflict(
                            "Nobody is active in this pulse's audience.".into(),
                        ));
                    }
                    Opening::AlreadyHandled => {
                        return Err(ApiError::Unexpected(anyhow::anyhow!(
                            "a manual wave is never a repeat"
                        )));
                    }
                };
                audit
                    .on("wave", &wave.id)
                    .with(serde_json::json!({ "pulse_id": row.id }))
                    .record(conn)?;
                let body = serde_json::to_string(&Wave::from_row(&wave)?)
                    .map_err(|e| ApiError::Unexpected(e.into()))?;
                if let Some(key) = &key {
                    idempotency::remember(conn, &organisation_id, key, &hash, 201, &body)?;
                }
                Ok(body)
            });
            match outcome {
                Ok(body) => Ok((201, body, true)),
                // The same key won a race in another request: answer as it did.
                // Otherwise the conflict stands, with its own reason.
                Err(conflict @ ApiError::Conflict(_)) if key.is_some() => {
                    let key = key.as_deref().unwrap_or_default();
                    idempotency::replay(conn, &organisation_id, key, &hash)?
                        .map(|r| (r.status, r.body, false))
                        .ok_or(conflict)
                }
                Err(error) => Err(error),
            }
        })
        .await?;
    if opened {
        metrics.waves(1, 0);
    }
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::CREATED);
    Ok(HttpResponse::build(status)
        .content_type("application/json")
        .body(body))
}
