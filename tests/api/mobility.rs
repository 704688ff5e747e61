//! Mobility figures on a history with known events, checked exactly: a
//! promotion, a lateral move across departments, an exit and a rehire, a
//! move corrected into the year before, an exit of each kind, a hire on
//! the first day and an exit on the day after the last; period boundaries,
//! the organisation's time zone, a manager's reach, CSV.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, problem_fields, spawn_app};
use crate::pulses::at;

const YEAR: &str = "from=2025-01-01&to=2026-01-01";

async fn person(
    app: &TestApp,
    admin: &str,
    name: &str,
    team: &str,
    level: i64,
    title: &str,
    joined: &str,
) -> String {
    let created = app
        .post_json(
            "/api/v1/people",
            &json!({
                "email": format!("{}@example.org", name.to_lowercase()),
                "name": name,
                "team_id": team,
                "level": level,
                "job_title": title,
                "effective_date": joined,
            }),
            Some(admin),
        )
        .await;
    assert_eq!(created.status(), 201);
    created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn change(app: &TestApp, admin: &str, id: &str, body: Value) {
    let changed = app
        .request(
            "PATCH",
            &format!("/api/v1/people/{id}"),
            Some(admin),
            Some(&body),
        )
        .await;
    assert_eq!(changed.status(), 200, "{body}");
}

struct Org {
    app: TestApp,
    admin: String,
    eng: String,
    platform: String,
    data: String,
    sales: String,
    field: String,
}

/// Engineering (Platform, Data) and Sales (Field), and eight people whose
/// histories cross 2025 in every way that counts.
async fn organisation() -> Org {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let eng = app.create_team(&admin, "Engineering", None).await;
    let platform = app.create_team(&admin, "Platform", Some(&eng)).await;
    let data = app.create_team(&admin, "Data", Some(&eng)).await;
    let sales = app.create_team(&admin, "Sales", None).await;
    let field = app.create_team(&admin, "Field", Some(&sales)).await;

    // Ann: promoted in Platform.
    let ann = person(&app, &admin, "Ann", &platform, 2, "Engineer", "2020-03-01").await;
    change(
        &app,
        &admin,
        &ann,
        json!({"level": 3, "job_title": "Senior Engineer", "effective_date": "2025-04-01"}),
    )
    .await;
    // Bob: sideways from Platform (Engineering) to Field (Sales), same level.
    let bob = person(&app, &admin, "Bob", &platform, 2, "Engineer", "2019-01-01").await;
    change(
        &app,
        &admin,
        &bob,
        json!({"team_id": field, "job_title": "Account Manager", "effective_date": "2025-06-15"}),
    )
    .await;
    // Cem: leaves Data, comes back.
    let cem = person(&app, &admin, "Cem", &data, 1, "Analyst", "2021-01-01").await;
    change(
        &app,
        &admin,
        &cem,
        json!({"status": "left", "exit_kind": "voluntary", "effective_date": "2025-03-01"}),
    )
    .await;
    change(
        &app,
        &admin,
        &cem,
        json!({"status": "active", "effective_date": "2025-09-01"}),
    )
    .await;
    // Dee: let go on the last day of the year.
    let dee = person(&app, &admin, "Dee", &data, 3, "Lead", "2018-05-01").await;
    change(
        &app,
        &admin,
        &dee,
        json!({"status": "left", "exit_kind": "involuntary", "effective_date": "2025-12-31"}),
    )
    .await;
    // Eve: hired on the first day.
    person(
        &app,
        &admin,
        "Eve",
        &field,
        1,
        "Account Manager",
        "2025-01-01",
    )
    .await;
    // Fay: leaves on the first day after the year.
    let fay = person(
        &app,
        &admin,
        "Fay",
        &field,
        2,
        "Account Manager",
        "2016-01-01",
    )
    .await;
    change(
        &app,
        &admin,
        &fay,
        json!({"status": "left", "exit_kind": "voluntary", "effective_date": "2026-01-01"}),
    )
    .await;
    // Gus: a move to Data recorded in February, corrected to December 2024.
    let gus = person(&app, &admin, "Gus", &platform, 2, "Engineer", "2022-02-01").await;
    change(
        &app,
        &admin,
        &gus,
        json!({"team_id": data, "effective_date": "2025-02-01"}),
    )
    .await;
    let history: Vec<Value> = app
        .get_json(&format!("/api/v1/people/{gus}/history"), Some(&admin))
        .await;
    let moved = history.iter().find(|e| e["kind"] == "moved").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let corrected = app
        .post_json(
            &format!("/api/v1/people/{gus}/history/{moved}/correction"),
            &json!({"effective_date": "2024-12-15"}),
            Some(&admin),
        )
        .await;
    assert_eq!(corrected.status(), 201);
    // Hal: leaves Field for no recorded reason.
    let hal = person(
        &app,
        &admin,
        "Hal",
        &field,
        1,
        "Account Manager",
        "2024-06-01",
    )
    .await;
    change(
        &app,
        &admin,
        &hal,
        json!({"status": "left", "exit_kind": "other", "effective_date": "2025-05-01"}),
    )
    .await;

    Org {
        app,
        admin,
        eng,
        platform,
        data,
        sales,
        field,
    }
}

fn counts(figures: &Value) -> Vec<(String, i64)> {
    figures["counts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
        .filter(|(_, v)| *v != 0)
        .collect()
}

fn named(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    let mut pairs: Vec<(String, i64)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
    pairs.sort();
    pairs
}

fn sorted(mut pairs: Vec<(String, i64)>) -> Vec<(String, i64)> {
    pairs.sort();
    pairs
}

#[tokio::test]
async fn every_figure_of_a_known_history_is_exact() {
    let Org {
        app,
        admin,
        eng,
        platform,
        data,
        sales,
        field,
    } = organisation().await;

    let org: Value = app
        .get_json(
            &format!("/api/v1/mobility/organisation?{YEAR}"),
            Some(&admin),
        )
        .await;
    assert_eq!(
        org["period"],
        json!({"from": "2025-01-01", "to": "2026-01-01"})
    );
    assert_eq!(org["group"]["kind"], "organisation");
    let f = &org["figures"];
    // Seven at the start (Eve joins on the first day), six at the end (Fay
    // leaves the day after): 7 + 1 hire + 1 rehire − 3 exits.
    assert_eq!(
        f["headcount"],
        json!({"start": 7, "end": 6, "average": 6.82})
    );
    assert_eq!(
        sorted(counts(f)),
        named(&[
            ("hires", 1),
            ("rehires", 1),
            ("moves_within", 1),
            ("promotions", 1),
            ("lateral_moves", 1),
            ("exits", 3),
            ("voluntary_exits", 1),
            ("involuntary_exits", 1),
            ("other_exits", 1),
        ])
    );
    // 2,490 person-days over 365: per 100 average headcount.
    assert_eq!(f["rates"]["hires"], 14.66);
    assert_eq!(f["rates"]["exits"], 43.98);
    assert_eq!(f["rates"]["voluntary_exits"], 14.66);
    assert_eq!(f["rates"]["moves_in"], 0.0);
    for one in [
        "rehires",
        "promotions",
        "lateral_moves",
        "involuntary_exits",
        "other_exits",
    ] {
        assert_eq!(f["rates"][one], 14.66, "{one}: one a year over 6.82");
    }
    assert_eq!(f["rates"]["moves_out"], 0.0);
    // Of three who came into a team (a hire, a rehire, Bob), one from inside.
    assert_eq!(f["internal_fill_share"], 0.3333);
    // In role at the end: Cem 122 days, Bob 200, Ann 275, Eve 365, Gus 382,
    // Fay ten years; median (275 + 365) / 2 days.
    let role = &f["time_in_role"];
    assert_eq!(role["people"], 6);
    assert_eq!(role["median_months"], 10.5);
    assert_eq!(
        role["bands"],
        json!([
            {"months": "0-6", "people": 1},
            {"months": "6-12", "people": 3},
            {"months": "12-24", "people": 1},
            {"months": "24-36", "people": 0},
            {"months": "36-60", "people": 0},
            {"months": "60+", "people": 1},
        ])
    );
    assert_eq!(role["stuck_months"], 36);
    assert_eq!(role["stuck"], 1);
    assert_eq!(role["stuck_share"], 0.1667);

    // Platform's own: Ann promoted, Bob gone sideways to Sales.
    let p: Value = app
        .get_json(
            &format!("/api/v1/mobility/teams/{platform}?{YEAR}"),
            Some(&admin),
        )
        .await;
    assert_eq!(p["group"]["path"], "Engineering/Platform");
    let f = &p["figures"];
    assert_eq!(
        f["headcount"],
        json!({"start": 2, "end": 1, "average": 1.45})
    );
    assert_eq!(
        sorted(counts(f)),
        named(&[("moves_out", 1), ("promotions", 1), ("lateral_moves", 1)])
    );
    assert_eq!(f["rates"]["moves_out"], 68.87);
    assert!(f["internal_fill_share"].is_null(), "nobody came");
    assert_eq!(f["time_in_role"]["median_months"], 9.0);

    // Engineering's subtree: Bob leaves it; Gus's move is within, but in 2024.
    let e: Value = app
        .get_json(
            &format!("/api/v1/mobility/subtrees/{eng}?{YEAR}"),
            Some(&admin),
        )
        .await;
    let f = &e["figures"];
    assert_eq!(
        f["headcount"],
        json!({"start": 5, "end": 3, "average": 3.95})
    );
    assert_eq!(
        sorted(counts(f)),
        named(&[
            ("rehires", 1),
            ("moves_out", 1),
            ("promotions", 1),
            ("lateral_moves", 1),
            ("exits", 2),
            ("voluntary_exits", 1),
            ("involuntary_exits", 1),
        ])
    );
    assert_eq!(f["internal_fill_share"], 0.0);
    // Engineering itself has nobody of its own.
    let own: Value = app
        .get_json(
            &format!("/api/v1/mobility/teams/{eng}?{YEAR}"),
            Some(&admin),
        )
        .await;
    assert_eq!(
        own["figures"]["headcount"],
        json!({"start": 0, "end": 0, "average": 0.0})
    );
    assert!(own["figures"]["rates"]["hires"].is_null());

    // Sales: Eve hired, Bob in, Hal out; half its newcomers from inside.
    let s: Value = app
        .get_json(
            &format!("/api/v1/mobility/subtrees/{sales}?{YEAR}"),
            Some(&admin),
        )
        .await;
    let f = &s["figures"];
    assert_eq!(
        f["headcount"],
        json!({"start": 2, "end": 3, "average": 2.88})
    );
    assert_eq!(
        sorted(counts(f)),
        named(&[
            ("hires", 1),
            ("moves_in", 1),
            ("exits", 1),
            ("other_exits", 1)
        ])
    );
    assert_eq!(f["internal_fill_share"], 0.5);
    let d: Value = app
        .get_json(
            &format!("/api/v1/mobility/teams/{data}?{YEAR}"),
            Some(&admin),
        )
        .await;
    assert_eq!(d["figures"]["headcount"]["start"], 3);
    assert_eq!(d["figures"]["headcount"]["end"], 2);

    // The flow matrix: team to team, and department to department.
    let flows: Value = app
        .get_json(&format!("/api/v1/mobility/flows?{YEAR}"), Some(&admin))
        .await;
    assert_eq!(
        flows["flows"],
        json!([{
            "from_team_id": platform, "from_path": "Engineering/Platform",
            "to_team_id": field, "to_path": "Sales/Field", "moves": 1
        }])
    );
    let departments: Value = app
        .get_json(
            &format!("/api/v1/mobility/flows?{YEAR}&depth=1"),
            Some(&admin),
        )
        .await;
    assert_eq!(departments["flows"][0]["from_team_id"], eng);
    assert_eq!(departments["flows"][0]["to_team_id"], sales);
    // 2024: Gus's corrected move, Platform to Data; within Engineering at depth 1.
    let earlier: Value = app
        .get_json(
            "/api/v1/mobility/flows?from=2024-01-01&to=2025-01-01",
            Some(&admin),
        )
        .await;
    assert_eq!(earlier["flows"][0]["from_team_id"], platform);
    assert_eq!(earlier["flows"][0]["to_team_id"], data);
    let earlier: Value = app
        .get_json(
            "/api/v1/mobility/flows?from=2024-01-01&to=2025-01-01&depth=1",
            Some(&admin),
        )
        .await;
    assert_eq!(earlier["flows"], json!([]));

    // The report holds the same figures for every group; so does its CSV.
    let report: Value = app
        .get_json(&format!("/api/v1/mobility/report?{YEAR}"), Some(&admin))
        .await;
    assert_eq!(report["organisation"], org["figures"]);
    let teams = report["teams"].as_array().unwrap();
    let paths: Vec<&str> = teams.iter().map(|t| t["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "Engineering",
            "Engineering/Data",
            "Engineering/Platform",
            "Sales",
            "Sales/Field"
        ]
    );
    assert_eq!(teams[2]["team"], p["figures"]);
    assert_eq!(teams[0]["subtree"], e["figures"]);
    let csv = app
        .request_with_headers(
            "GET",
            &format!("/api/v1/mobility/report?{YEAR}"),
            Some(&admin),
            &[("accept", "text/csv")],
        )
        .await;
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1 + 1 + 2 * 5,
        "header, organisation, two per team"
    );
    assert!(lines[0].starts_with("group_kind,team_id,path,from,to,headcount_start,headcount_end,headcount_average,hires,rehires,moves_in,moves_out"));
    assert!(
        lines[1].starts_with(
            "organisation,,,2025-01-01,2026-01-01,7,6,6.82,1,1,0,0,1,1,0,1,3,1,1,1,14.66,"
        ),
        "{}",
        lines[1]
    );
    let flows_csv = app
        .request_with_headers(
            "GET",
            &format!("/api/v1/mobility/flows?{YEAR}"),
            Some(&admin),
            &[("accept", "text/csv")],
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        flows_csv,
        format!(
            "from_team_id,from_path,to_team_id,to_path,moves\n{platform},Engineering/Platform,{field},Sales/Field,1\n"
        )
    );
    app.stop().await;
}

#[tokio::test]
async fn periods_are_calendar_days_in_the_organisations_time_zone() {
    let Org { app, admin, .. } = organisation().await;
    // 23:30 UTC on New Year's Eve is already 2026 in Amsterdam: the default
    // period ends with that day, and starts a year before.
    app.clock.set(at("2025-12-31T23:30:00Z"));
    let org: Value = app
        .get_json("/api/v1/mobility/organisation", Some(&admin))
        .await;
    assert_eq!(
        org["period"],
        json!({"from": "2025-01-02", "to": "2026-01-02"})
    );
    // Eve's hire (1 January) falls before it, Fay's exit (1 January 2026) in it.
    let counts = &org["figures"]["counts"];
    assert_eq!(counts["hires"], 0);
    assert_eq!(counts["exits"], 4);
    assert_eq!(counts["voluntary_exits"], 2);
    // In UTC it is still 2025.
    let changed = app
        .request(
            "PATCH",
            "/api/v1/organisation",
            Some(&admin),
            Some(&json!({"time_zone": "UTC"})),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let org: Value = app
        .get_json("/api/v1/mobility/organisation", Some(&admin))
        .await;
    assert_eq!(
        org["period"],
        json!({"from": "2025-01-01", "to": "2026-01-01"})
    );

    // A one-day period: the last day of the year holds Dee's exit only.
    let day: Value = app
        .get_json(
            "/api/v1/mobility/organisation?from=2025-12-31&to=2026-01-01",
            Some(&admin),
        )
        .await;
    assert_eq!(day["figures"]["counts"]["exits"], 1);
    assert_eq!(day["figures"]["counts"]["involuntary_exits"], 1);
    assert_eq!(
        day["figures"]["headcount"],
        json!({"start": 7, "end": 6, "average": 6.0})
    );

    // Bad periods and thresholds are named.
    for (query, field) in [
        ("from=2025-13-01", "from"),
        ("to=yesterday", "to"),
        ("from=2025-06-01&to=2025-06-01", "to"),
        ("from=2026-01-01&to=2025-01-01", "to"),
        ("from=1900-01-01&to=2026-01-01", "from"),
        ("stuck_months=0", "stuck_months"),
    ] {
        let bad = app
            .get(
                &format!("/api/v1/mobility/organisation?{query}"),
                Some(&admin),
            )
            .await;
        let problem = assert_problem(bad, 422, "validation").await;
        assert_eq!(problem_fields(&problem), [field], "{query}");
    }
    let bad = app
        .get("/api/v1/mobility/flows?depth=0", Some(&admin))
        .await;
    let problem = assert_problem(bad, 422, "validation").await;
    assert_eq!(problem_fields(&problem), ["depth"]);
    app.stop().await;
}

#[tokio::test]
async fn a_manager_sees_the_figures_of_their_own_subtree_only() {
    let Org {
        app,
        admin,
        eng,
        platform,
        field,
        ..
    } = organisation().await;
    let (_, manager) = app.account_token(&admin, "manager", Some(&eng)).await;
    let mine: Value = app
        .get_json(
            &format!("/api/v1/mobility/subtrees/{eng}?{YEAR}"),
            Some(&manager),
        )
        .await;
    assert_eq!(mine["figures"]["headcount"]["start"], 5);
    for path in [
        format!("/api/v1/mobility/teams/{field}?{YEAR}"),
        format!("/api/v1/mobility/organisation?{YEAR}"),
    ] {
        assert_problem(app.get(&path, Some(&manager)).await, 404, "not-found").await;
    }
    let report: Value = app
        .get_json(&format!("/api/v1/mobility/report?{YEAR}"), Some(&manager))
        .await;
    assert!(report["organisation"].is_null());
    let paths: Vec<&str> = report["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["Engineering", "Engineering/Data", "Engineering/Platform"]
    );
    // Bob's move out is theirs to see; where he went is not.
    let flows: Value = app
        .get_json(&format!("/api/v1/mobility/flows?{YEAR}"), Some(&manager))
        .await;
    assert_eq!(
        flows["flows"],
        json!([{
            "from_team_id": platform, "from_path": "Engineering/Platform",
            "to_team_id": null, "to_path": null, "moves": 1
        }])
    );
    // Nor is the people list, ever.
    assert_problem(
        app.get("/api/v1/people", Some(&manager)).await,
        403,
        "forbidden",
    )
    .await;

    // A change to the history shows at once (nothing stale is kept).
    let page: Value = app.get_json("/api/v1/people?limit=100", Some(&admin)).await;
    let gus = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Gus")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    change(
        &app,
        &admin,
        &gus,
        json!({"status": "left", "exit_kind": "voluntary", "effective_date": "2025-07-01"}),
    )
    .await;
    let again: Value = app
        .get_json(
            &format!("/api/v1/mobility/subtrees/{eng}?{YEAR}"),
            Some(&manager),
        )
        .await;
    assert_eq!(again["figures"]["counts"]["exits"], 3);
    assert_eq!(again["figures"]["headcount"]["end"], 2);
    app.stop().await;
}

/// Pearson's r, by the book, for checking the API's.
fn pearson(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let syy: f64 = points.iter().map(|p| (p.1 - my).powi(2)).sum();
    sxy / (sxx * syy).sqrt()
}

fn rounded(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

#[tokio::test]
async fn team_scores_stand_beside_what_their_people_did_afterwards() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    app.clock.set(at("2026-01-05T10:00:00Z"));
    let names = ["Alpha", "Bravo", "Charlie", "Delta"];
    let mut teams = Vec::new();
    for name in names {
        teams.push(crate::pulses::team_with_people(&app, &admin, name, None, 5).await);
    }
    // One career wave; each team answers alike, Alpha highest, Delta lowest.
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let mut body =
        crate::helpers::weekly_pulse(&teams.iter().map(String::as_str).collect::<Vec<_>>());
    body["templates"] = json!(["career"]);
    let pulse = app.create_pulse_with(&admin, &body).await;
    let wave = app.send_now(&admin, &pulse).await;
    let keys = app.keys();
    for (i, team) in teams.iter().enumerate() {
        let level = 5 - i as i64;
        // CAR4 is reverse-coded; CAR6 (0–10) is not in the 1–5 mean.
        let set = json!({"CAR1": level, "CAR2": level, "CAR3": level, "CAR4": 6 - level, "CAR5": level, "CAR6": 7});
        for id in crate::results::invitations_of_team(&app, &wave, team).await {
            let token = keys.invitation_token(&id).unwrap();
            let stored = app
                .post_json(
                    &format!("/api/v1/answers/{token}"),
                    &json!({"answers": set}),
                    None,
                )
                .await;
            assert_eq!(stored.status(), 201);
        }
    }
    app.close_wave(&admin, &wave).await;

    // Afterwards: Bravo loses one, Charlie sends one to Alpha and loses one,
    // Delta loses two.
    let people = |team: &str| {
        let team = team.to_owned();
        let app = &app;
        let admin = &admin;
        async move {
            let list: Value = app
                .get_json(&format!("/api/v1/people?team_id={team}"), Some(admin))
                .await;
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let bravo = people(&teams[1]).await;
    let charlie = people(&teams[2]).await;
    let delta = people(&teams[3]).await;
    change(
        &app,
        &admin,
        &bravo[0],
        json!({"status": "left", "exit_kind": "voluntary", "effective_date": "2026-04-01"}),
    )
    .await;
    change(
        &app,
        &admin,
        &charlie[0],
        json!({"team_id": teams[0], "effective_date": "2026-05-01"}),
    )
    .await;
    change(
        &app,
        &admin,
        &charlie[1],
        json!({"status": "left", "exit_kind": "involuntary", "effective_date": "2026-06-01"}),
    )
    .await;
    change(
        &app,
        &admin,
        &delta[0],
        json!({"status": "left", "exit_kind": "voluntary", "effective_date": "2026-04-15"}),
    )
    .await;
    change(
        &app,
        &admin,
        &delta[1],
        json!({"status": "left", "exit_kind": "voluntary", "effective_date": "2026-07-01"}),
    )
    .await;

    // Before the six months have passed there is nothing to set beside.
    app.clock.set(at("2026-08-30T10:00:00Z"));
    let early: Value = app
        .get_json("/api/v1/mobility/pulses?months=6", Some(&admin))
        .await;
    assert_eq!(early["themes"], json!([]));

    app.clock.set(at("2026-09-05T10:00:00Z"));
    let beside: Value = app
        .get_json("/api/v1/mobility/pulses?months=6", Some(&admin))
        .await;
    assert_eq!(beside["months"], 6);
    let themes = beside["themes"].as_array().unwrap();
    assert_eq!(themes.len(), 1);
    let career = &themes[0];
    assert_eq!(career["theme"], "career_outlook");
    let rows = career["teams"].as_array().unwrap();
    let paths: Vec<&str> = rows.iter().map(|t| t["path"].as_str().unwrap()).collect();
    assert_eq!(paths, names);
    // [2 March, 2 September): 184 days. Person-days per team, and what left.
    let days = 184.0;
    let person_days = [
        5.0 * days + 124.0,
        4.0 * days + 30.0,
        3.0 * days + 60.0 + 91.0,
        3.0 * days + 44.0 + 121.0,
    ];
    let moves_out = [0.0, 0.0, 1.0, 0.0];
    let exits = [0.0, 1.0, 1.0, 2.0];
    let voluntary = [0.0, 1.0, 0.0, 2.0];
    let rate = |n: f64, i: usize| {
        let average = person_days[i] / days;
        rounded(n * 100.0 / average * 365.0 / days, 2)
    };
    let mut scores = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["wave_id"], wave);
        assert_eq!(row["closed_on"], "2026-03-02");
        assert_eq!(
            row["window"],
            json!({"from": "2026-03-02", "to": "2026-09-02"})
        );
        assert_eq!(row["respondents"], 5);
        assert_eq!(
            row["score"],
            (5 - i) as f64,
            "everyone in the team answered {}",
            5 - i
        );
        assert_eq!(row["average_headcount"], rounded(person_days[i] / days, 2));
        assert_eq!(row["internal_move_rate"], rate(moves_out[i], i));
        assert_eq!(row["exit_rate"], rate(exits[i], i));
        assert_eq!(row["voluntary_exit_rate"], rate(voluntary[i], i));
        scores.push((5 - i) as f64);
    }
    let points = |rates: &[f64]| -> Vec<(f64, f64)> {
        scores
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, rate(rates[i], i)))
            .collect()
    };
    for (name, rates) in [
        ("exit_rate", exits),
        ("voluntary_exit_rate", voluntary),
        ("internal_move_rate", moves_out),
    ] {
        let c = &career[name];
        assert_eq!(c["teams"], 4, "{name}");
        let r = pearson(&points(&rates));
        assert_eq!(c["r"], rounded(r, 4), "{name}");
        let (z, half) = (r.atanh(), 1.959963984540054);
        assert_eq!(
            c["ci95"],
            json!([rounded((z - half).tanh(), 4), rounded((z + half).tanh(), 4)]),
            "{name}"
        );
    }
    assert!(
        career["exit_rate"]["r"].as_f64().unwrap() < -0.8,
        "lower scores, more exits"
    );

    // A manager of one team sees that team only, and no correlation.
    let (_, manager) = app.account_token(&admin, "manager", Some(&teams[3])).await;
    let theirs: Value = app
        .get_json("/api/v1/mobility/pulses", Some(&manager))
        .await;
    let rows = theirs["themes"][0]["teams"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["team_id"], teams[3]);
    assert!(theirs["themes"][0]["exit_rate"]["r"].is_null());
    // Scores are results: a key needs both scopes.
    let (_, both) = app
        .api_key(&admin, &["mobility:read", "results:read"])
        .await;
    let (_, mobility_only) = app.api_key(&admin, &["mobility:read"]).await;
    let read: Value = app
        .get_json("/api/v1/mobility/pulses?months=6", Some(&both))
        .await;
    assert_eq!(read["themes"][0]["teams"].as_array().unwrap().len(), 4);
    assert_problem(
        app.get("/api/v1/mobility/pulses", Some(&mobility_only))
            .await,
        403,
        "forbidden",
    )
    .await;
    let bad = app
        .get("/api/v1/mobility/pulses?months=0", Some(&admin))
        .await;
    let problem = assert_problem(bad, 422, "validation").await;
    assert_eq!(problem_fields(&problem), ["months"]);
    app.stop().await;
}
