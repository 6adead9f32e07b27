//! How medical records are searched.

use clap::Args;

/// Record search.
#[derive(Debug, Clone, Args)]
pub struct RecordSettings {
    /// The language medical records are searched in: a PostgreSQL text-search configuration (english,
    /// german, french, simple, ...). Changing it re-indexes every record at start-up.
    #[arg(
        long = "search-language",
        env = "PAWFILE_SEARCH_LANGUAGE",
        default_value = "english"
    )]
    pub search_language: String,
}

impl Default for RecordSettings {
    fn default() -> Self {
        super::defaults()
    }
}
