use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Invalid;

/// A display name: trimmed, 1–200 characters, no control characters.
fn display_name(raw: &str) -> Result<String, Invalid> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(Invalid::new("is required"));
    }
    if trimmed.chars().count() > 200 {
        return Err(Invalid::new("must be at most 200 characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Invalid::new("must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

/// An organisation's display name (see [`display_name`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganisationName(String);

impl OrganisationName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        display_name(raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A pulse's name: the same rules as an organisation's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulseName(String);

impl PulseName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        display_name(raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The languages Peil speaks to employees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Nl,
    En,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nl => "nl",
            Self::En => "en",
        }
    }
}

impl FromStr for Language {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "nl" => Ok(Self::Nl),
            "en" => Ok(Self::En),
            _ => Err(Invalid::new("must be one of nl, en")),
        }
    }
}

/// An IANA time zone name such as `Europe/Amsterdam`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(chrono_tz::Tz);

impl TimeZone {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        raw.parse::<chrono_tz::Tz>()
            .map(Self)
            .map_err(|_| Invalid::new("is not an IANA time zone name such as Europe/Amsterdam"))
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    pub fn tz(self) -> chrono_tz::Tz {
        self.0
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The minimum group size *k*: no result is shown for fewer responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MinGroupSize(u8);

impl MinGroupSize {
    /// Below three, two colleagues who compare notes learn the third answer.
    pub const FLOOR: u8 = 3;
    pub const DEFAULT: Self = Self(5);

    pub fn new(k: i64) -> Result<Self, Invalid> {
        if k < i64::from(Self::FLOOR) {
            return Err(Invalid::new(format!("must be at least {}", Self::FLOOR)));
        }
        if k > 100 {
            return Err(Invalid::new("must be at most 100"));
        }
        Ok(Self(k as u8))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisation_values() {
        assert_eq!(OrganisationName::parse("  Acme ").unwrap().as_str(), "Acme");
        assert!(OrganisationName::parse(" ").is_err());
        assert!(OrganisationName::parse("a\u{0}b").is_err());
        assert_eq!("nl".parse::<Language>(), Ok(Language::Nl));
        assert!("de".parse::<Language>().is_err());
        assert_eq!(
            TimeZone::parse("Europe/Amsterdam").unwrap().name(),
            "Europe/Amsterdam"
        );
        assert!(TimeZone::parse("Mars/Olympus").is_err());
        assert!(MinGroupSize::new(2).is_err());
        assert_eq!(MinGroupSize::new(3).unwrap().get(), 3);
        assert_eq!(MinGroupSize::DEFAULT.get(), 5);
    }
}
