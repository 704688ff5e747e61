//! Answering through a link (`/api/v1/answers/{token}`) and what is stored:
//! reading a link changes nothing, bad answers are refused field by field,
//! a link answers once, a closed wave takes nothing, and after close no
//! stored response can be tied to a person or an invitation.

use std::collections::HashSet;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use peil::db::DbError;
use peil::db::schema::{invitations, people, responses, wave_participation};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_with};
use crate::pulses::{at, team_with_people};

/// A wave of a 6-person team plus Anna Jansen; its id and every link token
/// with its invitation id.
pub async fn open_wave(app: &TestApp, admin: &str) -> (String, Vec<(String, String)>) {
    let team = team_with_people(app, admin, "Platform", None, 6).await;
    let anna = app
        .post_json(
            "/api/v1/people",
            &json!({"email": "anna@example.org", "name": "Anna Jansen", "team_id": team, "language": "nl"}),
            Some(admin),
        )
        .await;
    assert_eq!(anna.status(), 201);
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse = app.create_pulse(admin, &[&team]).await;
    let wave = app.send_now(admin, &pulse).await;
    let keys = app.keys();
    let links = invitation_ids(app, &wave)
        .await
        .into_iter()
        .map(|id| (keys.invitation_token(&id).unwrap(), id))
        .collect();
    (wave, links)
}

/// The wave's invitation ids, in id order.
pub async fn invitation_ids(app: &TestApp, wave: &str) -> Vec<String> {
    let wave = wave.to_owned();
    app.db()
        .run(move |conn| -> Result<_, DbError> {
            Ok(invitations::table
                .filter(invitations::wave_id.eq(&wave))
                .order(invitations::id)
                .select(invitations::id)
                .load(conn)?)
        })
        .await
        .unwrap()
}

/// How many invitations, of any wave, carry the "answered" flag.
pub async fn flagged_invitations(app: &TestApp) -> i64 {
    app.db()
        .run(|conn| -> Result<i64, DbError> {
            Ok(invitations::table
                .filter(invitations::answered.eq(true))
                .count()
                .get_result(conn)?)
        })
        .await
        .unwrap()
}

/// Every person's id, email address and name.
pub async fn people_values(app: &TestApp) -> Vec<String> {
    let rows: Vec<(String, String, String)> = app
        .db()
        .run(|conn| -> Result<_, DbError> {
            Ok(people::table
                .select((people::id, people::email, people::name))
                .load(conn)?)
        })
        .await
        .unwrap();
    rows.into_iter().flat_map(|(a, b, c)| [a, b, c]).collect()
}

/// Every stored response: id, team, answers, nullifier.
pub async fn responses_of(app: &TestApp) -> Vec<(String, String, String, Option<String>)> {
    app.db()
        .run(|conn| -> Result<_, DbError> {
            Ok(responses::table
                .select((
                    responses::id,
                    responses::team_id,
                    responses::answers,
                    responses::nullifier,
                ))
                .load(conn)?)
        })
        .await
        .unwrap()
}

fn answers(dev1: i64) -> Value {
    json!({"answers": {"DEV1": dev1, "DEV2": 2, "DEV3": 5}})
}

#[tokio::test]
async fn a_link_shows_its_survey_answers_once_and_reading_it_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let (_, links) = open_wave(&app, &admin).await;
    let (token, _) = &links[0];
    let path = format!("/api/v1/answers/{token}");

    // Mail scanners open links: reading, twice, stores nothing.
    for _ in 0..2 {
        let survey: Value = app.get_json(&path, None).await;
        assert_eq!(survey["state"], "open");
        assert_eq!(survey["min_group_size"], 5);
        let questions = survey["questions"].as_array().unwrap();
        assert!(questions.iter().any(|q| q["id"] == "DEV1"));
        let dev1 = questions.iter().find(|q| q["id"] == "DEV1").unwrap();
        assert_eq!(dev1["options"].as_array().unwrap().len(), 5);
        assert_eq!(dev1["options"][0]["value"], 1);
    }
    assert!(responses_of(&app).await.is_empty());
    // The other language on request.
    let nl: Value = app.get_json(&format!("{path}?language=nl"), None).await;
    let en: Value = app.get_json(&format!("{path}?language=en"), None).await;
    assert_eq!(nl["language"], "nl");
    assert_ne!(nl["questions"][0]["text"], en["questions"][0]["text"]);

    let stored = app.post_json(&path, &answers(4), None).await;
    assert_eq!(stored.status(), 201, "{}", stored.text().await.unwrap());
    let survey: Value = app.get_json(&path, None).await;
    assert_eq!(survey["state"], "answered");
    let again = app.post_json(&path, &answers(1), None).await;
    assert_problem(again, 409, "already-answered").await;
    let stored = responses_of(&app).await;
    assert_eq!(stored.len(), 1);
    let kept: Value = serde_json::from_str(&stored[0].2).unwrap();
    assert_eq!(kept["DEV1"], 4, "the first answer stands");
    // Answering sets no flag: flags change in batches, later, so that no
    // write of the answering transaction names the invitation.
    assert_eq!(flagged_invitations(&app).await, 0);
}

/// Answers that arrive together are stored together (group commit); each is
/// still judged on its own: every link answers once, however many copies of
/// its answer race each other into the same batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_answers_are_each_stored_once() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let (_, links) = open_wave(&app, &admin).await;
    let mut requests = tokio::task::JoinSet::new();
    for copy in 0..3 {
        for (token, _) in &links {
            let request = app
                .client
                .post(app.url(&format!("/api/v1/answers/{token}")))
                .json(&answers(1 + copy));
            let token = token.clone();
            requests.spawn(async move { (token, request.send().await.unwrap().status().as_u16()) });
        }
    }
    let mut statuses: std::collections::HashMap<String, Vec<u16>> = Default::default();
    while let Some(done) = requests.join_next().await {
        let (token, status) = done.unwrap();
        statuses.entry(token).or_default().push(status);
    }
    assert_eq!(statuses.len(), links.len());
    for (token, mut got) in statuses {
        got.sort_unstable();
        assert_eq!(got, [201, 409, 409], "link {token}");
    }
    assert_eq!(responses_of(&app).await.len(), links.len());
}

#[tokio::test]
async fn bad_answers_are_refused_field_by_field_and_store_nothing() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let (_, links) = open_wave(&app, &admin).await;
    let path = format!("/api/v1/answers/{}", links[0].0);
    let refused = app
        .post_json(
            &path,
            &json!({"answers": {"DEV1": 6, "DEV2": "often", "DEV3": 2.5, "NOPE": 3, "DEV_T": 4}}),
            None,
        )
        .await;
    let problem = assert_problem(refused, 422, "validation").await;
    let fields: HashSet<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for field in [
        "answers.DEV1",
        "answers.DEV2",
        "answers.DEV3",
        "answers.NOPE",
        "answers.DEV_T",
    ] {
        assert!(fields.contains(field), "{field} not named: {problem}");
    }
    let long = "x".repeat(1001);
    let refused = app
        .post_json(&path, &json!({"answers": {"DEV_T": long}}), None)
        .await;
    assert_problem(refused, 422, "validation").await;
    assert!(responses_of(&app).await.is_empty());
    // And the link still works.
    let stored = app.post_json(&path, &answers(3), None).await;
    assert_eq!(stored.status(), 201);
}

#[tokio::test]
async fn unknown_and_forged_links_are_the_same_404() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let (_, links) = open_wave(&app, &admin).await;
    let mut forged = links[0].0.clone().into_bytes();
    forged[42] = if forged[42] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let never = app.keys().invitation_token(&uuid_like()).unwrap();
    for token in [forged.as_str(), never.as_str(), "short"] {
        let path = format!("/api/v1/answers/{token}");
        assert_problem(app.get(&path, None).await, 404, "not-found").await;
        assert_problem(
            app.post_json(&path, &answers(3), None).await,
            404,
            "not-found",
        )
        .await;
    }
}

fn uuid_like() -> String {
    "0b5e5d3c-5b7a-4f55-8d6e-2f1b9c2a7d10".into()
}

#[tokio::test]
async fn comments_are_stored_without_addresses_or_team_names() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let (_, links) = open_wave(&app, &admin).await;
    let path = format!("/api/v1/answers/{}", links[1].0);
    let comment = "Ask Anna Jansen (anna@example.org) about it.";
    let stored = app
        .post_json(&path, &json!({"answers": {"DEV_T": comment}}), None)
        .await;
    assert_eq!(stored.status(), 201);
    let kept: Value = serde_json::from_str(&responses_of(&app).await[0].2).unwrap();
    assert_eq!(kept["DEV_T"], "Ask [name] [name] ([email]) about it.");
}

#[tokio::test]
async fn a_closed_wave_takes_no_answers_and_keeps_no_trace_of_who_answered() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let (wave, links) = open_wave(&app, &admin).await;
    for (i, (token, _)) in links.iter().take(5).enumerate() {
        let stored = app
            .post_json(
                &format!("/api/v1/answers/{token}"),
                &answers(1 + i as i64),
                None,
            )
            .await;
        assert_eq!(stored.status(), 201);
    }
    let before = responses_of(&app).await;
    assert!(
        before.iter().all(|r| r.3.is_some()),
        "nullifiers while open"
    );
    app.close_wave(&admin, &wave).await;

    // Closed: reading says so, answering is refused.
    let path = format!("/api/v1/answers/{}", links[6].0);
    let survey: Value = app.get_json(&path, None).await;
    assert_eq!(survey["state"], "closed");
    assert_problem(
        app.post_json(&path, &answers(2), None).await,
        410,
        "wave-closed",
    )
    .await;

    // The same answers, under new ids, without nullifiers.
    let after = responses_of(&app).await;
    assert_eq!(after.len(), 5);
    let old_ids: HashSet<&String> = before.iter().map(|r| &r.0).collect();
    assert!(after.iter().all(|r| !old_ids.contains(&r.0)), "new ids");
    assert!(
        after.iter().all(|r| r.3.is_none()),
        "no nullifiers after close"
    );
    let mut a: Vec<&String> = before.iter().map(|r| &r.2).collect();
    let mut b: Vec<&String> = after.iter().map(|r| &r.2).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "the answers themselves are kept");

    // The answered flags were counted into the wave's participation (the
    // team has 7 invited, at least k), then cleared: after the close no row
    // says whether one person answered.
    let wave_id = wave.clone();
    let (flagged, participation): (i64, Vec<(String, i32, i32)>) = app
        .db()
        .run(move |conn| -> Result<_, DbError> {
            let flagged = invitations::table
                .filter(invitations::wave_id.eq(&wave_id))
                .filter(invitations::answered.eq(true))
                .count()
                .get_result(conn)?;
            let participation = wave_participation::table
                .filter(wave_participation::wave_id.eq(&wave_id))
                .select((
                    wave_participation::scope,
                    wave_participation::invited,
                    wave_participation::responded,
                ))
                .load(conn)?;
            Ok((flagged, participation))
        })
        .await
        .unwrap();
    assert_eq!(flagged, 0, "no per-person flag survives the close");
    assert_eq!(participation, [("team".to_owned(), 7, 5)]);

    // Nothing in a response names a person, an invitation, a link or an
    // address: every value of every response row against all of those.
    let keys = app.keys();
    let mut secrets: Vec<String> = Vec::new();
    for (token, id) in &links {
        secrets.push(token.clone());
        secrets.push(id.clone());
        secrets.push(keys.nullifier(id).unwrap());
    }
    secrets.extend(people_values(&app).await);
    let dump = format!("{after:?}");
    for secret in &secrets {
        assert!(!dump.contains(secret.as_str()), "{secret} is in a response");
    }
    assert_no_order_left(&app, &wave).await;
    assert_no_nullifier_in_the_files(&app, &links);
}

/// Small groups leak at rest: at close, responses of teams with fewer than
/// k are stored under the smallest enclosing group with at least k — here
/// two teams of 3 under their parent's subtree — while a team of 5 keeps
/// its own tag; participation is counted per such group too.
#[tokio::test]
async fn after_close_no_team_tag_holds_fewer_than_k_responses() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let product = app.create_team(&admin, "Product", None).await;
    let web = team_with_people(&app, &admin, "Web", Some(&product), 3).await;
    team_with_people(&app, &admin, "Mobile", Some(&product), 3).await;
    let sales = team_with_people(&app, &admin, "Sales", None, 5).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse = app.create_pulse(&admin, &[&product, &sales]).await;
    let wave = app.send_now(&admin, &pulse).await;
    let keys = app.keys();
    let ids = invitation_ids(&app, &wave).await;
    assert_eq!(ids.len(), 11);
    for id in &ids {
        let token = keys.invitation_token(id).unwrap();
        let stored = app
            .post_json(&format!("/api/v1/answers/{token}"), &answers(3), None)
            .await;
        assert_eq!(stored.status(), 201);
    }
    // While open, each response carries its own team.
    let open: Vec<String> = responses_of(&app).await.into_iter().map(|r| r.1).collect();
    assert_eq!(open.iter().filter(|t| **t == web).count(), 3);

    app.close_wave(&admin, &wave).await;
    let (tags, participation) = app
        .db()
        .run(move |conn| -> Result<_, DbError> {
            let tags: Vec<(String, String, i64)> = responses::table
                .group_by((responses::team_id, responses::scope))
                .select((
                    responses::team_id,
                    responses::scope,
                    diesel::dsl::count_star(),
                ))
                .order((responses::scope, responses::team_id))
                .load(conn)?;
            let participation: Vec<(String, String, i32, i32)> = wave_participation::table
                .filter(wave_participation::wave_id.eq(&wave))
                .select((
                    wave_participation::team_id,
                    wave_participation::scope,
                    wave_participation::invited,
                    wave_participation::responded,
                ))
                .order((wave_participation::scope, wave_participation::team_id))
                .load(conn)?;
            Ok((tags, participation))
        })
        .await
        .unwrap();
    assert_eq!(
        tags,
        [
            (product.clone(), "subtree".to_owned(), 6),
            (sales.clone(), "team".to_owned(), 5),
        ]
    );
    // Participation the same way, by invited: the two teams of 3 count
    // together, no count is about fewer than k people.
    assert_eq!(
        participation,
        [
            (product, "subtree".to_owned(), 6, 6),
            (sales, "team".to_owned(), 5, 5),
        ]
    );
}

/// SQLite: when readers keep the log from being emptied at the close, the
/// checkpoint is owed, and the scheduler's next pass empties it.
#[tokio::test]
async fn a_log_that_readers_kept_at_the_close_is_emptied_by_the_next_pass() {
    let app = spawn_app_with("[database]\nbusy_timeout_ms = 200\n").await;
    if app.database.is_postgres() {
        return;
    }
    let admin = app.ready_admin_token().await;
    let (wave, links) = open_wave(&app, &admin).await;
    for (token, _) in links.iter().take(5) {
        let stored = app
            .post_json(&format!("/api/v1/answers/{token}"), &answers(3), None)
            .await;
        assert_eq!(stored.status(), 201);
    }
    // A reader in the middle of a transaction holds the log's frames.
    let db = app.db();
    let mut reader = db.get().unwrap();
    reader
        .batch_execute("BEGIN; SELECT COUNT(*) FROM responses;")
        .unwrap();
    app.close_wave(&admin, &wave).await;
    assert!(
        nullifier_in_the_files(&app, &links),
        "the reader should have kept the log"
    );
    reader.batch_execute("COMMIT").unwrap();
    drop(reader);
    app.run_schedule().await;
    assert_no_nullifier_in_the_files(&app, &links);
}

/// On SQLite, not even the database's files hold a nullifier after close:
/// deleted rows are zeroed (`secure_delete`) and the log is emptied.
fn assert_no_nullifier_in_the_files(app: &TestApp, links: &[(String, String)]) {
    assert!(
        !nullifier_in_the_files(app, links),
        "a nullifier is still in the database's files"
    );
}

/// Whether the SQLite database or its log holds a nullifier of `links`.
fn nullifier_in_the_files(app: &TestApp, links: &[(String, String)]) -> bool {
    let Some(path) = app.database.url.strip_prefix("sqlite://") else {
        return false;
    };
    let keys = app.keys();
    [path.to_owned(), format!("{path}-wal")].iter().any(|file| {
        let Ok(bytes) = std::fs::read(file) else {
            return false;
        };
        links.iter().any(|(_, id)| {
            let nullifier = keys.nullifier(id).unwrap();
            bytes
                .windows(nullifier.len())
                .any(|w| w == nullifier.as_bytes())
        })
    })
}

/// The storage itself: on SQLite the table has no rowid to count arrivals;
/// on PostgreSQL every response of the wave was written by one transaction.
pub async fn assert_no_order_left(app: &TestApp, wave: &str) {
    let postgres = app.database.is_postgres();
    let wave = wave.to_owned();
    app.db()
        .run(move |conn| -> Result<(), DbError> {
            use diesel::sql_types::{BigInt, Text};
            #[derive(QueryableByName)]
            struct Count {
                #[diesel(sql_type = BigInt)]
                n: i64,
            }
            if postgres {
                let distinct: Count = diesel::sql_query(
                    "SELECT COUNT(DISTINCT xmin::text) AS n FROM responses WHERE wave_id = $1",
                )
                .bind::<Text, _>(&wave)
                .get_result(conn)?;
                assert_eq!(distinct.n, 1, "one transaction wrote them all");
            } else {
                let rowid = diesel::sql_query("SELECT rowid FROM responses").execute(conn);
                assert!(rowid.is_err(), "responses has no rowid");
            }
            Ok(())
        })
        .await
        .unwrap();
}
