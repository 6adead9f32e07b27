//! How medical records are searched.

use clap::Args;
use std::convert::Infallible;

/// A text-search configuration's name as PostgreSQL lists it: lower case, no spaces around.
fn parse_language(value: &str) -> Result<String, Infallible> {
    Ok(value.trim().to_lowercase())
}

/// Record search.
#[derive(Debug, Clone, Args)]
pub struct RecordSettings {
    /// The language medical records are searched in: a PostgreSQL text-search configuration (english,
    /// german, french, simple, ...). Changing it re-indexes every record at start-up.
    #[arg(
        long = "search-language",
        env = "PAWFILE_SEARCH_LANGUAGE",
        default_value = "english",
        value_parser = parse_language
    )]
    pub search_language: String,
}

impl Default for RecordSettings {
    fn default() -> Self {
        super::defaults()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_is_read_as_postgres_names_it() {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            records: RecordSettings,
        }
        let set = Wrap::try_parse_from(["pawfile", "--search-language= German "]).unwrap();
        assert_eq!(set.records.search_language, "german");
    }
}
