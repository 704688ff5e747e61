//! Who may do what: the permission table of `DESIGN.md`, in code. Handlers
//! take a [`Caller`] (a signed-in account or an API key) and ask it for a
//! [`Permission`]; the answer is a [`Reach`] (the whole organisation, or a
//! manager's subtree) or 403.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::session::{Principal, SignedIn, bearer_token, resolve_session};
use super::token::API_KEY_PREFIX;
use crate::audit::{Actor, ActorKind, Entry};
use crate::crypto::ServerKeys;
use crate::db::Db;
use crate::domain::Role;
use crate::error::ApiError;
use crate::http::rate_limit::client_of;

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Scope {
    #[serde(rename = "results:read")]
    ResultsRead,
    #[serde(rename = "mobility:read")]
    MobilityRead,
    #[serde(rename = "people:write")]
    PeopleWrite,
    #[serde(rename = "pulses:write")]
    PulsesWrite,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Self::ResultsRead,
        Self::MobilityRead,
        Self::PeopleWrite,
        Self::PulsesWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResultsRead => "results:read",
            Self::MobilityRead => "mobility:read",
            Self::PeopleWrite => "people:write",
            Self::PulsesWrite => "pulses:write",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// The rows of the permission table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Accounts, API keys, organisation settings, webhooks: admins only.
    Administer,
    /// Teams, people, imports: admin, hr, or a `people:write` key.
    WritePeople,
    /// Pulses and waves: admin, hr, or a `pulses:write` key.
    WritePulses,
    /// The team tree: everyone who works with teams or their results.
    ReadTeams,
    /// Results, heatmaps, trends: admin, hr, a manager's subtree, `results:read`.
    ReadResults,
    /// Mobility aggregates: admin, hr, a manager's subtree, `mobility:read`.
    ReadMobility,
}

/// How much of the organisation a permission covers for this caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    Organisation,
    /// A manager: this team and everything below it.
    Subtree(String),
}

/// An API key behind a request.
#[derive(Debug, Clone)]
pub struct KeyCaller {
    pub key_id: String,
    pub name: String,
    pub organisation_id: String,
    pub scopes: Vec<Scope>,
}

/// What a request is authenticated with.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An account that may use the API.
    Account(Principal),
    Key(KeyCaller),
}

/// Whoever is calling, and from where.
#[derive(Debug, Clone)]
pub struct Caller {
    pub credential: Credential,
    /// The client address (behind a trusted proxy, the one it forwarded).
    pub client: Option<IpAddr>,
}

impl Caller {
    pub fn organisation_id(&self) -> &str {
        match &self.credential {
            Credential::Account(principal) => &principal.organisation_id,
            Credential::Key(key) => &key.organisation_id,
        }
    }

    /// The signed-in account's id; none for an API key.
    pub fn account_id(&self) -> Option<&str> {
        match &self.credential {
            Credential::Account(principal) => Some(&principal.account_id),
            Credential::Key(_) => None,
        }
    }

    /// The caller as the audit log names it.
    pub fn actor(&self) -> Actor {
        match &self.credential {
            Credential::Account(principal) => account_actor(principal, self.client),
            Credential::Key(key) => Actor {
                organisation_id: key.organisation_id.clone(),
                kind: ActorKind::ApiKey,
                id: Some(key.key_id.clone()),
                label: Some(key.name.clone()),
                client: self.client,
            },
        }
    }

    /// An audit entry of `action` by this caller, to record with the change.
    pub fn audit(&self, action: &'static str) -> Entry {
        self.actor().did(action)
    }

    /// The reach this caller has for `permission`, or 403.
    pub fn require(&self, permission: Permission) -> Result<Reach, ApiError> {
        use Permission::*;
        match &self.credential {
            Credential::Account(principal) => match (principal.role, permission) {
                (Role::Admin, _) => Ok(Reach::Organisation),
                (Role::Hr, Administer) => Err(ApiError::Forbidden("This needs an admin account.")),
                (Role::Hr, _) => Ok(Reach::Organisation),
                (Role::Manager, ReadTeams | ReadResults | ReadMobility) => {
                    match &principal.team_id {
                        Some(team) => Ok(Reach::Subtree(team.clone())),
                        None => Err(ApiError::Forbidden("This manager account has no team.")),
                    }
                }
                (Role::Manager, _) => Err(ApiError::Forbidden(
                    "Manager accounts may read their own subtree's results only.",
                )),
            },
            Credential::Key(key) => {
                let accepted: &[Scope] = match permission {
                    Administer => &[],
                    WritePeople => &[Scope::PeopleWrite],
                    WritePulses => &[Scope::PulsesWrite],
                    ReadResults => &[Scope::ResultsRead],
                    ReadMobility => &[Scope::MobilityRead],
                    ReadTeams => &Scope::ALL,
                };
                if key.scopes.iter().any(|s| accepted.contains(s)) {
                    Ok(Reach::Organisation)
                } else {
                    Err(ApiError::Forbidden(
                        "This API key lacks the scope for this.",
                    ))
                }
            }
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let token = bearer_token(&req)?;
            let credential = if token.starts_with(API_KEY_PREFIX) {
                Credential::Key(resolve_key(&req, &token).await?)
            } else {
                Credential::Account(Principal::check(resolve_session(&req, &token).await?)?)
            };
            Ok(Caller {
                credential,
                client: client_of(&req),
            })
        })
    }
}

/// A signed-in account as the audit log names it.
pub fn account_actor(signed_in: &SignedIn, client: Option<IpAddr>) -> Actor {
    Actor {
        organisation_id: signed_in.organisation_id.clone(),
        kind: ActorKind::Account,
        id: Some(signed_in.account_id.clone()),
        label: Some(signed_in.email.clone()),
        client,
    }
}

async fn resolve_key(req: &HttpRequest, token: &str) -> Result<KeyCaller, ApiError> {
    let (Some(db), Some(keys)) = (
        req.app_data::<web::Data<Db>>().cloned(),
        req.app_data::<web::Data<ServerKeys>>().cloned(),
    ) else {
        return Err(ApiError::Unexpected(anyhow::anyhow!(
            "no database or keys in app data"
        )));
    };
    let digest = keys.api_key_digest(token);
    let found = db
        .run(move |conn| {
            super::api_keys::store::touch_live_key(conn, &digest).map_err(ApiError::from)
        })
        .await?;
    let key = found.ok_or(ApiError::Unauthenticated(
        "The API key is unknown or has been revoked.",
    ))?;
    crate::http::rate_limit::ApiLimits::admit_credential(req, &format!("key:{}", key.key_id))?;
    Ok(key)
}
