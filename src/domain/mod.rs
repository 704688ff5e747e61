//! Small domain types that can only be built valid: a function that takes one
//! never checks it again. Each `parse` says in plain words what is wrong.

mod email;
mod organisation;
mod password;
mod person;
mod role;
mod team;

pub use email::EmailAddress;
pub use organisation::{Language, MinGroupSize, OrganisationName, PulseName, TimeZone};
pub use password::NewPassword;
pub use person::{ExitKind, JobTitle, Level, PersonName, PersonStatus};
pub use role::Role;
pub use team::{ExternalId, TeamName};

/// Why a value was refused; the message is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
