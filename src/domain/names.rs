use super::InvalidInput;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Trims `input` and checks it is a one-line name of 1 to `max` characters.
fn parse_name(input: &str, field: &'static str, what: &str, max: usize) -> Result<String, InvalidInput> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(InvalidInput::new(field, format!("Enter {what}.")));
    }
    if trimmed.chars().count() > max {
        return Err(InvalidInput::new(
            field,
            format!("{} has at most {max} characters.", capitalise(what)),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(InvalidInput::new(
            field,
            format!(
                "{} cannot contain line breaks or control characters.",
                capitalise(what)
            ),
        ));
    }
    Ok(trimmed.to_owned())
}

fn capitalise(what: &str) -> String {
    let mut chars = what.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The name a person is shown by: 1 to 100 characters, one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl DisplayName {
    /// Longest accepted name, in characters.
    pub const MAX_LEN: usize = 100;

    /// Parses a display name, or says why it is not one.
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        parse_name(input, "display_name", "a name", Self::MAX_LEN).map(Self)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A clinic's name: 1 to 200 characters, one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct ClinicName(String);

impl ClinicName {
    /// Longest accepted name, in characters.
    pub const MAX_LEN: usize = 200;

    /// Parses a clinic name, or says why it is not one.
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        parse_name(input, "name", "the clinic's name", Self::MAX_LEN).map(Self)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_conversions {
    ($($name:ident),*) => {$(
        impl TryFrom<String> for $name {
            type Error = InvalidInput;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
string_conversions!(DisplayName, ClinicName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed() {
        assert_eq!(DisplayName::parse("  Dr. Ada  ").unwrap().as_str(), "Dr. Ada");
    }

    #[test]
    fn empty_long_and_multi_line_names_are_refused() {
        assert_eq!(DisplayName::parse("   ").unwrap_err().message, "Enter a name.");
        let long = "x".repeat(DisplayName::MAX_LEN + 1);
        assert!(
            DisplayName::parse(&long)
                .unwrap_err()
                .message
                .contains("at most 100")
        );
        assert!(DisplayName::parse(&"x".repeat(DisplayName::MAX_LEN)).is_ok());
        assert!(
            DisplayName::parse("Ada\nEvil")
                .unwrap_err()
                .message
                .contains("line breaks")
        );
        assert_eq!(ClinicName::parse("").unwrap_err().field, "name");
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert!(DisplayName::parse(&"é".repeat(DisplayName::MAX_LEN)).is_ok());
    }
}
