//! The permission table of DESIGN.md, walked: every route in the OpenAPI
//! document (so a new endpoint cannot be forgotten: a route without a rule
//! here fails the test) with every kind of caller — no credentials, each
//! role, an API key of each scope, and an admin of another organisation.

use serde_json::{Value, json};

use crate::helpers::{NEW_PASSWORD, spawn_app_with};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    Public,
    /// Any account session, even one that must still change its password.
    Session,
    /// Any account that may use the API.
    Account,
    Administer,
    ReadTeams,
    WritePeople,
    /// Admin and hr accounts; no key, whatever its scope.
    ErasePeople,
    WritePulses,
    ReadResults,
    ReadMobility,
    ReadMobilityAndResults,
}

fn rule(method: &str, path: &str) -> Option<Rule> {
    Some(match (method, path) {
        ("get", "/healthz" | "/readyz") | ("post", "/api/v1/auth/login") => Rule::Public,
        // The link token is the credential.
        ("get" | "post", "/api/v1/answers/{token}") => Rule::Public,
        ("post", "/api/v1/auth/logout" | "/api/v1/auth/password") => Rule::Session,
        ("get", "/api/v1/auth/me") => Rule::Account,
        (_, p)
            if p.starts_with("/api/v1/accounts")
                || p.starts_with("/api/v1/api-keys")
                || p.starts_with("/api/v1/webhooks")
                || p == "/api/v1/audit"
                || p == "/api/v1/organisation" =>
        {
            Rule::Administer
        }
        ("get", "/api/v1/teams" | "/api/v1/teams/{id}" | "/api/v1/privacy") => Rule::ReadTeams,
        ("post", "/api/v1/people/{id}/erase") => Rule::ErasePeople,
        (_, p) if p.starts_with("/api/v1/teams") || p.starts_with("/api/v1/people") => {
            Rule::WritePeople
        }
        ("get", p) if p.starts_with("/api/v1/results") || p.ends_with("/heatmap") => {
            Rule::ReadResults
        }
        ("get", p) if p.starts_with("/api/v1/waves/{id}/results") => Rule::ReadResults,
        // Theme scores beside mobility: both scopes.
        ("get", "/api/v1/mobility/pulses") => Rule::ReadMobilityAndResults,
        ("get", p) if p.starts_with("/api/v1/mobility") => Rule::ReadMobility,
        (_, p)
            if p.starts_with("/api/v1/templates")
                || p.starts_with("/api/v1/pulses")
                || p.starts_with("/api/v1/waves") =>
        {
            Rule::WritePulses
        }
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Nobody,
    Admin,
    Hr,
    Manager,
    Key(&'static str),
    OtherOrganisation,
}

/// Whether the permission table lets `who` through `rule`.
fn allowed(who: Who, rule: Rule) -> bool {
    match (who, rule) {
        (_, Rule::Public) => true,
        (Who::Nobody, _) => false,
        (Who::Key(_), Rule::Session | Rule::Account) => false,
        (_, Rule::Session | Rule::Account) => true,
        (Who::Admin | Who::OtherOrganisation, _) => true,
        (Who::Hr, Rule::Administer) => false,
        (Who::Hr, _) => true,
        (
            Who::Manager,
            Rule::ReadTeams | Rule::ReadResults | Rule::ReadMobility | Rule::ReadMobilityAndResults,
        ) => true,
        (Who::Manager, _) => false,
        (Who::Key(_), Rule::Administer | Rule::ErasePeople) => false,
        (Who::Key(_), Rule::ReadTeams) => true,
        (Who::Key(scope), Rule::WritePeople) => scope == "people:write",
        (Who::Key(scope), Rule::WritePulses) => scope == "pulses:write",
        (Who::Key(scope), Rule::ReadResults) => scope == "results:read",
        (Who::Key(scope), Rule::ReadMobility) => scope == "mobility:read",
        // The walk's keys have one scope each: neither has both.
        (Who::Key(_), Rule::ReadMobilityAndResults) => false,
    }
}

fn body(method: &str, path: &str, n: usize, admin_email: &str) -> Option<Value> {
    match (method, path) {
        ("post", "/api/v1/auth/login") => {
            Some(json!({"email": admin_email, "password": NEW_PASSWORD}))
        }
        ("post", "/api/v1/auth/password") => {
            Some(json!({"current_password": "wrong", "new_password": "another long passphrase"}))
        }
        ("post", "/api/v1/accounts") => {
            Some(json!({"email": format!("walk{n}@example.org"), "role": "hr"}))
        }
        ("patch", "/api/v1/accounts/{id}") => Some(json!({"disabled": false})),
        ("post", "/api/v1/api-keys") => {
            Some(json!({"name": format!("walk {n}"), "scopes": ["results:read"]}))
        }
        ("patch", "/api/v1/organisation") => Some(json!({})),
        ("post", "/api/v1/teams") => Some(json!({"name": format!("Walk {n}")})),
        ("patch", "/api/v1/teams/{id}") => Some(json!({"name": format!("Victim {n}")})),
        ("post", "/api/v1/people") => {
            Some(json!({"email": format!("p{n}@example.org"), "name": "P", "team_id": "none"}))
        }
        ("patch", "/api/v1/people/{id}") => Some(json!({"name": format!("Person {n}")})),
        ("patch", "/api/v1/pulses/{id}") => Some(json!({"name": format!("Pulse {n}")})),
        ("post", _) | ("patch", _) => Some(json!({})),
        _ => None,
    }
}

#[tokio::test]
async fn every_route_answers_every_caller_as_the_permission_table_says() {
    // No webhook worker: the victim endpoint below must never be posted to.
    let app = spawn_app_with("[webhooks]\nenabled = false\n").await;
    let admin = app.ready_admin_token().await;
    let parent = app.create_team(&admin, "Engineering", None).await;
    let victim_team = app.create_team(&admin, "Platform", Some(&parent)).await;
    let (victim_account, _) = app.account_token(&admin, "hr", None).await;
    let (victim_key, _) = app.api_key(&admin, &["results:read"]).await;
    let victim: Value = app
        .post_json(
            "/api/v1/people",
            &json!({"email": "victim@example.org", "name": "Victim", "team_id": victim_team}),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    let victim_person = victim["id"].as_str().unwrap().to_owned();
    let history: Vec<Value> = app
        .get(
            &format!("/api/v1/people/{victim_person}/history"),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    let victim_event = history[0]["id"].as_str().unwrap().to_owned();
    let victim_webhook: Value = app
        .post_json(
            "/api/v1/webhooks",
            &json!({"url": "https://8.8.8.8/victim", "events": ["wave.opened"]}),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    let victim_webhook = victim_webhook["id"].as_str().unwrap().to_owned();
    let victim_pulse = app.create_pulse(&admin, &[&parent]).await;
    let victim_wave = app.send_now(&admin, &victim_pulse).await;
    let deliveries: Value = app
        .get(
            &format!("/api/v1/webhooks/{victim_webhook}/deliveries"),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    let victim_delivery = deliveries["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut callers: Vec<(Who, Option<String>)> = vec![
        (Who::Nobody, None),
        (Who::Admin, Some(admin.clone())),
        (Who::Hr, Some(app.account_token(&admin, "hr", None).await.1)),
        (
            Who::Manager,
            Some(app.account_token(&admin, "manager", Some(&parent)).await.1),
        ),
        (
            Who::OtherOrganisation,
            Some(app.other_organisation_admin().await),
        ),
    ];
    for scope in [
        "results:read",
        "mobility:read",
        "people:write",
        "pulses:write",
    ] {
        callers.push((Who::Key(scope), Some(app.api_key(&admin, &[scope]).await.1)));
    }

    let doc: Value = app
        .get("/api/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let mut routes: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.push((method.clone(), path.clone()));
        }
    }
    // Signing out ends the caller's session: walk it last.
    routes.sort_by_key(|(m, p)| (p == "/api/v1/auth/logout", m.clone(), p.clone()));
    assert!(
        routes.len() >= 18,
        "the document lists the routes: {routes:?}"
    );

    let mut failures = Vec::new();
    let mut n = 0;
    for (method, path) in &routes {
        let Some(rule) = rule(method, path) else {
            failures.push(format!(
                "{method} {path} has no rule in this test's permission table"
            ));
            continue;
        };
        let concrete = path
            .replace("/accounts/{id}", &format!("/accounts/{victim_account}"))
            .replace("/api-keys/{id}", &format!("/api-keys/{victim_key}"))
            .replace("/teams/{id}", &format!("/teams/{victim_team}"))
            .replace("/people/{id}", &format!("/people/{victim_person}"))
            .replace("{event_id}", &victim_event)
            .replace("/pulses/{id}", &format!("/pulses/{victim_pulse}"))
            .replace("/waves/{id}", &format!("/waves/{victim_wave}"))
            .replace("{person_id}", &victim_person)
            .replace("{team_id}", &victim_team)
            .replace("/templates/{key}", "/templates/development")
            .replace("/webhooks/{id}", &format!("/webhooks/{victim_webhook}"))
            .replace("{delivery_id}", &victim_delivery);
        for (who, token) in &callers {
            n += 1;
            let response = app
                .request(
                    &method.to_uppercase(),
                    &concrete,
                    token.as_deref(),
                    body(method, path, n, &app.admin.email).as_ref(),
                )
                .await;
            let status = response.status().as_u16();
            let expected_ok = allowed(*who, rule);
            let about_one = path.contains("{id}");
            let ok = if status >= 500 {
                false
            } else if *who == Who::OtherOrganisation && about_one && rule != Rule::Public {
                status == 404
            } else if expected_ok {
                status != 401 && status != 403
            } else if *who == Who::Nobody
                || matches!((who, rule), (Who::Key(_), Rule::Session | Rule::Account))
            {
                status == 401
            } else {
                status == 403
            };
            if !ok {
                failures.push(format!(
                    "{method} {path} as {who:?}: {status} (expected {})",
                    if expected_ok { "allowed" } else { "refused" }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.stop().await;
}
