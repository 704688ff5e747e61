//! The templates an organisation can ask: the ones shipped in
//! `survey-templates/` (in the binary, the same on every replica) and the
//! ones it added through the API (in the database, every version kept, so a
//! wave can always show what it asked). Keys are one namespace: an
//! organisation cannot add a template under a shipped key.

pub mod http;
pub mod store;

use super::template::{self, Template};
use crate::db::DbConnection;
use crate::error::{ApiError, FieldError};

/// Where a template comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Shipped,
    Organisation,
}

pub fn shipped() -> Result<&'static [Template], ApiError> {
    template::builtin().map_err(|e| ApiError::Unexpected(anyhow::anyhow!("{e}")))
}

fn shipped_named(key: &str) -> Result<Option<&'static Template>, ApiError> {
    Ok(shipped()?.iter().find(|t| t.key == key))
}

/// The current version of `key` for this organisation.
pub fn latest(
    conn: &mut DbConnection,
    organisation_id: &str,
    key: &str,
) -> Result<Option<(Template, Origin)>, ApiError> {
    if let Some(t) = shipped_named(key)? {
        return Ok(Some((t.clone(), Origin::Shipped)));
    }
    store::latest(conn, organisation_id, key)?
        .map(|body| decode(&body).map(|t| (t, Origin::Organisation)))
        .transpose()
}

/// One version of `key`.
pub fn version(
    conn: &mut DbConnection,
    organisation_id: &str,
    key: &str,
    version: u32,
) -> Result<Option<(Template, Origin)>, ApiError> {
    if let Some(t) = shipped_named(key)? {
        return Ok((t.version == version).then(|| (t.clone(), Origin::Shipped)));
    }
    store::version(conn, organisation_id, key, version)?
        .map(|body| decode(&body).map(|t| (t, Origin::Organisation)))
        .transpose()
}

/// The current version of every template the organisation can ask.
pub fn all(
    conn: &mut DbConnection,
    organisation_id: &str,
) -> Result<Vec<(Template, Origin)>, ApiError> {
    let mut out: Vec<(Template, Origin)> = shipped()?
        .iter()
        .map(|t| (t.clone(), Origin::Shipped))
        .collect();
    for body in store::all_latest(conn, organisation_id)? {
        out.push((decode(&body)?, Origin::Organisation));
    }
    Ok(out)
}

/// Checks a template document with the same loader as the shipped files and
/// stores it as the next version of its key. Part of the caller's transaction.
pub fn add(
    conn: &mut DbConnection,
    organisation_id: &str,
    document: serde_json::Value,
) -> Result<Template, ApiError> {
    let key = document
        .get("key")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if shipped_named(&key)?.is_some() {
        return Err(ApiError::field(
            "key",
            "is the key of a shipped template; choose another",
        ));
    }
    let next = store::max_version(conn, organisation_id, &key)?.unwrap_or(0) + 1;
    let template = Template::from_json_value(document, next).map_err(|problems| {
        ApiError::Validation(
            problems
                .into_iter()
                .map(|p| match p.question {
                    Some(question) => {
                        FieldError::new(p.field, format!("question {question}: {}", p.detail))
                    }
                    None => FieldError::new(p.field, p.detail),
                })
                .collect(),
        )
    })?;
    if let Some(previous) = store::latest(conn, organisation_id, &key)? {
        keep_ids_stable(&decode(&previous)?, &template)?;
    }
    let body = serde_json::to_string(&template)
        .map_err(|e| ApiError::Unexpected(anyhow::Error::new(e)))?;
    store::insert(
        conn,
        organisation_id,
        &template.key,
        template.version,
        &body,
    )?;
    Ok(template)
}

/// Results are compared across versions by question id, so an id keeps its
/// meaning: a new version may reword a question, not change its theme, its
/// scale or its reverse coding (that is a new question with a new id).
fn keep_ids_stable(previous: &Template, next: &Template) -> Result<(), ApiError> {
    let errors: Vec<FieldError> = next
        .questions
        .iter()
        .enumerate()
        .filter_map(|(i, q)| {
            let old = previous.questions.iter().find(|o| o.id == q.id)?;
            (old.theme != q.theme || old.scale != q.scale || old.reverse != q.reverse).then(|| {
                FieldError::new(
                    format!("questions.{i}.id"),
                    format!(
                        "question {} had another theme, scale or reverse coding in version {}: a changed question needs a new id",
                        q.id, previous.version
                    ),
                )
            })
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

pub fn decode(body: &str) -> Result<Template, ApiError> {
    serde_json::from_str(body).map_err(|e| {
        ApiError::Unexpected(anyhow::anyhow!("a stored template does not decode: {e}"))
    })
}
