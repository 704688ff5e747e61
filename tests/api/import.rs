//! `POST /api/v1/people/import`: CSV and JSON, all or nothing, every bad row
//! named, full mode, dry runs, conflicts, team paths, history, idempotency.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, problem_fields, spawn_app};

const CSV: &str = "\u{feff}external_id,email,name,team,language,job_title,level,effective_date\n\
E1,anna@example.org,Anna de Vries,Engineering/Platform,nl,Engineer,3,2024-01-15\n\
E2,bob@example.org,Bob Jansen,Engineering/Platform,en,Engineer,2,2024-03-01\n\
E3,carla@example.org,Carla Smit,Engineering/Data,,Analyst,,\n";

async fn import(
    app: &TestApp,
    token: &str,
    query: &str,
    content_type: &str,
    body: &str,
) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/people/import{query}")))
        .bearer_auth(token)
        .header("Content-Type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn people(app: &TestApp, token: &str) -> Vec<Value> {
    let page: Value = app
        .get("/api/v1/people?limit=1000", Some(token))
        .await
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_csv_creates_teams_people_and_history_and_is_idempotent_in_effect() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let response = import(&app, &admin, "", "text/csv", CSV).await;
    assert_eq!(response.status(), 200);
    let summary: Value = response.json().await.unwrap();
    assert_eq!(summary["created"], 3);
    assert_eq!(summary["teams_created"], 3, "Engineering, Platform, Data");
    assert_eq!(summary["dry_run"], false);

    let teams: Vec<Value> = app
        .get("/api/v1/teams", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let paths: Vec<&str> = teams.iter().map(|t| t["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        vec!["Engineering", "Engineering/Data", "Engineering/Platform"]
    );

    let all = people(&app, &admin).await;
    let anna = all.iter().find(|p| p["external_id"] == "E1").unwrap();
    assert_eq!(anna["language"], "nl");
    assert_eq!(anna["level"], 3);
    let carla = all.iter().find(|p| p["external_id"] == "E3").unwrap();
    assert_eq!(carla["language"], "en", "the organisation's default");
    let history: Vec<Value> = app
        .get(
            &format!("/api/v1/people/{}/history", anna["id"].as_str().unwrap()),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["kind"], "joined");
    assert_eq!(history[0]["effective_date"], "2024-01-15");

    // The same file again changes nothing.
    let again: Value = import(&app, &admin, "", "text/csv", CSV)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (again["created"].clone(), again["unchanged"].clone()),
        (json!(0), json!(3))
    );

    // A move by import is a dated event; the team by its path. An empty cell
    // clears (the title); a column the file lacks keeps its value (the level).
    let moved = "external_id,email,name,team,job_title,effective_date\nE2,bob@example.org,Bob Jansen,engineering/data,,2025-06-01\n";
    let summary: Value = import(&app, &admin, "", "text/csv", moved)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["updated"], 1);
    let bob = people(&app, &admin)
        .await
        .into_iter()
        .find(|p| p["external_id"] == "E2")
        .unwrap();
    let history: Vec<Value> = app
        .get(
            &format!("/api/v1/people/{}/history", bob["id"].as_str().unwrap()),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = history
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["joined", "moved", "title_changed"]);
    assert_eq!(bob["job_title"], Value::Null);
    assert_eq!(bob["level"], 2);
    assert_eq!(history[1]["effective_date"], "2025-06-01");
    app.stop().await;
}

#[tokio::test]
async fn bad_rows_are_all_named_and_nothing_is_imported() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let csv = "email,name,team,level,status,effective_date\n\
good@example.org,Good,Sales,1,active,2024-01-01\n\
not-an-email,,Sales,high,gone,yesterday\n\
good@example.org,Twin,Sales,,,\n\
x@example.org,X,Bad/Path/,,,\n";
    let response = import(&app, &admin, "", "text/csv", csv).await;
    let problem = assert_problem(response, 422, "validation").await;
    assert_eq!(
        problem_fields(&problem),
        vec![
            "rows.2.effective_date",
            "rows.2.email",
            "rows.2.level",
            "rows.2.name",
            "rows.2.status",
            "rows.3.email",
            "rows.4.team",
        ]
    );
    assert!(people(&app, &admin).await.is_empty(), "nothing imported");
    let teams: Vec<Value> = app
        .get("/api/v1/teams", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert!(teams.is_empty(), "no team created");

    let unknown = import(&app, &admin, "", "text/csv", "email,name,team,salary\n").await;
    let problem = assert_problem(unknown, 422, "validation").await;
    assert!(
        problem["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("salary")
    );
    let missing = import(&app, &admin, "", "text/csv", "email,name\n").await;
    assert_problem(missing, 422, "validation").await;
    let wrong_type = import(&app, &admin, "", "text/plain", "email,name,team\n").await;
    assert_problem(wrong_type, 415, "unsupported-media-type").await;
    app.stop().await;
}

#[tokio::test]
async fn external_id_and_email_of_two_people_conflict() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    import(&app, &admin, "", "text/csv", CSV).await;
    let crossed = "external_id,email,name,team\nE1,bob@example.org,Anna,Engineering\n";
    let problem = assert_problem(
        import(&app, &admin, "", "text/csv", crossed).await,
        422,
        "validation",
    )
    .await;
    assert_eq!(problem_fields(&problem), vec!["rows.1.external_id"]);
    let other_id = "external_id,email,name,team\nE9,anna@example.org,Anna,Engineering\n";
    let problem = assert_problem(
        import(&app, &admin, "", "text/csv", other_id).await,
        422,
        "validation",
    )
    .await;
    assert_eq!(problem_fields(&problem), vec!["rows.1.email"]);
    app.stop().await;
}

#[tokio::test]
async fn full_mode_marks_the_absent_as_left_and_dry_runs_change_nothing() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    import(&app, &admin, "", "text/csv", CSV).await;
    let only_anna =
        "external_id,email,name,team\nE1,anna@example.org,Anna de Vries,Engineering/Platform\n";

    let dry: Value = import(
        &app,
        &admin,
        "?mode=full&dry_run=true",
        "text/csv",
        only_anna,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["left"], 2);
    assert_eq!(
        dry["unchanged"], 1,
        "columns the file lacks keep their values"
    );
    assert!(
        people(&app, &admin)
            .await
            .iter()
            .all(|p| p["status"] == "active"),
        "a dry run changes nothing"
    );

    let real: Value = import(&app, &admin, "?mode=full", "text/csv", only_anna)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (real["left"].clone(), real["dry_run"].clone()),
        (json!(2), json!(false))
    );
    let all = people(&app, &admin).await;
    let left: Vec<&str> = all
        .iter()
        .filter(|p| p["status"] == "left")
        .map(|p| p["external_id"].as_str().unwrap())
        .collect();
    assert_eq!(left.len(), 2);
    assert!(!left.contains(&"E1"));
    app.stop().await;
}

#[tokio::test]
async fn json_rows_and_teams_by_external_id() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = app
        .post_json(
            "/api/v1/teams",
            &json!({"name": "Support", "external_id": "T-9"}),
            Some(&admin),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let rows = json!([
        {"external_id": 1001, "email": "d@example.org", "name": "D", "team": "T-9", "level": 4},
        {"email": "e@example.org", "name": "E", "team": "T-9", "job_title": null}
    ]);
    let response = import(&app, &admin, "", "application/json", &rows.to_string()).await;
    assert_eq!(response.status(), 200);
    let all = people(&app, &admin).await;
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|p| p["team_id"] == team["id"]));
    assert!(
        all.iter()
            .any(|p| p["external_id"] == "1001" && p["level"] == 4)
    );

    let bad = json!({"rows": [{"email": "f@example.org", "name": "F", "team": "T-9", "colour": "blue"}, 7]});
    let problem = assert_problem(
        import(&app, &admin, "", "application/json", &bad.to_string()).await,
        422,
        "validation",
    )
    .await;
    assert_eq!(problem_fields(&problem), vec!["rows.1.colour", "rows.2"]);
    app.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_replays_instead_of_importing_twice() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let send = |body: &'static str| {
        app.client
            .post(app.url("/api/v1/people/import"))
            .bearer_auth(&admin)
            .header("Content-Type", "text/csv")
            .header("Idempotency-Key", "hris-sync-2026-11-22")
            .body(body)
            .send()
    };
    let first: Value = send(CSV).await.unwrap().json().await.unwrap();
    assert_eq!(first["created"], 3);
    // Someone edits a person; a replay must not undo it.
    let anna = people(&app, &admin)
        .await
        .into_iter()
        .find(|p| p["external_id"] == "E1")
        .unwrap();
    app.request(
        "PATCH",
        &format!("/api/v1/people/{}", anna["id"].as_str().unwrap()),
        Some(&admin),
        Some(&json!({"job_title": "Lead"})),
    )
    .await;
    let replay: Value = send(CSV).await.unwrap().json().await.unwrap();
    assert_eq!(replay, first, "the first response, replayed");
    let anna = people(&app, &admin)
        .await
        .into_iter()
        .find(|p| p["external_id"] == "E1")
        .unwrap();
    assert_eq!(anna["job_title"], "Lead", "nothing was imported again");

    let different = send("email,name,team\nz@example.org,Z,Sales\n")
        .await
        .unwrap();
    assert_problem(different, 409, "conflict").await;
    app.stop().await;
}
