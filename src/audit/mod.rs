//! The audit log: who did what to accounts, API keys, settings, teams,
//! people, pulses, waves, webhooks, imports, exports and erasures.
//!
//! A handler takes an [`Entry`] from its caller ([`crate::auth::Caller::audit`])
//! before it starts and records it inside the transaction that makes the
//! change, so an entry exists exactly when its change committed. Entries
//! name what was touched (ids, field names, counts); they never hold
//! answers, secrets, tokens or the values of personal data.

pub mod http;
pub mod store;

use std::net::IpAddr;

use serde_json::Value;

use crate::db::{Db, DbConnection};
use crate::error::ApiError;

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    Account,
    ApiKey,
    /// Peil itself (retention), or an operator at the shell.
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::ApiKey => "api_key",
            Self::System => "system",
        }
    }
}

/// The one acting, as the log shows it: an account by its email at the
/// time (accounts are renamed and deleted; the log must still say who),
/// an API key by its name.
#[derive(Debug, Clone)]
pub struct Actor {
    pub organisation_id: String,
    pub kind: ActorKind,
    pub id: Option<String>,
    pub label: Option<String>,
    pub client: Option<IpAddr>,
}

impl Actor {
    pub fn system(organisation_id: &str) -> Self {
        Self {
            organisation_id: organisation_id.to_owned(),
            kind: ActorKind::System,
            id: None,
            label: None,
            client: None,
        }
    }

    /// An operator at the server's shell (`peil admin …`).
    pub fn shell(organisation_id: &str) -> Self {
        Self {
            label: Some("peil admin".to_owned()),
            ..Self::system(organisation_id)
        }
    }

    pub fn did(&self, action: &'static str) -> Entry {
        Entry {
            actor: self.clone(),
            action,
            target: None,
            details: Value::Object(Default::default()),
        }
    }
}

/// One thing done, to be recorded with the change it describes.
#[derive(Debug, Clone)]
#[must_use = "an entry is only in the log once recorded"]
pub struct Entry {
    actor: Actor,
    action: &'static str,
    target: Option<(&'static str, String)>,
    details: Value,
}

impl Entry {
    /// What it was done to: a kind (`pulse`, `person`, …) and its id.
    pub fn on(mut self, kind: &'static str, id: &str) -> Self {
        self.target = Some((kind, id.to_owned()));
        self
    }

    /// Field names, counts and settings (a JSON object), never personal data.
    pub fn with(mut self, details: Value) -> Self {
        debug_assert!(details.is_object(), "audit details are an object");
        self.details = details;
        self
    }

    /// Writes the entry; call inside the change's transaction.
    pub fn record(&self, conn: &mut DbConnection) -> diesel::QueryResult<()> {
        store::insert(conn, self)
    }

    /// Writes the entry on its own, for what changes nothing (an export),
    /// before the data leaves: an export that cannot be logged is refused.
    pub async fn record_now(self, db: &Db) -> Result<(), ApiError> {
        db.run(move |conn| crate::db::write(conn, |conn| self.record(conn)).map_err(ApiError::from))
            .await
    }
}

/// The names of the fields a partial update (a JSON object) sets, sorted:
/// what an update's entry says changed, without the values.
pub fn fields_of(update: &Value) -> Value {
    let mut fields: Vec<&str> = update
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    fields.sort_unstable();
    serde_json::json!({ "fields": fields })
}
