//! Request-wide behaviour: the access log with a request id, turning every
//! error response not made by Peil's handlers into problem+json, what no
//! route answers, and CORS.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, Next};
use actix_web::{HttpResponse, web};
use tracing::Instrument;

use crate::error::{ApiError, PROBLEM_JSON, generic_problem, problem_response};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives every request an id (a caller's own `X-Request-Id` if it is a sane
/// token, else a new UUID), runs it inside a span carrying that id so every
/// log line of the request has it, and logs one line when it completes.
///
/// The line names the matched route pattern, never the raw path: answer
/// links carry their token in the path (`/s/{token}`), and tokens must not
/// reach logs.
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!("request", request_id = %request_id);
    let method = req.method().clone();
    let started = Instant::now();
    let result = next.call(req).instrument(span.clone()).await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let _entered = span.enter();
    match result {
        Ok(mut response) => {
            let route = response
                .request()
                .match_pattern()
                .unwrap_or_else(|| "(no route)".to_owned());
            let status = response.status().as_u16();
            tracing::info!(%method, %route, status, elapsed_ms, "request completed");
            if let Some(metrics) = response
                .request()
                .app_data::<web::Data<crate::metrics::Metrics>>()
            {
                metrics.request(method.as_str(), &route, status, elapsed_ms / 1000.0);
            }
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert(REQUEST_ID, value);
            }
            Ok(response)
        }
        Err(error) => {
            tracing::warn!(%method, elapsed_ms, %error, "request failed");
            Err(error)
        }
    }
}

/// Refuses a request over its client address's API limits with 429 and
/// `Retry-After` before it reaches a handler (see [`super::rate_limit`]).
pub async fn limit_rate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let verdict = req
        .app_data::<web::Data<super::rate_limit::ApiLimits>>()
        .map_or(Ok(()), |limits| limits.admit(req.request()));
    if let Err(refused) = verdict {
        let (request, _) = req.into_parts();
        let response = actix_web::ResponseError::error_response(&refused);
        return Ok(ServiceResponse::new(request, response));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// For `ErrorHandlers::default_handler`: error responses that are not yet
/// problem documents (unknown routes, framework-level body errors) become one.
pub fn problemise<B>(response: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    // A problem already, or the answer page's own HTML for its errors.
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(PROBLEM_JSON.as_bytes())
                || v.as_bytes().starts_with(b"text/html")
        });
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(
            response.map_into_left_body(),
        ));
    }
    let status = response.status();
    let mut kept: Vec<(HeaderName, HeaderValue)> = response
        .headers()
        .iter()
        .filter(|(name, _)| {
            [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE].contains(name)
        })
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    // A 405 (actix-web's own, or [`no_route`]'s) says which methods there are.
    if status == StatusCode::METHOD_NOT_ALLOWED && !kept.iter().any(|(n, _)| n == header::ALLOW) {
        kept.extend(allowed(response.request()).map(|allow| (header::ALLOW, allow)));
    }
    let (request, _) = response.into_parts();
    let mut replacement = problem_response(&generic_problem(status));
    for (name, value) in kept {
        replacement.headers_mut().insert(name, value);
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(request, replacement).map_into_right_body(),
    ))
}

/// The methods the OpenAPI document lists for the request's path, as an
/// `Allow` value; None for a path it does not have.
fn allowed(request: &actix_web::HttpRequest) -> Option<HeaderValue> {
    request
        .app_data::<web::Data<crate::http::openapi::Methods>>()
        .and_then(|methods| methods.allowed(request.path()))
        .and_then(|allow| HeaderValue::from_str(allow).ok())
}

/// What no route answered: 405 for a documented path asked with another
/// method ([`problemise`] adds `Allow`), 404 for anything else.
pub async fn no_route(request: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    match allowed(&request) {
        Some(_) => Ok(HttpResponse::MethodNotAllowed().finish()),
        None => Err(ApiError::NotFound),
    }
}

/// CORS for the configured web origins (`server.cors_origins`); see
/// `config/default.toml`. A request from any other origin is served as
/// usual, without CORS headers, so browsers keep its page from reading the
/// answer; refusing it outright would also refuse Peil's own answer page,
/// whose form posts carry an `Origin` too.
pub fn cors(origins: &[String]) -> actix_cors::Cors {
    use actix_web::http::header;
    origins
        .iter()
        .fold(actix_cors::Cors::default(), |cors, origin| {
            cors.allowed_origin(origin)
        })
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::ACCEPT,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            header::HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([header::ETAG, header::LOCATION, header::RETRY_AFTER])
        .block_on_origin_mismatch(false)
        .max_age(3600)
}
