use std::fmt;

use validator::ValidateEmail;

use super::Invalid;

/// An email address, trimmed and lower-cased so that uniqueness is case-blind.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let normalised = raw.trim().to_lowercase();
        if normalised.is_empty() {
            return Err(Invalid::new("is required"));
        }
        // RFC 5321 limits a forward path to 254 characters.
        if normalised.len() > 254 || !normalised.validate_email() {
            return Err(Invalid::new("is not a valid email address"));
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Addresses are personal data: keep them out of debug output and so out of logs.
impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailAddress(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_validates() {
        assert_eq!(
            EmailAddress::parse("  Anna@Example.ORG ").unwrap().as_str(),
            "anna@example.org"
        );
        assert!(EmailAddress::parse("").is_err());
        assert!(EmailAddress::parse("anna").is_err());
        assert!(EmailAddress::parse("anna@").is_err());
        assert!(EmailAddress::parse(&format!("{}@example.org", "a".repeat(250))).is_err());
        assert_eq!(
            format!("{:?}", EmailAddress::parse("a@b.nl").unwrap()),
            "EmailAddress(***)"
        );
    }
}
