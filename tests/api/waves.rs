//! Waves and the schedule: each wave opens exactly once with a snapshot of
//! its audience, reminders and closes happen once, downtime is caught up by
//! opening only the latest missed wave, and schedulers racing on one
//! database (threads, or whole instances) never duplicate anything.

use std::sync::{Arc, Barrier};

use diesel::prelude::*;
use peil::clock::ManualClock;
use peil::db::DbError;
use peil::db::schema::{invitations, outbox, waves};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app};
use crate::pulses::{at, team_with_people};

/// (invitations, invitation emails queued or sent) of a wave.
pub async fn invitations_and_emails(app: &TestApp, wave_id: &str) -> (i64, i64) {
    let wave_id = wave_id.to_owned();
    app.db()
        .run(move |conn| -> Result<_, DbError> {
            let invited: i64 = invitations::table
                .filter(invitations::wave_id.eq(&wave_id))
                .count()
                .get_result(conn)?;
            let emails: i64 = outbox::table
                .inner_join(invitations::table)
                .filter(invitations::wave_id.eq(&wave_id))
                .filter(outbox::reminder.eq(0))
                .count()
                .get_result(conn)?;
            Ok((invited, emails))
        })
        .await
        .unwrap()
}

/// (reminder number, status, count) of a wave's outbox rows.
async fn outbox_of(app: &TestApp, wave_id: &str) -> Vec<(i32, String, i64)> {
    let wave_id = wave_id.to_owned();
    app.db()
        .run(move |conn| -> Result<_, DbError> {
            Ok(outbox::table
                .inner_join(invitations::table)
                .filter(invitations::wave_id.eq(&wave_id))
                .group_by((outbox::reminder, outbox::status))
                .select((outbox::reminder, outbox::status, diesel::dsl::count_star()))
                .order((outbox::reminder, outbox::status))
                .load(conn)?)
        })
        .await
        .unwrap()
}

/// (person id, team id) of a wave's invitations.
async fn invitees(app: &TestApp, wave_id: &str) -> Vec<(String, String)> {
    let wave_id = wave_id.to_owned();
    app.db()
        .run(move |conn| -> Result<_, DbError> {
            Ok(invitations::table
                .filter(invitations::wave_id.eq(&wave_id))
                .select((invitations::person_id, invitations::team_id))
                .order(invitations::person_id)
                .load(conn)?)
        })
        .await
        .unwrap()
}

async fn team_counts(app: &TestApp, wave_id: &str) -> Vec<(String, i32)> {
    let wave_id = wave_id.to_owned();
    app.db()
        .run(move |conn| -> Result<_, DbError> {
            Ok(peil::surveys::waves::store::team_counts(conn, &wave_id)?)
        })
        .await
        .unwrap()
}

async fn waves_of(app: &TestApp, token: &str, pulse_id: &str) -> Vec<Value> {
    app.get_json(&format!("/api/v1/waves?pulse_id={pulse_id}"), Some(token))
        .await
}

async fn people_of(app: &TestApp, token: &str, team: &str) -> Vec<Value> {
    let page: Value = app
        .get_json(&format!("/api/v1/people?team_id={team}"), Some(token))
        .await;
    page["items"].as_array().expect("a page of people").clone()
}

#[tokio::test]
async fn a_scheduled_wave_opens_once_with_a_snapshot_of_its_audience() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let engineering = app.create_team(&admin, "Engineering", None).await;
    let platform = team_with_people(&app, &admin, "Platform", Some(&engineering), 3).await;
    let data = team_with_people(&app, &admin, "Data", Some(&engineering), 2).await;
    let sales = team_with_people(&app, &admin, "Sales", None, 2).await;
    let _outside = team_with_people(&app, &admin, "Legal", None, 2).await;
    // Someone who left is not invited.
    let platform_people = people_of(&app, &admin, &platform).await;
    let leaver = platform_people[2]["id"].as_str().unwrap().to_owned();
    let left = app
        .request(
            "DELETE",
            &format!("/api/v1/people/{leaver}"),
            Some(&admin),
            None,
        )
        .await;
    assert!(left.status().is_success());

    app.clock.set(at("2026-01-01T00:00:00Z"));
    let mut body = crate::helpers::weekly_pulse(&[&engineering, &sales]);
    body["excluded_teams"] = json!([data]);
    let pulse_id = app.create_pulse_with(&admin, &body).await;

    app.clock.set(at("2026-01-05T07:59:00Z"));
    assert!(app.run_schedule().await.is_empty(), "not yet");
    app.clock.set(at("2026-01-05T08:00:00Z"));
    let pass = app.run_schedule().await;
    assert_eq!((pass.opened, pass.skipped), (1, 0));
    assert!(
        app.run_schedule().await.is_empty(),
        "a second pass opens nothing"
    );

    let waves = waves_of(&app, &admin, &pulse_id).await;
    assert_eq!(waves.len(), 1);
    let wave = &waves[0];
    let wave_id = wave["id"].as_str().unwrap().to_owned();
    assert_eq!(wave["status"], "open");
    assert_eq!(wave["number"], 1);
    assert_eq!(wave["opened_by"], "schedule");
    assert_eq!(wave["template_key"], "development");
    assert_eq!(
        wave["invited"], 4,
        "2 of Platform (one left) and 2 of Sales"
    );
    assert_eq!(
        at(wave["closes_at"].as_str().unwrap()),
        at("2026-01-08T08:00:00Z")
    );
    assert_eq!(invitations_and_emails(&app, &wave_id).await, (4, 4));
    let mut expected = vec![(platform.clone(), 2), (sales.clone(), 2)];
    expected.sort();
    assert_eq!(team_counts(&app, &wave_id).await, expected);

    // After opening, a move and a hire change nothing about this wave.
    let mover = platform_people[0]["id"].as_str().unwrap().to_owned();
    let moved = app
        .request(
            "PATCH",
            &format!("/api/v1/people/{mover}"),
            Some(&admin),
            Some(&json!({"team_id": sales})),
        )
        .await;
    assert_eq!(moved.status(), 200);
    let hired = app
        .post_json(
            "/api/v1/people",
            &json!({"email": "new@example.org", "name": "New", "team_id": platform}),
            Some(&admin),
        )
        .await;
    assert_eq!(hired.status(), 201);
    let snapshot = invitees(&app, &wave_id).await;
    assert_eq!(snapshot.len(), 4);
    let mover_team = snapshot.iter().find(|(p, _)| *p == mover).map(|(_, t)| t);
    assert_eq!(
        mover_team,
        Some(&platform),
        "counts for the team they were in"
    );
    assert_eq!(
        team_counts(&app, &wave_id).await,
        expected,
        "frozen at open"
    );

    // The reminder after 48 h goes to those who have not answered, once.
    let answered = snapshot[1].0.clone();
    let wave_for_update = wave_id.clone();
    app.db()
        .run(move |conn| -> Result<_, DbError> {
            Ok(diesel::update(
                invitations::table
                    .filter(invitations::wave_id.eq(&wave_for_update))
                    .filter(invitations::person_id.eq(&answered)),
            )
            .set(invitations::answered.eq(true))
            .execute(conn)?)
        })
        .await
        .unwrap();
    app.clock.set(at("2026-01-07T08:00:00Z"));
    assert_eq!(app.run_schedule().await.reminders_queued, 3);
    assert!(app.run_schedule().await.is_empty());
    assert_eq!(
        outbox_of(&app, &wave_id).await,
        [(0, "queued".to_owned(), 4), (1, "queued".to_owned(), 3)]
    );

    // At its close time the wave closes: nothing more goes out, and the
    // outbox rows (who was reminded: who had not answered) are gone; only
    // the counts stay.
    app.clock.set(at("2026-01-08T08:00:00Z"));
    assert_eq!(app.run_schedule().await.closed, 1);
    let closed: Value = app
        .get_json(&format!("/api/v1/waves/{wave_id}"), Some(&admin))
        .await;
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["template"]["key"], "development");
    assert!(outbox_of(&app, &wave_id).await.is_empty());
    assert_eq!(closed["delivery"]["invitations"]["cancelled"], 4);
    assert_eq!(closed["delivery"]["reminders"]["cancelled"], 3);
    assert_eq!(closed["delivery"]["invitations"]["queued"], 0);

    // The next Monday's wave counts the mover in Sales and invites the hire.
    app.clock.set(at("2026-01-12T08:00:00Z"));
    assert_eq!(app.run_schedule().await.opened, 1);
    let next = &waves_of(&app, &admin, &pulse_id).await[0];
    assert_eq!(next["number"], 2);
    assert_eq!(next["invited"], 5);
    app.stop().await;
}

#[tokio::test]
async fn after_downtime_only_the_latest_missed_wave_opens_and_closes_on_time() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Warehouse", None, 3).await;
    app.clock.set(at("2026-01-01T00:00:00Z"));
    let mut body = crate::helpers::weekly_pulse(&[&team]);
    body["templates"] = json!(["development", "career"]);
    let pulse_id = app.create_pulse_with(&admin, &body).await;

    // Down from New Year until Tuesday 27 January: four Mondays missed; the
    // last one (26 January) is still within its 72 h window.
    app.clock.set(at("2026-01-27T10:00:00Z"));
    let pass = app.run_schedule().await;
    assert_eq!((pass.opened, pass.skipped), (1, 3));
    assert!(app.run_schedule().await.is_empty());
    let waves = waves_of(&app, &admin, &pulse_id).await;
    let statuses: Vec<(&str, &str)> = waves
        .iter()
        .map(|w| {
            (
                w["scheduled_at"].as_str().unwrap(),
                w["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(statuses.len(), 4);
    let open: Vec<&Value> = waves.iter().filter(|w| w["status"] == "open").collect();
    assert_eq!(open.len(), 1, "{statuses:?}");
    let open = open[0];
    assert_eq!(
        at(open["scheduled_at"].as_str().unwrap()),
        at("2026-01-26T08:00:00Z")
    );
    assert_eq!(
        at(open["closes_at"].as_str().unwrap()),
        at("2026-01-29T08:00:00Z")
    );
    assert_eq!(
        at(open["opened_at"].as_str().unwrap()),
        at("2026-01-27T10:00:00Z")
    );
    // Its reminder (26 January + 48 h) is still ahead, so it stays planned.
    assert_eq!(open["reminders_queued"], 0);
    assert_eq!(open["reminders_at"].as_array().unwrap().len(), 1);
    assert_eq!(
        open["template_key"], "development",
        "skipped firings don't turn the rotation"
    );
    assert!(
        waves
            .iter()
            .filter(|w| w["status"] == "skipped")
            .all(|w| w["number"].is_null() && w["opened_at"].is_null())
    );

    // Down again past the end of every missed window: nothing opens, the
    // open wave is closed, the missed firings are recorded as skipped.
    app.clock.set(at("2026-02-20T12:00:00Z"));
    let pass = app.run_schedule().await;
    assert_eq!((pass.opened, pass.skipped, pass.closed), (0, 3, 1));
    let waves = waves_of(&app, &admin, &pulse_id).await;
    assert_eq!(waves.len(), 7);
    assert_eq!(waves.iter().filter(|w| w["status"] == "closed").count(), 1);

    // The next firing after that opens normally, with the next template.
    app.clock.set(at("2026-02-23T08:00:00Z"));
    assert_eq!(app.run_schedule().await.opened, 1);
    let latest = &waves_of(&app, &admin, &pulse_id).await[0];
    assert_eq!(latest["template_key"], "career");
    assert_eq!(latest["number"], 2);
    app.stop().await;
}

#[tokio::test]
async fn an_instance_starting_after_downtime_catches_up_once() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Kitchen", None, 4).await;
    app.clock.set(at("2026-01-01T00:00:00Z"));
    let pulse_id = app.create_pulse(&admin, &[&team]).await;

    // The service comes back on Tuesday, with its scheduler on: the start-up
    // pass opens Monday's wave without waiting for a cron tick.
    let clock = ManualClock::at(at("2026-01-06T10:00:00Z"));
    let scheduler_on = "[scheduler]\nenabled = true\n";
    let first = app.another_instance(clock.clone(), scheduler_on).await;
    let mut waves = Vec::new();
    for _ in 0..100 {
        waves = waves_of(&app, &admin, &pulse_id).await;
        if !waves.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(waves.len(), 1, "the start-up pass opened the missed wave");
    assert_eq!(waves[0]["status"], "open");
    let wave_id = waves[0]["id"].as_str().unwrap().to_owned();

    // A second instance starting too (a replica, or a quick restart) adds nothing.
    let second = app.another_instance(clock.clone(), scheduler_on).await;
    first.stop().await;
    second.stop().await;
    let waves = waves_of(&app, &admin, &pulse_id).await;
    assert_eq!(waves.len(), 1);
    assert_eq!(invitations_and_emails(&app, &wave_id).await, (4, 4));
    app.stop().await;
}

#[tokio::test]
async fn schedulers_racing_on_one_database_open_each_wave_once() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Field", None, 30).await;
    app.clock.set(at("2026-01-01T12:00:00Z"));
    let mut body = crate::helpers::weekly_pulse(&[&team]);
    body["cron"] = json!("0 9 * * *");
    body["open_hours"] = json!(12);
    body["reminder_hours"] = json!([6]);
    let pulse_id = app.create_pulse_with(&admin, &body).await;

    // Four instances (each with its own connection pool) run the same pass
    // at the same moment, at every step of three days.
    let racers = 4;
    let moments = [
        "2026-01-02T08:00:00Z", // open day 1
        "2026-01-02T14:00:00Z", // remind
        "2026-01-02T20:00:00Z", // close
        "2026-01-03T08:00:00Z", // open day 2
        "2026-01-03T14:00:00Z",
        "2026-01-04T08:30:00Z", // close day 2, open day 3
    ];
    let mut totals = peil::surveys::scheduler::Pass::default();
    for moment in moments {
        let now = at(moment);
        let barrier = Arc::new(Barrier::new(racers));
        let handles: Vec<_> = (0..racers)
            .map(|_| {
                let db = app.db();
                let keys = app.keys();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let mut conn = db.get().expect("a connection");
                    barrier.wait();
                    peil::surveys::scheduler::run_due(&mut conn, &keys, now).expect("a pass")
                })
            })
            .collect();
        for handle in handles {
            let pass = handle.join().expect("a racer");
            totals.opened += pass.opened;
            totals.closed += pass.closed;
            totals.reminders_queued += pass.reminders_queued;
            totals.skipped += pass.skipped;
        }
    }
    assert_eq!(totals.opened, 3, "{totals:?}");
    assert_eq!(totals.closed, 2, "{totals:?}");
    assert_eq!(totals.reminders_queued, 60, "{totals:?}");
    assert_eq!(totals.skipped, 0, "{totals:?}");

    let waves = waves_of(&app, &admin, &pulse_id).await;
    assert_eq!(waves.len(), 3);
    let numbers: Vec<i64> = waves
        .iter()
        .map(|w| w["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2, 1]);
    for wave in &waves {
        let id = wave["id"].as_str().unwrap();
        let detail: Value = app
            .get_json(&format!("/api/v1/waves/{id}"), Some(&admin))
            .await;
        let emails = &detail["delivery"]["invitations"];
        let total = emails["queued"].as_i64().unwrap() + emails["cancelled"].as_i64().unwrap();
        assert_eq!(total, 30, "one invitation email each: {detail}");
        let reminders = &detail["delivery"]["reminders"];
        let total =
            reminders["queued"].as_i64().unwrap() + reminders["cancelled"].as_i64().unwrap();
        assert_eq!(
            total,
            if wave["number"] == 3 { 0 } else { 30 },
            "one reminder each: {detail}"
        );
        assert_eq!(invitations_and_emails(&app, id).await.0, 30);
    }
    let pulse: Value = app
        .get_json(&format!("/api/v1/pulses/{pulse_id}"), Some(&admin))
        .await;
    assert_eq!(pulse["waves_opened"], 3);
    let scheduled: i64 = {
        let pulse_id = pulse_id.clone();
        app.db()
            .run(move |conn| -> Result<i64, DbError> {
                Ok(waves::table
                    .filter(waves::pulse_id.eq(&pulse_id))
                    .count()
                    .get_result(conn)?)
            })
            .await
            .unwrap()
    };
    assert_eq!(scheduled, 3);
    app.stop().await;
}

#[tokio::test]
async fn hr_closes_a_wave_early_or_extends_it() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Design", None, 3).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse_id = app.create_pulse(&admin, &[&team]).await;
    let wave_id = app.send_now(&admin, &pulse_id).await;
    let wave: Value = app
        .get_json(&format!("/api/v1/waves/{wave_id}"), Some(&admin))
        .await;
    assert_eq!(
        at(wave["closes_at"].as_str().unwrap()),
        at("2026-03-05T10:00:00Z")
    );
    assert!(wave["scheduled_at"].is_null());
    assert_eq!(wave["template"]["questions"][0]["id"], "DEV1");

    let extend = |body: Value| {
        let path = format!("/api/v1/waves/{wave_id}/extend");
        let admin = admin.clone();
        let app = &app;
        async move { app.request("POST", &path, Some(&admin), Some(&body)).await }
    };
    let earlier = extend(json!({"closes_at": "2026-03-04T10:00:00Z"})).await;
    let problem = assert_problem(earlier, 422, "validation").await;
    assert_eq!(problem["errors"][0]["field"], "closes_at");
    let missing = extend(json!({})).await;
    let problem = assert_problem(missing, 422, "validation").await;
    assert_eq!(problem["errors"][0]["field"], "closes_at");
    let too_far = extend(json!({"closes_at": "2026-06-01T10:00:00Z"})).await;
    let problem = assert_problem(too_far, 422, "validation").await;
    assert_eq!(problem["errors"][0]["field"], "closes_at");
    let later = extend(json!({"closes_at": "2026-03-06T17:00:00Z"})).await;
    assert_eq!(later.status(), 200);
    let later: Value = later.json().await.unwrap();
    assert_eq!(
        at(later["closes_at"].as_str().unwrap()),
        at("2026-03-06T17:00:00Z")
    );
    // The old close time passes: the wave stays open (its 48 h reminder,
    // due since 4 March, is queued by this pass).
    app.clock.set(at("2026-03-05T12:00:00Z"));
    let pass = app.run_schedule().await;
    assert_eq!((pass.closed, pass.reminders_queued), (0, 3));

    let close_path = format!("/api/v1/waves/{wave_id}/close");
    let close = || app.request("POST", &close_path, Some(&admin), None);
    let closed = close().await;
    assert_eq!(closed.status(), 200);
    let closed: Value = closed.json().await.unwrap();
    assert_eq!(closed["status"], "closed");
    assert_eq!(
        at(closed["closed_at"].as_str().unwrap()),
        at("2026-03-05T12:00:00Z")
    );
    app.clock.set(at("2026-03-05T13:00:00Z"));
    let again: Value = close().await.json().await.unwrap();
    assert_eq!(
        again["closed_at"], closed["closed_at"],
        "closing twice changes nothing"
    );
    assert!(outbox_of(&app, &wave_id).await.is_empty());
    assert_eq!(again["status"], "closed");
    let reopen = extend(json!({"closes_at": "2026-03-07T10:00:00Z"})).await;
    assert_problem(reopen, 409, "conflict").await;
    app.stop().await;
}

#[tokio::test]
async fn a_wave_past_its_close_time_is_not_extended_and_closes() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Audit", None, 2).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse_id = app.create_pulse(&admin, &[&team]).await;
    let wave_id = app.send_now(&admin, &pulse_id).await;
    // The close time (5 March 10:00) has passed, but no pass has run yet.
    app.clock.set(at("2026-03-05T10:30:00Z"));
    let late = app
        .request(
            "POST",
            &format!("/api/v1/waves/{wave_id}/extend"),
            Some(&admin),
            Some(&json!({"closes_at": "2026-03-06T10:00:00Z"})),
        )
        .await;
    assert_problem(late, 409, "conflict").await;
    assert_eq!(app.run_schedule().await.closed, 1);
    app.stop().await;
}
