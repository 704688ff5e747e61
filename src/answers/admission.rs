//! Every request to a link (the page and the JSON flow) counts against its
//! client address's rate limit, `answers.rate_limit`. A link token carries a
//! 128-bit MAC, so the limit does not make guessing harder in any way that
//! matters; it keeps one address from hammering the links (and the
//! database behind them) at all.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use crate::error::ApiError;
use crate::http::rate_limit::{RateLimit, client_of};

/// The answer links' own limit, apart from any other in the service.
pub struct LinkLimit(pub RateLimit);

/// A request to a link, counted: `Err(seconds to wait)` when its address
/// is over the limit. Handlers answer that in their own format.
pub struct Admission(pub Result<(), u64>);

impl Admission {
    /// The JSON flow's answer to being over the limit: a 429 problem.
    pub fn check(&self) -> Result<(), ApiError> {
        self.0
            .map_err(|retry_after_secs| ApiError::TooManyRequests { retry_after_secs })
    }
}

impl FromRequest for Admission {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let limit = req.app_data::<web::Data<LinkLimit>>();
        let verdict = match (limit, client_of(req)) {
            (Some(limit), Some(client)) => limit.0.check(client),
            // No peer address: an in-process request (tests), nothing to count.
            _ => Ok(()),
        };
        ready(Ok(Self(verdict)))
    }
}
