//! `/api/v1/accounts`: the people who sign in (admin only). New accounts and
//! admin resets get a one-time password, returned once, that must be
//! replaced at first sign-in. An organisation always keeps an enabled admin.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use diesel::OptionalExtension;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use validator::Validate;

use super::caller::{Caller, Permission};
use super::password;
use super::store::{self, AccountRow};
use crate::db::{self, Db, DbConnection};
use crate::domain::{EmailAddress, Role};
use crate::error::{ApiError, InvalidFields, Missing, Problem, Refused};
use crate::http::ValidJson;
use crate::http::json::{double_option, rule};
use crate::org::teams;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_accounts)
        .service(create_account)
        .service(get_account)
        .service(update_account)
        .service(delete_account)
        .service(reset_password);
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub role: Role,
    /// A manager's team: they see its subtree. Null for admin and hr.
    pub team_id: Option<String>,
    pub disabled: bool,
    pub must_change_password: bool,
    pub created_at: DateTime<Utc>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

impl TryFrom<AccountRow> for Account {
    type Error = ApiError;
    fn try_from(row: AccountRow) -> Result<Self, ApiError> {
        Ok(Self {
            role: row
                .role
                .parse()
                .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("stored role: {e}")))?,
            id: row.id,
            email: row.email,
            team_id: row.team_id,
            disabled: row.disabled,
            must_change_password: row.must_change_password,
            created_at: row.created_at.and_utc(),
            last_sign_in_at: row.last_sign_in_at.map(|t| t.and_utc()),
        })
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountWithPassword {
    pub account: Account,
    /// Shown only now; must be replaced at first sign-in.
    pub one_time_password: String,
}

fn valid_email(v: &str) -> Result<(), validator::ValidationError> {
    rule("email", EmailAddress::parse, v)
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(default)]
pub struct CreateAccount {
    #[validate(custom(function = "valid_email"))]
    pub email: String,
    /// `admin`, `hr` or `manager`.
    pub role: Option<Role>,
    /// Required for a manager: the team whose subtree they see.
    pub team_id: Option<String>,
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(default)]
pub struct UpdateAccount {
    pub role: Option<Role>,
    /// A team id, or null. Absent: unchanged.
    #[serde(deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub team_id: Option<Option<String>>,
    /// A disabled account cannot sign in; its sessions end.
    pub disabled: Option<bool>,
}

/// Checks that a role and team fit together and the team is the organisation's.
fn check_assignment(
    conn: &mut DbConnection,
    organisation_id: &str,
    role: Role,
    team_id: Option<&str>,
) -> Result<(), ApiError> {
    match (role, team_id) {
        (Role::Manager, None) => Err(ApiError::field(
            "team_id",
            "is required for a manager: the team whose subtree they see",
        )),
        (Role::Manager, Some(team)) => {
            teams::store::find_in(conn, organisation_id, team)
                .optional()?
                .ok_or_else(|| ApiError::field("team_id", "is not a team of this organisation"))?;
            Ok(())
        }
        (_, Some(_)) => Err(ApiError::field(
            "team_id",
            "is only for managers: admin and hr see the whole organisation",
        )),
        (_, None) => Ok(()),
    }
}

/// Refuses a change that would leave the organisation without an enabled admin.
fn keep_an_admin(conn: &mut DbConnection, organisation_id: &str) -> Result<(), ApiError> {
    if store::count_enabled_admins(conn, organisation_id)? == 0 {
        return Err(ApiError::Conflict(
            "This would leave the organisation without an enabled admin.".into(),
        ));
    }
    Ok(())
}

/// All accounts of the organisation.
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = Vec<Account>),
        Refused,
    )
)]
#[get("/accounts")]
pub async fn list_accounts(
    db: web::Data<Db>,
    caller: Caller,
) -> Result<web::Json<Vec<Account>>, ApiError> {
    caller.require(Permission::Administer)?;
    let organisation_id = caller.organisation_id().to_owned();
    let rows = db
        .run(move |conn| store::list_accounts(conn, &organisation_id).map_err(ApiError::from))
        .await?;
    Ok(web::Json(
        rows.into_iter()
            .map(Account::try_from)
            .collect::<Result<_, _>>()?,
    ))
}

/// Create an account; the response holds its one-time password.
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    request_body = CreateAccount,
    responses(
        (status = 201, description = "Created", body = AccountWithPassword),
        Refused,
        (status = 409, description = "The email address has an account", body = Problem, content_type = "application/problem+json"),
        InvalidFields,
    )
)]
#[post("/accounts")]
pub async fn create_account(
    db: web::Data<Db>,
    caller: Caller,
    body: ValidJson<CreateAccount>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Administer)?;
    let request = body.into_inner()?;
    let email = EmailAddress::parse(&request.email).map_err(|e| ApiError::field("email", e.0))?;
    let role = request
        .role
        .ok_or_else(|| ApiError::field("role", "is required: admin, hr or manager"))?;
    let one_time = password::one_time_password();
    let hash = password::off_thread({
        let one_time = one_time.clone();
        move || password::hash(&one_time)
    })
    .await??;
    let organisation_id = caller.organisation_id().to_owned();
    let audit = caller.audit("account.created");
    let row = db
        .run(move |conn| {
            db::write(conn, |conn| {
                check_assignment(conn, &organisation_id, role, request.team_id.as_deref())?;
                if store::find_account_by_email(conn, email.as_str())
                    .optional()?
                    .is_some()
                {
                    return Err(ApiError::Conflict(
                        "An account with this email address already exists.".into(),
                    ));
                }
                let id = store::insert_account(
                    conn,
                    &store::NewAccount {
                        organisation_id: &organisation_id,
                        email: email.as_str(),
                        password_hash: &hash,
                        role: role.as_str(),
                        team_id: request.team_id.as_deref(),
                    },
                )?;
                audit
                    .on("account", &id)
                    .with(json!({"role": role.as_str(), "team_id": request.team_id}))
                    .record(conn)?;
                Ok::<_, ApiError>(store::find_account(conn, &id)?)
            })
        })
        .await?;
    tracing::info!(account_id = %row.id, "account created");
    Ok(HttpResponse::Created().json(AccountWithPassword {
        account: row.try_into()?,
        one_time_password: one_time.expose().to_owned(),
    }))
}

/// One account.
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The account's id")),
    responses(
        (status = 200, description = "OK", body = Account),
        Refused,
        Missing,
    )
)]
#[get("/accounts/{id}")]
pub async fn get_account(
    db: web::Data<Db>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<Account>, ApiError> {
    caller.require(Permission::Administer)?;
    let organisation_id = caller.organisation_id().to_owned();
    let row = db
        .run(move |conn| {
            store::find_account_in(conn, &organisation_id, &id).map_err(ApiError::from)
        })
        .await?;
    Ok(web::Json(row.try_into()?))
}

/// Change an account's role, team or disabled flag. Disabling ends its sessions.
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The account's id")),
    request_body = UpdateAccount,
    responses(
        (status = 200, description = "OK", body = Account),
        Refused,
        Missing,
        (status = 409, description = "It would leave no enabled admin", body = Problem, content_type = "application/problem+json"),
        InvalidFields,
    )
)]
#[patch("/accounts/{id}")]
pub async fn update_account(
    db: web::Data<Db>,
    caller: Caller,
    id: web::Path<String>,
    body: ValidJson<UpdateAccount>,
) -> Result<web::Json<Account>, ApiError> {
    caller.require(Permission::Administer)?;
    let request = body.into_inner()?;
    let organisation_id = caller.organisation_id().to_owned();
    let id = id.into_inner();
    let audit = caller.audit("account.updated");
    let row = db
        .run(move |conn| {
            db::write(conn, |conn| {
                let current = store::find_account_in(conn, &organisation_id, &id)?;
                let current_role: Role = current
                    .role
                    .parse()
                    .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("stored role: {e}")))?;
                let role = request.role.unwrap_or(current_role);
                let team_id = match request.team_id {
                    Some(team) => team,
                    // A role change away from manager drops the team with it.
                    None if role != Role::Manager => None,
                    None => current.team_id.clone(),
                };
                let disabled = request.disabled.unwrap_or(current.disabled);
                check_assignment(conn, &organisation_id, role, team_id.as_deref())?;
                store::update_account(conn, &id, role.as_str(), team_id.as_deref(), disabled)?;
                keep_an_admin(conn, &organisation_id)?;
                if disabled && !current.disabled {
                    store::delete_sessions_of(conn, &id, None)?;
                }
                audit
                    .on("account", &id)
                    .with(json!({"role": role.as_str(), "team_id": team_id, "disabled": disabled}))
                    .record(conn)?;
                Ok::<_, ApiError>(store::find_account(conn, &id)?)
            })
        })
        .await?;
    Ok(web::Json(row.try_into()?))
}

/// Delete an account and end its sessions.
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The account's id")),
    responses(
        (status = 204, description = "Deleted"),
        Refused,
        Missing,
        (status = 409, description = "It is the last enabled admin", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/accounts/{id}")]
pub async fn delete_account(
    db: web::Data<Db>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Administer)?;
    let organisation_id = caller.organisation_id().to_owned();
    let id = id.into_inner();
    let audit = caller.audit("account.deleted");
    db.run(move |conn| {
        db::write(conn, |conn| {
            let account = store::find_account_in(conn, &organisation_id, &id)?;
            store::delete_sessions_of(conn, &id, None)?;
            store::delete_account(conn, &id)?;
            keep_an_admin(conn, &organisation_id)?;
            audit
                .on("account", &id)
                .with(json!({"role": account.role}))
                .record(conn)?;
            Ok::<_, ApiError>(())
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Give an account a new one-time password and end its sessions.
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The account's id")),
    responses(
        (status = 200, description = "OK", body = AccountWithPassword),
        Refused,
        Missing,
        (status = 409, description = "It is the caller's own account: that password is changed with POST /api/v1/auth/password", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/accounts/{id}/reset-password")]
pub async fn reset_password(
    db: web::Data<Db>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<AccountWithPassword>, ApiError> {
    caller.require(Permission::Administer)?;
    // A reset ends the account's sessions: an admin's own would lock them
    // out with a password they never saw written down anywhere else.
    if caller.account_id() == Some(id.as_str()) {
        return Err(ApiError::Conflict(
            "This is your own account: change its password with POST /api/v1/auth/password.".into(),
        ));
    }
    let one_time = password::one_time_password();
    let hash = password::off_thread({
        let one_time = one_time.clone();
        move || password::hash(&one_time)
    })
    .await??;
    let organisation_id = caller.organisation_id().to_owned();
    let id = id.into_inner();
    let audit = caller.audit("account.password_reset");
    let row = db
        .run(move |conn| {
            db::write(conn, |conn| {
                store::find_account_in(conn, &organisation_id, &id)?;
                store::set_password(conn, &id, &hash, true)?;
                store::delete_sessions_of(conn, &id, None)?;
                audit.on("account", &id).record(conn)?;
                Ok::<_, ApiError>(store::find_account(conn, &id)?)
            })
        })
        .await?;
    tracing::info!(account_id = %row.id, "password reset by an admin");
    Ok(web::Json(AccountWithPassword {
        account: row.try_into()?,
        one_time_password: one_time.expose().to_owned(),
    }))
}
