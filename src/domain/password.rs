use super::InvalidInput;
use std::fmt;

/// A password someone chose, checked against the policy. It never prints itself.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    /// Shortest accepted password, in characters (long passphrases beat composition rules: NIST SP 800-63B).
    pub const MIN_LEN: usize = 12;
    /// Longest accepted password, in characters; bounds the hashing work an attacker can request.
    pub const MAX_LEN: usize = 128;

    /// Checks a new password against the policy: its length and (on the server) how guessable it is.
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        Self::parse_for(input, &[])
    }

    /// As [`NewPassword::parse`], also refusing a password that leans on what is known about its
    /// account (`context`: the e-mail address, the name).
    pub fn parse_for(input: &str, context: &[&str]) -> Result<Self, InvalidInput> {
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
        #[cfg(feature = "server")]
        if let Some(reason) = weakness(input, context) {
            return Err(InvalidInput::new("password", reason));
        }
        #[cfg(not(feature = "server"))]
        let _ = context;
        Ok(Self(input.to_owned()))
    }

    /// The password itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Why a password would be easy to guess, in words a person understands, if it would: zxcvbn's estimate
/// below "safely unguessable" (score 3: about 10^8 guesses, enough against a slow hash offline).
#[cfg(feature = "server")]
fn weakness(input: &str, context: &[&str]) -> Option<String> {
    // Each word of the e-mail address and name on its own: zxcvbn matches user inputs as whole words.
    let words: Vec<String> = context
        .iter()
        .flat_map(|text| text.split(|c: char| !c.is_alphanumeric()))
        .filter(|word| word.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect();
    let words: Vec<&str> = context
        .iter()
        .copied()
        .chain(words.iter().map(String::as_str))
        .collect();
    let estimate = zxcvbn::zxcvbn(input, &words);
    if estimate.score() >= zxcvbn::Score::Three {
        return None;
    }
    let mut reason = "This password would be easy to guess.".to_owned();
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            reason = format!("This password would be easy to guess: {warning}");
        }
        for suggestion in feedback.suggestions().iter().take(2) {
            reason.push(' ');
            reason.push_str(&suggestion.to_string());
        }
    }
    Some(reason)
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
                .contains("at least 12")
        );
        assert!(
            NewPassword::parse(&"x".repeat(129))
                .unwrap_err()
                .message
                .contains("at most 128")
        );
        assert!(NewPassword::parse(&" ".repeat(12)).is_err());
        assert!(NewPassword::parse("correct horse battery").is_ok());
        assert!(NewPassword::parse(&"tabby walks the dog ".repeat(7)[..128]).is_ok());
    }

    #[test]
    fn guessable_passwords_are_refused_with_a_reason() {
        for guessable in ["Password1234", "qwertyuiopas", "aaaaaaaaaaaa", "123456789012"] {
            let refusal = NewPassword::parse(guessable).unwrap_err();
            assert_eq!(refusal.field, "password");
            assert!(
                refusal
                    .message
                    .starts_with("This password would be easy to guess"),
                "{guessable}: {}",
                refusal.message
            );
        }
        let common = NewPassword::parse("Password1234").unwrap_err().message;
        assert!(common.contains("commonly used password"), "{common}");
    }

    #[test]
    fn a_password_made_of_the_accounts_own_details_is_refused() {
        let context = ["zorbathrix.quellomar@example.org", "Zorbathrix Quellomar"];
        assert!(NewPassword::parse("zorbathrixquellomar").is_ok());
        assert!(NewPassword::parse_for("zorbathrixquellomar", &context).is_err());
    }

    #[test]
    fn passwords_never_print() {
        let password = NewPassword::parse("tabby walks the dog").unwrap();
        assert!(!format!("{password:?}").contains("tabby"));
    }
}
