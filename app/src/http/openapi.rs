//! The OpenAPI document at `/api/openapi.json`.
//!
//! The document routes and the health checks describe themselves: they are registered through
//! `utoipa-axum`, route and description together. Server functions are described in [`SERVER_FNS`],
//! beside the schemas of what they answer (derived from the types); a test compares that table with
//! the server functions the framework registered, so none can be missing.

use crate::api::{PetPage, ScrubProgress};
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
    const fn answering(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

const fn get(
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

const fn post(
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

use Answer::{Id, ListOf, Nothing, Number as Int, Schema, SchemaOrNull, Sentence, Strings};
use Field::{Flag, Id as IdField, Number, OptionalText, Text};

const PET_FIELDS: &[Field] = &[
    Text("name"),
    Text("species"),
    OptionalText("breed"),
    OptionalText("sex"),
    OptionalText("birth_date"),
    OptionalText("microchip"),
    OptionalText("notes"),
];

/// Every server function (see `app/src/api`), described.
pub const SERVER_FNS: &[ServerFnDoc] = &[
    post(
        "/api/register",
        "Signs up a pet owner: mails a link that creates the account (the same answer for any address)",
        &[
            Text("email"),
            Text("display_name"),
            Text("password"),
            OptionalText("claim_code"),
        ],
        Sentence,
    )
    .answering(202),
    post(
        "/api/verify-email",
        "Follows a sign-up link with the password chosen at sign-up: creates the account and signs in",
        &[Text("token"), Text("password")],
        Schema("SessionUser"),
    ),
    post(
        "/api/password/forgot",
        "Mails a password reset link, if an account uses the address (the same answer either way)",
        &[Text("email")],
        Sentence,
    )
    .answering(202),
    get(
        "/api/invitation",
        "The staff invitation a link carries, if it still works",
        &[Text("token")],
        Schema("InvitationView"),
    ),
    post(
        "/api/invitation/accept",
        "Accepts a staff invitation with the chosen password; signs in",
        &[Text("token"), Text("password")],
        Schema("SessionUser"),
    ),
    post(
        "/api/password/reset",
        "Sets a new password from a reset link; every session of the account ends",
        &[Text("token"), Text("new_password")],
        Sentence,
    ),
    post(
        "/api/login",
        "Signs in; sets the session cookie (`code`: the second factor, for accounts that have one on)",
        &[Text("email"), Text("password"), OptionalText("code")],
        Schema("SessionUser"),
    ),
    post(
        "/api/account/delete",
        "Owners: deletes the caller's account after 30 days (signing in before cancels it); signs out",
        &[Text("password")],
        Sentence,
    ),
    get(
        "/api/account/2fa",
        "The caller's two-factor sign-in: on, required, recovery codes left",
        &[],
        Schema("TwoFactorStatus"),
    ),
    post(
        "/api/account/2fa/start",
        "Starts setting up two-factor sign-in: the key as a QR code (SVG) and as text",
        &[],
        Schema("TwoFactorEnrolment"),
    ),
    post(
        "/api/account/2fa/confirm",
        "Turns two-factor sign-in on with the first code; answers the recovery codes, shown once",
        &[Text("code")],
        Strings,
    ),
    post(
        "/api/account/2fa/disable",
        "Turns the caller's second factor off, given a current code (403 where the role requires it)",
        &[Text("code")],
        Nothing,
    ),
    post(
        "/api/account/2fa/recovery-codes",
        "New recovery codes (the old ones stop working), given a current code",
        &[Text("code")],
        Strings,
    ),
    post("/api/logout", "Signs out", &[], Nothing),
    get(
        "/api/me",
        "The signed-in user, or null",
        &[],
        SchemaOrNull("SessionUser"),
    ),
    post(
        "/api/account/time-zone",
        "Sets the caller's time zone (IANA name)",
        &[Text("time_zone")],
        Nothing,
    ),
    get("/api/account/time-zones", "Every time zone name", &[], Strings),
    post(
        "/api/account/password",
        "Changes the caller's password; their other sessions end",
        &[Text("current_password"), Text("new_password")],
        Nothing,
    ),
    get(
        "/api/account/storage",
        "The caller's storage quotas: their own as an owner, their clinic's as staff",
        &[],
        ListOf("StorageUsage"),
    ),
    get(
        "/api/admin/storage-status",
        "Admins: whether the buckets answer",
        &[],
        Schema("StorageReport"),
    ),
    get(
        "/api/admin/storage-usage",
        "Admins: storage per clinic and owner, fullest first",
        &[],
        ListOf("StorageUsage"),
    ),
    get(
        "/api/admin/clinics",
        "Admins: every clinic with its staff count",
        &[],
        ListOf("ClinicSummary"),
    ),
    post(
        "/api/admin/clinics/create",
        "Admins: creates a clinic",
        &[Text("name")],
        Id,
    ),
    post(
        "/api/admin/staff/invite",
        "Admins: invites a member of staff to a clinic (a mailed link to choose their password)",
        &[
            Text("clinic_id"),
            Text("email"),
            Text("display_name"),
            OptionalText("also_admin"),
        ],
        Nothing,
    ),
    get(
        "/api/admin/users",
        "Admins: accounts, searched",
        &[OptionalText("q")],
        ListOf("UserSummary"),
    ),
    post(
        "/api/admin/users/disable",
        "Admins: disables an account",
        &[IdField("user_id")],
        Nothing,
    ),
    post(
        "/api/admin/users/reset-2fa",
        "Admins: resets someone's second factor (they set it up again at their next sign-in)",
        &[IdField("user_id")],
        Nothing,
    ),
    get(
        "/api/admin/audit",
        "Admins: the audit trail, 50 per page",
        &[
            OptionalText("actor"),
            OptionalText("action"),
            OptionalText("pet_id"),
            OptionalText("from"),
            OptionalText("until"),
            OptionalText("page"),
        ],
        Schema("AuditPage"),
    ),
    get(
        "/api/admin/backups",
        "Admins: backup runs, newest first",
        &[Flag("background")],
        Schema("BackupOverview"),
    ),
    get(
        "/api/admin/dashboard",
        "Admins: storage, uploads and backups day by day, the integrity status and the backup banner",
        &[],
        Schema("Dashboard"),
    ),
    get(
        "/api/admin/mail",
        "Admins: the mail queue (waiting, failing, given up)",
        &[],
        Schema("MailStatus"),
    ),
    post(
        "/api/admin/backups/run",
        "Admins: backs up now (409 while one runs)",
        &[],
        Id,
    )
    .answering(202),
    get(
        "/api/documents/rules",
        "What an upload may be",
        &[],
        Schema("UploadRules"),
    ),
    get(
        "/api/admin/integrity",
        "Admins: documents the integrity check flagged",
        &[],
        ListOf("IntegrityIssue"),
    ),
    get(
        "/api/admin/integrity/coverage",
        "Admins: how far the integrity scrub's rotation has come",
        &[],
        Schema("ScrubProgress"),
    ),
    get(
        "/api/pets",
        "The caller's pets",
        &[Flag("archived")],
        ListOf("PetSummary"),
    ),
    post(
        "/api/pets/create",
        "Adds a pet to the caller's pets",
        PET_FIELDS,
        Id,
    ),
    get(
        "/api/pets/get",
        "A pet page: details, shares, permissions, the 20 most recent records (all with `all_records`)",
        &[IdField("pet_id"), Flag("all_records")],
        Schema("PetPage"),
    ),
    post(
        "/api/pets/update",
        "Changes a pet's details (its owner)",
        &[
            IdField("pet_id"),
            Text("name"),
            Text("species"),
            OptionalText("breed"),
            OptionalText("sex"),
            OptionalText("birth_date"),
            OptionalText("microchip"),
            OptionalText("notes"),
        ],
        Nothing,
    ),
    post(
        "/api/pets/archive",
        "Archives a pet (its owner)",
        &[IdField("pet_id")],
        Nothing,
    ),
    post(
        "/api/pets/restore",
        "Takes a pet out of the archive (its owner)",
        &[IdField("pet_id")],
        Nothing,
    ),
    get(
        "/api/clinics",
        "Clinics to share a pet with",
        &[],
        ListOf("ClinicSummary"),
    ),
    post(
        "/api/pets/share",
        "Shares a pet with a clinic (its owner)",
        &[IdField("pet_id"), Text("clinic_id")],
        Nothing,
    ),
    post(
        "/api/pets/revoke",
        "Ends a clinic's access to a pet (its owner)",
        &[IdField("pet_id"), IdField("clinic_id")],
        Nothing,
    ),
    get(
        "/api/home",
        "The start page by role: an owner's pets, a staff member's recent patients and clinic week, the \
         admin's view of the system (nothing medical)",
        &[],
        Schema("Home"),
    ),
    post(
        "/api/pets/photo",
        "Shows one of the pet's photos on its card (its owner)",
        &[IdField("pet_id"), IdField("document_id")],
        Nothing,
    ),
    get(
        "/api/pets/history",
        "Who accessed the pet, and when (its owner)",
        &[IdField("pet_id")],
        ListOf("AuditEntry"),
    ),
    post(
        "/api/pets/claim",
        "Takes a walk-in patient into the caller's account",
        &[Text("code")],
        Id,
    ),
    get(
        "/api/clinic/patients",
        "Staff: pets shared with their clinic, searched",
        &[OptionalText("q")],
        ListOf("PetSummary"),
    ),
    post(
        "/api/clinic/walk-in",
        "Staff: registers a walk-in patient; answers its claim code",
        &[
            Text("name"),
            Text("species"),
            OptionalText("breed"),
            OptionalText("sex"),
            OptionalText("birth_date"),
            OptionalText("microchip"),
            OptionalText("notes"),
            OptionalText("owner_name"),
            OptionalText("owner_email"),
        ],
        Schema("IssuedClaimCode"),
    ),
    post(
        "/api/pets/claim-code",
        "Staff: a new claim code for an unclaimed walk-in",
        &[IdField("pet_id")],
        Schema("IssuedClaimCode"),
    ),
    post(
        "/api/records/create",
        "Staff: writes a medical record",
        &[
            IdField("pet_id"),
            Text("visit_date"),
            Text("kind"),
            Text("title"),
            OptionalText("body"),
        ],
        Id,
    ),
    get(
        "/api/records/get",
        "A record with every earlier version",
        &[IdField("record_id")],
        Schema("RecordView"),
    ),
    get(
        "/api/records/search",
        "Searches the text of the records the caller may read (audited with the count, not the words)",
        &[OptionalText("q")],
        ListOf("RecordHit"),
    ),
    post(
        "/api/records/update",
        "Staff of the record's clinic: changes a record (409 if it changed since `version`)",
        &[
            IdField("record_id"),
            Number("version"),
            Text("visit_date"),
            Text("kind"),
            Text("title"),
            OptionalText("body"),
        ],
        Int,
    ),
];

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
        for doc in SERVER_FNS {
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
