//! Query fields the document routes and the server functions parse alike.

use crate::error::ApiError;
use pawfile::{documents::ListFilter, domain::DocumentCategory};

/// The filter of a document list, from the fields of `GET /api/pets/{pet_id}/documents` (the pages
/// rendering on the server use it too, so both read the same list).
pub fn list_filter(
    category: &str,
    record_id: &str,
    trashed: bool,
    limit: Option<u32>,
) -> Result<ListFilter, ApiError> {
    Ok(ListFilter {
        category: DocumentCategory::parse(category)?,
        record: match record_id.trim() {
            "" => None,
            id => Some(
                id.parse()
                    .map_err(|_| ApiError::invalid("record_id", "Unknown record."))?,
            ),
        },
        trashed,
        limit,
    })
}
