//! The OpenAPI 3.1 document. Paths are collected from the annotated handlers
//! as they are mounted (utoipa-actix-web), so a mounted route is a documented
//! one; this holds what spans them: metadata, security schemes, shared schemas.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{FieldError, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Peil",
        description = "Anonymous pulse surveys on development opportunities, career outlook and psychological safety, reported per team.",
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "auth", description = "Signing in and out, passwords"),
        (name = "accounts", description = "Who may sign in (admin)"),
        (name = "api-keys", description = "Credentials for integrations (admin)"),
        (name = "organisation", description = "The organisation's settings (admin)"),
        (name = "teams", description = "The team tree results roll up"),
        (name = "people", description = "Who gets invited, and their dated history"),
        (name = "templates", description = "Question sets: the shipped ones and the organisation's own"),
        (name = "pulses", description = "Recurring survey programs and their schedule"),
        (name = "waves", description = "One occurrence of a pulse: open, closed or skipped"),
        (name = "results", description = "Published results per group, suppressed where the anonymity rules say so"),
        (name = "mobility", description = "Inflow, internal moves and outflow per team, from HR's dated records: counts, never people. Team level only: responses are never linked to a person, so what leavers answered cannot be asked, by design"),
        (name = "webhooks", description = "Events pushed to integrations, signed (Standard Webhooks), with a delivery log (admin)"),
        (name = "audit", description = "Who did what: accounts, keys, settings, people, pulses, webhooks, imports, exports, erasures (admin)"),
        (name = "answers", description = "Answering through an invitation's link: no credentials, the token is one"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session token from POST /api/v1/auth/login, or an API key.".to_owned(),
                    ))
                    .build(),
            ),
        );
    }
}

/// Completes the assembled document with the answers that whole kinds of
/// operations give, so that no handler's annotation can leave one out: 400
/// where a path, query or body can be malformed; 413 and 415 where there is
/// a body (too large, or not of a type the operation reads). And it opens
/// the flattened parts of composed schemas (below).
pub fn complete(mut openapi: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, Schema};
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
    };
    // A flattened part of a schema is an allOf member; a closed set of
    // fields there (`deny_unknown_fields`) would refuse the other members'.
    let schemas = openapi
        .components
        .iter_mut()
        .flat_map(|c| c.schemas.values_mut());
    for schema in schemas {
        if let RefOr::T(Schema::AllOf(all_of)) = schema {
            for member in &mut all_of.items {
                if let RefOr::T(Schema::Object(object)) = member {
                    object.additional_properties = None;
                }
            }
        }
    }
    for (path, item) in openapi.paths.paths.iter_mut() {
        let limited = path.starts_with("/api/v1/");
        let shared_parameters = item.parameters.as_ref().is_some_and(|p| !p.is_empty());
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let body = operation.request_body.is_some();
            let parameters =
                shared_parameters || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let responses = &mut operation.responses.responses;
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| problem(description).into());
            };
            if body || parameters {
                add(
                    "400",
                    "The path, the query string or the body is malformed.",
                );
            }
            if body {
                add("413", "The body is larger than the server accepts.");
                add("415", "The body is not of a type this operation reads.");
            }
            if limited {
                add(
                    "429",
                    "Over a rate limit of this client address or credential; see Retry-After.",
                );
            }
        }
    }
    openapi
}

/// The document's paths and the methods each has: a request for a path
/// Peil serves, with a method it does not, is answered 405 with `Allow`
/// rather than 404.
#[derive(Debug, Clone, Default)]
pub struct Methods(Vec<(Vec<Option<String>>, String)>);

impl Methods {
    pub fn of(openapi: &utoipa::openapi::OpenApi) -> Self {
        let routes = openapi
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                // A `{parameter}` segment matches any one segment.
                let segments = path
                    .split('/')
                    .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                    .collect();
                let methods: Vec<&str> = [
                    ("GET", item.get.is_some()),
                    ("PUT", item.put.is_some()),
                    ("POST", item.post.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                ]
                .into_iter()
                .filter_map(|(method, has)| has.then_some(method))
                .collect();
                (segments, methods.join(", "))
            })
            .collect();
        Self(routes)
    }

    /// The `Allow` value for `path`, if it is a documented one.
    pub fn allowed(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.split('/').collect();
        self.0
            .iter()
            .filter(|(pattern, _)| {
                pattern.len() == segments.len()
                    && pattern.iter().zip(&segments).all(|(p, s)| match p {
                        Some(literal) => literal == s,
                        None => !s.is_empty(),
                    })
            })
            .map(|(_, allow)| allow.as_str())
            .next()
    }
}
