//! Request extractors for signed-in callers.
//!
//! [`SignedIn`] accepts any live session, including one whose account still
//! has to replace its one-time password: only signing out and setting a new
//! password take it. Every other endpoint takes [`Principal`], which refuses
//! such a session with 403 `password-change-required`.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use super::store::{self, AccountRow};
use super::token::hash_token;
use crate::db::Db;
use crate::domain::Role;
use crate::error::ApiError;
use crate::http::rate_limit::ApiLimits;

/// The account behind a request's bearer token.
#[derive(Clone)]
pub struct SignedIn {
    pub account_id: String,
    pub organisation_id: String,
    pub organisation_name: String,
    pub email: String,
    pub role: Role,
    /// For a manager: the team whose subtree they see.
    pub team_id: Option<String>,
    pub must_change_password: bool,
    pub(crate) token_hash: String,
}

// Only ids: emails and token digests stay out of debug output and logs.
impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("account_id", &self.account_id)
            .field("organisation_id", &self.organisation_id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A signed-in caller who may use the API.
#[derive(Debug, Clone)]
pub struct Principal(pub SignedIn);

impl Principal {
    pub(crate) fn check(signed_in: SignedIn) -> Result<Self, ApiError> {
        if signed_in.must_change_password {
            return Err(ApiError::PasswordChangeRequired);
        }
        Ok(Self(signed_in))
    }
}

impl std::ops::Deref for Principal {
    type Target = SignedIn;
    fn deref(&self) -> &SignedIn {
        &self.0
    }
}

pub fn bearer_token(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthenticated(
            "Send `Authorization: Bearer <token>` with a token from POST /api/v1/auth/login.",
        ))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthenticated("The Authorization header is not valid text."))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_owned())
        }
        _ => Err(ApiError::Unauthenticated(
            "The Authorization header must be `Bearer <token>`.",
        )),
    }
}

async fn resolve(req: HttpRequest) -> Result<SignedIn, ApiError> {
    let token = bearer_token(&req)?;
    resolve_session(&req, &token).await
}

pub(crate) async fn resolve_session(req: &HttpRequest, token: &str) -> Result<SignedIn, ApiError> {
    let db = req
        .app_data::<web::Data<Db>>()
        .cloned()
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("no database in app data")))?;
    let token_hash = hash_token(token);
    let lookup_hash = token_hash.clone();
    let found = db
        .run(move |conn| {
            store::find_live_session(conn, &lookup_hash, crate::db::now()).map_err(ApiError::from)
        })
        .await?;
    let Some((account, organisation_name)) = found else {
        return Err(ApiError::Unauthenticated(
            "The session token is unknown or has expired: sign in again.",
        ));
    };
    if account.disabled {
        return Err(ApiError::Unauthenticated("This account is disabled."));
    }
    ApiLimits::admit_credential(req, &format!("account:{}", account.id))?;
    signed_in(account, organisation_name, token_hash)
}

fn signed_in(
    account: AccountRow,
    organisation_name: String,
    token_hash: String,
) -> Result<SignedIn, ApiError> {
    let role = account
        .role
        .parse::<Role>()
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("stored role: {e}")))?;
    Ok(SignedIn {
        account_id: account.id,
        organisation_id: account.organisation_id,
        organisation_name,
        email: account.email,
        role,
        team_id: account.team_id,
        must_change_password: account.must_change_password,
        token_hash,
    })
}

impl FromRequest for SignedIn {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(resolve(req.clone()))
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Principal::check(resolve(req).await?) })
    }
}
