//! The audit log (`GET /api/v1/audit`): every audited action leaves one
//! entry naming who did it, from where, to what; a refused action leaves
//! none; no entry holds a secret, a password or a person's data.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::helpers::{NEW_PASSWORD, TestApp, spawn_app_with};

/// Every entry of the organisation's log, oldest first, read page by page.
async fn whole_log(app: &TestApp, admin: &str, page_size: usize) -> Vec<Value> {
    let mut events = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let cursor = before
            .as_deref()
            .map(|b| format!("&before={b}"))
            .unwrap_or_default();
        let page: Value = app
            .get_json(
                &format!("/api/v1/audit?limit={page_size}{cursor}"),
                Some(admin),
            )
            .await;
        let items = page["events"].as_array().expect("events").clone();
        assert!(items.len() <= page_size);
        events.extend(items);
        match page["next"].as_str() {
            Some(next) => before = Some(next.to_owned()),
            None => break,
        }
    }
    events.reverse();
    events
}

async fn send(app: &TestApp, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
    let response = app.request(method, path, Some(token), body.as_ref()).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[tokio::test]
async fn every_audited_action_is_logged_once_with_its_actor_and_no_secret() {
    let app = spawn_app_with(
        "[webhooks]\nenabled = false\nallow_private_addresses = true\nrequire_https = false\n",
    )
    .await;
    let wrong = app.login(&app.admin.email, "not the password").await;
    assert_eq!(wrong.status(), 401);
    let admin = app.ready_admin_token().await;
    let me: Value = app.get_json("/api/v1/auth/me", Some(&admin)).await;
    let admin_id = me["account_id"].as_str().unwrap().to_owned();

    // Accounts.
    let created = send(
        &app,
        "POST",
        "/api/v1/accounts",
        &admin,
        Some(json!({"email": "hr@example.org", "role": "hr"})),
    )
    .await;
    let hr_id = created["account"]["id"].as_str().unwrap().to_owned();
    let hr_one_time = created["one_time_password"].as_str().unwrap().to_owned();
    let account_path = format!("/api/v1/accounts/{hr_id}");
    send(
        &app,
        "PATCH",
        &account_path,
        &admin,
        Some(json!({"disabled": true})),
    )
    .await;
    send(
        &app,
        "PATCH",
        &account_path,
        &admin,
        Some(json!({"disabled": false})),
    )
    .await;
    let hr = app.ready_token("hr@example.org", &hr_one_time).await;

    // API keys.
    let (key_id, key_secret) = app.api_key(&admin, &["results:read"]).await;
    send(
        &app,
        "DELETE",
        &format!("/api/v1/api-keys/{key_id}"),
        &admin,
        None,
    )
    .await;

    // Settings.
    send(
        &app,
        "PATCH",
        "/api/v1/organisation",
        &admin,
        Some(json!({"min_group_size": 6})),
    )
    .await;

    // Teams and people.
    let team = app.create_team(&admin, "Platform", None).await;
    let spare = app.create_team(&admin, "Spare", None).await;
    send(
        &app,
        "PATCH",
        &format!("/api/v1/teams/{spare}"),
        &admin,
        Some(json!({"name": "Spare room"})),
    )
    .await;
    send(
        &app,
        "DELETE",
        &format!("/api/v1/teams/{spare}"),
        &admin,
        None,
    )
    .await;
    let person = send(
        &app,
        "POST",
        "/api/v1/people",
        &admin,
        Some(json!({"email": "anna@example.org", "name": "Anna de Vries", "team_id": team})),
    )
    .await;
    let anna = person["id"].as_str().unwrap().to_owned();
    send(
        &app,
        "PATCH",
        &format!("/api/v1/people/{anna}"),
        &admin,
        Some(json!({"job_title": "Engineer", "level": 3})),
    )
    .await;
    let mut csv = String::from("email,name,team\n");
    for n in 0..6 {
        csv.push_str(&format!("p{n}@example.org,Person {n},Platform\n"));
    }
    let imported = app
        .client
        .post(app.url("/api/v1/people/import"))
        .bearer_auth(&admin)
        .header("Content-Type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status(), 200);
    let leaver = send(
        &app,
        "POST",
        "/api/v1/people",
        &admin,
        Some(json!({"email": "leo@example.org", "name": "Leo Bakker", "team_id": team})),
    )
    .await;
    let leo = leaver["id"].as_str().unwrap().to_owned();
    send(
        &app,
        "DELETE",
        &format!("/api/v1/people/{leo}"),
        &admin,
        None,
    )
    .await;

    // Pulses and waves.
    let pulse = app.create_pulse(&hr, &[&team]).await;
    send(
        &app,
        "PATCH",
        &format!("/api/v1/pulses/{pulse}"),
        &hr,
        Some(json!({"min_group_size": 7, "name": "Weekly pulse"})),
    )
    .await;
    let doomed = app.create_pulse(&hr, &[&team]).await;
    send(
        &app,
        "DELETE",
        &format!("/api/v1/pulses/{doomed}"),
        &hr,
        None,
    )
    .await;
    let wave = app.send_now(&hr, &pulse).await;
    send(
        &app,
        "POST",
        &format!("/api/v1/waves/{wave}/extend"),
        &hr,
        Some(json!({"closes_at": "2026-01-05T00:00:00Z"})),
    )
    .await;
    send(
        &app,
        "POST",
        &format!("/api/v1/waves/{wave}/invitations/{anna}/resend"),
        &hr,
        None,
    )
    .await;
    app.close_wave(&hr, &wave).await;
    // Closing again closes nothing, and logs nothing.
    let again = app
        .request(
            "POST",
            &format!("/api/v1/waves/{wave}/close"),
            Some(&hr),
            None,
        )
        .await;
    assert!(
        again.status().is_success() || again.status() == 409,
        "{}",
        again.status()
    );

    // Webhooks.
    let hook = send(
        &app,
        "POST",
        "/api/v1/webhooks",
        &admin,
        Some(json!({"url": "http://127.0.0.1:9/hook?token=receiver-secret", "events": ["wave.closed"]})),
    )
    .await;
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    let hook_secret = hook["secret"].as_str().unwrap().to_owned();
    let hook_path = format!("/api/v1/webhooks/{hook_id}");
    send(
        &app,
        "PATCH",
        &hook_path,
        &admin,
        Some(json!({"enabled": false})),
    )
    .await;
    let rotated = send(&app, "POST", &format!("{hook_path}/secret"), &admin, None).await;
    let rotated_secret = rotated["secret"].as_str().unwrap().to_owned();
    send(&app, "DELETE", &hook_path, &admin, None).await;

    // Exports.
    for path in [
        "/api/v1/mobility/report",
        "/api/v1/mobility/flows",
        "/api/v1/results/feed",
    ] {
        let csv = app
            .request_with_headers("GET", path, Some(&admin), &[("accept", "text/csv")])
            .await;
        assert_eq!(csv.status(), 200, "{path}");
    }
    let json_feed = app.get("/api/v1/results/feed", Some(&admin)).await;
    assert_eq!(json_feed.status(), 200, "JSON pages are not exports");

    // Refused: the last admin cannot be deleted; nothing is logged for it.
    let refused = app
        .request(
            "DELETE",
            &format!("/api/v1/accounts/{admin_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(refused.status(), 409);

    // Then hr's password is reset and the account goes.
    let reset = send(
        &app,
        "POST",
        &format!("{account_path}/reset-password"),
        &admin,
        None,
    )
    .await;
    let reset_password = reset["one_time_password"].as_str().unwrap().to_owned();
    send(&app, "DELETE", &account_path, &admin, None).await;

    let log = whole_log(&app, &admin, 7).await;
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    let expected = [
        "account.sign_in_failed",
        "account.signed_in",
        "account.password_changed",
        "account.created",
        "account.updated",
        "account.updated",
        "account.signed_in",
        "account.password_changed",
        "api_key.created",
        "api_key.revoked",
        "organisation.updated",
        "team.created",
        "team.created",
        "team.updated",
        "team.deleted",
        "person.created",
        "person.updated",
        "people.imported",
        "person.created",
        "person.left",
        "pulse.created",
        "pulse.updated",
        "pulse.created",
        "pulse.deleted",
        "wave.sent_now",
        "wave.extended",
        "invitation.resent",
        "wave.closed",
        "webhook.created",
        "webhook.updated",
        "webhook.secret_rotated",
        "webhook.deleted",
        "export.mobility_report",
        "export.mobility_flows",
        "export.results_feed",
        "account.password_reset",
        "account.deleted",
    ];
    assert_eq!(actions, expected);

    let by_action: BTreeMap<&str, &Value> = log
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e))
        .collect();
    let failed = by_action["account.sign_in_failed"];
    assert_eq!(failed["actor"]["kind"], "account");
    assert_eq!(failed["actor"]["label"], app.admin.email);
    assert_eq!(failed["actor"]["client_address"], "127.0.0.1");
    let pulse_updated = by_action["pulse.updated"];
    assert_eq!(pulse_updated["actor"]["id"], hr_id.as_str(), "hr did it");
    assert_eq!(pulse_updated["actor"]["label"], "hr@example.org");
    assert_eq!(
        pulse_updated["target"],
        json!({"kind": "pulse", "id": pulse})
    );
    assert_eq!(pulse_updated["details"]["min_group_size"], 7);
    assert_eq!(
        pulse_updated["details"]["fields"],
        json!(["name", "min_group_size"])
    );
    assert_eq!(
        by_action["person.updated"]["details"],
        json!({"fields": ["job_title", "level"]}),
        "which fields, never their values"
    );
    assert_eq!(by_action["people.imported"]["details"]["created"], 6);
    assert_eq!(
        by_action["organisation.updated"]["details"]["min_group_size"],
        6
    );
    assert_eq!(by_action["webhook.created"]["details"]["host"], "127.0.0.1");
    assert_eq!(
        by_action["account.deleted"]["target"],
        json!({"kind": "account", "id": hr_id})
    );
    assert!(
        log.iter()
            .all(|e| e["occurred_at"].as_str().is_some() && e["id"].as_str().is_some())
    );

    // Nothing secret, and nothing of what people are, in any entry.
    let text = serde_json::to_string(&log).unwrap();
    for secret in [
        key_secret.as_str(),
        hook_secret.as_str(),
        rotated_secret.as_str(),
        "receiver-secret",
        hr_one_time.as_str(),
        reset_password.as_str(),
        app.admin.password.as_str(),
        NEW_PASSWORD,
        "not the password",
        "Anna de Vries",
        "Engineer",
    ] {
        assert!(!text.contains(secret), "the log holds {secret:?}");
    }

    // Filters: a kind of action, what was done to one thing, who did it.
    let pulses: Value = app
        .get_json("/api/v1/audit?action=pulse.", Some(&admin))
        .await;
    let pulse_actions: Vec<&str> = pulses["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        pulse_actions,
        [
            "pulse.deleted",
            "pulse.created",
            "pulse.updated",
            "pulse.created"
        ]
    );
    let about_anna: Value = app
        .get_json(&format!("/api/v1/audit?target_id={anna}"), Some(&admin))
        .await;
    assert_eq!(about_anna["events"].as_array().unwrap().len(), 3);
    let by_hr: Value = app
        .get_json(&format!("/api/v1/audit?actor_id={hr_id}"), Some(&admin))
        .await;
    assert_eq!(by_hr["events"].as_array().unwrap().len(), 10);

    let bad = app.get("/api/v1/audit?limit=0", Some(&admin)).await;
    crate::helpers::assert_problem(bad, 422, "validation").await;
    let unknown = app.get("/api/v1/audit?before=nope", Some(&admin)).await;
    crate::helpers::assert_problem(unknown, 422, "validation").await;
    app.stop().await;
}
