//! `peil migrate` and `peil admin …` against the test's database.

use serde_json::json;

use crate::helpers::{
    NEW_PASSWORD, TestDatabase, assert_problem, data_dir, peil_command, printed_password, spawn_app,
};

fn run(command: &mut std::process::Command) -> String {
    let output = command.output().expect("running peil");
    assert!(
        output.status.success(),
        "peil failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

#[test]
fn migrate_creates_the_schema_without_bootstrapping() {
    let database = TestDatabase::new();
    let dir = data_dir(&database);
    run(peil_command(&dir, &database.url).arg("migrate"));
    // Migrating again is a no-op.
    run(peil_command(&dir, &database.url).arg("migrate"));
    let listed = run(peil_command(&dir, &database.url).args(["admin", "list-organisations"]));
    assert_eq!(listed, "", "migrate creates no organisation");
}

#[tokio::test]
async fn admin_commands_create_organisations_and_accounts_and_reset_passwords() {
    let app = spawn_app().await;
    let dir = app.settings.data_dir.clone();
    let url = app.database.url.clone();

    let id = run(peil_command(&dir, &url).args([
        "admin",
        "create-organisation",
        "--name",
        "Acme B.V.",
        "--language",
        "nl",
        "--time-zone",
        "Europe/Amsterdam",
    ]));
    let id = id.trim().to_owned();
    let listed = run(peil_command(&dir, &url).args(["admin", "list-organisations"]));
    assert!(listed.contains(&format!("{id}\tAcme B.V.")), "{listed}");

    let created = run(peil_command(&dir, &url).args([
        "admin",
        "create-account",
        "--organisation",
        &id,
        "--email",
        "HR@Acme.example",
        "--role",
        "hr",
    ]));
    let one_time = printed_password(&created).expect("a one-time password");
    let token = {
        let response = app.login("hr@acme.example", &one_time).await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["must_change_password"], true);
        body["token"].as_str().unwrap().to_owned()
    };
    let changed = app
        .post_json(
            "/api/v1/auth/password",
            &json!({"current_password": one_time, "new_password": NEW_PASSWORD}),
            Some(&token),
        )
        .await;
    assert_eq!(changed.status(), 204);
    let me: serde_json::Value = app
        .get("/api/v1/auth/me", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "hr");
    assert_eq!(me["organisation"]["id"], id.as_str());

    let reset = run(peil_command(&dir, &url).args([
        "admin",
        "reset-password",
        "--email",
        "hr@acme.example",
    ]));
    let reset_password = printed_password(&reset).expect("a new one-time password");
    let ended = app.get("/api/v1/auth/me", Some(&token)).await;
    assert_problem(ended, 401, "unauthenticated").await;
    let old = app.login("hr@acme.example", NEW_PASSWORD).await;
    assert_problem(old, 401, "invalid-credentials").await;
    let again: serde_json::Value = app
        .login("hr@acme.example", &reset_password)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["must_change_password"], true);

    // Refusals name the problem and change nothing.
    for args in [
        vec![
            "admin",
            "create-account",
            "--organisation",
            &id,
            "--email",
            "hr@acme.example",
            "--role",
            "hr",
        ],
        vec![
            "admin",
            "create-account",
            "--organisation",
            "nope",
            "--email",
            "x@acme.example",
            "--role",
            "hr",
        ],
        vec![
            "admin",
            "create-account",
            "--organisation",
            &id,
            "--email",
            "not-an-email",
            "--role",
            "hr",
        ],
        vec![
            "admin",
            "create-organisation",
            "--name",
            "Tiny",
            "--min-group-size",
            "2",
        ],
        vec!["admin", "reset-password", "--email", "nobody@acme.example"],
    ] {
        let output = peil_command(&dir, &url).args(&args).output().unwrap();
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(!String::from_utf8_lossy(&output.stderr).trim().is_empty());
    }
    let listed = run(peil_command(&dir, &url).args(["admin", "list-organisations"]));
    assert_eq!(listed.lines().count(), 2, "{listed}");
    app.stop().await;
}
