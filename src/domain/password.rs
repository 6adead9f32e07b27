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
    /// account (`context`: the e-mail address, the name). Scoring takes a few milliseconds of CPU:
    /// request handlers use `PasswordHasher::check_new`, which runs it off the async workers.
    pub fn parse_for(input: &str, context: &[&str]) -> Result<Self, InvalidInput> {
        Self::check_length(input)?;
        #[cfg(feature = "server")]
        if let Some(reason) = weakness(input, context) {
            return Err(InvalidInput::new("password", reason));
        }
        #[cfg(not(feature = "server"))]
        let _ = context;
        Ok(Self(input.to_owned()))
    }

    /// The policy's cheap part: the length, and not only spaces.
    pub fn check_length(input: &str) -> Result<(), InvalidInput> {
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
        Ok(())
    }

    /// The password itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// How many characters of a password zxcvbn scores. Its dictionary matching looks at every substring (the
/// square of the length), once per combination of l33t substitutions; a password whose first characters
/// are strong is strong.
#[cfg(feature = "server")]
const SCORED_CHARS: usize = 40;

/// How many distinct substitutable symbols (`@ ( { [ < ! | $ + %`) zxcvbn reads as l33t. It tries every
/// combination of the substitutions a password's characters allow, one dictionary pass each: a password
/// holding all twenty substitutable characters cost thousands of passes (19 s, unoptimised). Digits are
/// always kept (sequences, dates and repeats are made of them, and they allow few combinations);
/// symbols beyond the first few are scored as another character of the same key (`!` as `1`, `{` as
/// `]`), so keyboard patterns (`!@#$%^&*()`) still count as the weak patterns they are.
#[cfg(feature = "server")]
const L33T_SYMBOLS: usize = 4;

/// The part of `input` zxcvbn scores: its first [`SCORED_CHARS`] characters, with substitutable symbols
/// beyond the first [`L33T_SYMBOLS`] distinct ones replaced (see there).
#[cfg(feature = "server")]
fn scored_part(input: &str) -> String {
    let mut kept: Vec<char> = Vec::new();
    input
        .chars()
        .take(SCORED_CHARS)
        .map(|c| {
            let stand_in = match c {
                '!' => '1',
                '@' => '2',
                '$' => '4',
                '%' => '5',
                '(' => '9',
                '+' => '=',
                '{' | '[' => ']',
                '<' => ',',
                '|' => '\\',
                _ => return c,
            };
            if kept.contains(&c) {
                return c;
            }
            if kept.len() < L33T_SYMBOLS {
                kept.push(c);
                return c;
            }
            stand_in
        })
        .collect()
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
    let estimate = zxcvbn::zxcvbn(&scored_part(input), &words);
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

    /// The probe's password: every substitutable character, repeated to the longest length allowed.
    const L33T_BOMB: &str = "4@8({[</369&#!1/|0$5+7%2/";

    #[test]
    fn the_scored_part_is_a_prefix_with_few_l33t_symbols() {
        let long = L33T_BOMB.repeat(6)[..128].to_owned();
        let scored = scored_part(&long);
        assert_eq!(scored.chars().count(), SCORED_CHARS);
        let symbols: std::collections::HashSet<char> =
            scored.chars().filter(|c| "@({[<!|$+%".contains(*c)).collect();
        assert_eq!(symbols.len(), L33T_SYMBOLS, "{scored}");
        assert_eq!(scored_part("p@ssw0rd"), "p@ssw0rd");
        assert_eq!(scored_part("0123456789"), "0123456789", "digits are kept");
        // Beyond the first symbols, another character of the same key: keyboard runs stay runs.
        assert_eq!(scored_part("!@#$%^&*()"), "!@#$%^&*9)");
    }

    #[test]
    fn bounded_scoring_still_finds_the_weak_patterns() {
        for weak in [
            "123456789012",
            "!@#$%^&*()12",
            "!@#$%^&*()_+",
            "p@ssw0rd2024!",
            "1q2w3e4r5t6y",
        ] {
            assert!(NewPassword::parse(weak).is_err(), "{weak}");
        }
    }

    #[test]
    fn the_costliest_password_is_still_judged() {
        let long = L33T_BOMB.repeat(6)[..128].to_owned();
        let started = std::time::Instant::now();
        let judged = NewPassword::parse(&long);
        // Information for whoever tunes the bounds (`cargo test -p pawfile --lib costliest -- --nocapture`).
        eprintln!("scoring the costliest password took {:?}", started.elapsed());
        assert!(judged.is_ok(), "{:?}", judged.err());
        assert!(NewPassword::parse(&"p@ssw0rd".repeat(16)).is_err());
    }

    #[test]
    fn passwords_never_print() {
        let password = NewPassword::parse("tabby walks the dog").unwrap();
        assert!(!format!("{password:?}").contains("tabby"));
    }
}
