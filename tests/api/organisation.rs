//! The organisation's settings.

use serde_json::{Value, json};

use crate::helpers::{assert_problem, problem_fields, spawn_app};

#[tokio::test]
async fn admins_read_and_change_the_settings() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let settings: Value = app
        .get("/api/v1/organisation", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(settings["name"], "My organisation");
    assert_eq!(settings["default_language"], "en");
    assert_eq!(settings["time_zone"], "Europe/Amsterdam");
    assert_eq!(settings["min_group_size"], 5);

    let changed: Value = app
        .request(
            "PATCH",
            "/api/v1/organisation",
            Some(&admin),
            Some(&json!({"name": "Acme B.V.", "default_language": "nl", "min_group_size": 7})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(changed["name"], "Acme B.V.");
    assert_eq!(changed["default_language"], "nl");
    assert_eq!(changed["min_group_size"], 7);
    assert_eq!(
        changed["time_zone"], "Europe/Amsterdam",
        "absent fields stay"
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_settings_are_all_named_and_nothing_changes() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let bad = app
        .request(
            "PATCH",
            "/api/v1/organisation",
            Some(&admin),
            Some(&json!({
                "name": "Fine name",
                "default_language": "de",
                "time_zone": "Mars/Olympus",
                "min_group_size": 2
            })),
        )
        .await;
    let problem = assert_problem(bad, 422, "validation").await;
    assert_eq!(
        problem_fields(&problem),
        vec!["default_language", "min_group_size", "time_zone"]
    );
    let settings: Value = app
        .get("/api/v1/organisation", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(settings["name"], "My organisation", "nothing changed");
    app.stop().await;
}
