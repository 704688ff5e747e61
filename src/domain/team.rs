use super::Invalid;

/// A team's name: 1–100 characters, without `/`, which separates the
/// levels of a team path such as `Engineering/Platform`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamName(String);

impl TeamName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Invalid::new("is required"));
        }
        if trimmed.chars().count() > 100 {
            return Err(Invalid::new("must be at most 100 characters"));
        }
        if trimmed.contains('/') || trimmed.chars().any(char::is_control) {
            return Err(Invalid::new(
                "must not contain `/` (it separates team paths) or control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An identifier from an HR system: 1–100 printable characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalId(String);

impl ExternalId {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.chars().count() > 100 {
            return Err(Invalid::new("must be 1 to 100 characters"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(Invalid::new("must not contain control characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_names_and_external_ids() {
        assert_eq!(TeamName::parse(" Platform ").unwrap().as_str(), "Platform");
        assert!(TeamName::parse("Eng/Platform").is_err());
        assert!(TeamName::parse("").is_err());
        assert!(ExternalId::parse("HR-0042").is_ok());
        assert!(ExternalId::parse(" ").is_err());
    }
}
