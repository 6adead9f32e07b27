use super::InvalidInput;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An e-mail address, trimmed and lower-cased, so that addresses compare case-insensitively everywhere
/// (sign-in, uniqueness, the audit trail).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// The longest address SMTP can carry (RFC 5321 path limit).
    pub const MAX_LEN: usize = 254;

    /// Parses what a person typed into an address, or says why it is not one.
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(InvalidInput::new("email", "Enter your e-mail address."));
        }
        if trimmed.chars().count() > Self::MAX_LEN {
            return Err(InvalidInput::new(
                "email",
                format!("An e-mail address has at most {} characters.", Self::MAX_LEN),
            ));
        }
        // Quoted local parts and IP-literal domains are legal but only ever seen in attacks here.
        let options = email_address::Options::default()
            .without_display_text()
            .without_domain_literal();
        match email_address::EmailAddress::parse_with_options(trimmed, options) {
            Ok(_) if !trimmed.contains('"') && trimmed.contains('.') => Ok(Self(trimmed.to_lowercase())),
            _ => Err(InvalidInput::new(
                "email",
                "This does not look like an e-mail address (name@example.org).",
            )),
        }
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = InvalidInput;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        let email = Email::parse("  Ada.Lovelace@Example.ORG ").unwrap();
        assert_eq!(email.as_str(), "ada.lovelace@example.org");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "   ",
            "plainaddress",
            "@example.org",
            "ada@",
            "ada@localhost",
            "Ada <ada@example.org>",
            "\"ada\"@example.org",
            "ada@[127.0.0.1]",
            "ada lovelace@example.org",
        ] {
            let err = Email::parse(bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad:?}");
        }
    }

    #[test]
    fn over_long_addresses_are_refused() {
        let long = format!("{}@example.org", "a".repeat(250));
        assert!(Email::parse(&long).unwrap_err().message.contains("254"));
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<Email>("\"x@example.org\"").is_ok());
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
    }
}
