//! `GET /api/v1/privacy`: the privacy statement a works council approves
//! and later checks against the running system. Its numbers come from the
//! system itself — each pulse's k and whether it may still be lowered, the
//! settings that open Peil to browsers and webhooks — and its words from
//! `statement.toml`, kept beside the code they describe. JSON by default,
//! a readable page with `Accept: text/html`.
//!
//! Beside it, the promises it makes: `retention` deletes invitations and
//! their emails a set number of days after their wave closes, and
//! `erasure` removes a person who has left.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::caller::{Caller, Permission};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::db::Db;
use crate::domain::MinGroupSize;
use crate::error::{ApiError, Refused};

pub mod erasure;
pub mod retention;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(privacy_statement)
        .service(erasure::erase_person);
}

/// The statement's fixed words (`statement.toml`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Words {
    pub summary: String,
    pub stored: Vec<Stored>,
    pub never_stored: Vec<String>,
    pub accepted_by_design: Vec<String>,
    pub access: Vec<Access>,
}

/// A kind of data Peil keeps.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Stored {
    pub what: String,
    pub holds: String,
    pub why: String,
    pub kept: String,
}

/// A row of the permission table.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Access {
    pub who: String,
    pub may: String,
}

fn words() -> &'static Words {
    static WORDS: OnceLock<Words> = OnceLock::new();
    // Part of the binary; a unit test parses it.
    WORDS.get_or_init(|| {
        toml::from_str(include_str!("statement.toml")).expect("the privacy statement parses")
    })
}

/// The page's template, parsed once (part of the binary; the tests render it).
fn page() -> &'static minijinja::Environment<'static> {
    static PAGE: OnceLock<minijinja::Environment<'static>> = OnceLock::new();
    PAGE.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        env.add_template("privacy.html", include_str!("privacy.html"))
            .expect("the privacy page template parses");
        env
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganisationName {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Thresholds {
    /// The organisation's default k, copied into each new pulse.
    pub default: i32,
    /// No k is ever below this.
    pub floor: i32,
    pub answer_distributions_from: &'static str,
    pub comments_from: &'static str,
}

/// One pulse's thresholds as they stand.
#[derive(Debug, Serialize, ToSchema)]
pub struct PulseThresholds {
    pub pulse_id: String,
    pub name: String,
    pub min_group_size: i32,
    /// Answer distributions are published for groups of at least this many.
    pub distributions_from: i32,
    /// Comments are published for groups of at least this many.
    pub comments_from: i32,
    /// False once a wave has opened: from then on k may be raised, never
    /// lowered (the API refuses).
    pub k_may_be_lowered: bool,
}

/// The settings that decide who outside Peil can reach what.
#[derive(Debug, Serialize, ToSchema)]
pub struct Openings {
    /// Web origins whose pages may read the API from a browser.
    pub cors_origins: Vec<String>,
    /// Requests to answer links per minute per client address (0: none).
    pub answer_links_per_minute: u32,
    pub webhooks_allow_private_addresses: bool,
    pub webhooks_require_https: bool,
}

/// How long what identifies people is kept.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionTerms {
    /// Days after a wave closes that its invitations (and link tokens) and
    /// emails are deleted.
    pub invitation_days: u32,
    /// Days an audit log entry is kept.
    pub audit_days: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Statement {
    pub organisation: OrganisationName,
    pub generated_at: DateTime<Utc>,
    pub minimum_group_size: Thresholds,
    pub pulses: Vec<PulseThresholds>,
    #[serde(flatten)]
    pub words: Words,
    pub retention: RetentionTerms,
    pub settings: Openings,
}

/// The organisation's privacy statement: what Peil stores and never
/// stores, each pulse's thresholds, who may see what, what is accepted by
/// design, and the settings that open it up. Any account or key of the
/// organisation may read it. With `Accept: text/html`, a readable page.
#[utoipa::path(
    tag = "organisation",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", content(
            (Statement = "application/json"),
            (String = "text/html"),
        )),
        Refused,
    )
)]
#[get("/privacy")]
pub async fn privacy_statement(
    req: HttpRequest,
    db: web::Data<Db>,
    settings: web::Data<Settings>,
    clock: web::Data<SharedClock>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ReadTeams)?;
    let organisation_id = caller.organisation_id().to_owned();
    let (organisation, pulses) = db
        .run(move |conn| -> Result<_, ApiError> {
            let organisation = crate::org::store::find(conn, &organisation_id)?;
            let pulses = crate::surveys::pulses::store::list(conn, &organisation_id)?;
            Ok((organisation, pulses))
        })
        .await?;
    let statement = Statement {
        organisation: OrganisationName {
            id: organisation.id,
            name: organisation.name,
        },
        generated_at: clock.now(),
        minimum_group_size: Thresholds {
            default: organisation.min_group_size,
            floor: i32::from(MinGroupSize::FLOOR),
            answer_distributions_from: "2k",
            comments_from: "max(10, k)",
        },
        pulses: pulses
            .into_iter()
            .map(|p| PulseThresholds {
                pulse_id: p.id,
                name: p.name,
                min_group_size: p.min_group_size,
                distributions_from: 2 * p.min_group_size,
                comments_from: p.min_group_size.max(10),
                k_may_be_lowered: p.waves_opened == 0,
            })
            .collect(),
        words: words().clone(),
        retention: RetentionTerms {
            invitation_days: settings.retention.invitation_days,
            audit_days: settings.retention.audit_days,
        },
        settings: Openings {
            cors_origins: settings.server.cors_origins.clone(),
            answer_links_per_minute: settings.answers.rate_limit.per_minute,
            webhooks_allow_private_addresses: settings.webhooks.allow_private_addresses,
            webhooks_require_https: settings.webhooks.require_https,
        },
    };
    let vary = (header::VARY, "Accept, Authorization");
    if crate::http::accepts(&req, "text/html") {
        let page = page()
            .get_template("privacy.html")
            .and_then(|t| t.render(minijinja::value::Serde(&statement)))
            .map_err(|e| ApiError::Unexpected(e.into()))?;
        return Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header(vary)
            .body(page));
    }
    Ok(HttpResponse::Ok().insert_header(vary).json(statement))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_statement_parses_and_says_something_in_every_part() {
        let words = super::words();
        assert!(!words.summary.is_empty());
        assert!(words.stored.len() >= 5);
        assert!(!words.never_stored.is_empty());
        assert!(!words.accepted_by_design.is_empty());
        let who: Vec<&str> = words.access.iter().map(|a| a.who.as_str()).collect();
        assert_eq!(who, ["admin", "hr", "manager", "API key"]);
    }
}
