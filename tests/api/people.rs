//! People and their history: create, change, leave, rehire, corrections,
//! pagination and filters.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, problem_fields, spawn_app};

async fn person(app: &TestApp, token: &str, body: Value) -> Value {
    let response = app.post_json("/api/v1/people", &body, Some(token)).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn history(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    app.get(&format!("/api/v1/people/{id}/history"), Some(token))
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn changes_are_dated_history_events() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let platform = app.create_team(&admin, "Platform", None).await;
    let data = app.create_team(&admin, "Data", None).await;
    let anna = person(
        &app,
        &admin,
        json!({"email": "Anna@Example.org", "name": "Anna de Vries", "team_id": platform,
               "job_title": "Engineer", "level": 3, "language": "nl", "effective_date": "2024-02-01"}),
    )
    .await;
    let id = anna["id"].as_str().unwrap();
    assert_eq!(anna["email"], "anna@example.org");
    assert_eq!(anna["status"], "active");

    let promoted = app
        .request(
            "PATCH",
            &format!("/api/v1/people/{id}"),
            Some(&admin),
            Some(&json!({"team_id": data, "job_title": "Senior engineer", "level": 4, "effective_date": "2025-03-01"})),
        )
        .await;
    assert_eq!(promoted.status(), 200);
    let left = app
        .request(
            "DELETE",
            &format!("/api/v1/people/{id}?exit_kind=voluntary&effective_date=2026-01-31"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(left.status(), 204);
    let back = app
        .request(
            "PATCH",
            &format!("/api/v1/people/{id}"),
            Some(&admin),
            Some(&json!({"status": "active", "effective_date": "2026-09-01"})),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(back["status"], "active");
    assert_eq!(back["exit_kind"], Value::Null);

    let events = history(&app, &admin, id).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec![
            "joined",
            "moved",
            "title_changed",
            "level_changed",
            "left",
            "rejoined"
        ]
    );
    assert_eq!(events[0]["effective_date"], "2024-02-01");
    assert_eq!(events[1]["team_id"], data.as_str());
    assert_eq!(events[4]["exit_kind"], "voluntary");
    assert_eq!(events[5]["effective_date"], "2026-09-01");

    // Changing nothing that history tracks records nothing.
    app.request(
        "PATCH",
        &format!("/api/v1/people/{id}"),
        Some(&admin),
        Some(&json!({"name": "Anna van Dijk"})),
    )
    .await;
    assert_eq!(history(&app, &admin, id).await.len(), 6);
    app.stop().await;
}

#[tokio::test]
async fn a_correction_supersedes_an_event_and_moves_the_person() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let wrong = app.create_team(&admin, "Wrong", None).await;
    let right = app.create_team(&admin, "Right", None).await;
    let bob = person(
        &app,
        &admin,
        json!({"email": "bob@example.org", "name": "Bob", "team_id": wrong, "effective_date": "2025-01-06"}),
    )
    .await;
    let id = bob["id"].as_str().unwrap();
    let joined = history(&app, &admin, id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let corrected = app
        .post_json(
            &format!("/api/v1/people/{id}/history/{joined}/correction"),
            &json!({"team_id": right, "effective_date": "2025-01-01"}),
            Some(&admin),
        )
        .await;
    assert_eq!(corrected.status(), 201);
    let corrected: Value = corrected.json().await.unwrap();
    assert_eq!(corrected["supersedes_id"], joined.as_str());
    assert_eq!(corrected["kind"], "joined");

    let events = history(&app, &admin, id).await;
    assert_eq!(events.len(), 2, "both stay");
    assert_eq!(events[0]["superseded_by"], corrected["id"]);
    let now: Value = app
        .get(&format!("/api/v1/people/{id}"), Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["team_id"], right.as_str());

    let again = app
        .post_json(
            &format!("/api/v1/people/{id}/history/{joined}/correction"),
            &json!({"team_id": wrong}),
            Some(&admin),
        )
        .await;
    assert_problem(again, 409, "conflict").await;
    app.stop().await;
}

#[tokio::test]
async fn people_are_validated_and_unique_per_organisation() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = app.create_team(&admin, "Team", None).await;
    let bad = app
        .post_json(
            "/api/v1/people",
            &json!({"email": "nope", "name": "", "team_id": team, "level": -2, "language": "de"}),
            Some(&admin),
        )
        .await;
    let problem = assert_problem(bad, 422, "validation").await;
    assert_eq!(
        problem_fields(&problem),
        vec!["email", "language", "level", "name"]
    );

    let no_team = app
        .post_json(
            "/api/v1/people",
            &json!({"email": "a@example.org", "name": "A", "team_id": "nope"}),
            Some(&admin),
        )
        .await;
    let problem = assert_problem(no_team, 422, "validation").await;
    assert_eq!(problem_fields(&problem), vec!["team_id"]);

    person(
        &app,
        &admin,
        json!({"email": "a@example.org", "name": "A", "team_id": team, "external_id": "E1"}),
    )
    .await;
    for body in [
        json!({"email": "A@example.org", "name": "Twin", "team_id": team}),
        json!({"email": "b@example.org", "name": "B", "team_id": team, "external_id": "E1"}),
    ] {
        let twin = app.post_json("/api/v1/people", &body, Some(&admin)).await;
        assert_problem(twin, 409, "conflict").await;
    }
    let team_in_use = app
        .request(
            "DELETE",
            &format!("/api/v1/teams/{team}"),
            Some(&admin),
            None,
        )
        .await;
    assert_problem(team_in_use, 409, "conflict").await;
    app.stop().await;
}

#[tokio::test]
async fn the_list_pages_by_cursor_and_filters_by_team() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let engineering = app.create_team(&admin, "Engineering", None).await;
    let platform = app
        .create_team(&admin, "Platform", Some(&engineering))
        .await;
    for i in 0..5 {
        person(&app, &admin, json!({"email": format!("e{i}@example.org"), "name": format!("E{i}"), "team_id": engineering})).await;
        person(&app, &admin, json!({"email": format!("p{i}@example.org"), "name": format!("P{i}"), "team_id": platform})).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/people?limit=3&cursor={c}"),
            None => "/api/v1/people?limit=3".to_owned(),
        };
        let page: Value = app.get(&path, Some(&admin)).await.json().await.unwrap();
        for p in page["items"].as_array().unwrap() {
            seen.push(p["email"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 10);

    let own: Value = app
        .get(
            &format!("/api/v1/people?team_id={engineering}"),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(own["items"].as_array().unwrap().len(), 5);
    let subtree: Value = app
        .get(
            &format!("/api/v1/people?team_id={engineering}&include_subteams=true"),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(subtree["items"].as_array().unwrap().len(), 10);

    let bad_status = app.get("/api/v1/people?status=gone", Some(&admin)).await;
    assert_problem(bad_status, 400, "malformed-request").await;
    let bad_limit = app.get("/api/v1/people?limit=0", Some(&admin)).await;
    assert_problem(bad_limit, 422, "validation").await;
    app.stop().await;
}
