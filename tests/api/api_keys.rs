//! API keys: shown once, stored as an HMAC, scoped, revocable, last use kept.

use diesel::{QueryDsl, RunQueryDsl};
use serde_json::{Value, json};

use crate::helpers::{assert_problem, problem_fields, spawn_app};

#[tokio::test]
async fn a_key_is_shown_once_works_by_scope_and_stops_when_revoked() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let (id, secret) = app.api_key(&admin, &["people:write"]).await;
    assert!(secret.starts_with("pk_") && secret.len() > 40);

    let teams = app.get("/api/v1/teams", Some(&secret)).await;
    assert_eq!(teams.status(), 200, "people:write may read and write teams");
    let accounts = app.get("/api/v1/accounts", Some(&secret)).await;
    assert_problem(accounts, 403, "forbidden").await;

    let list: Vec<Value> = app
        .get("/api/v1/api-keys", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].get("secret").is_none(), "never shown again");
    assert!(secret.starts_with(list[0]["prefix"].as_str().unwrap()));
    assert_eq!(list[0]["scopes"], json!(["people:write"]));
    assert!(list[0]["last_used_at"].is_string(), "use is recorded");

    let stored: Vec<String> = app
        .db()
        .run(|conn| {
            use peil::db::schema::api_keys;
            api_keys::table
                .select(api_keys::secret_hash)
                .load(conn)
                .map_err(peil::db::DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(&secret[3..]), "only a digest is stored");

    let revoked = app
        .request(
            "DELETE",
            &format!("/api/v1/api-keys/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);
    let after = app.get("/api/v1/teams", Some(&secret)).await;
    assert_problem(after, 401, "unauthenticated").await;
    let list: Vec<Value> = app
        .get("/api/v1/api-keys", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert!(list[0]["revoked_at"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn a_key_needs_a_name_and_known_scopes() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let bad = app
        .post_json(
            "/api/v1/api-keys",
            &json!({"name": "", "scopes": ["everything"]}),
            Some(&admin),
        )
        .await;
    let problem = assert_problem(bad, 422, "validation").await;
    assert_eq!(problem_fields(&problem), vec!["name", "scopes.0"]);
    let empty = app
        .post_json(
            "/api/v1/api-keys",
            &json!({"name": "x", "scopes": []}),
            Some(&admin),
        )
        .await;
    let problem = assert_problem(empty, 422, "validation").await;
    assert_eq!(problem_fields(&problem), vec!["scopes"]);
    app.stop().await;
}
