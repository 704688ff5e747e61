//! `/api/v1/auth`: sign in, sign out, set a password, who am I.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::caller::account_actor;
use super::session::{Principal, SignedIn};
use super::{password, store, token};
use crate::audit::{Actor, ActorKind};
use crate::config::Settings;
use crate::db::{self, Db};
use crate::domain::{NewPassword, Role};
use crate::error::{ApiError, Problem};
use crate::http::ValidJson;
use crate::http::json::rule;
use crate::http::rate_limit::{ApiLimits, client_of};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(login)
        .service(logout)
        .service(change_password)
        .service(me);
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(default)]
pub struct LoginRequest {
    #[validate(length(min = 1, message = "is required"))]
    #[schema(example = "admin@example.org")]
    pub email: String,
    #[validate(length(min = 1, max = 1024, message = "is required (at most 1024 characters)"))]
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_at: DateTime<Utc>,
    /// When true, only `POST /api/v1/auth/password` and logout are allowed.
    pub must_change_password: bool,
}

/// Sign in with email and password; returns a bearer session token.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = LoginResponse),
        (status = 401, description = "Wrong email address or password", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address or for this account; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/login")]
pub async fn login(
    db: web::Data<Db>,
    settings: web::Data<Settings>,
    limits: web::Data<ApiLimits>,
    req: HttpRequest,
    body: ValidJson<LoginRequest>,
) -> Result<web::Json<LoginResponse>, ApiError> {
    let request = body.into_inner()?;
    let email = request.email.trim().to_lowercase();
    limits.admit_sign_in(&email)?;
    let account = db
        .run(move |conn| {
            use diesel::OptionalExtension;
            store::find_account_by_email(conn, &email)
                .optional()
                .map_err(ApiError::from)
        })
        .await?;
    if let Some(locked_until) = account
        .as_ref()
        .and_then(|a| a.locked_until)
        .filter(|until| *until > db::now())
    {
        let wait = (locked_until - db::now()).num_seconds().max(1);
        return Err(ApiError::TooManyRequests {
            retry_after_secs: u64::try_from(wait).unwrap_or(1),
        });
    }
    let candidate = request.password;
    let (account, verified) = password::off_thread(move || match account {
        Some(account) => {
            let ok = !account.disabled && password::verify(&candidate, &account.password_hash);
            (Some(account), ok)
        }
        None => {
            password::verify_against_nothing(&candidate);
            (None, false)
        }
    })
    .await?;
    let Some(account) = account else {
        return Err(ApiError::InvalidCredentials);
    };
    // Attempts on accounts that exist are the organisation's to see.
    let actor = Actor {
        organisation_id: account.organisation_id.clone(),
        kind: ActorKind::Account,
        id: Some(account.id.clone()),
        label: Some(account.email.clone()),
        client: client_of(&req),
    };
    if !verified {
        let audit = actor
            .did("account.sign_in_failed")
            .on("account", &account.id);
        db.run(move |conn| {
            db::write(conn, |conn| {
                store::record_failed_sign_in(conn, &account.id)?;
                audit.record(conn)
            })
            .map_err(ApiError::from)
        })
        .await?;
        return Err(ApiError::InvalidCredentials);
    }

    let (token, token_hash) = token::new_session_token();
    let expires_at = db::now() + chrono::Duration::hours(i64::from(settings.auth.session_hours));
    let account_id = account.id.clone();
    let audit = actor.did("account.signed_in").on("account", &account.id);
    db.run(move |conn| {
        db::write(conn, |conn| {
            store::insert_session(conn, &token_hash, &account_id, expires_at)?;
            store::record_sign_in(conn, &account_id)?;
            audit.record(conn)
        })
        .map_err(ApiError::from)
    })
    .await?;
    tracing::info!(account_id = %account.id, "signed in");
    Ok(web::Json(LoginResponse {
        token,
        token_type: "Bearer".to_owned(),
        expires_at: expires_at.and_utc(),
        must_change_password: account.must_change_password,
    }))
}

/// End the session whose token is sent.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "No valid session", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/logout")]
pub async fn logout(db: web::Data<Db>, caller: SignedIn) -> Result<HttpResponse, ApiError> {
    let token_hash = caller.token_hash;
    db.run(move |conn| store::delete_session(conn, &token_hash).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

fn valid_new_password(value: &str) -> Result<(), validator::ValidationError> {
    rule("password", NewPassword::parse, value)
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(default)]
pub struct ChangePasswordRequest {
    #[validate(length(min = 1, max = 1024, message = "is required (at most 1024 characters)"))]
    pub current_password: String,
    /// 12 to 256 characters.
    #[validate(custom(function = "valid_new_password"))]
    pub new_password: String,
}

/// Set a new password. Required before anything else after signing in with a
/// one-time password; ends the account's other sessions.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Password changed"),
        (status = 401, description = "No valid session", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or the current password is wrong", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/password")]
pub async fn change_password(
    db: web::Data<Db>,
    caller: SignedIn,
    req: HttpRequest,
    body: ValidJson<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner()?;
    let new_password = NewPassword::parse(&request.new_password)
        .map_err(|e| ApiError::field("new_password", e.0))?;
    let account_id = caller.account_id.clone();
    let stored = db
        .run(move |conn| {
            store::find_account(conn, &account_id)
                .map(|account| account.password_hash)
                .map_err(ApiError::from)
        })
        .await?;
    let hash = password::off_thread(move || -> Result<String, ApiError> {
        if !password::verify(&request.current_password, &stored) {
            return Err(ApiError::field(
                "current_password",
                "is not this account's current password",
            ));
        }
        if password::verify(new_password.expose(), &stored) {
            return Err(ApiError::field(
                "new_password",
                "must differ from the current password",
            ));
        }
        Ok(password::hash(&new_password)?)
    })
    .await??;
    let account_id = caller.account_id.clone();
    let keep = caller.token_hash.clone();
    let audit = account_actor(&caller, client_of(&req))
        .did("account.password_changed")
        .on("account", &caller.account_id);
    db.run(move |conn| {
        db::write(conn, |conn| {
            store::set_password(conn, &account_id, &hash, false)?;
            store::delete_sessions_of(conn, &account_id, Some(&keep))?;
            audit.record(conn)
        })
        .map_err(ApiError::from)
    })
    .await?;
    tracing::info!(account_id = %caller.account_id, "password changed");
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub account_id: String,
    pub email: String,
    pub role: Role,
    pub organisation: OrganisationRef,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrganisationRef {
    pub id: String,
    pub name: String,
}

/// The signed-in account and its organisation.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "No valid session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A new password must be set first", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/auth/me")]
pub async fn me(caller: Principal) -> web::Json<Me> {
    let caller = caller.0;
    web::Json(Me {
        account_id: caller.account_id,
        email: caller.email,
        role: caller.role,
        organisation: OrganisationRef {
            id: caller.organisation_id,
            name: caller.organisation_name,
        },
    })
}
