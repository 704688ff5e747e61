//! `/api/v1/organisation`: the caller's own organisation's settings (admin).

use actix_web::{get, patch, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::{Organisation, store};
use crate::auth::caller::{Caller, Permission};
use crate::db::{self, Db, schema::organisations};
use crate::domain::{Language, MinGroupSize, OrganisationName, TimeZone};
use crate::error::{ApiError, InvalidFields, Refused};
use crate::http::ValidJson;
use crate::http::json::rule;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(get_organisation).service(update_organisation);
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrganisationSettings {
    pub id: String,
    pub name: String,
    /// `nl` or `en`: for people without a preference.
    pub default_language: Language,
    /// IANA time zone; periods and schedules are read in it.
    pub time_zone: String,
    /// The default minimum group size k for new pulses (at least 3).
    pub min_group_size: i32,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<Organisation> for OrganisationSettings {
    type Error = ApiError;
    fn try_from(row: Organisation) -> Result<Self, ApiError> {
        Ok(Self {
            default_language: row
                .default_language
                .parse()
                .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("stored language: {e}")))?,
            id: row.id,
            name: row.name,
            time_zone: row.time_zone,
            min_group_size: row.min_group_size,
            created_at: row.created_at.and_utc(),
        })
    }
}

fn valid_name(v: &str) -> Result<(), validator::ValidationError> {
    rule("name", OrganisationName::parse, v)
}
fn valid_language(v: &str) -> Result<(), validator::ValidationError> {
    rule("language", str::parse::<Language>, v)
}
fn valid_time_zone(v: &str) -> Result<(), validator::ValidationError> {
    rule("time_zone", TimeZone::parse, v)
}
fn valid_k(v: i64) -> Result<(), validator::ValidationError> {
    MinGroupSize::new(v)
        .map(|_| ())
        .map_err(|e| validator::ValidationError::new("k").with_message(e.0.into()))
}

/// Fields to change; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(default)]
pub struct UpdateOrganisation {
    #[validate(custom(function = "valid_name"))]
    pub name: Option<String>,
    #[validate(custom(function = "valid_language"))]
    pub default_language: Option<String>,
    #[validate(custom(function = "valid_time_zone"))]
    pub time_zone: Option<String>,
    #[validate(custom(function = "valid_k"))]
    pub min_group_size: Option<i64>,
}

/// The organisation's settings.
#[utoipa::path(
    tag = "organisation",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = OrganisationSettings),
        Refused,
    )
)]
#[get("/organisation")]
pub async fn get_organisation(
    db: web::Data<Db>,
    caller: Caller,
) -> Result<web::Json<OrganisationSettings>, ApiError> {
    caller.require(Permission::Administer)?;
    let id = caller.organisation_id().to_owned();
    let row = db
        .run(move |conn| store::find(conn, &id).map_err(ApiError::from))
        .await?;
    Ok(web::Json(row.try_into()?))
}

/// Change the organisation's settings.
#[utoipa::path(
    tag = "organisation",
    security(("bearer" = [])),
    request_body = UpdateOrganisation,
    responses(
        (status = 200, description = "OK", body = OrganisationSettings),
        Refused,
        InvalidFields,
    )
)]
#[patch("/organisation")]
pub async fn update_organisation(
    db: web::Data<Db>,
    caller: Caller,
    body: ValidJson<UpdateOrganisation>,
) -> Result<web::Json<OrganisationSettings>, ApiError> {
    caller.require(Permission::Administer)?;
    let request = body.into_inner()?;
    // Validated above; parsing again yields the domain values.
    let invalid = |field: &str, e: crate::domain::Invalid| ApiError::field(field, e.0);
    let name = request
        .name
        .as_deref()
        .map(OrganisationName::parse)
        .transpose()
        .map_err(|e| invalid("name", e))?;
    let language = request
        .default_language
        .as_deref()
        .map(str::parse::<Language>)
        .transpose()
        .map_err(|e| invalid("default_language", e))?;
    let time_zone = request
        .time_zone
        .as_deref()
        .map(TimeZone::parse)
        .transpose()
        .map_err(|e| invalid("time_zone", e))?;
    let k = request
        .min_group_size
        .map(MinGroupSize::new)
        .transpose()
        .map_err(|e| invalid("min_group_size", e))?;
    let id = caller.organisation_id().to_owned();
    // Settings are not personal data: the entry holds the new values.
    let audit = caller
        .audit("organisation.updated")
        .on("organisation", &id)
        .with(serde_json::json!({
            "name": request.name,
            "default_language": request.default_language,
            "time_zone": request.time_zone,
            "min_group_size": request.min_group_size,
        }));
    let row = db
        .run(move |conn| {
            db::write(conn, |conn| {
                audit.record(conn)?;
                let target = organisations::table.find(&id);
                if let Some(name) = &name {
                    diesel::update(target)
                        .set(organisations::name.eq(name.as_str()))
                        .execute(conn)?;
                }
                if let Some(language) = language {
                    diesel::update(target)
                        .set(organisations::default_language.eq(language.as_str()))
                        .execute(conn)?;
                }
                if let Some(zone) = time_zone {
                    diesel::update(target)
                        .set(organisations::time_zone.eq(zone.name()))
                        .execute(conn)?;
                }
                if let Some(k) = k {
                    diesel::update(target)
                        .set(organisations::min_group_size.eq(i32::from(k.get())))
                        .execute(conn)?;
                }
                store::find(conn, &id).map_err(ApiError::from)
            })
        })
        .await?;
    tracing::info!(organisation_id = %row.id, "organisation settings changed");
    Ok(web::Json(row.try_into()?))
}
