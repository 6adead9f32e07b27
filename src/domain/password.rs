use super::InvalidInput;
use std::fmt;

/// A password someone chose, checked against the policy. It never prints itself.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    /// Shortest accepted password, in characters (long passphrases beat composition rules: NIST SP 800-63B).
    pub const MIN_LEN: usize = 10;
    /// Longest accepted password, in characters; bounds the hashing work an attacker can request.
    pub const MAX_LEN: usize = 256;

    /// Checks a new password against the policy.
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        let len = input.chars().count();
        if len < Self::MIN_LEN {
            return Err(InvalidInput::new(
                "password",
                format!("Choose a password of at least {} characters.", Self::MIN_LEN),
            ));
        }
        if len > Self::MAX_LEN {
            return Err(InvalidInput::new(
                "password",
                format!("A password has at most {} characters.", Self::MAX_LEN),
            ));
        }
        if input.trim().is_empty() {
            return Err(InvalidInput::new("password", "A password cannot be only spaces."));
        }
        Ok(Self(input.to_owned()))
    }

    /// The password itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_long_and_blank_passwords_are_refused() {
        assert!(
            NewPassword::parse("short")
                .unwrap_err()
                .message
                .contains("at least 10")
        );
        assert!(
            NewPassword::parse(&"x".repeat(257))
                .unwrap_err()
                .message
                .contains("at most 256")
        );
        assert!(NewPassword::parse(&" ".repeat(12)).is_err());
        assert!(NewPassword::parse("correct horse battery").is_ok());
    }

    #[test]
    fn passwords_never_print() {
        let password = NewPassword::parse("hunter2hunter2").unwrap();
        assert!(!format!("{password:?}").contains("hunter2"));
    }
}
