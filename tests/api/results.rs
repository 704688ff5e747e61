//! Published results (`/api/v1/waves/{id}/results…`): exact figures on a
//! hand-made wave, the suppression cases of DESIGN.md, a manager's view,
//! and an open wave that shows participation only.

use serde_json::{Value, json};

use crate::answers::invitation_ids;
use crate::helpers::{TestApp, assert_problem, spawn_app};
use crate::pulses::{at, team_with_people};

/// Opens a wave of the `career` template for `audience`; its id.
async fn career_wave(app: &TestApp, admin: &str, audience: &[&str]) -> String {
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let mut body = crate::helpers::weekly_pulse(audience);
    body["templates"] = json!(["career"]);
    let pulse = app.create_pulse_with(admin, &body).await;
    app.send_now(admin, &pulse).await
}

/// Answers through every link of `wave` of the people in `team` (all of
/// the wave's links when `None`), one set of answers each, in order.
async fn answer(app: &TestApp, wave: &str, team: Option<&str>, sets: &[Value]) {
    let keys = app.keys();
    let mut ids = invitation_ids(app, wave).await;
    if let Some(team) = team {
        let members = invitations_of_team(app, wave, team).await;
        ids.retain(|id| members.contains(id));
    }
    assert!(
        ids.len() >= sets.len(),
        "{} links for {} answers",
        ids.len(),
        sets.len()
    );
    for (id, set) in ids.iter().zip(sets) {
        let token = keys.invitation_token(id).unwrap();
        let stored = app
            .post_json(
                &format!("/api/v1/answers/{token}"),
                &json!({ "answers": set }),
                None,
            )
            .await;
        assert_eq!(stored.status(), 201, "{set}");
    }
}

pub async fn invitations_of_team(app: &TestApp, wave: &str, team: &str) -> Vec<String> {
    use diesel::prelude::*;
    use peil::db::DbError;
    use peil::db::schema::invitations;
    let (wave, team) = (wave.to_owned(), team.to_owned());
    app.db()
        .run(move |conn| -> Result<_, DbError> {
            Ok(invitations::table
                .filter(invitations::wave_id.eq(&wave))
                .filter(invitations::team_id.eq(&team))
                .select(invitations::id)
                .load(conn)?)
        })
        .await
        .unwrap()
}

/// The same answers `n` times.
fn times(n: usize, set: Value) -> Vec<Value> {
    vec![set; n]
}

fn question<'a>(results: &'a Value, id: &str) -> &'a Value {
    results["questions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["question_id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {results}"))
}

fn close(actual: &Value, expected: f64) -> bool {
    actual.as_f64().is_some_and(|a| (a - expected).abs() < 1e-9)
}

#[track_caller]
fn assert_close(actual: &Value, expected: f64) {
    assert!(close(actual, expected), "{actual} is not {expected}");
}

/// A suppressed cell says so and why, and carries no figure at all.
#[track_caller]
fn assert_suppressed(cell: &Value, reason: &str) {
    assert_eq!(cell["suppressed"], true, "{cell}");
    assert_eq!(cell["reason"], reason, "{cell}");
    for figure in [
        "n",
        "mean",
        "sd",
        "shares",
        "distribution",
        "score",
        "favourable",
        "invited",
        "responded",
        "comments",
    ] {
        assert!(cell.get(figure).is_none(), "{figure} in {cell}");
    }
}

#[track_caller]
fn assert_published(cell: &Value, n: u64) {
    assert_eq!(cell["suppressed"], false, "{cell}");
    assert_eq!(cell["n"], n, "{cell}");
}

async fn results(app: &TestApp, token: &str, path: &str) -> Value {
    let response = app.get(path, Some(token)).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_hand_made_wave_publishes_exact_figures() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Platform", None, 7).await;
    let wave = career_wave(&app, &admin, &[&team]).await;
    // CAR4 is reverse-coded, CAR2 and CAR4 offer "don't know", CAR6 is 0–10.
    let sets = [
        json!({"CAR1": 5, "CAR2": 4, "CAR3": 3, "CAR4": 1, "CAR5": 2, "CAR6": 10, "CAR_T": "More mentoring"}),
        json!({"CAR1": 4, "CAR2": "dont_know", "CAR3": 2, "CAR4": 2, "CAR5": 3, "CAR6": 9, "CAR_T": "Clear paths"}),
        json!({"CAR1": 3, "CAR2": 5, "CAR3": 4, "CAR4": 5, "CAR5": 4, "CAR6": 7}),
        json!({"CAR1": 2, "CAR2": 2, "CAR3": 4, "CAR4": 3, "CAR5": 5, "CAR6": 5}),
        json!({"CAR1": 1, "CAR6": 0}),
        json!({"CAR1": 5, "CAR2": 4, "CAR3": 5, "CAR4": 4, "CAR6": 8}),
        json!({"CAR1": 4, "CAR2": 3, "CAR3": 1, "CAR4": "dont_know", "CAR5": 4, "CAR6": 6}),
    ];
    answer(&app, &wave, None, &sets).await;

    // Open: participation only, as of the last batch of answered flags
    // (set before reminders and at the close), never moving with one answer.
    let open = results(&app, &admin, &format!("/api/v1/waves/{wave}/results")).await;
    assert_eq!(open["published"], false);
    assert_eq!(open["participation"]["invited"], 7);
    assert_eq!(open["participation"]["responded"], 0);
    assert_eq!(open["questions"], json!([]));
    assert_eq!(open["themes"], json!([]));

    app.close_wave(&admin, &wave).await;
    for path in [
        format!("/api/v1/waves/{wave}/results"),
        format!("/api/v1/waves/{wave}/results/teams/{team}"),
        format!("/api/v1/waves/{wave}/results/subtrees/{team}"),
    ] {
        let body = results(&app, &admin, &path).await;
        assert_eq!(body["published"], true);
        assert_eq!(body["min_group_size"], 5);
        assert_eq!(body["participation"]["invited"], 7);
        assert_eq!(body["participation"]["responded"], 7);
        assert_close(&body["participation"]["rate"], 1.0);

        let car1 = question(&body, "CAR1");
        assert_published(car1, 7);
        assert_close(&car1["mean"], 24.0 / 7.0);
        assert_close(&car1["favourable"], 4.0 / 7.0);
        // 7 < 2k: no sd, shares or distribution, from which the counts of
        // each answer could be solved.
        for detail in ["sd", "shares", "distribution"] {
            assert_eq!(car1[detail], Value::Null, "{detail}");
        }

        // "Don't know" and skips count nowhere.
        let car2 = question(&body, "CAR2");
        assert_published(car2, 5);
        assert_close(&car2["mean"], 3.6);
        assert_close(&car2["favourable"], 0.6);

        // Reverse-coded: 1, 2, 5, 3, 4 are scored 5, 4, 1, 3, 2.
        let car4 = question(&body, "CAR4");
        assert_eq!(car4["reverse"], true);
        assert_published(car4, 5);
        assert_close(&car4["mean"], 3.0);
        assert_close(&car4["favourable"], 0.4);

        // 0–10: 10, 9, 7, 5, 0, 8, 6.
        let car6 = question(&body, "CAR6");
        assert_published(car6, 7);
        assert_close(&car6["mean"], 45.0 / 7.0);
        assert_close(&car6["net"], -100.0 / 7.0);
        assert_eq!(car6.get("favourable"), None);

        // The theme pools the 28 valid answers to its five 1–5 items
        // (reverse-coded CAR4 scored), from all 7 respondents.
        let themes = body["themes"].as_array().unwrap();
        assert_eq!(themes.len(), 1);
        assert_eq!(themes[0]["theme"], "career_outlook");
        assert_published(&themes[0], 7);
        assert_close(&themes[0]["score"], 94.0 / 28.0);
        assert_close(&themes[0]["favourable"], 15.0 / 28.0);
        assert_eq!(themes[0]["sd"], Value::Null);
        assert_eq!(themes[0]["answers"], 28);

        // Two comments: fewer than max(10, k).
        let comments = body["comments"].as_array().unwrap();
        assert_eq!(comments.len(), 1);
        assert_suppressed(&comments[0], "below_minimum");
    }
}

#[tokio::test]
async fn fewer_than_k_responses_are_suppressed_never_zero() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Platform", None, 6).await;
    let wave = career_wave(&app, &admin, &[&team]).await;
    answer(&app, &wave, None, &times(4, json!({"CAR1": 4, "CAR6": 9}))).await;
    app.close_wave(&admin, &wave).await;
    let body = results(
        &app,
        &admin,
        &format!("/api/v1/waves/{wave}/results/teams/{team}"),
    )
    .await;
    // Participation is about the 6 invited, which is at least k.
    assert_eq!(body["participation"]["invited"], 6);
    assert_eq!(body["participation"]["responded"], 4);
    for q in body["questions"].as_array().unwrap() {
        assert_suppressed(q, "below_minimum");
    }
    for t in body["themes"].as_array().unwrap() {
        assert_suppressed(t, "below_minimum");
    }
    let org = results(&app, &admin, &format!("/api/v1/waves/{wave}/results")).await;
    assert_suppressed(question(&org, "CAR1"), "below_minimum");
}

#[tokio::test]
async fn a_parent_one_larger_than_its_only_published_child_hides_the_child() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let department = team_with_people(&app, &admin, "Product", None, 1).await;
    let child = team_with_people(&app, &admin, "Web", Some(&department), 5).await;
    let wave = career_wave(&app, &admin, &[&department]).await;
    answer(&app, &wave, None, &times(6, json!({"CAR1": 4}))).await;
    app.close_wave(&admin, &wave).await;

    let subtree = results(
        &app,
        &admin,
        &format!("/api/v1/waves/{wave}/results/subtrees/{department}"),
    )
    .await;
    assert_published(question(&subtree, "CAR1"), 6);
    // Published beside the 6, the child's 5 would give away the one.
    let web = results(
        &app,
        &admin,
        &format!("/api/v1/waves/{wave}/results/teams/{child}"),
    )
    .await;
    assert_suppressed(question(&web, "CAR1"), "complementary");
    assert_suppressed(&web["participation"], "complementary");
    let own = results(
        &app,
        &admin,
        &format!("/api/v1/waves/{wave}/results/teams/{department}"),
    )
    .await;
    assert_suppressed(question(&own, "CAR1"), "below_minimum");
}

#[tokio::test]
async fn a_parent_of_12_with_children_of_5_5_and_2_hides_one_five_and_managers_see_the_same() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let department = app.create_team(&admin, "Product", None).await;
    let a = team_with_people(&app, &admin, "Web", Some(&department), 5).await;
    let b = team_with_people(&app, &admin, "Mobile", Some(&department), 5).await;
    let c = team_with_people(&app, &admin, "Design", Some(&department), 2).await;
    let sales = team_with_people(&app, &admin, "Sales", None, 5).await;
    let wave = career_wave(&app, &admin, &[&department, &sales]).await;
    let set = json!({"CAR1": 4, "CAR2": 2, "CAR3": 5, "CAR4": 1, "CAR5": 3, "CAR6": 7});
    answer(&app, &wave, None, &times(17, set)).await;
    app.close_wave(&admin, &wave).await;

    let (_, manager) = app
        .account_token(&admin, "manager", Some(&department))
        .await;
    for token in [&admin, &manager] {
        let subtree = results(
            &app,
            token,
            &format!("/api/v1/waves/{wave}/results/subtrees/{department}"),
        )
        .await;
        assert_published(question(&subtree, "CAR1"), 12);
        let mut hidden = Vec::new();
        for team in [&a, &b] {
            let body = results(
                &app,
                token,
                &format!("/api/v1/waves/{wave}/results/teams/{team}"),
            )
            .await;
            let cell = question(&body, "CAR1").clone();
            if cell["suppressed"] == true {
                assert_suppressed(&cell, "complementary");
                hidden.push(team.clone());
            } else {
                assert_published(&cell, 5);
            }
        }
        // One five goes, so that 12 − 5 = 7 remain: never 12 − 5 − 5 = 2.
        assert_eq!(hidden.len(), 1, "{hidden:?}");
        let design = results(
            &app,
            token,
            &format!("/api/v1/waves/{wave}/results/teams/{c}"),
        )
        .await;
        assert_suppressed(question(&design, "CAR1"), "below_minimum");
    }
    // The manager's own view is their subtree; Sales is outside it.
    let view = results(&app, &manager, &format!("/api/v1/waves/{wave}/results")).await;
    assert_eq!(view["group"]["kind"], "subtree");
    assert_eq!(view["group"]["team_id"], department);
    assert_published(question(&view, "CAR1"), 12);
    let outside = app
        .get(
            &format!("/api/v1/waves/{wave}/results/teams/{sales}"),
            Some(&manager),
        )
        .await;
    assert_problem(outside, 404, "not-found").await;
    let organisation = results(&app, &admin, &format!("/api/v1/waves/{wave}/results")).await;
    assert_eq!(organisation["group"]["kind"], "organisation");
    assert_published(question(&organisation, "CAR1"), 17);
}

#[tokio::test]
async fn results_need_the_results_scope_and_stay_in_the_organisation() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Platform", None, 5).await;
    let wave = career_wave(&app, &admin, &[&team]).await;
    let path = format!("/api/v1/waves/{wave}/results");
    let (_, reader) = app.api_key(&admin, &["results:read"]).await;
    let (_, writer) = app.api_key(&admin, &["pulses:write"]).await;
    assert_eq!(app.get(&path, Some(&reader)).await.status(), 200);
    assert_problem(app.get(&path, Some(&writer)).await, 403, "forbidden").await;
    let other = app.other_organisation_admin().await;
    assert_problem(app.get(&path, Some(&other)).await, 404, "not-found").await;
}

/// A team of 12 and one of 6 answer two waves of the same pulse: low,
/// then high.
async fn two_waves(app: &TestApp, admin: &str) -> (String, String, String, String) {
    let (big, small, pulse, first) = one_wave(app, admin).await;
    app.clock.set(at("2026-03-16T10:00:00Z"));
    let second = app.send_now(admin, &pulse).await;
    answer(app, &second, None, &times(18, HIGH.clone())).await;
    app.close_wave(admin, &second).await;
    (big, small, first, second)
}

static HIGH: std::sync::LazyLock<Value> = std::sync::LazyLock::new(
    || json!({"CAR1": 5, "CAR2": 4, "CAR3": 5, "CAR4": 1, "CAR5": 4, "CAR6": 9}),
);

/// The teams of [`two_waves`], their pulse and its first wave, answered
/// low and closed.
async fn one_wave(app: &TestApp, admin: &str) -> (String, String, String, String) {
    let big = team_with_people(app, admin, "Support", None, 12).await;
    let small = team_with_people(app, admin, "Legal", None, 6).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let mut body = crate::helpers::weekly_pulse(&[&big, &small]);
    body["templates"] = json!(["career"]);
    let pulse = app.create_pulse_with(admin, &body).await;
    let low = json!({"CAR1": 2, "CAR2": 2, "CAR3": 2, "CAR4": 4, "CAR5": 2, "CAR6": 3});
    let first = app.send_now(admin, &pulse).await;
    answer(app, &first, None, &times(18, low)).await;
    app.close_wave(admin, &first).await;
    (big, small, pulse, first)
}

#[tokio::test]
async fn trends_show_the_change_and_whether_it_is_clear() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let (big, small, first, second) = two_waves(&app, &admin).await;

    let trend = results(
        &app,
        &admin,
        &format!("/api/v1/results/trends/teams/{big}?scope=team"),
    )
    .await;
    assert_eq!(trend["group"]["kind"], "team");
    let themes = trend["themes"].as_array().unwrap();
    assert_eq!(themes.len(), 1);
    let points = themes[0]["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[0]["wave_id"], first);
    assert_eq!(points[1]["wave_id"], second);
    assert_eq!(points[0]["change"], Value::Null);
    // Every answer 2 (CAR4 4, reverse-coded), then 5, 4, 5, 5, 4.
    assert_close(&points[0]["score"], 2.0);
    assert_close(&points[1]["score"], 4.6);
    let change = &points[1]["change"];
    assert_eq!(change["since_wave_id"], first);
    assert_close(&change["score"], 2.6);
    assert_close(&change["favourable"], 1.0);
    assert_eq!(change["meaningful"], true);

    // The same jump in a team of 6 is not clear: n < 10.
    let trend = results(
        &app,
        &admin,
        &format!("/api/v1/results/trends/teams/{small}?scope=team"),
    )
    .await;
    let change = &trend["themes"][0]["points"][1]["change"];
    assert_close(&change["score"], 2.6);
    assert_eq!(change["meaningful"], false);

    let organisation = results(&app, &admin, "/api/v1/results/trends").await;
    assert_eq!(organisation["group"]["kind"], "organisation");
    assert_eq!(organisation["themes"][0]["points"][1]["n"], 18);
}

#[tokio::test]
async fn heatmaps_show_the_latest_cell_per_theme_and_a_waves_questions() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let (big, small, _, second) = two_waves(&app, &admin).await;

    let map = results(&app, &admin, "/api/v1/results/heatmap?scope=team").await;
    assert_eq!(
        map["columns"],
        json!([
            "development_opportunities",
            "career_outlook",
            "psychological_safety"
        ])
    );
    let rows = map["rows"].as_array().unwrap();
    let row = |team: &str| rows.iter().find(|r| r["team_id"] == team).unwrap().clone();
    let support = row(&big);
    assert_eq!(support["team_path"], "Support");
    assert_eq!(support["cells"][0], Value::Null, "never asked");
    assert_eq!(support["cells"][1]["wave_id"], second);
    assert_published(&support["cells"][1], 12);
    assert_close(&support["cells"][1]["score"], 4.6);
    assert_published(&row(&small)["cells"][1], 6);

    let map = results(
        &app,
        &admin,
        &format!("/api/v1/waves/{second}/heatmap?scope=team"),
    )
    .await;
    let columns: Vec<&str> = map["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "CAR1",
            "CAR2",
            "CAR3",
            "CAR4",
            "CAR5",
            "CAR6",
            "career_outlook"
        ]
    );
    let rows = map["rows"].as_array().unwrap();
    let support = rows.iter().find(|r| r["team_id"] == big).unwrap();
    assert_close(&support["cells"][0]["mean"], 5.0);
    // 12 ≥ 2k, but beside the organisation's 18 its distribution would
    // give Legal's 6 by subtraction: the detail goes to the 18.
    assert_eq!(support["cells"][0]["distribution"], Value::Null);
    let legal = rows.iter().find(|r| r["team_id"] == small).unwrap();
    assert_eq!(legal["cells"][0]["distribution"], Value::Null);
    let organisation = results(&app, &admin, &format!("/api/v1/waves/{second}/results")).await;
    assert_eq!(
        question(&organisation, "CAR1")["distribution"],
        json!([0, 0, 0, 0, 18])
    );
    assert_close(
        &question(&organisation, "CAR1")["shares"]["favourable"],
        1.0,
    );

    // A manager of Legal sees Legal's row only.
    let (_, manager) = app.account_token(&admin, "manager", Some(&small)).await;
    let map = results(&app, &manager, "/api/v1/results/heatmap").await;
    let teams: Vec<&Value> = map["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["team_id"])
        .collect();
    assert_eq!(teams, [&json!(small)]);
}

/// The heatmap keeps its cells between requests (`LatestCells`): a close,
/// a renamed team and a manager's narrower reach must all show at once.
#[tokio::test]
async fn a_heatmap_read_before_a_close_and_a_rename_shows_both_after() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let (big, small, pulse, first) = one_wave(&app, &admin).await;
    let cell = |map: &Value, team: &str| {
        map["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["team_id"] == team)
            .unwrap()
            .clone()
    };
    for _ in 0..2 {
        let map = results(&app, &admin, "/api/v1/results/heatmap?scope=team").await;
        assert_eq!(cell(&map, &big)["cells"][1]["wave_id"], first);
        assert_close(&cell(&map, &big)["cells"][1]["score"], 2.0);
        let map = results(&app, &admin, "/api/v1/results/heatmap").await;
        assert_eq!(map["scope"], "subtree");
        assert_eq!(cell(&map, &big)["team_path"], "Support");
    }

    let renamed = app
        .request(
            "PATCH",
            &format!("/api/v1/teams/{big}"),
            Some(&admin),
            Some(&json!({"name": "Customer Support"})),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    let map = results(&app, &admin, "/api/v1/results/heatmap?scope=team").await;
    assert_eq!(cell(&map, &big)["team_path"], "Customer Support");
    assert_eq!(cell(&map, &big)["cells"][1]["wave_id"], first);

    app.clock.set(at("2026-03-16T10:00:00Z"));
    let second = app.send_now(&admin, &pulse).await;
    answer(&app, &second, None, &times(18, HIGH.clone())).await;
    app.close_wave(&admin, &second).await;
    for scope in ["team", "subtree"] {
        let map = results(
            &app,
            &admin,
            &format!("/api/v1/results/heatmap?scope={scope}"),
        )
        .await;
        let support = cell(&map, &big);
        assert_eq!(support["team_path"], "Customer Support");
        assert_eq!(support["cells"][1]["wave_id"], second, "{scope}");
        assert_close(&support["cells"][1]["score"], 4.6);
        assert_eq!(support["cells"][0], Value::Null, "never asked");
    }

    // The kept cells are everyone's; the rows are the caller's.
    let (_, manager) = app.account_token(&admin, "manager", Some(&small)).await;
    let map = results(&app, &manager, "/api/v1/results/heatmap?scope=team").await;
    let rows = map["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["team_id"], small);
    assert_eq!(rows[0]["cells"][1]["wave_id"], second);
}

/// The kept heatmap rows are per scope, and a raised k (a republication)
/// replaces them: a cell published at k = 5 must not outlive k = 6.
#[tokio::test]
async fn kept_heatmap_rows_follow_the_scope_and_a_raised_k() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let product = team_with_people(&app, &admin, "Product", None, 1).await;
    team_with_people(&app, &admin, "Web", Some(&product), 5).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let mut body = crate::helpers::weekly_pulse(&[&product]);
    body["templates"] = json!(["career"]);
    let pulse = app.create_pulse_with(&admin, &body).await;
    let wave = app.send_now(&admin, &pulse).await;
    answer(&app, &wave, None, &times(6, json!({"CAR1": 4, "CAR6": 8}))).await;
    app.close_wave(&admin, &wave).await;
    let product_cell = |map: &Value| {
        map["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["team_id"] == product)
            .unwrap()["cells"][1]
            .clone()
    };
    let team_scope = "/api/v1/results/heatmap?scope=team";
    let subtree_scope = "/api/v1/results/heatmap?scope=subtree";
    for _ in 0..2 {
        // k = 5: Product's one own member is under k, and its subtree of 6
        // beside Web's 5 would give that one away.
        let subtree = results(&app, &admin, subtree_scope).await;
        assert_eq!(product_cell(&subtree)["reason"], "complementary");
        let team = results(&app, &admin, team_scope).await;
        assert_eq!(product_cell(&team)["reason"], "below_minimum");
    }

    raise_k(&app, &admin, &pulse, 7).await;
    let subtree = results(&app, &admin, subtree_scope).await;
    let cell = product_cell(&subtree);
    assert_eq!(cell["reason"], "below_minimum", "{cell}");
    assert_eq!(cell["n"], Value::Null, "no figures under k: {cell}");
}

#[tokio::test]
async fn publishing_an_earlier_wave_again_leaves_a_later_one_the_latest() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let (big, small, pulse, first) = one_wave(&app, &admin).await;
    // Another pulse asks the same theme two weeks later.
    app.clock.set(at("2026-03-16T10:00:00Z"));
    let mut body = crate::helpers::weekly_pulse(&[&big, &small]);
    body["templates"] = json!(["career"]);
    body["name"] = json!("Career, monthly");
    let other = app.create_pulse_with(&admin, &body).await;
    let later = app.send_now(&admin, &other).await;
    answer(&app, &later, None, &times(18, HIGH.clone())).await;
    app.close_wave(&admin, &later).await;

    // Raising the first pulse's k publishes its earlier wave again.
    raise_k(&app, &admin, &pulse, 6).await;
    let first_results = results(&app, &admin, &format!("/api/v1/waves/{first}/results")).await;
    assert_eq!(first_results["min_group_size"], 6);
    let map = results(&app, &admin, "/api/v1/results/heatmap?scope=team").await;
    let rows = map["rows"].as_array().unwrap();
    let support = rows.iter().find(|r| r["team_id"] == big).unwrap();
    assert_eq!(support["cells"][1]["wave_id"], later);
    assert_close(&support["cells"][1]["score"], 4.6);
}

/// Sets a pulse's k, which publishes its closed waves again.
async fn raise_k(app: &TestApp, admin: &str, pulse: &str, k: u32) {
    let raised = app
        .request(
            "PATCH",
            &format!("/api/v1/pulses/{pulse}"),
            Some(admin),
            Some(&json!({"min_group_size": k})),
        )
        .await;
    assert_eq!(raised.status(), 200);
}

async fn feed_page(app: &TestApp, token: &str, query: &str) -> (Value, String) {
    let response = app
        .get(&format!("/api/v1/results/feed{query}"), Some(token))
        .await;
    assert_eq!(response.status(), 200, "{query}");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    (response.json().await.unwrap(), etag)
}

#[tokio::test]
async fn the_feed_pages_by_cursor_answers_304_when_nothing_is_new_and_speaks_csv() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let (big, small, pulse, first) = one_wave(&app, &admin).await;
    let (_, key) = app.api_key(&admin, &["results:read"]).await;

    // One page with everything, then the same in pages of 7.
    let (all, _) = feed_page(&app, &key, "?limit=1000000").await;
    let all = all["rows"].as_array().unwrap().clone();
    // Per group: participation, 6 questions, 1 theme, 1 comment question;
    // groups: 2 teams, their 2 subtrees, the organisation.
    assert_eq!(all.len(), 5 * 9);
    assert!(
        all.iter()
            .all(|r| r["wave_id"] == first && r["pulse_id"] == pulse)
    );
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=7&cursor={c}"),
            None => "?limit=7".to_owned(),
        };
        let (page, _) = feed_page(&app, &key, &query).await;
        let rows = page["rows"].as_array().unwrap().clone();
        assert!(rows.len() <= 7);
        if rows.is_empty() {
            assert_eq!(
                page["next_cursor"],
                json!(cursor),
                "no row: the same cursor back"
            );
            break;
        }
        assert_eq!(page["next_cursor"], rows.last().unwrap()["cursor"]);
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        paged.extend(rows);
    }
    assert_eq!(paged, all);
    let organisation_car1 = all
        .iter()
        .find(|r| r["group_kind"] == "organisation" && r["measure"] == "CAR1")
        .unwrap();
    assert_eq!(organisation_car1["team_id"], Value::Null);
    assert_eq!(organisation_car1["n"], 18);
    assert_close(&organisation_car1["figures"]["mean"], 2.0);

    // Polling after the last row: nothing new is a 304, a new wave is not.
    let after = format!("/api/v1/results/feed?cursor={}", cursor.clone().unwrap());
    let (empty, etag) = feed_page(&app, &key, &after["/api/v1/results/feed".len()..]).await;
    assert_eq!(empty["rows"], json!([]));
    let again = app
        .request_with_headers("GET", &after, Some(&key), &[("if-none-match", &etag)])
        .await;
    assert_eq!(again.status(), 304);
    app.clock.set(at("2026-03-16T10:00:00Z"));
    let second = app.send_now(&admin, &pulse).await;
    answer(&app, &second, None, &times(18, HIGH.clone())).await;
    app.close_wave(&admin, &second).await;
    let fresh = app
        .request_with_headers("GET", &after, Some(&key), &[("if-none-match", &etag)])
        .await;
    assert_eq!(fresh.status(), 200);
    let fresh: Value = fresh.json().await.unwrap();
    let rows = fresh["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 45);
    assert!(rows.iter().all(|r| r["wave_id"] == second));

    // CSV: the same rows, figures in columns.
    let csv = app
        .request_with_headers(
            "GET",
            "/api/v1/results/feed?limit=1000000",
            Some(&key),
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
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 90);
    let car1 = records
        .iter()
        .find(|r| {
            &r[column("wave_id")] == second.as_str()
                && &r[column("group_kind")] == "team"
                && &r[column("team_id")] == big.as_str()
                && &r[column("measure")] == "CAR1"
        })
        .unwrap();
    assert_eq!(&car1[column("n")], "12");
    assert_eq!(&car1[column("mean")], "5.0");
    assert_eq!(&car1[column("favourable")], "1.0");
    assert_eq!(&car1[column("distribution")], "", "the 18 have the detail");
    let organisation_car1 = records
        .iter()
        .find(|r| {
            &r[column("wave_id")] == second.as_str()
                && &r[column("group_kind")] == "organisation"
                && &r[column("measure")] == "CAR1"
        })
        .unwrap();
    assert_eq!(&organisation_car1[column("distribution")], "0|0|0|0|18");
    assert_eq!(&organisation_car1[column("sd")], "0.0");
    // Shares come from the nested `shares` object.
    assert_eq!(&organisation_car1[column("neutral")], "0.0");
    assert_eq!(&organisation_car1[column("unfavourable")], "0.0");
    assert_eq!(
        &car1[column("neutral")],
        "",
        "shares at the detail level only"
    );
    let legal_car1 = records
        .iter()
        .find(|r| &r[column("team_id")] == small.as_str() && &r[column("measure")] == "CAR1")
        .unwrap();
    assert_eq!(&legal_car1[column("distribution")], "", "6 < 2k");

    // A manager's feed holds their subtree's teams only.
    let (_, manager) = app.account_token(&admin, "manager", Some(&small)).await;
    let (page, _) = feed_page(&app, &manager, "?limit=1000000").await;
    let rows = page["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["team_id"] == small), "{rows:?}");

    // Bad input names its field.
    let bad = app
        .get("/api/v1/results/feed?cursor=nonsense", Some(&key))
        .await;
    let problem = assert_problem(bad, 422, "validation").await;
    assert_eq!(crate::helpers::problem_fields(&problem), ["cursor"]);
    let bad = app.get("/api/v1/results/feed?limit=0", Some(&key)).await;
    let problem = assert_problem(bad, 422, "validation").await;
    assert_eq!(crate::helpers::problem_fields(&problem), ["limit"]);
}

#[tokio::test]
async fn raising_k_publishes_closed_waves_again_and_coarsens_what_is_stored() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let department = app.create_team(&admin, "Product", None).await;
    let a = team_with_people(&app, &admin, "Web", Some(&department), 5).await;
    let b = team_with_people(&app, &admin, "Mobile", Some(&department), 5).await;
    let sales = team_with_people(&app, &admin, "Sales", None, 5).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let mut body = crate::helpers::weekly_pulse(&[&department, &sales]);
    body["templates"] = json!(["career"]);
    let pulse = app.create_pulse_with(&admin, &body).await;
    let wave = app.send_now(&admin, &pulse).await;
    answer(&app, &wave, None, &times(15, json!({"CAR1": 4, "CAR6": 8}))).await;
    app.close_wave(&admin, &wave).await;
    let path = |group: &str| format!("/api/v1/waves/{wave}/results{group}");
    let car1 = |body: &Value| question(body, "CAR1").clone();
    // k = 5: the two teams of 5, their department of 10, Sales, all 15.
    for team in [&a, &b, &sales] {
        assert_published(
            &car1(&results(&app, &admin, &path(&format!("/teams/{team}"))).await),
            5,
        );
    }

    raise_k(&app, &admin, &pulse, 6).await;
    // k = 6: every team is under it; the department's 10 beside the
    // organisation's 15 would leave Sales' 5, so only the 15 remain.
    let organisation = results(&app, &admin, &path("")).await;
    assert_eq!(organisation["min_group_size"], 6);
    assert_published(&car1(&organisation), 15);
    assert_close(&car1(&organisation)["mean"], 4.0);
    assert_eq!(organisation["participation"]["responded"], 15);
    for team in [&a, &b, &sales] {
        let body = results(&app, &admin, &path(&format!("/teams/{team}"))).await;
        assert_suppressed(&car1(&body), "below_minimum");
    }
    let subtree = results(&app, &admin, &path(&format!("/subtrees/{department}"))).await;
    assert_suppressed(&car1(&subtree), "complementary");
    let trend = results(&app, &admin, "/api/v1/results/heatmap?scope=team").await;
    let row = trend["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["team_id"] == a)
        .unwrap()
        .clone();
    assert_suppressed(&row["cells"][1], "below_minimum");

    // The lower k's numbers are gone, from the feed too.
    let feed: Value = app
        .get_json("/api/v1/results/feed?limit=1000000", Some(&admin))
        .await;
    let rows = feed["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["min_group_size"] == 6), "{rows:?}");

    // What is stored holds nothing about a group under the new k.
    let tags = stored_tags(&app, &wave).await;
    assert_eq!(tags.len(), 15);
    assert!(
        tags.iter().all(|(_, scope)| scope == "organisation"),
        "{tags:?}"
    );
}

/// The stored responses' tags of a wave: team id and scope.
async fn stored_tags(app: &TestApp, wave: &str) -> Vec<(String, String)> {
    use diesel::prelude::*;
    use peil::db::DbError;
    use peil::db::schema::responses;
    let wave = wave.to_owned();
    app.db()
        .run(move |conn| -> Result<_, DbError> {
            Ok(responses::table
                .filter(responses::wave_id.eq(&wave))
                .select((responses::team_id, responses::scope))
                .load(conn)?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn comments_are_published_from_ten_kept_nowhere_else_and_republished_from_what_was_shown() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Support", None, 12).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let mut body = crate::helpers::weekly_pulse(&[&team]);
    body["templates"] = json!(["career"]);
    let pulse = app.create_pulse_with(&admin, &body).await;
    let wave = app.send_now(&admin, &pulse).await;
    let sets: Vec<Value> = (0..12)
        .map(|i| json!({"CAR1": 4, "CAR_T": format!("Idea number {i}")}))
        .collect();
    answer(&app, &wave, None, &sets).await;
    app.close_wave(&admin, &wave).await;

    let texts = |body: &Value| -> Vec<String> {
        let mut texts: Vec<String> = body["comments"][0]["comments"]
            .as_array()
            .map(|a| a.iter().map(|t| t.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        texts.sort();
        texts
    };
    let mut expected: Vec<String> = (0..12).map(|i| format!("Idea number {i}")).collect();
    expected.sort();
    let path = format!("/api/v1/waves/{wave}/results/teams/{team}");
    let shown = results(&app, &admin, &path).await;
    assert_eq!(shown["comments"][0]["n"], 12);
    assert_eq!(texts(&shown), expected);
    // No stored response keeps a comment.
    let stored = crate::answers::responses_of(&app).await;
    assert_eq!(stored.len(), 12);
    assert!(stored.iter().all(|r| !r.2.contains("Idea")), "{stored:?}");

    // k = 11: comments need 11, the 12 still show, from what was published.
    raise_k(&app, &admin, &pulse, 11).await;
    let shown = results(&app, &admin, &path).await;
    assert_eq!(shown["min_group_size"], 11);
    assert_eq!(texts(&shown), expected);
    // k = 13: fewer than k answered at all.
    raise_k(&app, &admin, &pulse, 13).await;
    let shown = results(&app, &admin, &path).await;
    assert_suppressed(&shown["comments"][0], "below_minimum");
}
