//! A copy of the database taken after a wave has closed cannot tie an
//! answer to a person (DESIGN.md, invariant 1): this dumps every table of a
//! closed wave's database, as a backup would hold it, and looks for every
//! way a response could be joined to a person or an invitation — values,
//! columns, row order, transaction ids.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::Text;
use peil::db::DbError;
use serde_json::json;

use crate::answers::{
    assert_no_order_left, flagged_invitations, invitation_ids, people_values, responses_of,
};
use crate::helpers::{TestApp, spawn_app};
use crate::pulses::{at, team_with_people};

/// Answers in this many distinct patterns, one per link, in a known order:
/// a stored order that kept it would show with odds of 1 in 20!.
const ANSWERING: usize = 20;

#[tokio::test]
async fn a_closed_waves_dump_ties_no_response_to_a_person_or_invitation() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Support", None, ANSWERING + 4).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse = app.create_pulse(&admin, &[&team]).await;
    let wave = app.send_now(&admin, &pulse).await;
    let keys = app.keys();
    let invited = invitation_ids(&app, &wave).await;
    assert_eq!(invited.len(), ANSWERING + 4);

    // The i-th answer is told apart by its pattern.
    let pattern = |i: usize| json!({"DEV1": 1 + i % 5, "DEV2": 1 + i / 5});
    for (i, id) in invited.iter().take(ANSWERING).enumerate() {
        let token = keys.invitation_token(id).unwrap();
        let stored = app
            .post_json(
                &format!("/api/v1/answers/{token}"),
                &json!({"answers": {"DEV1": pattern(i)["DEV1"], "DEV2": pattern(i)["DEV2"], "DEV3": 3}}),
                None,
            )
            .await;
        assert_eq!(stored.status(), 201, "{}", stored.text().await.unwrap());
    }
    let nullifiers: Vec<String> = invited
        .iter()
        .map(|id| keys.nullifier(id).unwrap())
        .collect();
    let open_ids: Vec<String> = responses_of(&app).await.into_iter().map(|r| r.0).collect();
    let before = dump(&app).await;
    // The dump sees what the checks below look for, while the wave is open.
    assert!(
        nullifiers[..ANSWERING]
            .iter()
            .all(|n| contains(&before, "responses", n)),
        "the dump holds the open wave's nullifiers"
    );

    app.close_wave(&admin, &wave).await;
    let after = dump(&app).await;
    let sealed = responses_of(&app).await;
    assert_eq!(sealed.len(), ANSWERING);

    // Columns: the wave, the team (or group) and the answers; no time,
    // person or link.
    assert_eq!(
        columns(&app, "responses").await,
        ["answers", "id", "nullifier", "scope", "team_id", "wave_id"]
    );
    // No per-person "answered" flag outlives the close.
    assert_eq!(
        flagged_invitations(&app).await,
        0,
        "an answered flag survived the close"
    );

    // Values: no nullifier or link token anywhere in the database, and no
    // response id from before the close either (nothing kept a pointer).
    for (id, nullifier) in invited.iter().zip(&nullifiers) {
        let token = keys.invitation_token(id).unwrap();
        for table in after.keys() {
            assert!(
                !contains(&after, table, nullifier),
                "a nullifier in {table}"
            );
            assert!(!contains(&after, table, &token), "a link token in {table}");
        }
    }
    for old in &open_ids {
        for table in after.keys() {
            assert!(
                !contains(&after, table, old),
                "an old response id in {table}"
            );
        }
    }
    // Nothing in a response row names a person or an invitation, and no
    // other table holds a response id.
    let mut personal: Vec<String> = invited.clone();
    personal.extend(people_values(&app).await);
    for value in &personal {
        assert!(
            !contains(&after, "responses", value),
            "{value} is in a stored response"
        );
    }
    for (id, ..) in &sealed {
        for table in after.keys().filter(|t| *t != "responses") {
            assert!(!contains(&after, table, id), "a response id in {table}");
        }
    }

    // Order: the rows do not come back in the order they were answered.
    let arrival: Vec<String> = (0..ANSWERING).map(|i| pattern(i).to_string()).collect();
    let stored_order = physical_order(&app).await;
    let stored_patterns: Vec<String> = stored_order
        .iter()
        .map(|(_, answers)| {
            let value: serde_json::Value = serde_json::from_str(answers).unwrap();
            json!({"DEV1": value["DEV1"], "DEV2": value["DEV2"]}).to_string()
        })
        .collect();
    let mut sorted_stored = stored_patterns.clone();
    let mut sorted_arrival = arrival.clone();
    sorted_stored.sort();
    sorted_arrival.sort();
    assert_eq!(sorted_stored, sorted_arrival, "every answer is kept");
    assert_ne!(stored_patterns, arrival, "stored in the order of answering");

    // No rowid (SQLite) or transaction id (PostgreSQL) that counts arrivals.
    assert_no_order_left(&app, &wave).await;
    if app.database.is_postgres() {
        // The invitations too: flags set and cleared leave no row version
        // that tells the answered apart.
        let xmins = texts(
            &app,
            format!(
                "SELECT DISTINCT xmin::text AS value FROM invitations WHERE wave_id = '{wave}'"
            ),
        )
        .await;
        assert_eq!(xmins.len(), 1, "invitations rewritten by one transaction");
    }
}

/// Responses as the storage holds them: SQLite's page order (a table
/// without rowid, read without ORDER BY), PostgreSQL's `ctid` order.
async fn physical_order(app: &TestApp) -> Vec<(String, String)> {
    let query = if app.database.is_postgres() {
        "SELECT id || ' ' || answers AS value FROM responses ORDER BY ctid"
    } else {
        "SELECT id || ' ' || answers AS value FROM responses"
    };
    texts(app, query.to_owned())
        .await
        .into_iter()
        .map(|row| {
            let (id, answers) = row.split_once(' ').unwrap();
            (id.to_owned(), answers.to_owned())
        })
        .collect()
}

/// Whether any row of `table` in the dump holds `value`.
fn contains(dump: &BTreeMap<String, Vec<String>>, table: &str, value: &str) -> bool {
    dump.get(table)
        .is_some_and(|rows| rows.iter().any(|row| row.contains(value)))
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    value: String,
}

async fn texts(app: &TestApp, query: String) -> Vec<String> {
    app.db()
        .run(move |conn| -> Result<_, DbError> { Ok(diesel::sql_query(query).load::<Row>(conn)?) })
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.value)
        .collect()
}

/// A table's column names, sorted.
async fn columns(app: &TestApp, table: &str) -> Vec<String> {
    let query = if app.database.is_postgres() {
        format!(
            "SELECT column_name::text AS value FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '{table}' ORDER BY 1"
        )
    } else {
        format!("SELECT name AS value FROM pragma_table_info('{table}') ORDER BY 1")
    };
    texts(app, query).await
}

/// Every row of every table, as text, by table: what a backup holds.
async fn dump(app: &TestApp) -> BTreeMap<String, Vec<String>> {
    let postgres = app.database.is_postgres();
    let tables = texts(
        app,
        if postgres {
            "SELECT tablename::text AS value FROM pg_tables WHERE schemaname = 'public'"
        } else {
            "SELECT name AS value FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        .to_owned(),
    )
    .await;
    assert!(tables.len() > 10, "every table: {tables:?}");
    let mut dump = BTreeMap::new();
    for table in tables {
        let query = if postgres {
            // A whole row as text, whatever its columns.
            format!("SELECT CAST(t AS TEXT) AS value FROM \"{table}\" t")
        } else {
            let cells: Vec<String> = columns(app, &table)
                .await
                .iter()
                .map(|c| format!("COALESCE(CAST(\"{c}\" AS TEXT), 'NULL')"))
                .collect();
            format!(
                "SELECT {} AS value FROM \"{table}\"",
                cells.join(" || '|' || ")
            )
        };
        dump.insert(table, texts(app, query).await);
    }
    dump
}
