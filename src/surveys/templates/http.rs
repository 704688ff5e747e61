//! `/api/v1/templates`: the question sets pulses ask. Reading and adding
//! need `WritePulses` (admin, hr, a `pulses:write` key).

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Origin;
use crate::auth::caller::{Caller, Permission};
use crate::db::{self, Db};
use crate::error::{ApiError, InvalidFields, Missing, Refused};
use crate::http::ValidJson;
use crate::surveys::template::{Template, Theme};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_templates)
        .service(get_template)
        .service(add_template);
}

/// A template in a list: what it is, without its questions.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateSummary {
    pub key: String,
    pub version: u32,
    pub origin: Origin,
    pub title: crate::surveys::template::Texts,
    pub themes: Vec<Theme>,
    pub closed_questions: usize,
    pub comment_questions: usize,
    /// 10 s intro + 8 s per closed question + 30 s per optional comment.
    pub estimated_seconds: u32,
}

/// A whole template, with where it comes from and how long it takes.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateDetail {
    pub origin: Origin,
    pub estimated_seconds: u32,
    // Inline: a reference would bring along Template's closed set of
    // fields, which the two above are not in.
    #[serde(flatten)]
    #[schema(inline)]
    pub template: Template,
}

fn summary(template: &Template, origin: Origin) -> TemplateSummary {
    let closed = template.closed_questions().count();
    TemplateSummary {
        key: template.key.clone(),
        version: template.version,
        origin,
        title: template.title.clone(),
        themes: template.themes(),
        closed_questions: closed,
        comment_questions: template.comment_questions().count(),
        estimated_seconds: template.estimated_seconds(),
    }
}

fn detail(template: Template, origin: Origin) -> TemplateDetail {
    TemplateDetail {
        origin,
        estimated_seconds: template.estimated_seconds(),
        template,
    }
}

/// The current version of every template: the shipped ones, then the organisation's own.
#[utoipa::path(
    tag = "templates",
    security(("bearer" = [])),
    responses((status = 200, description = "OK", body = Vec<TemplateSummary>), Refused)
)]
#[get("/templates")]
pub async fn list_templates(
    db: web::Data<Db>,
    caller: Caller,
) -> Result<web::Json<Vec<TemplateSummary>>, ApiError> {
    caller.require(Permission::WritePulses)?;
    let organisation_id = caller.organisation_id().to_owned();
    let all = db
        .run(move |conn| super::all(conn, &organisation_id))
        .await?;
    Ok(web::Json(
        all.iter().map(|(t, origin)| summary(t, *origin)).collect(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct VersionQuery {
    /// A specific version; absent: the current one.
    pub version: Option<u32>,
}

/// One template with its questions, the current version or the one asked for.
#[utoipa::path(
    tag = "templates",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "The template's key"), VersionQuery),
    responses((status = 200, description = "OK", body = TemplateDetail), Refused, Missing)
)]
#[get("/templates/{key}")]
pub async fn get_template(
    db: web::Data<Db>,
    caller: Caller,
    key: web::Path<String>,
    query: web::Query<VersionQuery>,
) -> Result<web::Json<TemplateDetail>, ApiError> {
    caller.require(Permission::WritePulses)?;
    let organisation_id = caller.organisation_id().to_owned();
    let key = key.into_inner();
    let wanted = query.version;
    let found = db
        .run(move |conn| match wanted {
            Some(v) => super::version(conn, &organisation_id, &key, v),
            None => super::latest(conn, &organisation_id, &key),
        })
        .await?;
    let (template, origin) = found.ok_or(ApiError::NotFound)?;
    Ok(web::Json(detail(template, origin)))
}

/// A template document as sent: checked by the template loader, not here.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Template)]
pub struct TemplateDocument(serde_json::Value);

impl validator::Validate for TemplateDocument {
    fn validate(&self) -> Result<(), validator::ValidationErrors> {
        Ok(())
    }
}

/// Add a template, or a new version of one of the organisation's own (same
/// key). The server assigns the version. It is checked exactly like the
/// shipped files: both languages everywhere, unique question ids, at most two
/// reverse-coded items, comments optional, and at most 120 s by the estimate.
#[utoipa::path(
    tag = "templates",
    security(("bearer" = [])),
    request_body = Template,
    responses(
        (status = 201, description = "Created", body = TemplateDetail),
        Refused,
        (status = 409, description = "Another request added a version of this key at the same moment; try again", body = crate::error::Problem, content_type = "application/problem+json"),
        InvalidFields,
    )
)]
#[post("/templates")]
pub async fn add_template(
    db: web::Data<Db>,
    caller: Caller,
    body: ValidJson<TemplateDocument>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WritePulses)?;
    let TemplateDocument(document) = body.into_inner()?;
    let organisation_id = caller.organisation_id().to_owned();
    let audit = caller.audit("template.added");
    let template = db
        .run(move |conn| {
            db::write(conn, |conn| {
                let template = super::add(conn, &organisation_id, document)?;
                audit
                    .on("template", &template.key)
                    .with(serde_json::json!({ "version": template.version }))
                    .record(conn)?;
                Ok::<_, ApiError>(template)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(detail(template, Origin::Organisation)))
}
