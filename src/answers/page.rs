//! `/s/{token}`: the page an invitation's link opens. Server-rendered HTML
//! that works without JavaScript, on a 360 px phone, with a keyboard and a
//! screen reader (a fieldset and legend per question, labels on every
//! control, errors linked to their questions), in the person's language
//! with a switch to the other. Opening it changes nothing; only the form's
//! POST records an answer. Strict security headers, no third-party assets,
//! no cookies; the access log shows the route, never the token.
//!
//! Words on the page live in `templates/strings.toml`, markup in
//! `templates/*.html`.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, get, post, web};
use minijinja::{Environment, context};

use super::admission::Admission;
use super::answer::GivenAnswers;
use super::commit::Committer;
use super::{Link, LinkState, Outcome, Survey};
use crate::clock::SharedClock;
use crate::crypto::ServerKeys;
use crate::db::Db;
use crate::error::ApiError;
use crate::surveys::template::DEFAULT_COMMENT_LENGTH;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(stylesheet)
        .service(icon)
        .service(show)
        .service(answer);
}

const CSS: &str = include_str!("templates/peil.css");
const ICON: &str = include_str!("templates/icon.svg");

/// No script, no frames, no third-party anything; forms post back here only.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in [
            ("base.html", include_str!("templates/base.html")),
            ("survey.html", include_str!("templates/survey.html")),
            ("notice.html", include_str!("templates/notice.html")),
        ] {
            // Part of the binary; every page is rendered by the tests.
            env.add_template(name, source)
                .expect("the answer page templates parse");
        }
        env
    })
}

/// The page's words in `language` (`nl` or `en`).
fn strings(language: &str) -> &'static serde_json::Value {
    static STRINGS: OnceLock<serde_json::Value> = OnceLock::new();
    let all = STRINGS.get_or_init(|| {
        toml::from_str(include_str!("templates/strings.toml"))
            .expect("the answer page strings parse")
    });
    &all[if language == "nl" { "nl" } else { "en" }]
}

fn text(language: &str, key: &str) -> String {
    strings(language)[key]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn page(status: StatusCode, html: Result<String, minijinja::Error>) -> HttpResponse {
    let (status, body) = match html {
        Ok(body) => (status, body),
        Err(error) => {
            tracing::error!(%error, "rendering the answer page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!DOCTYPE html><title>Peil</title><p>Something went wrong. Please try again.</p>"
                    .to_owned(),
            )
        }
    };
    let mut response = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body);
    secure(response.headers_mut());
    response
}

fn secure(headers: &mut header::HeaderMap) {
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// A page with a title and one message: thanks, answered, closed, not found.
fn notice(status: StatusCode, language: &str, which: &str, switch: bool) -> HttpResponse {
    let html = environment().get_template("notice.html").and_then(|t| {
        t.render(context! {
            language,
            t => minijinja::value::Serde(strings(language)),
            switch_to => switch,
            page_title => text(language, &format!("{which}_title")),
            message => text(language, which),
        })
    });
    page(status, html)
}

/// 429: this address sent too many requests to links just now. Nothing was
/// looked up; the language is the one asked for, if any.
fn busy(language: Option<&str>, retry_after_secs: u64) -> HttpResponse {
    let mut response = notice(
        StatusCode::TOO_MANY_REQUESTS,
        language.unwrap_or("en"),
        "busy",
        false,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

fn survey_page(
    status: StatusCode,
    survey: &Survey,
    given: &BTreeMap<String, String>,
    problems: &HashMap<String, String>,
) -> HttpResponse {
    let language = survey.language.as_str();
    let errors: Vec<_> = survey
        .questions
        .iter()
        .filter_map(|q| {
            problems
                .get(&q.id)
                .map(|detail| context! { id => &q.id, text => &q.text, detail })
        })
        .collect();
    let closes = survey
        .closes_at
        .map(|t| crate::delivery::message::readable_time(t, survey.time_zone, language));
    let html = environment().get_template("survey.html").and_then(|t| {
        t.render(context! {
            language,
            t => minijinja::value::Serde(strings(language)),
            switch_to => true,
            page_title => &survey.title,
            survey => minijinja::value::Serde(survey),
            closes,
            comment_k => survey.min_group_size.max(10),
            given,
            problems,
            errors,
        })
    });
    page(status, html)
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

#[get("/s/assets/peil.css")]
pub async fn stylesheet() -> HttpResponse {
    asset("text/css; charset=utf-8", CSS)
}

#[get("/s/assets/icon.svg")]
pub async fn icon() -> HttpResponse {
    asset("image/svg+xml", ICON)
}

#[get("/s/{token}")]
pub async fn show(
    db: web::Data<Db>,
    keys: web::Data<ServerKeys>,
    clock: web::Data<SharedClock>,
    token: web::Path<String>,
    query: web::Query<super::http::LanguageQuery>,
    admission: Admission,
) -> Result<HttpResponse, ApiError> {
    let asked = super::language(query.language.as_deref());
    if let Err(wait) = admission.0 {
        return Ok(busy(asked, wait));
    }
    let found = super::read(&db, &keys, token.into_inner(), clock.now(), asked).await?;
    Ok(match found {
        None => missing(asked),
        Some(survey) if survey.state == LinkState::Open => {
            survey_page(StatusCode::OK, &survey, &BTreeMap::new(), &HashMap::new())
        }
        Some(survey) => settled(&survey.language, survey.state),
    })
}

#[post("/s/{token}")]
pub async fn answer(
    db: web::Data<Db>,
    keys: web::Data<ServerKeys>,
    clock: web::Data<SharedClock>,
    committer: web::Data<Committer>,
    token: web::Path<String>,
    admission: Admission,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let mut given: BTreeMap<String, String> = BTreeMap::new();
    let mut asked = None;
    for (name, value) in form.into_inner() {
        if name == "language" {
            asked = super::language(Some(&value));
        } else {
            given.insert(name, value);
        }
    }
    if let Err(wait) = admission.0 {
        return Ok(busy(asked, wait));
    }
    let form = given.clone();
    let answered = super::answer(
        &db,
        &committer,
        &keys,
        token.into_inner(),
        clock.now(),
        move |link| Ok(typed(link, &form)),
    )
    .await?;
    let Some((link, outcome)) = answered else {
        return Ok(missing(asked));
    };
    let survey = link.survey(LinkState::Open, asked);
    let language = survey.language.as_str();
    Ok(match outcome {
        Outcome::Stored => notice(StatusCode::OK, language, "thanks", false),
        Outcome::AlreadyAnswered => settled(language, LinkState::Answered),
        Outcome::Closed => settled(language, LinkState::Closed),
        Outcome::Invalid(problems) => {
            let problems = problems
                .iter()
                .filter_map(|p| p.field.strip_prefix("answers."))
                .map(|id| (id.to_owned(), problem_text(&survey, id, &given, language)))
                .collect();
            survey_page(StatusCode::UNPROCESSABLE_ENTITY, &survey, &given, &problems)
        }
    })
}

/// 404: the same page for a link never made and one whose invitation is gone.
fn missing(asked: Option<&str>) -> HttpResponse {
    notice(
        StatusCode::NOT_FOUND,
        asked.unwrap_or("en"),
        "missing",
        false,
    )
}

/// The page for a link that no longer takes an answer.
fn settled(language: &str, state: LinkState) -> HttpResponse {
    match state {
        LinkState::Answered => notice(StatusCode::CONFLICT, language, "answered", true),
        _ => notice(StatusCode::GONE, language, "closed", true),
    }
}

/// Form fields as the JSON API's answers: numbers for the closed questions.
fn typed(link: &Link, form: &BTreeMap<String, String>) -> GivenAnswers {
    let answers = form
        .iter()
        .map(|(id, value)| {
            let closed = link.template.question(id).is_some_and(|q| q.is_closed());
            let value = match value.trim().parse::<i64>() {
                Ok(n) if closed => serde_json::Value::from(n),
                _ => serde_json::Value::from(value.as_str()),
            };
            (id.clone(), value)
        })
        .collect();
    GivenAnswers { answers }
}

/// The page's own words for what is wrong with one answer.
fn problem_text(
    survey: &Survey,
    id: &str,
    given: &BTreeMap<String, String>,
    language: &str,
) -> String {
    let question = survey.questions.iter().find(|q| q.id == id);
    match question {
        Some(q) if q.options.is_empty() => text(language, "error_length").replace(
            "{max}",
            &q.max_length.unwrap_or(DEFAULT_COMMENT_LENGTH).to_string(),
        ),
        Some(_) if !given.contains_key(id) => text(language, "error_required"),
        _ => text(language, "error_choice"),
    }
}
