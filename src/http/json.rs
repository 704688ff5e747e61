//! `ValidJson<T>`: the JSON body extractor every handler uses. It answers
//! 415 for a non-JSON content type, 413 past the body limit, 400 for bytes
//! that are not JSON, and 422 naming *every* bad field: type errors found by
//! deserialising (each bad field is taken out and the rest tried again), then
//! the `validator` rules on what remains.
//!
//! Extraction itself never fails: the handler calls [`ValidJson::into_inner`]
//! after its permission check, so a caller who may not do something learns
//! that (403), not what is wrong with their body.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use actix_web::error::PayloadError;
use actix_web::mime;
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use serde::de::DeserializeOwned;
use serde_json::Value;
use validator::{Validate, ValidationError, ValidationErrors, ValidationErrorsKind};

use crate::error::{ApiError, FieldError};

/// A request body, parsed and checked; [`ValidJson::into_inner`] gives the
/// value or the problem.
#[derive(Debug)]
pub struct ValidJson<T>(Result<T, ApiError>);

impl<T> ValidJson<T> {
    pub fn into_inner(self) -> Result<T, ApiError> {
        self.0
    }
}

impl<T> FromRequest for ValidJson<T>
where
    T: DeserializeOwned + Validate + 'static,
{
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type = check_content_type(req);
        let limit = req
            .app_data::<BodyLimit>()
            .map_or(BodyLimit::DEFAULT, |l| l.0);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let parsed = async {
                content_type?;
                let bytes = body
                    .await
                    .map_err(|error| match error.as_error::<PayloadError>() {
                        Some(PayloadError::Overflow) => ApiError::PayloadTooLarge { limit },
                        _ => ApiError::Malformed(format!("the body could not be read: {error}")),
                    })?;
                parse(&bytes)
            };
            Ok(ValidJson(parsed.await))
        })
    }
}

/// The configured body limit, kept beside actix's `PayloadConfig` so that
/// the 413 problem can say what the limit is.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl BodyLimit {
    pub const DEFAULT: usize = 256 * 1024;
}

fn check_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    match req.mime_type() {
        Ok(Some(m))
            if m.type_() == mime::APPLICATION
                && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON)) =>
        {
            Ok(())
        }
        Ok(Some(m)) => Err(ApiError::UnsupportedMediaType(format!(
            "expected application/json, got {m}"
        ))),
        Ok(None) => Err(ApiError::UnsupportedMediaType(
            "expected Content-Type: application/json".into(),
        )),
        Err(_) => Err(ApiError::UnsupportedMediaType(
            "the Content-Type header is malformed".into(),
        )),
    }
}

/// Parses and validates a JSON body, collecting every bad field.
pub fn parse<T: DeserializeOwned + Validate>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Malformed(format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::Validation(vec![FieldError {
            field: String::new(),
            pointer: String::new(),
            detail: "the body must be a JSON object".into(),
        }]));
    }
    let mut errors: Vec<FieldError> = Vec::new();
    // Each round removes one badly typed field; the bound keeps a hostile body cheap.
    for _ in 0..64 {
        match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(parsed) => {
                let mut rule_errors = match parsed.validate() {
                    Ok(()) => Vec::new(),
                    Err(e) => flatten(&e),
                };
                // A field already reported (or an element inside it) is not reported twice.
                rule_errors.retain(|r| {
                    !errors.iter().any(|e| {
                        e.field == r.field || e.field.starts_with(&format!("{}.", r.field))
                    })
                });
                errors.extend(rule_errors);
                if errors.is_empty() {
                    return Ok(parsed);
                }
                break;
            }
            Err(error) => {
                let keys = map_keys(error.path());
                let message = error.inner().to_string();
                let (field, detail) = describe(&path_name(error.path()), &message);
                let removable = !keys.is_empty() && !message.starts_with("missing field");
                errors.push(FieldError::new(field, detail));
                if !removable || !remove_at(&mut value, &keys) {
                    break;
                }
            }
        }
    }
    errors.sort_by(|a, b| a.field.cmp(&b.field));
    Err(ApiError::Validation(errors))
}

/// The object keys leading to the error, up to the first array: removing
/// that field (a whole array, if the error is inside one) lets parsing go on.
fn map_keys(path: &serde_path_to_error::Path) -> Vec<String> {
    path.iter()
        .map_while(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            _ => None,
        })
        .collect()
}

/// The path as a dotted name, array indexes included (`scopes.0`).
fn path_name(path: &serde_path_to_error::Path) -> String {
    path.iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn describe(parent: &str, message: &str) -> (String, String) {
    let parent = parent.to_owned();
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.trim_end_matches('`');
        let field = if parent.is_empty() {
            name.to_owned()
        } else {
            format!("{parent}.{name}")
        };
        return (field, "is required".into());
    }
    (parent, message.to_owned())
}

fn remove_at(value: &mut Value, keys: &[String]) -> bool {
    let Some((last, parents)) = keys.split_last() else {
        return false;
    };
    let mut current = value;
    for key in parents {
        match current.get_mut(key) {
            Some(next) => current = next,
            None => return false,
        }
    }
    current
        .as_object_mut()
        .is_some_and(|object| object.remove(last).is_some())
}

fn flatten(errors: &ValidationErrors) -> Vec<FieldError> {
    let mut out = Vec::new();
    flatten_into(errors, "", &mut out);
    out.sort_by(|a, b| a.field.cmp(&b.field));
    out
}

fn flatten_into(errors: &ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    for (field, kind) in errors.errors() {
        let name = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                let detail = list
                    .iter()
                    .map(|e| {
                        e.message
                            .clone()
                            .unwrap_or_else(|| Cow::Owned(format!("fails the `{}` rule", e.code)))
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                out.push(FieldError::new(name, detail));
            }
            ValidationErrorsKind::Struct(inner) => flatten_into(inner, &name, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    flatten_into(inner, &format!("{name}.{index}"), out);
                }
            }
        }
    }
}

/// For `Option<Option<T>>` fields of a PATCH body: absent is `None` (leave
/// as is), `null` is `Some(None)` (clear), a value is `Some(Some(v))`.
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}

/// A `validator` rule backed by a domain type's `parse`, so the rule lives once.
pub fn rule<T>(
    code: &'static str,
    parse: impl Fn(&str) -> Result<T, crate::domain::Invalid>,
    value: &str,
) -> Result<(), ValidationError> {
    parse(value)
        .map(|_| ())
        .map_err(|invalid| ValidationError::new(code).with_message(Cow::Owned(invalid.0)))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, Validate)]
    #[serde(default)]
    #[derive(Default)]
    struct Sample {
        #[validate(length(min = 1, message = "is required"))]
        name: String,
        #[validate(range(min = 3, message = "must be at least 3"))]
        k: i64,
        #[validate(email(message = "is not a valid email address"))]
        email: String,
    }

    fn fields(result: Result<Sample, ApiError>) -> Vec<String> {
        match result {
            Err(ApiError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected validation errors, got {other:?}"),
        }
    }

    #[test]
    fn names_every_bad_field_type_and_rule_errors_together() {
        let body = br#"{"name": 5, "k": "many", "email": "nope"}"#;
        assert_eq!(fields(parse(body)), vec!["email", "k", "name"]);
        let body = br#"{"name": "", "k": 1, "email": "a@b.nl"}"#;
        assert_eq!(fields(parse(body)), vec!["k", "name"]);
    }

    #[test]
    fn accepts_a_valid_body() {
        let parsed: Sample = parse(br#"{"name": "x", "k": 5, "email": "a@b.nl"}"#).unwrap();
        assert_eq!(parsed.k, 5);
    }

    #[test]
    fn malformed_json_is_400_and_non_objects_422() {
        assert!(matches!(
            parse::<Sample>(b"{\"name\""),
            Err(ApiError::Malformed(_))
        ));
        assert!(matches!(
            parse::<Sample>(b"\xff\xfe"),
            Err(ApiError::Malformed(_))
        ));
        let deep = "[".repeat(10_000);
        assert!(matches!(
            parse::<Sample>(deep.as_bytes()),
            Err(ApiError::Malformed(_))
        ));
        assert!(matches!(
            parse::<Sample>(b"[1]"),
            Err(ApiError::Validation(_))
        ));
    }
}
