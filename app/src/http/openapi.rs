//! The OpenAPI document at `/api/openapi.json`.
//!
//! The document routes and the health checks describe themselves: they are registered through
//! `utoipa-axum`, route and description together. Server functions are described beside them, in a
//! table per file of `app/src/api` (see `api::doc`), and the schemas of what they answer are derived
//! from the types; a test compares those tables with the server functions the framework registered, so
//! none can be missing.

use crate::api::{
    PetPage, ScrubProgress,
    doc::{
        Answer::{self, Id, ListOf, Nothing, Number as Int, Schema, SchemaOrNull, Sentence, Strings},
        Field::{self, Flag, Id as IdField, Number, OptionalText, Text},
        Method, ServerFnDoc,
    },
    server_fns,
};
use crate::error::ApiError;
use pawfile::domain::{
    AuditEntry, AuditPage, BackupOverview, BackupPoint, ClinicSummary, ClinicUsage, DailyUsage, Dashboard,
    DocumentView, Home, IntegrityIssue, InvitationView, IssuedClaimCode, MailProblem, MailStatus, PetSummary,
    RecordHit, RecordView, SessionUser, StorageReport, StorageUsage, TwoFactorEnrolment, TwoFactorStatus,
    UploadRules, UsagePoint, UserSummary,
};
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

/// The document's skeleton: what Pawfile is, and the schemas server functions answer with.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pawfile",
        description = "Pet medical records and their documents. Requests that change something carry \
                       `X-Pawfile-Client: 1` (or come from Pawfile's own pages); sign in with \
                       `POST /api/login` and send the session cookie. Errors answer `{kind, error}`."
    ),
    components(schemas(
        ApiError,
        AuditEntry,
        AuditPage,
        BackupOverview,
        BackupPoint,
        ClinicSummary,
        ClinicUsage,
        DailyUsage,
        Dashboard,
        DocumentView,
        Home,
        IntegrityIssue,
        InvitationView,
        TwoFactorEnrolment,
        TwoFactorStatus,
        MailProblem,
        MailStatus,
        IssuedClaimCode,
        PetPage,
        RecordHit,
        PetSummary,
        RecordView,
        ScrubProgress,
        SessionUser,
        StorageReport,
        StorageUsage,
        UploadRules,
        UsagePoint,
        UserSummary,
    ))
)]
struct Skeleton;

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn answer_schema(answer: Answer) -> Value {
    match answer {
        Nothing => json!({ "type": "null" }),
        Schema(name) => reference(name),
        SchemaOrNull(name) => json!({ "oneOf": [reference(name), { "type": "null" }] }),
        ListOf(name) => json!({ "type": "array", "items": reference(name) }),
        Id => json!({ "type": "string", "format": "uuid" }),
        Int => json!({ "type": "integer", "format": "int32" }),
        Strings => json!({ "type": "array", "items": { "type": "string" } }),
        Sentence => json!({ "type": "string" }),
    }
}

fn field_schema(field: Field) -> (&'static str, Value, bool) {
    match field {
        Text(name) => (name, json!({ "type": "string" }), true),
        OptionalText(name) => (name, json!({ "type": "string" }), false),
        IdField(name) => (name, json!({ "type": "string", "format": "uuid" }), true),
        Flag(name) => (name, json!({ "type": "boolean" }), false),
        Number(name) => (name, json!({ "type": "integer", "format": "int32" }), true),
    }
}

fn operation(doc: &ServerFnDoc) -> Value {
    let mut operation = json!({
        "tags": ["server functions"],
        "summary": doc.summary,
        "operationId": doc.path.trim_start_matches("/api/").replace(['/', '-'], "_"),
        "responses": {
            "default": {
                "description": "An error: `{kind, error}` with the status of its kind",
                "content": { "application/json": { "schema": reference("ApiError") } }
            }
        }
    });
    operation["responses"][doc.status.to_string()] = json!({
        "description": "Done",
        "content": { "application/json": { "schema": answer_schema(doc.answer) } }
    });
    let fields = doc.fields.iter().map(|field| field_schema(*field));
    match doc.method {
        Method::Get => {
            let parameters: Vec<Value> = fields
                .map(|(name, schema, required)| {
                    json!({ "name": name, "in": "query", "required": required, "schema": schema })
                })
                .collect();
            if !parameters.is_empty() {
                operation["parameters"] = Value::Array(parameters);
            }
        }
        Method::Post => {
            let mut properties = Map::new();
            let mut required = Vec::new();
            for (name, schema, is_required) in fields {
                properties.insert(name.to_owned(), schema);
                if is_required {
                    required.push(Value::from(name));
                }
            }
            operation["requestBody"] = json!({
                "required": true,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": { "type": "object", "properties": properties, "required": required }
                    }
                }
            });
        }
    }
    operation
}

/// The whole document: `routes` (the routes registered through `utoipa-axum`) and the server functions.
pub fn document(routes: utoipa::openapi::OpenApi) -> Value {
    let mut api = Skeleton::openapi();
    api.merge(routes);
    let mut document = serde_json::to_value(&api).unwrap_or_else(|_| json!({}));
    let paths = document
        .as_object_mut()
        .and_then(|document| document.get_mut("paths"))
        .and_then(Value::as_object_mut);
    if let Some(paths) = paths {
        for doc in server_fns() {
            let method = match doc.method {
                Method::Get => "get",
                Method::Post => "post",
            };
            let item = paths
                .entry(doc.path.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            item[method] = operation(doc);
        }
    }
    document
}
