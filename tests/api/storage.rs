//! Storage behaviour on both backends: constraints, write transactions,
//! and a database that goes away and comes back.

use std::time::Duration;

use diesel::RunQueryDsl;
use peil::db::{self, DbError};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn foreign_keys_are_enforced() {
    let app = spawn_app().await;
    let outcome = app
        .db()
        .run(|conn| {
            peil::auth::store::insert_account(
                conn,
                &peil::auth::store::NewAccount {
                    organisation_id: "no-such-organisation",
                    email: "x@example.org",
                    password_hash: "$argon2id$placeholder",
                    role: "hr",
                    team_id: None,
                },
            )
            .map_err(DbError::from)
        })
        .await;
    assert!(
        outcome.is_err(),
        "an account needs an existing organisation"
    );
    app.stop().await;
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_full_sync() {
    #[derive(diesel::QueryableByName)]
    struct Mode {
        #[diesel(sql_type = diesel::sql_types::Text)]
        journal_mode: String,
    }
    let app = spawn_app().await;
    if !app.database.is_postgres() {
        let mode = app
            .db()
            .run(|conn| {
                diesel::sql_query("PRAGMA journal_mode")
                    .get_result::<Mode>(conn)
                    .map_err(DbError::from)
            })
            .await
            .unwrap();
        assert_eq!(mode.journal_mode, "wal");
        // FULL (2): an acknowledged answer is on disk before "thank you".
        #[derive(diesel::QueryableByName)]
        struct Synchronous {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            synchronous: i32,
        }
        let sync = app
            .db()
            .run(|conn| {
                diesel::sql_query("PRAGMA synchronous")
                    .get_result::<Synchronous>(conn)
                    .map_err(DbError::from)
            })
            .await
            .unwrap();
        assert_eq!(sync.synchronous, 2, "synchronous = FULL");
    }
    app.stop().await;
}

#[tokio::test]
async fn concurrent_read_then_write_transactions_all_commit() {
    let app = spawn_app().await;
    let database = app.db();
    let mut writers = Vec::new();
    for i in 0..8 {
        let database = database.clone();
        writers.push(tokio::spawn(async move {
            database
                .run(move |conn| {
                    db::write(conn, |conn| {
                        let before = peil::org::store::count(conn)?;
                        // Widen the window between the read and the write.
                        std::thread::sleep(Duration::from_millis(20));
                        let name = peil::domain::OrganisationName::parse(&format!("Org {i}"))
                            .expect("valid name");
                        peil::org::store::insert(conn, &peil::org::NewOrganisation::named(name))?;
                        Ok::<_, DbError>(before)
                    })
                })
                .await
        }));
    }
    let mut seen = Vec::new();
    for writer in writers {
        seen.push(
            writer
                .await
                .unwrap()
                .expect("no SQLITE_BUSY, no lost write"),
        );
    }
    seen.sort();
    let total = database
        .run(|conn| peil::org::store::count(conn).map_err(DbError::from))
        .await
        .unwrap();
    assert_eq!(
        total, 9,
        "every write landed (1 is the bootstrapped organisation)"
    );
    if !app.database.is_postgres() {
        // BEGIN IMMEDIATE serialises SQLite writers: each saw all earlier ones.
        // (PostgreSQL runs READ COMMITTED; its stores lock rows where it matters.)
        assert_eq!(seen, (1..=8).collect::<Vec<i64>>());
    }
    app.stop().await;
}

#[tokio::test]
async fn an_unreachable_database_gives_503_with_retry_after_and_recovers() {
    let app = spawn_app().await;
    if !app.database.is_postgres() {
        eprintln!("(PostgreSQL only: this test cuts the server's connections)");
        app.stop().await;
        return;
    }
    let token = app.ready_admin_token().await;
    let name = app.database.name().unwrap().to_owned();
    app.database.admin_sql(&format!(
        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
    ));
    app.database.admin_sql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ));

    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.headers()["retry-after"], "5");
    assert_problem(ready, 503, "unavailable").await;
    let me = app.get("/api/v1/auth/me", Some(&token)).await;
    assert_problem(me, 503, "unavailable").await;
    assert_eq!(app.get("/healthz", None).await.status(), 200, "still alive");

    app.database.admin_sql(&format!(
        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
    ));
    assert_eq!(app.get("/readyz", None).await.status(), 200, "recovered");
    assert_eq!(app.get("/api/v1/auth/me", Some(&token)).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn readyz_reports_pending_migrations() {
    let app = spawn_app().await;
    app.db()
        .run(|conn| {
            diesel::sql_query("DELETE FROM __diesel_schema_migrations")
                .execute(conn)
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    let response = app.get("/readyz", None).await;
    assert_problem(response, 503, "unavailable").await;
    app.stop().await;
}
