//! `/api/v1/people`: the people who get invited, and their history.
//! Admin, hr and `people:write` keys only: a manager never sees people.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::OptionalExtension;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::store::{self, EventRow, PersonRow};
use super::{EventKind, PersonInput, import, in_force, save};
use crate::auth::caller::{Caller, Permission};
use crate::clock::SharedClock;
use crate::db::{self, Db, DbConnection};
use crate::domain::{
    EmailAddress, ExitKind, ExternalId, Invalid, JobTitle, Language, Level, PersonName,
    PersonStatus,
};
use crate::error::{ApiError, FieldError, InvalidFields, Missing, Problem, Refused};
use crate::http::json::{double_option, rule};
use crate::http::{ValidJson, idempotency};
use crate::org::teams::{TeamTree, store as team_store};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_people)
        .service(create_person)
        .service(get_person)
        .service(update_person)
        .service(remove_person)
        .service(person_history)
        .service(correct_event)
        .service(import_people);
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Person {
    pub id: String,
    pub email: String,
    pub name: String,
    pub team_id: String,
    pub language: Language,
    pub job_title: Option<String>,
    pub level: Option<i32>,
    pub external_id: Option<String>,
    pub status: PersonStatus,
    pub exit_kind: Option<ExitKind>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the person was erased (`POST /api/v1/people/{id}/erase`): what
    /// is left is an anonymous placeholder that keeps their history's counts.
    pub erased_at: Option<DateTime<Utc>>,
}

/// An erased person is a placeholder: their data cannot come back through
/// an edit (a rehire is a new person).
fn refuse_erased(person: &PersonRow) -> Result<(), ApiError> {
    match person.erased_at {
        Some(_) => Err(ApiError::Conflict(
            "This person was erased; someone who returns is added as a new person.".into(),
        )),
        None => Ok(()),
    }
}

fn stored(e: Invalid) -> ApiError {
    ApiError::Unexpected(anyhow::anyhow!("stored value: {e}"))
}

impl TryFrom<PersonRow> for Person {
    type Error = ApiError;
    fn try_from(row: PersonRow) -> Result<Self, ApiError> {
        Ok(Self {
            language: row.language.parse().map_err(stored)?,
            status: row.status.parse().map_err(stored)?,
            exit_kind: row
                .exit_kind
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(stored)?,
            id: row.id,
            email: row.email,
            name: row.name,
            team_id: row.team_id,
            job_title: row.job_title,
            level: row.level,
            external_id: row.external_id,
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
            erased_at: row.erased_at.map(|t| t.and_utc()),
        })
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PersonPage {
    pub items: Vec<Person>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HistoryEvent {
    pub id: String,
    pub kind: EventKind,
    pub effective_date: NaiveDate,
    /// The placement after this event.
    pub team_id: String,
    pub job_title: Option<String>,
    pub level: Option<i32>,
    pub status: PersonStatus,
    pub exit_kind: Option<ExitKind>,
    /// The event this one corrects.
    pub supersedes_id: Option<String>,
    /// The event that corrects this one; a superseded event no longer counts.
    pub superseded_by: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

fn history_view(rows: &[EventRow]) -> Result<Vec<HistoryEvent>, ApiError> {
    rows.iter()
        .map(|e| {
            Ok(HistoryEvent {
                id: e.id.clone(),
                kind: EventKind::parse(&e.kind)
                    .ok_or_else(|| stored(Invalid::new("event kind")))?,
                effective_date: e.effective_date,
                team_id: e.team_id.clone(),
                job_title: e.job_title.clone(),
                level: e.level,
                status: e.status.parse().map_err(stored)?,
                exit_kind: e
                    .exit_kind
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(stored)?,
                supersedes_id: e.supersedes_id.clone(),
                superseded_by: rows
                    .iter()
                    .find(|later| later.supersedes_id.as_deref() == Some(e.id.as_str()))
                    .map(|later| later.id.clone()),
                recorded_at: e.recorded_at.and_utc(),
            })
        })
        .collect()
}

fn valid_email(v: &str) -> Result<(), validator::ValidationError> {
    rule("email", EmailAddress::parse, v)
}
fn valid_name(v: &str) -> Result<(), validator::ValidationError> {
    rule("name", PersonName::parse, v)
}
fn valid_title(v: &str) -> Result<(), validator::ValidationError> {
    rule("job_title", JobTitle::parse, v)
}
fn valid_external_id(v: &str) -> Result<(), validator::ValidationError> {
    rule("external_id", ExternalId::parse, v)
}
fn valid_level(v: i64) -> Result<(), validator::ValidationError> {
    Level::new(v)
        .map(|_| ())
        .map_err(|e| validator::ValidationError::new("level").with_message(e.0.into()))
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(default)]
pub struct CreatePerson {
    #[validate(custom(function = "valid_email"))]
    pub email: String,
    #[validate(custom(function = "valid_name"))]
    pub name: String,
    #[validate(length(min = 1, message = "is required"))]
    pub team_id: String,
    /// `nl` or `en`; the organisation's default when absent.
    pub language: Option<Language>,
    #[validate(custom(function = "valid_title"))]
    pub job_title: Option<String>,
    #[validate(custom(function = "valid_level"))]
    pub level: Option<i64>,
    #[validate(custom(function = "valid_external_id"))]
    pub external_id: Option<String>,
    /// When they joined; today in the organisation's time zone when absent.
    pub effective_date: Option<NaiveDate>,
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(default)]
pub struct UpdatePerson {
    #[validate(custom(function = "valid_email"))]
    pub email: Option<String>,
    #[validate(custom(function = "valid_name"))]
    pub name: Option<String>,
    pub team_id: Option<String>,
    pub language: Option<Language>,
    /// Null clears it.
    #[serde(deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub job_title: Option<Option<String>>,
    /// Null clears it.
    #[serde(deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub level: Option<Option<i64>>,
    #[serde(deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub external_id: Option<Option<String>>,
    /// `left` records an exit; `active` for someone who left is a rehire.
    pub status: Option<PersonStatus>,
    pub exit_kind: Option<ExitKind>,
    /// When the change took effect; today when absent.
    pub effective_date: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only people in this team.
    pub team_id: Option<String>,
    /// With `team_id`: include the teams below it.
    #[serde(default)]
    pub include_subteams: bool,
    pub status: Option<PersonStatus>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RemoveQuery {
    /// Why they left (default `other`).
    pub exit_kind: Option<ExitKind>,
    /// Their last day's date; today when absent.
    pub effective_date: Option<NaiveDate>,
}

/// Checks the team, email and external id of `input` for person `id`.
fn check_person(
    conn: &mut DbConnection,
    organisation_id: &str,
    id: Option<&str>,
    input: &PersonInput,
) -> Result<(), ApiError> {
    if team_store::find_in(conn, organisation_id, &input.team_id)
        .optional()?
        .is_none()
    {
        return Err(ApiError::field(
            "team_id",
            "is not a team of this organisation",
        ));
    }
    if let Some(other) = store::find_by_email(conn, organisation_id, input.email.as_str())?
        && Some(other.id.as_str()) != id
    {
        return Err(ApiError::Conflict(
            "Another person has this email address.".into(),
        ));
    }
    if let Some(external_id) = &input.external_id
        && let Some(other) =
            store::find_by_external_id(conn, organisation_id, external_id.as_str())?
        && Some(other.id.as_str()) != id
    {
        return Err(ApiError::Conflict(
            "Another person has this external id.".into(),
        ));
    }
    Ok(())
}

fn parse_field<T>(
    field: &str,
    result: Result<T, Invalid>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    result
        .map_err(|e| errors.push(FieldError::new(field, e.0)))
        .ok()
}

/// People, a page at a time, ordered by email.
#[utoipa::path(
    tag = "people",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "OK", body = PersonPage),
        (status = 400, description = "See the problem document", body = Problem, content_type = "application/problem+json"),
        Refused,
        InvalidFields,
    )
)]
#[get("/people")]
pub async fn list_people(
    db: web::Data<Db>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<web::Json<PersonPage>, ApiError> {
    caller.require(Permission::WritePeople)?;
    let query = query.into_inner();
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 1000"));
    }
    let after = match &query.cursor {
        Some(cursor) => Some(
            URL_SAFE_NO_PAD
                .decode(cursor)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::field("cursor", "is not a cursor from this API"))?,
        ),
        None => None,
    };
    let organisation_id = caller.organisation_id().to_owned();
    let rows = db
        .run(move |conn| {
            let team_ids: Option<Vec<String>> = match &query.team_id {
                None => None,
                Some(team) => {
                    let tree = TeamTree::new(team_store::list(conn, &organisation_id)?);
                    if tree.get(team).is_none() {
                        return Err(ApiError::field(
                            "team_id",
                            "is not a team of this organisation",
                        ));
                    }
                    Some(if query.include_subteams {
                        tree.subtree(team).iter().map(|t| t.id.clone()).collect()
                    } else {
                        vec![team.clone()]
                    })
                }
            };
            Ok(store::list(
                conn,
                &organisation_id,
                &store::ListFilter {
                    team_ids: team_ids.as_deref(),
                    status: query.status.map(PersonStatus::as_str),
                    after_email: after.as_deref(),
                    limit: limit + 1,
                },
            )?)
        })
        .await?;
    let more = rows.len() as i64 > limit;
    let mut items: Vec<Person> = rows
        .into_iter()
        .take(limit as usize)
        .map(Person::try_from)
        .collect::<Result<_, _>>()?;
    let next_cursor =
        more.then(|| URL_SAFE_NO_PAD.encode(items.last().map_or("", |p| p.email.as_str())));
    items.shrink_to_fit();
    Ok(web::Json(PersonPage { items, next_cursor }))
}

/// Add a person; records a `joined` event.
#[utoipa::path(
    tag = "people",
    security(("bearer" = [])),
    request_body = CreatePerson,
    responses(
        (status = 201, description = "Created", body = Person),
        Refused,
        (status = 409, description = "Email address or external id taken", body = Problem, content_type = "application/problem+json"),
        InvalidFields,
    )
)]
#[post("/people")]
pub async fn create_person(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    caller: Caller,
    body: ValidJson<CreatePerson>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WritePeople)?;
    let now = clock.now();
    let request = body.into_inner()?;
    let mut errors = Vec::new();
    let email = parse_field("email", EmailAddress::parse(&request.email), &mut errors);
    let name = parse_field("name", PersonName::parse(&request.name), &mut errors);
    let job_title = parse_field(
        "job_title",
        request
            .job_title
            .as_deref()
            .map(JobTitle::parse)
            .transpose(),
        &mut errors,
    );
    let level = parse_field(
        "level",
        request.level.map(Level::new).transpose(),
        &mut errors,
    );
    let external_id = parse_field(
        "external_id",
        request
            .external_id
            .as_deref()
            .map(ExternalId::parse)
            .transpose(),
        &mut errors,
    );
    let (Some(email), Some(name), Some(job_title), Some(level), Some(external_id)) =
        (email, name, job_title, level, external_id)
    else {
        return Err(ApiError::Validation(errors));
    };
    let organisation_id = caller.organisation_id().to_owned();
    let audit = caller.audit("person.created");
    let row = db
        .run(move |conn| {
            db::write(conn, |conn| {
                let language = match request.language {
                    Some(language) => language,
                    None => crate::org::store::default_language(conn, &organisation_id)?
                        .parse()
                        .map_err(stored)?,
                };
                let input = PersonInput {
                    email,
                    name,
                    team_id: request.team_id.clone(),
                    language,
                    job_title,
                    level,
                    external_id,
                    status: PersonStatus::Active,
                    exit_kind: None,
                };
                check_person(conn, &organisation_id, None, &input)?;
                let effective = match request.effective_date {
                    Some(date) => date,
                    None => crate::org::store::today_in(conn, &organisation_id, now)?,
                };
                let (id, _) = save(conn, &organisation_id, None, &input, effective)?;
                audit.on("person", &id).record(conn)?;
                Ok::<_, ApiError>(store::find_in(conn, &organisation_id, &id)?)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(Person::try_from(row)?))
}

/// One person.
#[utoipa::path(
    tag = "people",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The person's id")),
    responses(
        (status = 200, description = "OK", body = Person),
        Refused,
        Missing,
    )
)]
#[get("/people/{id}")]
pub async fn get_person(
    db: web::Data<Db>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<Person>, ApiError> {
    caller.require(Permission::WritePeople)?;
    let organisation_id = caller.organisation_id().to_owned();
    let row = db
        .run(move |conn| store::find_in(conn, &organisation_id, &id).map_err(ApiError::from))
        .await?;
    Ok(web::Json(row.try_into()?))
}

/// Change a person. A change of team, title, level or status is recorded
/// as a history event dated `effective_date`.
#[utoipa::path(
    tag = "people",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The person's id")),
    request_body = UpdatePerson,
    responses(
        (status = 200, description = "OK", body = Person),
        Refused,
        Missing,
        (status = 409, description = "See the problem document", body = Problem, content_type = "application/problem+json"),
        InvalidFields,
    )
)]
#[patch("/people/{id}")]
pub async fn update_person(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    caller: Caller,
    id: web::Path<String>,
    body: ValidJson<UpdatePerson>,
) -> Result<web::Json<Person>, ApiError> {
    caller.require(Permission::WritePeople)?;
    let now = clock.now();
    let request = body.into_inner()?;
    let organisation_id = caller.organisation_id().to_owned();
    let id = id.into_inner();
    // Which fields changed, never their values (personal data).
    let fields: Vec<&str> = [
        ("email", request.email.is_some()),
        ("name", request.name.is_some()),
        ("team_id", request.team_id.is_some()),
        ("language", request.language.is_some()),
        ("job_title", request.job_title.is_some()),
        ("level", request.level.is_some()),
        ("external_id", request.external_id.is_some()),
        ("status", request.status.is_some()),
        ("exit_kind", request.exit_kind.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    let audit = caller
        .audit("person.updated")
        .on("person", &id)
        .with(serde_json::json!({ "fields": fields }));
    let row = db
        .run(move |conn| {
            db::write(conn, |conn| {
                let current = store::find_in(conn, &organisation_id, &id)?;
                refuse_erased(&current)?;
                let mut input = PersonInput::from_row(&current).map_err(stored)?;
                let mut errors = Vec::new();
                if let Some(email) = &request.email {
                    input.email = parse_field("email", EmailAddress::parse(email), &mut errors)
                        .unwrap_or(input.email);
                }
                if let Some(name) = &request.name {
                    input.name = parse_field("name", PersonName::parse(name), &mut errors)
                        .unwrap_or(input.name);
                }
                if let Some(team) = &request.team_id {
                    input.team_id = team.clone();
                }
                if let Some(language) = request.language {
                    input.language = language;
                }
                if let Some(title) = &request.job_title {
                    input.job_title = parse_field(
                        "job_title",
                        title.as_deref().map(JobTitle::parse).transpose(),
                        &mut errors,
                    )
                    .unwrap_or_default();
                }
                if let Some(level) = request.level {
                    input.level =
                        parse_field("level", level.map(Level::new).transpose(), &mut errors)
                            .unwrap_or_default();
                }
                if let Some(external_id) = &request.external_id {
                    input.external_id = parse_field(
                        "external_id",
                        external_id.as_deref().map(ExternalId::parse).transpose(),
                        &mut errors,
                    )
                    .unwrap_or_default();
                }
                if let Some(status) = request.status {
                    input.status = status;
                }
                if request.exit_kind.is_some() {
                    input.exit_kind = request.exit_kind;
                }
                if !errors.is_empty() {
                    return Err(ApiError::Validation(errors));
                }
                check_person(conn, &organisation_id, Some(&id), &input)?;
                let effective = match request.effective_date {
                    Some(date) => date,
                    None => crate::org::store::today_in(conn, &organisation_id, now)?,
                };
                save(conn, &organisation_id, Some(&current), &input, effective)?;
                audit.record(conn)?;
                Ok(store::find_in(conn, &organisation_id, &id)?)
            })
        })
        .await?;
    Ok(web::Json(row.try_into()?))
}

/// Record that a person left (`DELETE` never erases: history stays).
#[utoipa::path(
    tag = "people",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The person's id"), RemoveQuery),
    responses(
        (status = 204, description = "Marked as left (or was already)"),
        Refused,
        Missing,
    )
)]
#[delete("/people/{id}")]
pub async fn remove_person(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<RemoveQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WritePeople)?;
    let now = clock.now();
    let query = query.into_inner();
    let organisation_id = caller.organisation_id().to_owned();
    let id = id.into_inner();
    let audit = caller.audit("person.left").on("person", &id);
    db.run(move |conn| {
        db::write(conn, |conn| {
            let current = store::find_in(conn, &organisation_id, &id)?;
            if current.status == PersonStatus::Left.as_str() {
                return Ok(());
            }
            let mut input = PersonInput::from_row(&current).map_err(stored)?;
            input.status = PersonStatus::Left;
            input.exit_kind = Some(query.exit_kind.unwrap_or(ExitKind::Other));
            let effective = match query.effective_date {
                Some(date) => date,
                None => crate::org::store::today_in(conn, &organisation_id, now)?,
            };
            save(conn, &organisation_id, Some(&current), &input, effective)?;
            audit.record(conn)?;
            Ok::<_, ApiError>(())
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A person's whole history in recording order, corrections included.
#[utoipa::path(
    tag = "people",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The person's id")),
    responses(
        (status = 200, description = "OK", body = Vec<HistoryEvent>),
        Refused,
        Missing,
    )
)]
#[get("/people/{id}/history")]
pub async fn person_history(
    db: web::Data<Db>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<Vec<HistoryEvent>>, ApiError> {
    caller.require(Permission::WritePeople)?;
    let organisation_id = caller.organisation_id().to_owned();
    let rows = db
        .run(move |conn| {
            store::find_in(conn, &organisation_id, &id)?;
            Ok::<_, ApiError>(store::history(conn, &id)?)
        })
        .await?;
    Ok(web::Json(history_view(&rows)?))
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(default)]
pub struct CorrectEvent {
    pub effective_date: Option<NaiveDate>,
    pub team_id: Option<String>,
    #[serde(deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub job_title: Option<Option<String>>,
    #[serde(deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub level: Option<Option<i64>>,
    pub exit_kind: Option<ExitKind>,
}

/// Correct a recorded event: a new event supersedes it (both stay in the
/// history). The person's current placement follows the latest event in force.
#[utoipa::path(
    tag = "people",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The person's id"),
        ("event_id" = String, Path, description = "The event to correct"),
    ),
    request_body = CorrectEvent,
    responses(
        (status = 201, description = "Created", body = HistoryEvent),
        Refused,
        Missing,
        (status = 409, description = "The event was already corrected", body = Problem, content_type = "application/problem+json"),
        InvalidFields,
    )
)]
#[post("/people/{id}/history/{event_id}/correction")]
pub async fn correct_event(
    db: web::Data<Db>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: ValidJson<CorrectEvent>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WritePeople)?;
    let request = body.into_inner()?;
    let mut errors = Vec::new();
    let job_title = request.job_title.map(|t| {
        parse_field(
            "job_title",
            t.as_deref().map(JobTitle::parse).transpose(),
            &mut errors,
        )
    });
    let level = request
        .level
        .map(|l| parse_field("level", l.map(Level::new).transpose(), &mut errors));
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let (id, event_id) = path.into_inner();
    let organisation_id = caller.organisation_id().to_owned();
    let audit = caller
        .audit("person.history_corrected")
        .on("person", &id)
        .with(serde_json::json!({ "event_id": event_id }));
    let event = db
        .run(move |conn| {
            db::write(conn, |conn| {
                let person = store::find_in(conn, &organisation_id, &id)?;
                let history = store::history(conn, &id)?;
                let old = history
                    .iter()
                    .find(|e| e.id == event_id)
                    .ok_or(ApiError::NotFound)?;
                if history
                    .iter()
                    .any(|e| e.supersedes_id.as_deref() == Some(event_id.as_str()))
                {
                    return Err(ApiError::Conflict(
                        "This event was already corrected: correct the correction.".into(),
                    ));
                }
                let team_id = request
                    .team_id
                    .clone()
                    .unwrap_or_else(|| old.team_id.clone());
                if team_store::find_in(conn, &organisation_id, &team_id)
                    .optional()?
                    .is_none()
                {
                    return Err(ApiError::field(
                        "team_id",
                        "is not a team of this organisation",
                    ));
                }
                let job_title = match &job_title {
                    Some(Some(title)) => title.as_ref().map(|t| t.as_str().to_owned()),
                    _ => old.job_title.clone(),
                };
                let level = match level {
                    Some(Some(level)) => level.map(Level::get),
                    _ => old.level,
                };
                let exit_kind = request
                    .exit_kind
                    .map(|k| k.as_str().to_owned())
                    .or_else(|| old.exit_kind.clone());
                let new_id = store::insert_event(
                    conn,
                    &store::NewEvent {
                        organisation_id: &organisation_id,
                        person_id: &id,
                        kind: &old.kind,
                        effective_date: request.effective_date.unwrap_or(old.effective_date),
                        team_id: &team_id,
                        job_title: job_title.as_deref(),
                        level,
                        status: &old.status,
                        exit_kind: exit_kind.as_deref(),
                        supersedes_id: Some(&old.id),
                    },
                )?;
                // The person now stands where the latest event in force puts them.
                let history = store::history(conn, &id)?;
                if let Some(latest) = in_force(&history).last() {
                    store::update(
                        conn,
                        &id,
                        &store::PersonValues {
                            email: &person.email,
                            name: &person.name,
                            team_id: &latest.team_id,
                            language: &person.language,
                            job_title: latest.job_title.as_deref(),
                            level: latest.level,
                            external_id: person.external_id.as_deref(),
                            status: &latest.status,
                            exit_kind: latest.exit_kind.as_deref(),
                        },
                    )?;
                }
                audit.record(conn)?;
                let view = history_view(&history)?;
                view.into_iter()
                    .find(|e| e.id == new_id)
                    .ok_or(ApiError::NotFound)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(event))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `upsert` (default): only the rows given. `full`: everyone absent is marked as left.
    #[serde(default)]
    pub mode: import::Mode,
    /// Answer with the counts and change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

enum ImportFlow {
    Failed(ApiError),
    /// A dry run rolls its transaction back by returning this.
    DryRun(import::ImportSummary),
}

impl From<diesel::result::Error> for ImportFlow {
    fn from(error: diesel::result::Error) -> Self {
        Self::Failed(error.into())
    }
}

impl From<ApiError> for ImportFlow {
    fn from(error: ApiError) -> Self {
        Self::Failed(error)
    }
}

/// Import people from CSV (`text/csv`, with a header row) or JSON (an array
/// of rows), all or nothing. Columns: external_id, email, name, team (its
/// external id or its path, e.g. `Engineering/Platform`; missing teams are
/// created), language, job_title, level, status, exit_kind, effective_date.
/// A 422 names every bad row and field as `rows.<n>.<column>`, n counting
/// data rows from 1. Honours `Idempotency-Key`.
#[utoipa::path(
    tag = "people",
    security(("bearer" = [])),
    params(ImportQuery, ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h instead of importing twice")),
    request_body(content = String, description = "CSV with a header row, or a JSON array of rows", content_type = "text/csv"),
    responses(
        (status = 200, description = "OK", body = import::ImportSummary),
        (status = 400, description = "See the problem document", body = Problem, content_type = "application/problem+json"),
        Refused,
        (status = 409, description = "Idempotency-Key reused for another request", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "See the problem document", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "See the problem document", body = Problem, content_type = "application/problem+json"),
        InvalidFields,
    )
)]
#[post("/people/import")]
pub async fn import_people(
    req: actix_web::HttpRequest,
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    settings: web::Data<crate::config::Settings>,
    caller: Caller,
    query: web::Query<ImportQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WritePeople)?;
    let now = clock.now();
    let query = query.into_inner();
    let key = idempotency::key_of(&req)?;
    let is_csv = match actix_web::HttpMessage::mime_type(&req) {
        Ok(Some(m)) if m.subtype() == "csv" => true,
        Ok(Some(m))
            if m.subtype() == actix_web::mime::JSON
                || m.suffix() == Some(actix_web::mime::JSON) =>
        {
            false
        }
        _ => {
            return Err(ApiError::UnsupportedMediaType(
                "send text/csv or application/json".into(),
            ));
        }
    };
    let limit = settings.server.max_import_bytes;
    let bytes = payload
        .to_bytes_limited(limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })?
        .map_err(|e| ApiError::Malformed(format!("the body could not be read: {e}")))?;
    let rows = if is_csv {
        import::parse_csv(&bytes)?
    } else {
        import::parse_json(&bytes)?
    };
    let mode = query.mode;
    let dry_run = query.dry_run;
    let hash =
        idempotency::request_hash(&[format!("{mode:?}/{dry_run}/{is_csv}").as_bytes(), &bytes]);
    let organisation_id = caller.organisation_id().to_owned();
    let audit = caller.audit("people.imported");
    let (status, body) = db
        .run(move |conn| -> Result<(u16, String), ApiError> {
            if let Some(key) = &key
                && let Some(replay) = idempotency::replay(conn, &organisation_id, key, &hash)?
            {
                return Ok((replay.status, replay.body));
            }
            let outcome = db::write(conn, |conn| -> Result<String, ImportFlow> {
                let today = crate::org::store::today_in(conn, &organisation_id, now)?;
                let language = crate::org::store::default_language(conn, &organisation_id)?
                    .parse()
                    .map_err(stored)?;
                let summary = import::run(conn, &organisation_id, &rows, mode, today, language)?;
                if dry_run {
                    return Err(ImportFlow::DryRun(summary));
                }
                let body =
                    serde_json::to_string(&summary).map_err(|e| ApiError::Unexpected(e.into()))?;
                // The summary is counts only: no one's data.
                let counts =
                    serde_json::to_value(&summary).map_err(|e| ApiError::Unexpected(e.into()))?;
                audit.with(counts).record(conn)?;
                if let Some(key) = &key {
                    idempotency::remember(conn, &organisation_id, key, &hash, 200, &body)?;
                }
                Ok(body)
            });
            match outcome {
                Ok(body) => Ok((200, body)),
                Err(ImportFlow::DryRun(mut summary)) => {
                    summary.dry_run = true;
                    Ok((
                        200,
                        serde_json::to_string(&summary)
                            .map_err(|e| ApiError::Unexpected(e.into()))?,
                    ))
                }
                // Another request with the same key won the race: answer as it did.
                Err(ImportFlow::Failed(ApiError::Conflict(_))) if key.is_some() => {
                    match idempotency::replay(
                        conn,
                        &organisation_id,
                        key.as_deref().unwrap_or_default(),
                        &hash,
                    )? {
                        Some(replay) => Ok((replay.status, replay.body)),
                        None => Err(ApiError::Conflict(
                            "The import conflicted with another change; try again.".into(),
                        )),
                    }
                }
                Err(ImportFlow::Failed(error)) => Err(error),
            }
        })
        .await?;
    let status =
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK);
    Ok(HttpResponse::build(status)
        .content_type("application/json")
        .body(body))
}
