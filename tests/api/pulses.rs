//! Pulses over the API: validation, the schedule preview across daylight
//! saving, editing (future waves only), pause and resume, *k*, and "send now"
//! with an Idempotency-Key.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, problem_fields, spawn_app, weekly_pulse};

pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 time")
}

/// A team with `n` people in it; returns the team's id.
pub async fn team_with_people(
    app: &TestApp,
    token: &str,
    name: &str,
    parent: Option<&str>,
    n: usize,
) -> String {
    let team = app.create_team(token, name, parent).await;
    for i in 0..n {
        let response = app
            .post_json(
                "/api/v1/people",
                &json!({
                    "email": format!("{}{i}@example.org", name.to_lowercase()),
                    "name": format!("{name} {i}"),
                    "team_id": team,
                    "language": if i % 2 == 0 { "nl" } else { "en" },
                }),
                Some(token),
            )
            .await;
        assert_eq!(response.status(), 201);
    }
    team
}

async fn pulse(app: &TestApp, token: &str, id: &str) -> Value {
    app.get_json(&format!("/api/v1/pulses/{id}"), Some(token))
        .await
}

async fn patch(app: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    app.request(
        "PATCH",
        &format!("/api/v1/pulses/{id}"),
        Some(token),
        Some(&body),
    )
    .await
}

async fn schedule(app: &TestApp, token: &str, id: &str, count: usize) -> Vec<String> {
    let body: Value = app
        .get_json(
            &format!("/api/v1/pulses/{id}/schedule?count={count}"),
            Some(token),
        )
        .await;
    body["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["opens_at"].as_str().unwrap().to_owned())
        .collect()
}

fn same_instant(a: &str, b: &str) -> bool {
    at(a) == at(b)
}

#[tokio::test]
async fn a_bad_pulse_is_refused_naming_every_field_and_nothing_is_created() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = app.create_team(&admin, "Engineering", None).await;
    let other = app.create_team(&admin, "Sales", None).await;
    let response = app
        .post_json(
            "/api/v1/pulses",
            &json!({
                "name": " ",
                "templates": ["development", "no-such-template"],
                "audience": [team, "no-such-team"],
                "excluded_teams": [other],
                "cron": "61 9 * * 1",
                "time_zone": "Europe/Amsterdam",
                "open_hours": 0,
                "reminder_hours": [1, 2, 3],
                "start_date": "2026-05-01",
                "end_date": "2026-04-01",
            }),
            Some(&admin),
        )
        .await;
    let problem = assert_problem(response, 422, "validation").await;
    let fields = problem_fields(&problem);
    for field in [
        "name",
        "templates.1",
        "audience.1",
        "excluded_teams.0",
        "cron",
        "open_hours",
        "reminder_hours",
        "end_date",
    ] {
        assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
    }

    let mut bad_zone = weekly_pulse(&[&team]);
    bad_zone["time_zone"] = json!("Mars/Olympus_Mons");
    let problem = assert_problem(
        app.post_json("/api/v1/pulses", &bad_zone, Some(&admin))
            .await,
        422,
        "validation",
    )
    .await;
    assert_eq!(problem_fields(&problem), ["time_zone"]);

    // Daily waves open for two days would overlap.
    let mut overlapping = weekly_pulse(&[&team]);
    overlapping["cron"] = json!("0 9 * * *");
    overlapping["open_hours"] = json!(48);
    overlapping["reminder_hours"] = json!([24]);
    let problem = assert_problem(
        app.post_json("/api/v1/pulses", &overlapping, Some(&admin))
            .await,
        422,
        "validation",
    )
    .await;
    assert_eq!(problem_fields(&problem), ["open_hours"]);

    let mut six_fields = weekly_pulse(&[&team]);
    six_fields["cron"] = json!("0 0 9 * * 1");
    let problem = assert_problem(
        app.post_json("/api/v1/pulses", &six_fields, Some(&admin))
            .await,
        422,
        "validation",
    )
    .await;
    assert_eq!(problem_fields(&problem), ["cron"]);

    let list: Vec<Value> = app.get_json("/api/v1/pulses", Some(&admin)).await;
    assert!(list.is_empty(), "nothing was created: {list:?}");
    app.stop().await;
}

#[tokio::test]
async fn the_schedule_follows_amsterdam_across_spring_forward_and_fall_back() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Night", None, 2).await;
    app.clock.set(at("2026-03-27T12:00:00Z"));
    let mut body = weekly_pulse(&[&team]);
    body["cron"] = json!("30 2 * * *");
    body["open_hours"] = json!(12);
    body["reminder_hours"] = json!([]);
    let created = app.post_json("/api/v1/pulses", &body, Some(&admin)).await;
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // 29 March 2026: 02:30 does not exist; the wave opens at 03:00 CEST.
    let opens = schedule(&app, &admin, &id, 4).await;
    let expected = [
        "2026-03-28T01:30:00Z",
        "2026-03-29T01:00:00Z",
        "2026-03-30T00:30:00Z",
        "2026-03-31T00:30:00Z",
    ];
    assert_eq!(opens.len(), 4);
    for (got, want) in opens.iter().zip(expected) {
        assert!(same_instant(got, want), "{opens:?}");
    }
    // The scheduler opens that wave once, at the gap's end; 28 March's
    // firing, missed (nothing ran), had its window pass and is skipped.
    app.clock.set(at("2026-03-29T01:00:00Z"));
    let first = app.run_schedule().await;
    assert_eq!((first.opened, first.skipped), (1, 1));
    app.clock.set(at("2026-03-29T01:30:00Z"));
    assert!(app.run_schedule().await.is_empty());

    // 25 October 2026: 02:30 happens twice; the wave opens at the first.
    app.clock.set(at("2026-10-24T12:00:00Z"));
    let resumed = patch(&app, &admin, &id, json!({"cron": "30 2 * * 0"})).await;
    assert_eq!(resumed.status(), 200);
    let opens = schedule(&app, &admin, &id, 2).await;
    assert!(
        same_instant(&opens[0], "2026-10-25T00:30:00Z"),
        "02:30 CEST: {opens:?}"
    );
    assert!(
        same_instant(&opens[1], "2026-11-01T01:30:00Z"),
        "the next Sunday, in CET: {opens:?}"
    );
    app.clock.set(at("2026-10-25T00:30:00Z"));
    assert_eq!(app.run_schedule().await.opened, 1);
    // At 02:30 CET (an hour later) nothing fires again.
    app.clock.set(at("2026-10-25T01:30:00Z"));
    let again = app.run_schedule().await;
    assert_eq!((again.opened, again.skipped), (0, 0));
    app.stop().await;
}

#[tokio::test]
async fn pausing_stops_new_waves_and_resuming_does_not_catch_up_the_pause() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Ops", None, 3).await;
    app.clock.set(at("2026-01-01T00:00:00Z"));
    let id = app.create_pulse(&admin, &[&team]).await;
    assert!(same_instant(
        pulse(&app, &admin, &id).await["next_wave_at"]
            .as_str()
            .unwrap(),
        "2026-01-05T08:00:00Z"
    ));

    assert_eq!(
        patch(&app, &admin, &id, json!({"status": "paused"}))
            .await
            .status(),
        200
    );
    let paused = pulse(&app, &admin, &id).await;
    assert_eq!(paused["status"], "paused");
    assert!(paused["next_wave_at"].is_null());
    assert!(schedule(&app, &admin, &id, 3).await.is_empty());
    app.clock.set(at("2026-01-05T08:00:00Z"));
    assert!(app.run_schedule().await.is_empty());

    app.clock.set(at("2026-01-06T10:00:00Z"));
    assert_eq!(
        patch(&app, &admin, &id, json!({"status": "active"}))
            .await
            .status(),
        200
    );
    let pass = app.run_schedule().await;
    assert!(
        pass.is_empty(),
        "the paused Monday is not caught up: {pass:?}"
    );
    assert!(same_instant(
        pulse(&app, &admin, &id).await["next_wave_at"]
            .as_str()
            .unwrap(),
        "2026-01-12T08:00:00Z"
    ));
    app.clock.set(at("2026-01-12T08:00:00Z"));
    assert_eq!(app.run_schedule().await.opened, 1);
    app.stop().await;
}

#[tokio::test]
async fn editing_a_pulse_changes_future_waves_only_and_k_never_goes_down() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Finance", None, 4).await;
    app.clock.set(at("2026-01-01T00:00:00Z"));
    let mut body = weekly_pulse(&[&team]);
    body["templates"] = json!(["development", "career", "safety"]);
    let id = app.create_pulse_with(&admin, &body).await;
    let created = pulse(&app, &admin, &id).await;
    assert_eq!(created["min_group_size"], 5, "copied from the organisation");
    let preview: Value = app
        .get_json(
            &format!("/api/v1/pulses/{id}/schedule?count=4"),
            Some(&admin),
        )
        .await;
    let rotation: Vec<&str> = preview["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["template"].as_str().unwrap())
        .collect();
    assert_eq!(rotation, ["development", "career", "safety", "development"]);

    app.clock.set(at("2026-01-05T08:00:00Z"));
    assert_eq!(app.run_schedule().await.opened, 1);
    let waves: Vec<Value> = app
        .get_json(&format!("/api/v1/waves?pulse_id={id}"), Some(&admin))
        .await;
    let first_wave = waves[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(waves[0]["template_key"], "development");

    // Change the name, the rotation and the window while the wave is open.
    let changed = patch(
        &app,
        &admin,
        &id,
        json!({"name": "Renamed", "templates": ["safety"], "open_hours": 24, "reminder_hours": []}),
    )
    .await;
    assert_eq!(changed.status(), 200);
    let open: Value = app
        .get_json(&format!("/api/v1/waves/{first_wave}"), Some(&admin))
        .await;
    assert_eq!(
        open["template_key"], "development",
        "the open wave keeps its template"
    );
    assert_eq!(open["template"]["key"], "development");
    assert!(same_instant(
        open["closes_at"].as_str().unwrap(),
        "2026-01-08T08:00:00Z"
    ));

    // k: raised freely, never lowered once a wave has opened.
    let lowered = patch(&app, &admin, &id, json!({"min_group_size": 4})).await;
    let problem = assert_problem(lowered, 422, "validation").await;
    assert_eq!(problem_fields(&problem), ["min_group_size"]);
    let raised = patch(&app, &admin, &id, json!({"min_group_size": 7})).await;
    assert_eq!(raised.status(), 200);

    app.clock.set(at("2026-01-12T08:00:00Z"));
    let pass = app.run_schedule().await;
    assert_eq!((pass.opened, pass.closed), (1, 1));
    let waves: Vec<Value> = app
        .get_json(&format!("/api/v1/waves?pulse_id={id}"), Some(&admin))
        .await;
    assert_eq!(waves[0]["template_key"], "safety");
    assert_eq!(waves[0]["min_group_size"], 7);
    assert!(same_instant(
        waves[0]["closes_at"].as_str().unwrap(),
        "2026-01-13T08:00:00Z"
    ));
    assert_eq!(
        waves[1]["min_group_size"], 7,
        "a raised k holds for the earlier wave's results too"
    );

    // A new cadence counts from now: last Monday's firing is not "missed".
    app.clock.set(at("2026-01-13T12:00:00Z"));
    let moved = patch(&app, &admin, &id, json!({"cron": "0 9 * * 2"})).await;
    assert_eq!(moved.status(), 200);
    assert!(same_instant(
        moved.json::<Value>().await.unwrap()["next_wave_at"]
            .as_str()
            .unwrap(),
        "2026-01-20T08:00:00Z"
    ));
    let pass = app.run_schedule().await;
    assert_eq!((pass.opened, pass.skipped), (0, 0));

    // A pulse with waves cannot be deleted (its results stay); pause it instead.
    let refused = app
        .request(
            "DELETE",
            &format!("/api/v1/pulses/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_problem(refused, 409, "conflict").await;
    app.stop().await;
}

#[tokio::test]
async fn send_now_twice_with_one_idempotency_key_opens_one_wave() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Support", None, 5).await;
    let id = app.create_pulse(&admin, &[&team]).await;
    let url = app.url(&format!("/api/v1/pulses/{id}/waves"));
    let click = || {
        app.client
            .post(&url)
            .bearer_auth(&admin)
            .header("Idempotency-Key", "double-click-1")
            .send()
    };
    // A double click: both at once, then a late retry.
    let (a, b) = tokio::join!(click(), click());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (201, 201));
    let a: Value = a.json().await.unwrap();
    let b: Value = b.json().await.unwrap();
    assert_eq!(a["id"], b["id"]);
    let c: Value = click().await.unwrap().json().await.unwrap();
    assert_eq!(a["id"], c["id"]);
    assert_eq!(a["invited"], 5);
    assert_eq!(a["opened_by"], "manual");
    let waves: Vec<Value> = app
        .get_json(&format!("/api/v1/waves?pulse_id={id}"), Some(&admin))
        .await;
    assert_eq!(waves.len(), 1);
    let (invitations, emails) =
        crate::waves::invitations_and_emails(&app, a["id"].as_str().unwrap()).await;
    assert_eq!((invitations, emails), (5, 5));

    // Waves of one pulse never overlap: another click while it is open is refused.
    let overlapping = app
        .client
        .post(&url)
        .bearer_auth(&admin)
        .header("Idempotency-Key", "double-click-2")
        .send()
        .await
        .unwrap();
    assert_problem(overlapping, 409, "conflict").await;
    // The same key on another pulse is another request: refused, not replayed.
    let other_pulse = app.create_pulse(&admin, &[&team]).await;
    let reused = app
        .client
        .post(app.url(&format!("/api/v1/pulses/{other_pulse}/waves")))
        .bearer_auth(&admin)
        .header("Idempotency-Key", "double-click-1")
        .send()
        .await
        .unwrap();
    assert_problem(reused, 409, "conflict").await;

    // Once it is closed, another key is another wave.
    let wave_id = a["id"].as_str().unwrap();
    app.close_wave(&admin, wave_id).await;
    let other = app
        .client
        .post(&url)
        .bearer_auth(&admin)
        .header("Idempotency-Key", "double-click-3")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 201);
    let other: Value = other.json().await.unwrap();
    assert_ne!(other["id"], a["id"]);
    assert_eq!(other["number"], 2);
    app.stop().await;
}

#[tokio::test]
async fn new_dates_count_from_now_and_an_empty_audience_is_refused() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let engineering = team_with_people(&app, &admin, "Engineering", None, 2).await;
    let platform = team_with_people(&app, &admin, "Platform", Some(&engineering), 2).await;
    app.clock.set(at("2026-01-01T00:00:00Z"));
    let mut body = weekly_pulse(&[&engineering]);
    body["end_date"] = json!("2026-01-13");
    body["start_date"] = json!("2026-01-06");
    let id = app.create_pulse_with(&admin, &body).await;
    // Only Monday 12 January lies in [6 January, 13 January).
    let opens = schedule(&app, &admin, &id, 5).await;
    assert_eq!(opens.len(), 1, "{opens:?}");
    assert!(same_instant(&opens[0], "2026-01-12T08:00:00Z"), "{opens:?}");
    app.clock.set(at("2026-01-12T08:00:00Z"));
    assert_eq!(app.run_schedule().await.opened, 1);
    app.clock.set(at("2026-02-10T12:00:00Z"));
    assert_eq!(app.run_schedule().await.closed, 1);
    assert!(
        pulse(&app, &admin, &id).await["next_wave_at"].is_null(),
        "ended"
    );

    // Extending the end on 10 February: the Mondays since the end are not "missed".
    let extended = patch(&app, &admin, &id, json!({"end_date": "2026-06-01"})).await;
    assert_eq!(extended.status(), 200);
    let pass = app.run_schedule().await;
    assert_eq!((pass.opened, pass.skipped), (0, 0));
    assert!(same_instant(
        pulse(&app, &admin, &id).await["next_wave_at"]
            .as_str()
            .unwrap(),
        "2026-02-16T08:00:00Z"
    ));

    // Excluding the whole audience leaves nobody: refused.
    let excluded = patch(&app, &admin, &id, json!({"excluded_teams": [engineering]})).await;
    let problem = assert_problem(excluded, 422, "validation").await;
    assert_eq!(problem_fields(&problem), ["excluded_teams"]);
    let partly = patch(&app, &admin, &id, json!({"excluded_teams": [platform]})).await;
    assert_eq!(partly.status(), 200);
    app.stop().await;
}
