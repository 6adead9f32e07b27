//! The OpenAPI document describes every route and server function, and what it describes exists.

use crate::support::spawn_app;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

async fn document(pool: PgPool) -> Value {
    let app = spawn_app(pool).await;
    let response = app.client.get(app.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

/// `(path, method)` of every operation the document describes.
fn operations(document: &Value) -> Vec<(String, String)> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.push((path.clone(), method.to_uppercase()));
        }
    }
    operations.sort();
    operations
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn every_server_function_is_described_and_every_description_exists(pool: PgPool) {
    let document = document(pool).await;
    let described = operations(&document);
    let registered = crate::security::server_functions();

    let missing: Vec<_> = registered
        .iter()
        .filter(|function| !described.contains(function))
        .collect();
    assert!(
        missing.is_empty(),
        "server functions missing from the document: {missing:?}"
    );
    // Each server function is described once, by the method it answers.
    let stale: Vec<_> = pawfile_app::api::server_fns()
        .filter(|doc| !registered.iter().any(|(path, _)| path == doc.path))
        .map(|doc| doc.path)
        .collect();
    assert!(stale.is_empty(), "described but not registered: {stale:?}");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_document_routes_describe_themselves_with_their_schemas(pool: PgPool) {
    let document = document(pool).await;
    let described = operations(&document);

    for (path, method) in [
        ("/api/pets/{pet_id}/documents", "GET"),
        ("/api/pets/{pet_id}/documents", "POST"),
        ("/api/pets/{pet_id}/export", "GET"),
        ("/api/documents/{id}", "GET"),
        ("/api/documents/{id}", "DELETE"),
        ("/api/documents/{id}/content", "GET"),
        ("/api/documents/{id}/thumbnail", "GET"),
        ("/api/documents/{id}/trash", "POST"),
        ("/api/documents/{id}/restore", "POST"),
        ("/healthz", "GET"),
        ("/readyz", "GET"),
    ] {
        assert!(
            described.contains(&(path.to_owned(), method.to_owned())),
            "{method} {path} is not described"
        );
    }
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let schemas = document["components"]["schemas"].as_object().unwrap();
    // Every reference points at a schema the document holds.
    let text = document.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling reference to {name}");
    }
    // The upload takes a multipart form and answers the documents it stored.
    let upload = &document["paths"]["/api/pets/{pet_id}/documents"]["post"];
    assert!(
        upload["requestBody"]["content"]["multipart/form-data"].is_object(),
        "{upload}"
    );
    assert_eq!(
        upload["responses"]["201"]["content"]["application/json"]["schema"]["items"]["$ref"],
        "#/components/schemas/DocumentView"
    );
    // The bytes go out in the document's own type (a PDF as application/pdf), so any type is documented.
    let content = &document["paths"]["/api/documents/{id}/content"]["get"]["responses"];
    for status in ["200", "206"] {
        let types: Vec<&String> = content[status]["content"].as_object().unwrap().keys().collect();
        assert_eq!(types, ["*/*"], "{status}: {content}");
    }
    // Errors have the documented shape, kinds included.
    let error = schemas["ApiError"].to_string();
    for kind in ["invalid", "quota_exceeded", "rate_limited", "unavailable"] {
        assert!(
            error.contains(&format!("\"{kind}\"")),
            "{kind} missing from {error}"
        );
    }
}
