//! Email delivery through a real SMTP conversation with the in-process
//! server of `smtp.rs`: every invitation arrives once, in the person's
//! language, with a link that names their invitation; an outage only delays;
//! a 5xx ends in the undeliverable list and a resend after correction works;
//! reminders skip those who answered; a resend after a crash is the same bytes.

use std::collections::HashMap;

use diesel::prelude::*;
use peil::db::DbError;
use peil::db::schema::{invitations, outbox, people};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app_with};
use crate::pulses::{at, team_with_people};
use crate::smtp::{Received, Security, SmtpServer, TestCa};

/// Mail on, through `server`; `smtp_extra` adds keys to `[mail.smtp]`.
fn with_smtp(server: &SmtpServer, smtp_extra: &str) -> String {
    with_tls(server, "none", smtp_extra)
}

/// Mail on, in batches of 2 at `per_second` emails a second: slow enough
/// that a test can act while one batch is on the wire and the next are
/// claimed.
fn slow_batches_of_two(server: &SmtpServer, per_second: u32) -> String {
    with_smtp(server, &format!("rate_per_second = {per_second}"))
        .replace("batch_size = 50", "batch_size = 2")
}

/// Mail on, through `server` in TLS mode `tls`.
fn with_tls(server: &SmtpServer, tls: &str, smtp_extra: &str) -> String {
    format!(
        "[mail]\nenabled = true\npoll_interval_ms = 20\nbatch_size = 50\nfrom = \"Peil <peil@example.org>\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"{tls}\"\nconnections = 2\ntimeout_secs = 5\n{smtp_extra}\n",
        server.port
    )
}

/// `mail.smtp.ca_file`, when there is one.
fn ca_file_key(path: Option<&std::path::Path>) -> String {
    path.map_or(String::new(), |f| format!("ca_file = \"{}\"", f.display()))
}

/// The body with quoted-printable soft breaks and escapes undone.
fn decoded(message: &Received) -> String {
    let text = message.text().replace("=\r\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The token of the first `/s/…` link in a message.
fn token_in(message: &Received) -> String {
    let body = decoded(message);
    let at = body.find("/s/").expect("a link in the message") + 3;
    body[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// Invitation id by the person's email, for one wave.
async fn invitations_by_email(app: &TestApp, wave_id: &str) -> HashMap<String, String> {
    let wave_id = wave_id.to_owned();
    app.db()
        .run(move |conn| -> Result<_, DbError> {
            let rows: Vec<(String, String)> = invitations::table
                .inner_join(people::table)
                .filter(invitations::wave_id.eq(&wave_id))
                .select((people::email, invitations::id))
                .load(conn)?;
            Ok(rows.into_iter().collect())
        })
        .await
        .unwrap()
}

/// `POST …/invitations/{person}/resend` as `token`.
async fn resend(app: &TestApp, token: &str, wave_id: &str, person: &str) -> reqwest::Response {
    app.request(
        "POST",
        &format!("/api/v1/waves/{wave_id}/invitations/{person}/resend"),
        Some(token),
        None,
    )
    .await
}

/// Every text value of the invitation, outbox and wave rows, joined.
async fn stored_text(app: &TestApp) -> String {
    use peil::db::schema::waves;
    app.db()
        .run(|conn| -> Result<_, DbError> {
            let invitations: Vec<(String, String, String, String)> = invitations::table
                .select((
                    invitations::id,
                    invitations::wave_id,
                    invitations::person_id,
                    invitations::team_id,
                ))
                .load(conn)?;
            let outbox: Vec<(String, String, Option<String>, Option<String>)> = outbox::table
                .select((
                    outbox::id,
                    outbox::invitation_id,
                    outbox::last_error,
                    outbox::claimed_by,
                ))
                .load(conn)?;
            let waves: Vec<(String, String)> = waves::table
                .select((waves::id, waves::reminders))
                .load(conn)?;
            Ok(format!("{invitations:?}{outbox:?}{waves:?}"))
        })
        .await
        .unwrap()
}

async fn wave(app: &TestApp, token: &str, id: &str) -> Value {
    app.get_json(&format!("/api/v1/waves/{id}"), Some(token))
        .await
}

/// Waits until the wave's delivery counts satisfy `done`.
pub async fn wait_for_delivery(
    app: &TestApp,
    token: &str,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..250 {
        let detail = wave(app, token, id).await;
        if done(&detail["delivery"]) {
            return detail;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("delivery never got there: {}", wave(app, token, id).await);
}

#[tokio::test]
async fn every_invitation_arrives_once_in_the_persons_language_with_its_own_link() {
    let server = SmtpServer::start().await;
    let app = spawn_app_with(&with_smtp(&server, "")).await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Platform", None, 12).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse = app.create_pulse(&admin, &[&team]).await;
    let wave_id = app.send_now(&admin, &pulse).await;

    let received = server.wait_for(12, 20).await;
    assert_eq!(received.len(), 12);
    let by_email = invitations_by_email(&app, &wave_id).await;
    let keys = app.keys();
    let mut seen = std::collections::HashSet::new();
    let mut message_ids = std::collections::HashSet::new();
    for message in &received {
        assert_eq!(message.to.len(), 1);
        let to = &message.to[0];
        assert!(seen.insert(to.clone()), "{to} got two invitations");
        assert_eq!(message.from, "peil@example.org");
        // team_with_people alternates nl, en.
        let index: usize = to
            .trim_start_matches("platform")
            .trim_end_matches("@example.org")
            .parse()
            .unwrap();
        let language = if index.is_multiple_of(2) { "nl" } else { "en" };
        assert_eq!(
            message.header("Content-Language").as_deref(),
            Some(language)
        );
        let body = decoded(message);
        let expected = if language == "nl" {
            "ongeveer twee minuten"
        } else {
            "about two minutes"
        };
        assert!(body.contains(expected), "{body}");
        let content_type = message.header("Content-Type").unwrap();
        assert!(
            content_type.starts_with("multipart/alternative"),
            "{content_type}"
        );
        assert!(body.contains("text/plain") && body.contains("text/html"));
        // The link names this person's invitation, and nobody else's.
        let token = token_in(message);
        assert_eq!(
            keys.invitation_of(&token).as_ref(),
            by_email.get(to),
            "{to}"
        );
        assert!(message_ids.insert(message.header("Message-ID").unwrap()));
    }
    // Links are derived, never stored: no token is anywhere in the rows
    // behind them (DESIGN.md, delivery promises).
    let stored = stored_text(&app).await;
    for message in &received {
        assert!(
            !stored.contains(token_in(message).as_str()),
            "a link token is stored"
        );
    }
    let detail =
        wait_for_delivery(&app, &admin, &wave_id, |d| d["invitations"]["sent"] == 12).await;
    assert_eq!(detail["delivery"]["invitations"]["queued"], 0);
    assert_eq!(detail["delivery"]["invitations"]["failed"], 0);
    assert_eq!(server.count(), 12, "nothing twice");
    app.stop().await;
}

#[tokio::test]
async fn an_smtp_outage_mid_wave_only_delays_the_invitations() {
    let mut server = SmtpServer::start().await;
    // Twenty a second, so that the outage begins part-way through the wave.
    let app = spawn_app_with(&with_smtp(&server, "rate_per_second = 20")).await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Support", None, 30).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse = app.create_pulse(&admin, &[&team]).await;
    let wave_id = app.send_now(&admin, &pulse).await;
    server.wait_for(5, 20).await;
    server.stop().await;
    let before = server.count();
    assert!(before < 30, "the outage began mid-wave ({before} arrived)");
    // The rest fail while the server is away, and wait; nothing is lost.
    let detail = wait_for_delivery(&app, &admin, &wave_id, |d| {
        d["invitations"]["retrying"].as_i64().unwrap() > 0 && d["invitations"]["queued"] == 0
    })
    .await;
    assert!(detail["delivery"]["invitations"]["sent"].as_i64().unwrap() < 30);

    server.restart().await;
    // The retry comes after the back-off (30 s), on the test's clock.
    app.clock.set(at("2026-03-02T10:01:00Z"));
    wait_for_delivery(&app, &admin, &wave_id, |d| d["invitations"]["sent"] == 30).await;
    let received = server.received();
    let mut first: HashMap<&String, &Received> = HashMap::new();
    for message in &received {
        // A message the server took just as the outage cut the connection
        // may come again: then it is the same message, byte for byte.
        if let Some(earlier) = first.insert(&message.to[0], message) {
            assert_eq!(earlier.data, message.data, "a resend is identical");
        }
    }
    assert_eq!(first.len(), 30, "every invitation arrived");
    app.stop().await;
}

#[tokio::test]
async fn a_refused_address_is_undeliverable_until_hr_corrects_it_and_resends() {
    let server = SmtpServer::start().await;
    server.refuse("design1@example.org");
    let app = spawn_app_with(&with_smtp(&server, "")).await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Design", None, 4).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse = app.create_pulse(&admin, &[&team]).await;
    let wave_id = app.send_now(&admin, &pulse).await;
    let detail = wait_for_delivery(&app, &admin, &wave_id, |d| {
        d["invitations"]["sent"] == 3 && d["invitations"]["failed"] == 1
    })
    .await;
    assert_eq!(
        detail["delivery"]["invitations"]["retrying"], 0,
        "a 5xx is not retried"
    );

    let list: Vec<Value> = app
        .get_json(
            &format!("/api/v1/waves/{wave_id}/undeliverable"),
            Some(&admin),
        )
        .await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["email"], "design1@example.org");
    assert!(list[0]["error"].as_str().unwrap().contains("550"));
    let person = list[0]["person_id"].as_str().unwrap().to_owned();

    let corrected = app
        .request(
            "PATCH",
            &format!("/api/v1/people/{person}"),
            Some(&admin),
            Some(&json!({"email": "design1@corrected.example.org"})),
        )
        .await;
    assert_eq!(corrected.status(), 200);
    let resent = resend(&app, &admin, &wave_id, &person).await;
    assert_eq!(resent.status(), 202);
    let received = server.wait_for(4, 20).await;
    let message = received
        .iter()
        .find(|m| m.to[0] == "design1@corrected.example.org")
        .expect("the invitation at the corrected address");
    let invitation =
        invitations_by_email(&app, &wave_id).await["design1@corrected.example.org"].clone();
    assert_eq!(
        app.keys().invitation_of(&token_in(message)),
        Some(invitation.clone()),
        "the same link"
    );
    wait_for_delivery(&app, &admin, &wave_id, |d| d["invitations"]["sent"] == 4).await;
    let list: Vec<Value> = app
        .get_json(
            &format!("/api/v1/waves/{wave_id}/undeliverable"),
            Some(&admin),
        )
        .await;
    assert!(list.is_empty());

    // While a worker holds the invitation's email it is being sent: a
    // resend then would let a second claim send it again.
    let db = app.db();
    let hold = |until: &'static str| {
        let (db, invitation) = (db.clone(), invitation.clone());
        async move {
            db.run(move |conn| -> Result<usize, DbError> {
                Ok(diesel::update(
                    outbox::table
                        .filter(outbox::invitation_id.eq(&invitation))
                        .filter(outbox::reminder.eq(0)),
                )
                .set((
                    outbox::status.eq("queued"),
                    outbox::claimed_by.eq("another-worker"),
                    outbox::claimed_until.eq(at(until).naive_utc()),
                    // Not due: the test's own worker leaves the row alone.
                    outbox::next_attempt_at.eq(at("2026-03-02T12:00:00Z").naive_utc()),
                ))
                .execute(conn)?)
            })
            .await
        }
    };
    assert_eq!(hold("2026-03-02T11:00:00Z").await.unwrap(), 1);
    let busy = resend(&app, &admin, &wave_id, &person).await;
    assert_problem(busy, 409, "conflict").await;
    // Once its lease has run out (the worker died), it can be resent.
    assert_eq!(hold("2026-03-02T09:00:00Z").await.unwrap(), 1);
    let resent = resend(&app, &admin, &wave_id, &person).await;
    assert_eq!(resent.status(), 202);

    // Someone not invited to the wave, and a closed wave, are refused.
    let stranger = resend(&app, &admin, &wave_id, &uuid::Uuid::new_v4().to_string()).await;
    assert_problem(stranger, 404, "not-found").await;
    app.close_wave(&admin, &wave_id).await;
    let closed = resend(&app, &admin, &wave_id, &person).await;
    assert_problem(closed, 409, "conflict").await;
    app.stop().await;
}

/// A wave for a team of six, opened on 2026-03-02, its emails sent in
/// batches of two at `per_second`: the server, the app, an admin's token
/// and the wave.
async fn slow_wave_of_six(per_second: u32) -> (SmtpServer, TestApp, String, String) {
    let server = SmtpServer::start().await;
    let app = spawn_app_with(&slow_batches_of_two(&server, per_second)).await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Ops", None, 6).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse = app.create_pulse(&admin, &[&team]).await;
    let wave_id = app.send_now(&admin, &pulse).await;
    (server, app, admin, wave_id)
}

#[tokio::test]
async fn a_batch_claimed_ahead_of_a_close_is_not_sent() {
    // While the first batch goes out, the worker has claimed the second;
    // the wave closes in between.
    let (server, app, admin, wave_id) = slow_wave_of_six(4).await;
    server.wait_for(1, 20).await;
    app.close_wave(&admin, &wave_id).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    assert!(
        server.count() <= 2,
        "only the batch on the wire at the close went out: {}",
        server.count()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_reminder_claimed_ahead_of_an_answer_is_not_sent() {
    // While the first batch of reminders goes out, the worker has claimed
    // the next two; then everyone answers (the invitations' flag, which
    // answering sets). The batches claimed ahead are checked again. At two
    // a second, the answers have half a second from the first reminder's
    // arrival to the next batch's check.
    let (server, app, admin, wave_id) = slow_wave_of_six(2).await;
    server.wait_for(6, 20).await;
    app.clock.set(at("2026-03-04T10:00:00Z"));
    assert_eq!(app.run_schedule().await.reminders_queued, 6);
    server.wait_for(7, 20).await;
    let wave = wave_id.clone();
    app.db()
        .run(move |conn| -> Result<_, DbError> {
            diesel::update(invitations::table.filter(invitations::wave_id.eq(&wave)))
                .set(invitations::answered.eq(true))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    let done = wait_for_delivery(&app, &admin, &wave_id, |d| {
        d["reminders"]["sent"].as_i64().unwrap_or(0)
            + d["reminders"]["cancelled"].as_i64().unwrap_or(0)
            == 6
    })
    .await;
    let reminders = &done["delivery"]["reminders"];
    assert_eq!(
        (reminders["sent"].as_i64(), reminders["cancelled"].as_i64()),
        (Some(2), Some(4)),
        "only the batch on the wire at the answers went out: {reminders}"
    );
    assert_eq!(server.count(), 8);
    app.stop().await;
}

#[tokio::test]
async fn a_stopped_worker_gives_back_the_emails_it_claimed_ahead() {
    // The worker has claimed batches ahead of the one on the wire when it
    // is stopped. It gives them back, so another instance sends them at
    // once instead of after their lease.
    let server = SmtpServer::start().await;
    let config = slow_batches_of_two(&server, 4);
    // The worker runs in a second instance, stopped while the first stays.
    let app = spawn_app_with("").await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Ops", None, 12).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let sender = app.another_instance(app.clock.clone(), &config).await;
    let pulse = app.create_pulse(&admin, &[&team]).await;
    app.send_now(&admin, &pulse).await;
    server.wait_for(1, 20).await;
    sender.stop().await;
    let (held, queued) = app
        .db()
        .run(|conn| -> Result<(i64, i64), DbError> {
            let held = outbox::table
                .filter(outbox::claimed_by.is_not_null())
                .count()
                .get_result(conn)?;
            let queued = outbox::table
                .filter(outbox::status.eq("queued"))
                .count()
                .get_result(conn)?;
            Ok((held, queued))
        })
        .await
        .unwrap();
    assert!(queued >= 4, "stopped mid-wave: {queued} emails left");
    assert_eq!(held, 0, "every email claimed and not sent is given back");
    assert_eq!(
        server.count() + usize::try_from(queued).unwrap(),
        12,
        "what went out is recorded as sent"
    );
    app.stop().await;
}

#[tokio::test]
async fn reminders_skip_those_who_answered_and_stop_at_the_close() {
    let server = SmtpServer::start().await;
    let app = spawn_app_with(&with_smtp(&server, "")).await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Sales", None, 5).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse = app.create_pulse(&admin, &[&team]).await;
    let wave_id = app.send_now(&admin, &pulse).await;
    server.wait_for(5, 20).await;

    // Two answer through the links in their emails, then the reminder is due.
    let answered = ["sales0@example.org", "sales3@example.org"];
    let by_email = invitations_by_email(&app, &wave_id).await;
    let invitations_received = server.received();
    let answer = |email: &str| {
        let message = invitations_received
            .iter()
            .find(|m| m.to[0] == email)
            .expect("their invitation");
        format!("/api/v1/answers/{}", token_in(message))
    };
    for email in answered {
        let stored = app
            .post_json(&answer(email), &json!({"answers": {"DEV1": 4}}), None)
            .await;
        assert_eq!(stored.status(), 201);
    }
    app.clock.set(at("2026-03-04T10:00:00Z"));
    assert_eq!(app.run_schedule().await.reminders_queued, 3);
    let received = server.wait_for(8, 20).await;
    assert_eq!(received.len(), 8);
    let reminders: Vec<&Received> = received[5..].iter().collect();
    for message in &reminders {
        assert!(
            !answered.contains(&message.to[0].as_str()),
            "{} had answered",
            message.to[0]
        );
        let body = decoded(message);
        assert!(
            body.contains("You have not yet answered") || body.contains("nog niet ingevuld"),
            "{body}"
        );
    }
    // Someone who answers after the reminder was queued but before it goes
    // out is skipped when it is claimed (by the response's nullifier; the
    // flag comes later): queue their reminder again by hand.
    let stored = app
        .post_json(
            &answer("sales1@example.org"),
            &json!({"answers": {"DEV1": 2}}),
            None,
        )
        .await;
    assert_eq!(stored.status(), 201);
    let late = by_email["sales1@example.org"].clone();
    app.db()
        .run(move |conn| -> Result<_, DbError> {
            diesel::update(
                outbox::table
                    .filter(outbox::invitation_id.eq(&late))
                    .filter(outbox::reminder.eq(1)),
            )
            .set(outbox::status.eq("queued"))
            .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    wait_for_delivery(&app, &admin, &wave_id, |d| d["reminders"]["cancelled"] == 1).await;

    // After the close, nothing more goes out.
    app.clock.set(at("2026-03-05T10:00:00Z"));
    assert_eq!(app.run_schedule().await.closed, 1);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(server.count(), 8);
    app.stop().await;
}

#[tokio::test]
async fn an_email_sent_again_after_a_crash_is_the_same_bytes() {
    let server = SmtpServer::start().await;
    let app = spawn_app_with(&with_smtp(&server, "")).await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Legal", None, 1).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse = app.create_pulse(&admin, &[&team]).await;
    let wave_id = app.send_now(&admin, &pulse).await;
    let first = server.wait_for(1, 20).await;
    wait_for_delivery(&app, &admin, &wave_id, |d| d["invitations"]["sent"] == 1).await;
    // A crash after the server took the message and before it was recorded:
    // the row is still claimed by the dead worker, its lease runs out.
    app.db()
        .run(move |conn| -> Result<_, DbError> {
            Ok(diesel::update(outbox::table)
                .set((
                    outbox::status.eq("queued"),
                    outbox::claimed_by.eq(Some("a worker that died")),
                    outbox::claimed_until
                        .eq(Some(peil::clock::to_stored(at("2026-03-02T10:02:00Z")))),
                ))
                .execute(conn)?)
        })
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(server.count(), 1, "not while the lease holds");
    app.clock.set(at("2026-03-02T10:02:01Z"));
    let both = server.wait_for(2, 20).await;
    assert_eq!(both.len(), 2);
    assert_eq!(
        both[1].data, first[0].data,
        "byte for byte the same message"
    );
    app.stop().await;
}

#[tokio::test]
async fn without_smtp_mail_is_written_as_eml_files() {
    let app = spawn_app_with("[mail]\nenabled = true\npoll_interval_ms = 20\n").await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Finance", None, 3).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse = app.create_pulse(&admin, &[&team]).await;
    let wave_id = app.send_now(&admin, &pulse).await;
    wait_for_delivery(&app, &admin, &wave_id, |d| d["invitations"]["sent"] == 3).await;
    let folder = app.settings.data_dir.join("mail");
    let files: Vec<_> = std::fs::read_dir(&folder)
        .expect("the mail folder")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert_eq!(files.len(), 3);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("Message-ID: <"));
    assert!(text.contains("/s/"));
    app.stop().await;
}

#[tokio::test]
async fn workers_on_two_instances_never_send_one_email_twice() {
    let server = SmtpServer::start().await;
    let mail_on = with_smtp(&server, "");
    let app = spawn_app_with(&mail_on).await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Ops", None, 120).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    // A second instance on the same database, its worker racing this one's.
    let replica = app.another_instance(app.clock.clone(), &mail_on).await;
    let pulse = app.create_pulse(&admin, &[&team]).await;
    let wave_id = app.send_now(&admin, &pulse).await;
    wait_for_delivery(&app, &admin, &wave_id, |d| d["invitations"]["sent"] == 120).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let received = server.received();
    let mut recipients: Vec<&String> = received.iter().map(|m| &m.to[0]).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 120);
    assert_eq!(received.len(), 120, "no email went out twice");
    replica.stop().await;
    app.stop().await;
}

/// STARTTLS and implicit TLS: mail goes out only over TLS that verifies the
/// server's certificate for `mail.smtp.host` (here one from a private CA,
/// trusted through `mail.smtp.ca_file`). Without that CA, or to a server
/// that does not offer STARTTLS, nothing is sent in the clear: the emails
/// wait as temporary failures.
#[tokio::test]
async fn mail_goes_out_over_verified_tls_or_not_at_all() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();

    for (mode, security) in [
        ("starttls", Security::Starttls(ca.acceptor.clone())),
        ("tls", Security::Implicit(ca.acceptor.clone())),
    ] {
        let server = SmtpServer::start_with(security).await;
        let app = spawn_app_with(&with_tls(&server, mode, &ca_file_key(Some(&ca_file)))).await;
        let admin = app.ready_admin_token().await;
        let wave = wave_of_three(&app, &admin).await;
        let received = server.wait_for(3, 20).await;
        assert_eq!(received.len(), 3, "{mode}");
        assert!(
            received.iter().all(|m| decoded(m).contains("/s/")),
            "{mode}"
        );
        assert!(
            received.iter().all(|m| m.secure),
            "{mode}: sent in the clear"
        );
        wait_for_delivery(&app, &admin, &wave, |d| d["invitations"]["sent"] == 3).await;
        app.stop().await;
    }

    for (case, security, ca) in [
        (
            "an untrusted certificate",
            Security::Starttls(ca.acceptor.clone()),
            None,
        ),
        (
            "no STARTTLS on offer",
            Security::Plain,
            Some(ca_file.as_path()),
        ),
    ] {
        let server = SmtpServer::start_with(security).await;
        let app = spawn_app_with(&with_tls(&server, "starttls", &ca_file_key(ca))).await;
        let admin = app.ready_admin_token().await;
        let wave = wave_of_three(&app, &admin).await;
        wait_for_delivery(&app, &admin, &wave, |d| d["invitations"]["retrying"] == 3).await;
        assert_eq!(server.count(), 0, "{case}: sent anyway");
        app.stop().await;
    }
}

/// A wave of three people, opened now; its id.
async fn wave_of_three(app: &TestApp, admin: &str) -> String {
    let team = team_with_people(app, admin, "Ops", None, 3).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse = app.create_pulse(admin, &[&team]).await;
    app.send_now(admin, &pulse).await
}
