use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Invalid;

/// A person's name as shown to HR: trimmed, 1–200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Invalid::new("is required"));
        }
        if trimmed.chars().count() > 200 || trimmed.chars().any(char::is_control) {
            return Err(Invalid::new(
                "must be at most 200 characters, without control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A job title: trimmed, 1–200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTitle(String);

impl JobTitle {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        if trimmed.is_empty()
            || trimmed.chars().count() > 200
            || trimmed.chars().any(char::is_control)
        {
            return Err(Invalid::new(
                "must be 1 to 200 characters, without control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A job level (a salary scale or career step): 0 to 1000; higher is more senior.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Level(i32);

impl Level {
    pub fn new(value: i64) -> Result<Self, Invalid> {
        if !(0..=1000).contains(&value) {
            return Err(Invalid::new("must be between 0 and 1000"));
        }
        Ok(Self(value as i32))
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// Whether a person works here now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PersonStatus {
    Active,
    Left,
}

impl PersonStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Left => "left",
        }
    }
}

impl FromStr for PersonStatus {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "active" => Ok(Self::Active),
            "left" => Ok(Self::Left),
            _ => Err(Invalid::new("must be active or left")),
        }
    }
}

/// Why someone left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExitKind {
    Voluntary,
    Involuntary,
    Other,
}

impl ExitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Voluntary => "voluntary",
            Self::Involuntary => "involuntary",
            Self::Other => "other",
        }
    }
}

impl FromStr for ExitKind {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "voluntary" => Ok(Self::Voluntary),
            "involuntary" => Ok(Self::Involuntary),
            "other" => Ok(Self::Other),
            _ => Err(Invalid::new("must be voluntary, involuntary or other")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_values() {
        assert_eq!(
            PersonName::parse(" Anna de Vries ").unwrap().as_str(),
            "Anna de Vries"
        );
        assert!(PersonName::parse("").is_err());
        assert!(JobTitle::parse("").is_err());
        assert!(Level::new(-1).is_err());
        assert_eq!(Level::new(7).unwrap().get(), 7);
        assert_eq!("left".parse::<PersonStatus>(), Ok(PersonStatus::Left));
        assert!("gone".parse::<ExitKind>().is_err());
    }
}
