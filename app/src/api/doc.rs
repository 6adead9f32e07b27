//! How a server function is described in the API document (`/api/openapi.json`): its path, method,
//! fields and answer. Each file of server functions keeps the table of its own (`PETS_DESCRIBED` in `pets.rs`, …), beside the
//! functions it describes; `http::openapi` builds the document from them.

/// How a server function is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Fields in the query string; changes nothing.
    Get,
    /// Fields form-encoded in the body.
    Post,
}

/// A field's type, as the form carries it.
#[derive(Debug, Clone, Copy)]
pub enum Field {
    /// Required text.
    Text(&'static str),
    /// Optional text (empty is the same as absent).
    OptionalText(&'static str),
    /// A required id.
    Id(&'static str),
    /// An optional flag (`true`/`false`).
    Flag(&'static str),
    /// A required whole number.
    Number(&'static str),
}

/// What a server function answers with on success (200, JSON).
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// `null`.
    Nothing,
    /// One of the schemas above.
    Schema(&'static str),
    /// The schema, or `null`.
    SchemaOrNull(&'static str),
    /// A list of the schema.
    ListOf(&'static str),
    /// An id.
    Id,
    /// A whole number.
    Number,
    /// A list of strings.
    Strings,
    /// A sentence to show.
    Sentence,
}

/// One server function, as the document describes it.
#[derive(Debug, Clone, Copy)]
pub struct ServerFnDoc {
    /// Its path, under `/api/`.
    pub path: &'static str,
    /// GET or POST.
    pub method: Method,
    /// What it does (and who may).
    pub summary: &'static str,
    /// Its fields.
    pub fields: &'static [Field],
    /// What it answers.
    pub answer: Answer,
    /// With which status.
    pub status: u16,
}

impl ServerFnDoc {
    /// The same, answering with `status` instead of 200.
    pub(crate) const fn answering(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

/// A server function answering `GET`, with 200.
pub(crate) const fn get(
    path: &'static str,
    summary: &'static str,
    fields: &'static [Field],
    answer: Answer,
) -> ServerFnDoc {
    ServerFnDoc {
        path,
        method: Method::Get,
        summary,
        fields,
        answer,
        status: 200,
    }
}

/// A server function answering `POST`, with 200.
pub(crate) const fn post(
    path: &'static str,
    summary: &'static str,
    fields: &'static [Field],
    answer: Answer,
) -> ServerFnDoc {
    ServerFnDoc {
        path,
        method: Method::Post,
        summary,
        fields,
        answer,
        status: 200,
    }
}
