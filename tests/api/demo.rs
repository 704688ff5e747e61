//! The synthetic organisation: deterministic for a seed, realistic in shape,
//! written through the same code as the API, and usable at once.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::helpers::{TestApp, TestDatabase, data_dir, peil_command, spawn_app};

/// Everything about an organisation except its random ids:
/// email → (team path, status, [(kind, date)]).
async fn content(
    app: &TestApp,
    token: &str,
) -> BTreeMap<String, (String, String, Vec<(String, String)>)> {
    let teams: Vec<Value> = app
        .get("/api/v1/teams", Some(token))
        .await
        .json()
        .await
        .unwrap();
    let paths: BTreeMap<&str, &str> = teams
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), t["path"].as_str().unwrap()))
        .collect();
    let page: Value = app
        .get("/api/v1/people?limit=1000", Some(token))
        .await
        .json()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for person in page["items"].as_array().unwrap() {
        let id = person["id"].as_str().unwrap();
        let history: Vec<Value> = app
            .get(&format!("/api/v1/people/{id}/history"), Some(token))
            .await
            .json()
            .await
            .unwrap();
        out.insert(
            person["email"].as_str().unwrap().to_owned(),
            (
                paths[person["team_id"].as_str().unwrap()].to_owned(),
                person["status"].as_str().unwrap().to_owned(),
                history
                    .iter()
                    .map(|e| {
                        (
                            e["kind"].as_str().unwrap().to_owned(),
                            e["effective_date"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect(),
            ),
        );
    }
    out
}

async fn generate(app: &TestApp, people: usize, seed: u64) -> String {
    generate_with_waves(app, people, seed, 0).await
}

async fn generate_with_waves(app: &TestApp, people: usize, seed: u64, waves: usize) -> String {
    let db = app.db();
    let keys = app.keys();
    let summary = tokio::task::spawn_blocking(move || {
        let spec = peil::demo::DemoSpec {
            people,
            seed,
            years: 3,
            today: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            waves,
            team_size: peil::demo::TEAM_SIZE,
        };
        peil::demo::generate(&db, &keys, &spec, |_| {}).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(summary.people, people);
    let (_, email, password) = &summary.accounts[0];
    app.ready_token(email, password.expose()).await
}

#[tokio::test]
async fn the_same_seed_gives_the_same_organisation() {
    let app = spawn_app().await;
    let first = generate(&app, 60, 42).await;
    let second = generate(&app, 60, 42).await;
    let other = generate(&app, 60, 43).await;
    let a = content(&app, &first).await;
    assert_eq!(a.len(), 60);
    assert_eq!(a, content(&app, &second).await);
    assert_ne!(a, content(&app, &other).await);

    // Realistic: both languages, several years of history with every kind of event.
    let kinds: std::collections::HashSet<&str> = a
        .values()
        .flat_map(|(_, _, history)| history.iter().map(|(kind, _)| kind.as_str()))
        .collect();
    for kind in ["joined", "moved", "level_changed", "title_changed", "left"] {
        assert!(kinds.contains(kind), "no {kind} event in {kinds:?}");
    }
    app.stop().await;
}

#[test]
fn the_demo_command_prints_accounts_that_sign_in() {
    let database = TestDatabase::new();
    let dir = data_dir(&database);
    let output = peil_command(&dir, &database.url)
        .args(["demo", "--people", "40", "--seed", "5"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("40 people"), "{stdout}");
    let admin_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("admin "))
        .expect("an admin account line");
    let fields: Vec<&str> = admin_line.split_whitespace().collect();
    let (email, password) = (fields[1], fields[2]);
    let server = crate::helpers::PeilProcess::serve(peil_command(&dir, &database.url));
    let login = serde_json::json!({"email": email, "password": password});
    let (status, body) = crate::helpers::blocking_json(
        "POST",
        &server.url("/api/v1/auth/login"),
        Some(&login),
        None,
    );
    assert_eq!(status, 200, "{body}");
    server.stop();
}

#[tokio::test]
async fn the_demo_has_past_waves_worth_reading() {
    let app = spawn_app().await;
    let token = generate_with_waves(&app, 240, 7, 6).await;
    let waves: Value = app.get_json("/api/v1/waves", Some(&token)).await;
    let waves = waves.as_array().unwrap();
    assert_eq!(waves.len(), 6);
    assert!(waves.iter().all(|w| w["status"] == "closed"), "{waves:?}");

    // Every theme asked twice (the templates take turns): trends with a change.
    let trends: Value = app.get_json("/api/v1/results/trends", Some(&token)).await;
    let themes = trends["themes"].as_array().unwrap();
    assert_eq!(themes.len(), 3);
    for theme in themes {
        let points = theme["points"].as_array().unwrap();
        assert_eq!(points.len(), 2, "{theme}");
        assert_eq!(points[1]["suppressed"], false, "{theme}");
        assert!(points[1]["change"]["score"].is_number(), "{theme}");
    }

    // Teams differ: the published theme scores are not all alike.
    let map: Value = app.get_json("/api/v1/results/heatmap", Some(&token)).await;
    let scores: Vec<f64> = map["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["cells"].as_array().unwrap().clone())
        .filter_map(|c| c["score"].as_f64())
        .collect();
    assert!(scores.len() >= 6, "{map}");
    let (low, high) = scores
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), s| (l.min(*s), h.max(*s)));
    assert!(high - low > 0.3, "{scores:?}");

    // Its rows are every team, by path, named as the teams API names them;
    // a department's manager gets exactly the department's rows.
    let teams: Value = app.get_json("/api/v1/teams", Some(&token)).await;
    let teams = teams.as_array().unwrap();
    let mut expected: Vec<(String, String)> = teams
        .iter()
        .map(|t| {
            (
                t["path"].as_str().unwrap().to_owned(),
                t["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    expected.sort();
    let rows = |map: &Value| -> Vec<(String, String)> {
        map["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["team_path"].as_str().unwrap().to_owned(),
                    r["team_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(rows(&map), expected);
    assert!(
        expected
            .iter()
            .any(|(path, _)| path.matches('/').count() >= 2),
        "{expected:?}"
    );
    let department = teams.iter().find(|t| t["parent_id"].is_null()).unwrap();
    let prefix = format!("{}/", department["path"].as_str().unwrap());
    let (_, manager) = app
        .account_token(&token, "manager", department["id"].as_str())
        .await;
    let managed: Value = app
        .get_json("/api/v1/results/heatmap", Some(&manager))
        .await;
    let within: Vec<(String, String)> = expected
        .iter()
        .filter(|(path, _)| *path == department["path"] || path.starts_with(&prefix))
        .cloned()
        .collect();
    assert!(within.len() > 1, "{within:?}");
    assert_eq!(rows(&managed), within);

    // Mobility worth reading: the year up to the demo's today has every
    // kind of flow, for every team, and the pulses stand beside it.
    app.clock.set("2026-11-01T12:00:00Z".parse().unwrap());
    let report: Value = app.get_json("/api/v1/mobility/report", Some(&token)).await;
    assert_eq!(report["period"]["to"], "2026-11-02");
    let counts = &report["organisation"]["counts"];
    for count in [
        "hires",
        "moves_within",
        "promotions",
        "exits",
        "voluntary_exits",
    ] {
        assert!(counts[count].as_u64() > Some(0), "no {count}: {counts}");
    }
    assert!(report["organisation"]["time_in_role"]["median_months"].as_f64() > Some(1.0));
    assert_eq!(report["teams"].as_array().unwrap().len(), teams.len());
    let flows: Value = app
        .get_json("/api/v1/mobility/flows?depth=1", Some(&token))
        .await;
    assert!(!flows["flows"].as_array().unwrap().is_empty(), "{flows}");
    let beside: Value = app
        .get_json("/api/v1/mobility/pulses?months=1", Some(&token))
        .await;
    let themes = beside["themes"].as_array().unwrap();
    assert!(!themes.is_empty(), "{beside}");
    for theme in themes {
        // How many teams were published in the windows that have passed
        // varies with the answers (their order follows random ids).
        let teams = theme["teams"].as_array().unwrap();
        assert!(!teams.is_empty(), "{theme}");
        assert_eq!(theme["exit_rate"]["teams"], teams.len(), "{theme}");
        assert!(
            teams
                .iter()
                .all(|t| t["average_headcount"].as_f64() > Some(0.0))
        );
    }
    app.stop().await;
}
