//! `/api/v1/answers/{token}`: the answer page's flow as JSON, for front ends
//! that deliver the link themselves (a mobile app, a chat integration). No
//! credentials: the link token is the credential, and the access log shows
//! only the route, never the token.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::IntoParams;
use validator::Validate;

use super::admission::Admission;
use super::answer::GivenAnswers;
use super::commit::Committer;
use super::{Outcome, Survey};
use crate::clock::SharedClock;
use crate::crypto::ServerKeys;
use crate::db::Db;
use crate::error::{ApiError, InvalidFields, Problem};
use crate::http::ValidJson;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(get_survey).service(post_answers);
}

impl Validate for GivenAnswers {
    // Checked against the wave's template instead (`Answers::check`).
    fn validate(&self) -> Result<(), validator::ValidationErrors> {
        Ok(())
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LanguageQuery {
    /// `nl` or `en`; the person's own language when left out.
    pub language: Option<String>,
}

/// The survey a link leads to, in the person's language. Reading it changes
/// nothing (mail scanners open every link first); `state` says whether it
/// still takes an answer.
#[utoipa::path(
    tag = "answers",
    params(("token" = String, Path, description = "The token from the invitation's link"), LanguageQuery),
    responses(
        (status = 200, description = "The survey", body = Survey),
        (status = 404, description = "No such link (or its invitation was removed)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/answers/{token}")]
pub async fn get_survey(
    db: web::Data<Db>,
    keys: web::Data<ServerKeys>,
    clock: web::Data<SharedClock>,
    token: web::Path<String>,
    query: web::Query<LanguageQuery>,
    admission: Admission,
) -> Result<web::Json<Survey>, ApiError> {
    admission.check()?;
    let language = super::language(query.language.as_deref());
    let survey = super::read(&db, &keys, token.into_inner(), clock.now(), language)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(web::Json(survey))
}

/// Answer the survey, once. Answers by question id: a number on the scale,
/// `"dont_know"` where offered, text for a comment. Stored anonymously and
/// acknowledged only once on disk.
#[utoipa::path(
    tag = "answers",
    params(("token" = String, Path, description = "The token from the invitation's link")),
    request_body = GivenAnswers,
    responses(
        (status = 201, description = "Stored"),
        (status = 404, description = "No such link", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "This link has answered already", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The wave has closed", body = Problem, content_type = "application/problem+json"),
        InvalidFields,
        (status = 429, description = "Too many requests from this address; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/answers/{token}")]
pub async fn post_answers(
    db: web::Data<Db>,
    keys: web::Data<ServerKeys>,
    clock: web::Data<SharedClock>,
    committer: web::Data<Committer>,
    token: web::Path<String>,
    admission: Admission,
    body: ValidJson<GivenAnswers>,
) -> Result<HttpResponse, ApiError> {
    admission.check()?;
    let answered = super::answer(
        &db,
        &committer,
        &keys,
        token.into_inner(),
        clock.now(),
        move |_| body.into_inner(),
    )
    .await?;
    let (_, outcome) = answered.ok_or(ApiError::NotFound)?;
    match outcome {
        Outcome::Stored => Ok(HttpResponse::Created().finish()),
        Outcome::AlreadyAnswered => Err(ApiError::AlreadyAnswered),
        Outcome::Closed => Err(ApiError::WaveClosed),
        Outcome::Invalid(problems) => Err(ApiError::Validation(problems)),
    }
}
