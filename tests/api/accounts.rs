//! Accounts over the API: roles, a manager's team, disabling, deleting,
//! admin resets, the last admin, and sign-in throttling.

use serde_json::{Value, json};

use crate::helpers::{NEW_PASSWORD, assert_problem, problem_fields, spawn_app};

#[tokio::test]
async fn admins_create_list_and_change_accounts() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = app.create_team(&admin, "Platform", None).await;

    let created = app
        .post_json(
            "/api/v1/accounts",
            &json!({"email": "Lead@Example.org", "role": "manager", "team_id": team}),
            Some(&admin),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["account"]["email"], "lead@example.org");
    assert_eq!(created["account"]["must_change_password"], true);
    let id = created["account"]["id"].as_str().unwrap();
    assert!(created["one_time_password"].as_str().unwrap().len() >= 12);

    let list: Vec<Value> = app
        .get("/api/v1/accounts", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|a| a.get("password_hash").is_none()));

    let promoted: Value = app
        .request(
            "PATCH",
            &format!("/api/v1/accounts/{id}"),
            Some(&admin),
            Some(&json!({"role": "hr"})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(promoted["role"], "hr");
    assert_eq!(
        promoted["team_id"],
        Value::Null,
        "hr sees everything: no team"
    );

    let duplicate = app
        .post_json(
            "/api/v1/accounts",
            &json!({"email": "lead@example.org", "role": "hr"}),
            Some(&admin),
        )
        .await;
    assert_problem(duplicate, 409, "conflict").await;
    app.stop().await;
}

#[tokio::test]
async fn account_fields_are_checked_together() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let bad = app
        .post_json(
            "/api/v1/accounts",
            &json!({"email": "nope", "role": "owner"}),
            Some(&admin),
        )
        .await;
    let problem = assert_problem(bad, 422, "validation").await;
    assert_eq!(problem_fields(&problem), vec!["email", "role"]);

    let no_team = app
        .post_json(
            "/api/v1/accounts",
            &json!({"email": "m@example.org", "role": "manager"}),
            Some(&admin),
        )
        .await;
    let problem = assert_problem(no_team, 422, "validation").await;
    assert_eq!(problem_fields(&problem), vec!["team_id"]);
    let list: Vec<Value> = app
        .get("/api/v1/accounts", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1, "nothing was created");
    app.stop().await;
}

#[tokio::test]
async fn disabling_ends_sessions_and_sign_in() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let (id, token) = app.account_token(&admin, "hr", None).await;
    let disabled = app
        .request(
            "PATCH",
            &format!("/api/v1/accounts/{id}"),
            Some(&admin),
            Some(&json!({"disabled": true})),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    let me = app.get("/api/v1/auth/me", Some(&token)).await;
    assert_problem(me, 401, "unauthenticated").await;
    let account: Value = app
        .get(&format!("/api/v1/accounts/{id}"), Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let login = app
        .login(account["email"].as_str().unwrap(), NEW_PASSWORD)
        .await;
    assert_problem(login, 401, "invalid-credentials").await;
    app.stop().await;
}

#[tokio::test]
async fn the_last_enabled_admin_cannot_be_removed() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let me: Value = app
        .get("/api/v1/auth/me", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let my_id = me["account_id"].as_str().unwrap();
    for (method, body) in [
        ("PATCH", Some(json!({"disabled": true}))),
        ("PATCH", Some(json!({"role": "hr"}))),
        ("DELETE", None),
    ] {
        let refused = app
            .request(
                method,
                &format!("/api/v1/accounts/{my_id}"),
                Some(&admin),
                body.as_ref(),
            )
            .await;
        assert_problem(refused, 409, "conflict").await;
    }
    assert_eq!(app.get("/api/v1/auth/me", Some(&admin)).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn an_admin_reset_issues_a_one_time_password() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let (id, token) = app.account_token(&admin, "hr", None).await;
    let reset: Value = app
        .post_json(
            &format!("/api/v1/accounts/{id}/reset-password"),
            &json!({}),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reset["account"]["must_change_password"], true);
    let me = app.get("/api/v1/auth/me", Some(&token)).await;
    assert_problem(me, 401, "unauthenticated").await;
    let email = reset["account"]["email"].as_str().unwrap();
    let login: Value = app
        .login(email, reset["one_time_password"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(login["must_change_password"], true);

    // Not one's own: that would end the admin's session (found by fuzzing).
    let me: Value = app.get_json("/api/v1/auth/me", Some(&admin)).await;
    let own = app
        .post_json(
            &format!(
                "/api/v1/accounts/{}/reset-password",
                me["account_id"].as_str().unwrap()
            ),
            &json!({}),
            Some(&admin),
        )
        .await;
    assert_problem(own, 409, "conflict").await;
    assert_eq!(app.get("/api/v1/auth/me", Some(&admin)).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_slowed_down() {
    let app = spawn_app().await;
    for _ in 0..5 {
        let wrong = app.login(&app.admin.email, "wrong password!").await;
        assert_problem(wrong, 401, "invalid-credentials").await;
    }
    // Locked for a moment now, even with the right password.
    let locked = app.login(&app.admin.email, &app.admin.password).await;
    assert!(locked.headers().contains_key("retry-after"));
    assert_problem(locked, 429, "too-many-requests").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let ok = app.login(&app.admin.email, &app.admin.password).await;
    assert_eq!(
        ok.status(),
        200,
        "the lock lifts, and success resets the count"
    );
    let again = app.login(&app.admin.email, "wrong password!").await;
    assert_problem(again, 401, "invalid-credentials").await;
    app.stop().await;
}
