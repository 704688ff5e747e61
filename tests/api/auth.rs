//! Signing in, the forced password change, signing out, session expiry.

use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
use serde_json::{Value, json};

use crate::helpers::{NEW_PASSWORD, assert_problem, problem_fields, spawn_app};

#[tokio::test]
async fn first_admin_signs_in_with_the_one_time_password() {
    let app = spawn_app().await;
    let response = app.login(&app.admin.email, &app.admin.password).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["must_change_password"], true);
    let token = body["token"].as_str().unwrap();
    assert!(token.len() >= 40, "a 256-bit token");
    let expires_at = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap())
        .expect("ISO-8601 expiry");
    let hours = (expires_at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
    assert!(
        (11 * 60..=12 * 60).contains(&hours),
        "12 h by default, got {hours} min"
    );
    app.stop().await;
}

#[tokio::test]
async fn sign_in_is_case_blind_on_the_email_address() {
    let app = spawn_app().await;
    let response = app
        .login(&app.admin.email.to_uppercase(), &app.admin.password)
        .await;
    assert_eq!(response.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_account_look_the_same() {
    let app = spawn_app().await;
    let wrong = app.login(&app.admin.email, "not the password").await;
    assert_eq!(
        wrong.headers()["www-authenticate"].to_str().unwrap(),
        "Bearer realm=\"peil\""
    );
    let wrong = assert_problem(wrong, 401, "invalid-credentials").await;
    let unknown = app.login("nobody@example.org", "not the password").await;
    let unknown = assert_problem(unknown, 401, "invalid-credentials").await;
    assert_eq!(wrong, unknown);
    app.stop().await;
}

#[tokio::test]
async fn a_one_time_password_must_be_replaced_before_anything_else() {
    let app = spawn_app().await;
    let token = app.admin_token().await;

    let refused = app.get("/api/v1/auth/me", Some(&token)).await;
    assert_problem(refused, 403, "password-change-required").await;

    let changed = app
        .post_json(
            "/api/v1/auth/password",
            &json!({"current_password": app.admin.password, "new_password": NEW_PASSWORD}),
            Some(&token),
        )
        .await;
    assert_eq!(changed.status(), 204);

    let me = app.get("/api/v1/auth/me", Some(&token)).await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["email"], app.admin.email.as_str());
    assert_eq!(me["role"], "admin");
    assert_eq!(me["organisation"]["name"], "My organisation");

    // The one-time password is gone; the new one works and needs no change.
    let old = app.login(&app.admin.email, &app.admin.password).await;
    assert_problem(old, 401, "invalid-credentials").await;
    let fresh = app.login(&app.admin.email, NEW_PASSWORD).await;
    let fresh: Value = fresh.json().await.unwrap();
    assert_eq!(fresh["must_change_password"], false);
    app.stop().await;
}

#[tokio::test]
async fn password_change_names_every_bad_field_and_changes_nothing() {
    let app = spawn_app().await;
    let token = app.admin_token().await;

    let both_bad = app
        .post_json(
            "/api/v1/auth/password",
            &json!({"current_password": "", "new_password": "short"}),
            Some(&token),
        )
        .await;
    let problem = assert_problem(both_bad, 422, "validation").await;
    assert_eq!(
        problem_fields(&problem),
        vec!["current_password", "new_password"]
    );
    assert_eq!(problem["errors"][0]["pointer"], "/current_password");

    let wrong_current = app
        .post_json(
            "/api/v1/auth/password",
            &json!({"current_password": "not it at all", "new_password": NEW_PASSWORD}),
            Some(&token),
        )
        .await;
    let problem = assert_problem(wrong_current, 422, "validation").await;
    assert_eq!(problem_fields(&problem), vec!["current_password"]);

    let same = app
        .post_json(
            "/api/v1/auth/password",
            &json!({"current_password": app.admin.password, "new_password": app.admin.password}),
            Some(&token),
        )
        .await;
    let problem = assert_problem(same, 422, "validation").await;
    assert_eq!(problem_fields(&problem), vec!["new_password"]);

    // Nothing changed: the one-time password still signs in, still must change.
    let again = app.login(&app.admin.email, &app.admin.password).await;
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["must_change_password"], true);
    app.stop().await;
}

#[tokio::test]
async fn changing_the_password_ends_other_sessions_but_not_this_one() {
    let app = spawn_app().await;
    let other = app.admin_token().await;
    let this = app.ready_admin_token().await;
    assert_eq!(app.get("/api/v1/auth/me", Some(&this)).await.status(), 200);
    let ended = app.get("/api/v1/auth/me", Some(&other)).await;
    assert_problem(ended, 401, "unauthenticated").await;
    app.stop().await;
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    let token = app.ready_admin_token().await;
    let out = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let after = app.get("/api/v1/auth/me", Some(&token)).await;
    assert_problem(after, 401, "unauthenticated").await;
    app.stop().await;
}

#[tokio::test]
async fn missing_malformed_unknown_and_expired_tokens_are_401() {
    let app = spawn_app().await;
    let token = app.ready_admin_token().await;

    let missing = app.get("/api/v1/auth/me", None).await;
    assert_problem(missing, 401, "unauthenticated").await;
    let basic = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .header("Authorization", "Basic YWRtaW46YWRtaW4=")
        .send()
        .await
        .unwrap();
    assert_problem(basic, 401, "unauthenticated").await;
    let unknown = app.get("/api/v1/auth/me", Some("not-a-real-token")).await;
    assert_problem(unknown, 401, "unauthenticated").await;

    // Expire every session behind the API's back.
    let db = app.db();
    db.run(|conn| {
        use peil::db::schema::sessions;
        diesel::update(sessions::table)
            .set(sessions::expires_at.eq(peil::db::now() - chrono::Duration::seconds(1)))
            .execute(conn)
            .map_err(peil::db::DbError::from)
    })
    .await
    .unwrap();
    let expired = app.get("/api/v1/auth/me", Some(&token)).await;
    assert_problem(expired, 401, "unauthenticated").await;
    app.stop().await;
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_hashes_and_tokens_as_digests() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let db = app.db();
    let (hash, digests) = db
        .run(|conn| {
            use peil::db::schema::{accounts, sessions};
            let hash: String = accounts::table
                .select(accounts::password_hash)
                .first(conn)?;
            let digests: Vec<String> = sessions::table.select(sessions::token_hash).load(conn)?;
            Ok::<_, peil::db::DbError>((hash, digests))
        })
        .await
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(&app.admin.password));
    assert_eq!(digests, vec![peil::auth::token::hash_token(&token)]);
    app.stop().await;
}
