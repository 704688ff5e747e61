//! The privacy statement (`GET /api/v1/privacy`) says what the running
//! system does: each pulse's k as it stands and whether it may still be
//! lowered, the settings that open Peil up, in JSON and as a page.

use serde_json::{Value, json};

use crate::helpers::{assert_problem, problem_fields, spawn_app_with};
use crate::pulses::{at, team_with_people};

#[tokio::test]
async fn the_statement_follows_the_running_system() {
    let app = spawn_app_with(
        "[server]\ncors_origins = [\"https://hr.example.org\"]\n[retention]\ninvitation_days = 45\n",
    )
    .await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Support", None, 3).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse = app.create_pulse(&admin, &[&team]).await;

    let statement: Value = app.get_json("/api/v1/privacy", Some(&admin)).await;
    assert_eq!(statement["organisation"]["name"], "My organisation");
    assert_eq!(
        statement["minimum_group_size"],
        json!({"default": 5, "floor": 3, "answer_distributions_from": "2k", "comments_from": "max(10, k)"})
    );
    assert_eq!(
        statement["pulses"],
        json!([{
            "pulse_id": pulse, "name": "Weekly development pulse", "min_group_size": 5,
            "distributions_from": 10, "comments_from": 10, "k_may_be_lowered": true
        }])
    );
    assert_eq!(
        statement["settings"],
        json!({
            "cors_origins": ["https://hr.example.org"],
            "answer_links_per_minute": 600,
            "webhooks_allow_private_addresses": false,
            "webhooks_require_https": true
        })
    );
    assert_eq!(
        statement["retention"],
        json!({"invitation_days": 45, "audit_days": 730})
    );
    assert!(statement["stored"].as_array().unwrap().len() >= 5);
    assert!(
        statement["never_stored"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s
                .as_str()
                .unwrap()
                .contains("Which person gave which response"))
    );
    assert_eq!(statement["access"].as_array().unwrap().len(), 4);

    // k raised to 12: distributions from 24, comments from 12; once a wave
    // has opened, k may only be raised, and the statement says so.
    let path = format!("/api/v1/pulses/{pulse}");
    let raised = app
        .request(
            "PATCH",
            &path,
            Some(&admin),
            Some(&json!({"min_group_size": 12})),
        )
        .await;
    assert_eq!(raised.status(), 200);
    app.send_now(&admin, &pulse).await;
    let statement: Value = app.get_json("/api/v1/privacy", Some(&admin)).await;
    let this = &statement["pulses"][0];
    assert_eq!(
        (
            &this["min_group_size"],
            &this["distributions_from"],
            &this["comments_from"],
            &this["k_may_be_lowered"]
        ),
        (&json!(12), &json!(24), &json!(12), &json!(false))
    );
    let lowered = app
        .request(
            "PATCH",
            &path,
            Some(&admin),
            Some(&json!({"min_group_size": 11})),
        )
        .await;
    let problem = assert_problem(lowered, 422, "validation").await;
    assert_eq!(problem_fields(&problem), ["min_group_size"]);

    // The page a works council reads.
    let page = app
        .request_with_headers(
            "GET",
            "/api/v1/privacy",
            Some(&admin),
            &[("accept", "text/html")],
        )
        .await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    for expected in [
        "Privacy statement: My organisation",
        "k = 5",
        "Weekly development pulse",
        "no: a wave has opened; k may only be raised",
        "hr.example.org",
        "deleted 45 days after their wave closes",
        "Accepted by design",
    ] {
        assert!(html.contains(expected), "{expected} missing from the page");
    }

    // Anyone of the organisation may read it; nobody without credentials.
    let (_, manager) = app.account_token(&admin, "manager", Some(&team)).await;
    assert_eq!(
        app.get("/api/v1/privacy", Some(&manager)).await.status(),
        200
    );
    let (_, key) = app.api_key(&admin, &["results:read"]).await;
    assert_eq!(app.get("/api/v1/privacy", Some(&key)).await.status(), 200);
    assert_problem(
        app.get("/api/v1/privacy", None).await,
        401,
        "unauthenticated",
    )
    .await;
    app.stop().await;
}
