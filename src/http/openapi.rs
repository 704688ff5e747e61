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
