//! Webhooks against a real HTTP receiver on loopback (actix-web, in
//! process): every event arrives, signed by the Standard Webhooks
//! convention (checked here with code of the test's own); a receiver that
//! fails gets the same message again until it answers, and one that keeps
//! failing is disabled and catches up once enabled; redelivery repeats the
//! message; endpoints into the internal network are refused.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Duration as Span;
use hmac::{Hmac, Mac};
use peil::clock::Clock;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{TestApp, assert_problem, problem_fields, spawn_app_with};
use crate::pulses::{at, team_with_people};
use crate::smtp::SmtpServer;

/// A request the receiver got.
#[derive(Debug, Clone)]
struct Posted {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

impl Posted {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    fn event(&self) -> String {
        self.json()["type"].as_str().expect("a type").to_owned()
    }
}

/// An HTTP server on loopback that records every request and answers with
/// the status it is told to.
struct Receiver {
    url: String,
    posted: Arc<Mutex<Vec<Posted>>>,
    status: Arc<AtomicU16>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    async fn start() -> Self {
        let posted = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (record, answer) = (posted.clone(), status.clone());
        let server = HttpServer::new(move || {
            let (record, answer) = (record.clone(), answer.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (record, answer) = (record.clone(), answer.clone());
                async move {
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    record.lock().unwrap().push(Posted {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body: String::from_utf8(body.to_vec()).expect("UTF-8"),
                    });
                    let status = answer.load(Ordering::SeqCst);
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                        .finish()
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("binding the receiver");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/hooks/peil"),
            posted,
            status,
            server: handle,
        }
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn posted(&self) -> Vec<Posted> {
        self.posted.lock().unwrap().clone()
    }

    /// Waits until `n` requests have come.
    async fn wait_for(&self, n: usize) -> Vec<Posted> {
        for _ in 0..500 {
            let posted = self.posted();
            if posted.len() >= n {
                return posted;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the receiver got {:?}, not {n} requests", self.posted());
    }

    async fn stop(self) {
        self.server.stop(true).await;
    }
}

/// Verifies a request as a receiver would, by the Standard Webhooks
/// convention, with nothing of Peil's: the HMAC-SHA256 of
/// `{id}.{timestamp}.{body}` under the secret's bytes, base64, after `v1,`.
fn verify(secret: &str, posted: &Posted) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("a base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", posted.id, posted.timestamp, posted.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    posted.signature.split(' ').any(|s| s == expected)
}

/// Webhooks on, to loopback over http, polled often; `extra` adds keys.
fn webhook_settings(extra: &str) -> String {
    format!(
        "[webhooks]\nenabled = true\nallow_private_addresses = true\nrequire_https = false\npoll_interval_ms = 20\ntimeout_secs = 5\nretry_base_secs = 60\nretry_max_secs = 3600\n{extra}\n"
    )
}

async fn register(app: &TestApp, admin: &str, url: &str, events: &[&str]) -> (String, String) {
    let created = app
        .post_json(
            "/api/v1/webhooks",
            &json!({"url": url, "description": "Test receiver", "events": events}),
            Some(admin),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

async fn deliveries(app: &TestApp, admin: &str, webhook: &str) -> Vec<Value> {
    let page: Value = app
        .get_json(
            &format!("/api/v1/webhooks/{webhook}/deliveries"),
            Some(admin),
        )
        .await;
    page["deliveries"].as_array().unwrap().clone()
}

/// Waits until the endpoint's deliveries satisfy `done`.
async fn wait_for_deliveries(
    app: &TestApp,
    admin: &str,
    webhook: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..500 {
        let list = deliveries(app, admin, webhook).await;
        if done(&list) {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "the deliveries never got there: {:#}",
        json!(deliveries(app, admin, webhook).await)
    );
}

#[tokio::test]
async fn every_event_arrives_signed_and_a_failing_receiver_gets_the_same_message_again() {
    let receiver = Receiver::start().await;
    let smtp = SmtpServer::start().await;
    smtp.refuse("design1@example.org");
    let mail = format!(
        "[mail]\nenabled = true\npoll_interval_ms = 20\nfrom = \"Peil <peil@example.org>\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout_secs = 5\n",
        smtp.port
    );
    let app = spawn_app_with(&format!("{mail}{}", webhook_settings(""))).await;
    let admin = app.ready_admin_token().await;
    let all = [
        "wave.opened",
        "wave.closed",
        "results.published",
        "delivery.failed",
    ];
    let (webhook, secret) = register(&app, &admin, &receiver.url, &all).await;
    assert!(secret.starts_with("whsec_"));

    // The secret is shown once: not listed, not readable, not stored in clear.
    let listed: Vec<Value> = app.get_json("/api/v1/webhooks", Some(&admin)).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["url"], receiver.url);
    assert_eq!(listed[0]["enabled"], true);
    assert!(listed[0].get("secret").is_none());
    let shown: Value = app
        .get_json(&format!("/api/v1/webhooks/{webhook}"), Some(&admin))
        .await;
    assert!(!shown.to_string().contains(&secret));
    let stored: String = {
        use diesel::prelude::*;
        use peil::db::schema::webhooks;
        let id = webhook.clone();
        app.db()
            .run(move |conn| {
                webhooks::table
                    .find(&id)
                    .select(webhooks::secret)
                    .first::<String>(conn)
                    .map_err(peil::db::DbError::from)
            })
            .await
            .unwrap()
    };
    let key = secret.trim_start_matches("whsec_");
    assert!(!stored.contains(key) && !stored.contains(&secret));
    assert_eq!(
        app.keys().open_webhook_secret(&webhook, &stored).as_deref(),
        Some(secret.as_str()),
        "sealed under the server secret"
    );

    // A wave of four, one of whom cannot be mailed, opened and closed.
    let team = team_with_people(&app, &admin, "Design", None, 4).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse = app.create_pulse(&admin, &[&team]).await;
    let wave = app.send_now(&admin, &pulse).await;
    // The open, and the refused address's failure.
    receiver.wait_for(2).await;
    let undeliverable: Vec<Value> = app
        .get_json(&format!("/api/v1/waves/{wave}/undeliverable"), Some(&admin))
        .await;
    app.close_wave(&admin, &wave).await;
    let posted = receiver.wait_for(4).await;
    let mut events: Vec<String> = posted.iter().map(Posted::event).collect();
    events.sort();
    assert_eq!(
        events,
        [
            "delivery.failed",
            "results.published",
            "wave.closed",
            "wave.opened"
        ]
    );
    let mut ids: Vec<&str> = posted.iter().map(|p| p.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "each message its own id");
    for p in &posted {
        assert!(verify(&secret, p), "a valid signature: {p:?}");
        assert!(p.id.starts_with("msg_"));
        let body = p.json();
        assert_eq!(body["data"]["wave_id"], wave, "{body}");
        let timestamp: i64 = p.timestamp.parse().expect("seconds");
        assert_eq!(timestamp, app.clock.now().timestamp(), "signed when sent");
        // Tampering with the body or the time breaks the signature.
        let mut forged = p.clone();
        forged.body = forged.body.replace(&wave, "another-wave");
        assert!(!verify(&secret, &forged));
        let mut replayed = p.clone();
        replayed.timestamp = (timestamp + 1).to_string();
        assert!(!verify(&secret, &replayed));
    }
    let by_type = |t: &str| posted.iter().find(|p| p.event() == t).unwrap().json();
    let opened = by_type("wave.opened");
    assert_eq!(opened["data"]["pulse_id"], pulse);
    assert_eq!(opened["data"]["invited"], 4);
    let failed = by_type("delivery.failed");
    assert_eq!(undeliverable.len(), 1);
    assert_eq!(failed["data"]["person_id"], undeliverable[0]["person_id"]);
    assert_eq!(
        failed["data"].as_object().unwrap().len(),
        2,
        "the wave and the person, nothing more: {failed}"
    );
    let closed = by_type("wave.closed");
    assert_eq!(closed["data"]["delivery"]["invitations"]["sent"], 3);
    assert_eq!(closed["data"]["delivery"]["invitations"]["failed"], 1);
    let published = by_type("results.published");
    assert_eq!(published["data"]["min_group_size"], 5);
    let results = published["data"]["results"].as_str().unwrap();
    assert_eq!(results, format!("/api/v1/waves/{wave}/results"));
    assert_eq!(app.get(results, Some(&admin)).await.status(), 200);

    // The log says what happened to each. The wave's delivery.failed is
    // gone with its close: it would now say who could not have answered.
    let log = wait_for_deliveries(&app, &admin, &webhook, |list| {
        list.len() == 3 && list.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    assert!(log.iter().all(|d| d["event"] != "delivery.failed"));
    for delivery in &log {
        assert_eq!(delivery["attempts"], 1);
        assert_eq!(delivery["log"][0]["status_code"], 200);
        assert!(delivery["log"][0]["error"].is_null());
    }

    // The receiver fails: the message stays pending and comes again, the
    // same id and the very same body, once the back-off has passed.
    receiver.answer(500);
    let before = receiver.posted().len();
    let second = app.send_now(&admin, &pulse).await;
    let mut first_try = None;
    for _ in 0..500 {
        first_try = receiver.posted()[before..]
            .iter()
            .find(|p| p.event() == "wave.opened")
            .cloned();
        if first_try.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_try = first_try.expect("the second wave's opening, posted");
    assert_eq!(first_try.json()["data"]["wave_id"], second);
    let pending = wait_for_deliveries(&app, &admin, &webhook, |list| {
        list.iter()
            .any(|d| d["event_id"] == first_try.id && d["log"].as_array().unwrap().len() == 1)
    })
    .await;
    let delivery = pending
        .iter()
        .find(|d| d["event_id"] == first_try.id)
        .unwrap()
        .clone();
    assert_eq!(delivery["status"], "pending");
    assert_eq!(delivery["log"][0]["status_code"], 500);
    let endpoint: Value = app
        .get_json(&format!("/api/v1/webhooks/{webhook}"), Some(&admin))
        .await;
    assert_eq!(endpoint["consecutive_failures"], 1);
    assert_eq!(endpoint["enabled"], true);
    // Nothing more before the back-off has passed. (The second wave's
    // refused address may fail alongside: messages are told apart by id.)
    let tries = |id: &str| -> Vec<Posted> {
        receiver
            .posted()
            .into_iter()
            .filter(|p| p.id == id)
            .collect()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tries(&first_try.id).len(), 1);

    receiver.answer(200);
    app.clock.advance(Span::minutes(2));
    let log = wait_for_deliveries(&app, &admin, &webhook, |list| {
        list.iter()
            .filter(|d| d["created_at"].as_str() >= delivery["created_at"].as_str())
            .all(|d| d["status"] == "delivered")
    })
    .await;
    let both = tries(&first_try.id);
    assert_eq!(both.len(), 2, "tried again once, the same message id");
    let second_try = &both[1];
    assert_eq!(
        second_try.body, first_try.body,
        "byte for byte the same body"
    );
    assert_ne!(second_try.timestamp, first_try.timestamp);
    assert!(verify(&secret, second_try));
    let delivery = log.iter().find(|d| d["event_id"] == first_try.id).unwrap();
    assert_eq!(delivery["attempts"], 2);
    assert_eq!(delivery["log"][1]["status_code"], 200);
    let endpoint: Value = app
        .get_json(&format!("/api/v1/webhooks/{webhook}"), Some(&admin))
        .await;
    assert_eq!(endpoint["consecutive_failures"], 0);

    // Redelivery repeats the message as it was; a rotated secret signs it.
    let rotated = app
        .request(
            "POST",
            &format!("/api/v1/webhooks/{webhook}/secret"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(rotated.status(), 200);
    let new_secret = rotated.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_secret, secret);
    let delivery_id = delivery["id"].as_str().unwrap();
    let again = app
        .request(
            "POST",
            &format!("/api/v1/webhooks/{webhook}/deliveries/{delivery_id}/redeliver"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(again.status(), 202);
    for _ in 0..500 {
        if tries(&first_try.id).len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = tries(&first_try.id);
    assert_eq!(all.len(), 3, "redelivered once");
    let redelivered = &all[2];
    assert_eq!(redelivered.body, first_try.body);
    assert!(verify(&new_secret, redelivered));
    assert!(
        !verify(&secret, redelivered),
        "the old secret signs no more"
    );

    let missing = app
        .request(
            "POST",
            &format!(
                "/api/v1/webhooks/{webhook}/deliveries/{}/redeliver",
                uuid::Uuid::new_v4()
            ),
            Some(&admin),
            None,
        )
        .await;
    assert_problem(missing, 404, "not-found").await;
    app.stop().await;
    receiver.stop().await;
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_is_disabled_and_catches_up_once_enabled() {
    let receiver = Receiver::start().await;
    receiver.answer(503);
    let app = spawn_app_with(&webhook_settings("disable_after_failures = 3")).await;
    let admin = app.ready_admin_token().await;
    let (webhook, secret) = register(
        &app,
        &admin,
        &receiver.url,
        &["wave.opened", "wave.closed", "results.published"],
    )
    .await;
    // Events that come while an endpoint is disabled wait for it.
    let path = format!("/api/v1/webhooks/{webhook}");
    let (on, off) = (json!({"enabled": true}), json!({"enabled": false}));
    let patch = |enabled: bool| {
        app.request(
            "PATCH",
            &path,
            Some(&admin),
            Some(if enabled { &on } else { &off }),
        )
    };
    assert_eq!(patch(false).await.status(), 200);
    let team = team_with_people(&app, &admin, "Ops", None, 3).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse = app.create_pulse(&admin, &[&team]).await;
    let wave = app.send_now(&admin, &pulse).await;
    app.close_wave(&admin, &wave).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.posted().is_empty());
    assert_eq!(deliveries(&app, &admin, &webhook).await.len(), 3);
    assert_eq!(patch(true).await.status(), 200);

    // The first round fails all three at once: one failure of the endpoint.
    // From then on one probe per back-off, until the third failure in a row.
    let mut expected = 3;
    for failures in 1..=3 {
        if failures > 1 {
            expected += 1;
            app.clock.advance(Span::hours(2));
        }
        receiver.wait_for(expected).await;
        let endpoint = wait_for_endpoint(&app, &admin, &webhook, |e| {
            e["consecutive_failures"].as_i64() >= Some(failures)
        })
        .await;
        assert_eq!(endpoint["consecutive_failures"], failures);
        assert!(!endpoint["retry_at"].is_null());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            receiver.posted().len(),
            expected,
            "one probe per back-off, not the backlog"
        );
    }
    let endpoint: Value = app
        .get_json(&format!("/api/v1/webhooks/{webhook}"), Some(&admin))
        .await;
    assert_eq!(endpoint["enabled"], false);
    assert!(
        endpoint["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("failed 3 times in a row")
    );

    // Disabled: nothing goes out, however long; redelivery is refused.
    app.clock.advance(Span::days(3));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.posted().len(), expected);
    let pending = deliveries(&app, &admin, &webhook).await;
    assert!(pending.iter().all(|d| d["status"] == "pending"));
    let refused = app
        .request(
            "POST",
            &format!(
                "/api/v1/webhooks/{webhook}/deliveries/{}/redeliver",
                pending[0]["id"].as_str().unwrap()
            ),
            Some(&admin),
            None,
        )
        .await;
    assert_problem(refused, 409, "conflict").await;

    // Back and enabled: everything that waited arrives, once, at once.
    receiver.answer(204);
    let enabled = patch(true).await;
    assert_eq!(enabled.status(), 200);
    let enabled: Value = enabled.json().await.unwrap();
    assert_eq!(enabled["consecutive_failures"], 0);
    assert!(enabled["disabled_reason"].is_null());
    wait_for_deliveries(&app, &admin, &webhook, |list| {
        list.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    let posted = receiver.posted();
    let delivered: Vec<&Posted> = posted[expected..].iter().collect();
    let mut events: Vec<String> = delivered.iter().map(|p| p.event()).collect();
    events.sort();
    assert_eq!(events, ["results.published", "wave.closed", "wave.opened"]);
    assert!(delivered.iter().all(|p| verify(&secret, p)));
    // Every message the receiver saw, failed or not, is one of the three.
    let mut ids: Vec<&str> = posted.iter().map(|p| p.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    app.stop().await;
    receiver.stop().await;
}

async fn wait_for_endpoint(
    app: &TestApp,
    admin: &str,
    webhook: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..500 {
        let endpoint: Value = app
            .get_json(&format!("/api/v1/webhooks/{webhook}"), Some(admin))
            .await;
        if done(&endpoint) {
            return endpoint;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the endpoint never got there");
}

#[tokio::test]
async fn endpoints_into_the_internal_network_are_refused_unless_allowed() {
    let receiver = Receiver::start().await;
    // The defaults: https only, no internal addresses.
    // No internal addresses (the default); http allowed, for the last part.
    let app = spawn_app_with("[webhooks]\npoll_interval_ms = 20\nrequire_https = false\n").await;
    let admin = app.ready_admin_token().await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("https://127.0.0.1:{port}/"),
        "https://10.1.2.3/hook".to_owned(),
        "https://[::1]/hook".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://0x7f000001/".to_owned(),
        "https://admin:pw@8.8.8.8/".to_owned(),
        "ftp://8.8.8.8/".to_owned(),
        "not a url".to_owned(),
    ] {
        let refused = app
            .post_json(
                "/api/v1/webhooks",
                &json!({"url": url, "events": ["wave.opened"]}),
                Some(&admin),
            )
            .await;
        let problem = assert_problem(refused, 422, "validation").await;
        assert_eq!(problem_fields(&problem), ["url"], "{url}: {problem}");
    }
    let bad = app
        .post_json(
            "/api/v1/webhooks",
            &json!({"url": "https://8.8.8.8/", "events": []}),
            Some(&admin),
        )
        .await;
    let problem = assert_problem(bad, 422, "validation").await;
    assert_eq!(problem_fields(&problem), ["events"]);
    let unknown = app
        .post_json(
            "/api/v1/webhooks",
            &json!({"url": "https://8.8.8.8/", "events": ["wave.deleted"]}),
            Some(&admin),
        )
        .await;
    assert_eq!(unknown.status(), 422);
    let listed: Vec<Value> = app.get_json("/api/v1/webhooks", Some(&admin)).await;
    assert!(listed.is_empty(), "nothing registered by a refused request");

    // A public address passes (nothing is ever sent to it here: no event).
    let (public, _) = register(&app, &admin, "https://8.8.8.8/peil", &["wave.closed"]).await;
    let moved = app
        .request(
            "PATCH",
            &format!("/api/v1/webhooks/{public}"),
            Some(&admin),
            Some(&json!({"url": format!("https://localhost:{port}/")})),
        )
        .await;
    let problem = assert_problem(moved, 422, "validation").await;
    assert_eq!(problem_fields(&problem), ["url"]);
    assert_eq!(
        app.request(
            "DELETE",
            &format!("/api/v1/webhooks/{public}"),
            Some(&admin),
            None
        )
        .await
        .status(),
        204
    );

    // A host name that resolves internally at delivery time (its DNS
    // changed since registration) is refused by the resolver: the receiver
    // on loopback never hears of it.
    {
        use diesel::prelude::*;
        use peil::db::schema::webhooks;
        let keys = app.keys();
        let url = format!("http://localhost:{port}/hooks/peil");
        app.db()
            .run(move |conn| {
                let organisation: String = peil::db::schema::organisations::table
                    .select(peil::db::schema::organisations::id)
                    .first(conn)?;
                let now = peil::db::now();
                diesel::insert_into(webhooks::table)
                    .values((
                        webhooks::id.eq("rebound"),
                        webhooks::organisation_id.eq(organisation),
                        webhooks::url.eq(url),
                        webhooks::description.eq(""),
                        webhooks::events.eq("wave.opened"),
                        webhooks::secret.eq(keys.seal_webhook_secret("rebound", "whsec_AAAA")),
                        webhooks::enabled.eq(true),
                        webhooks::consecutive_failures.eq(0),
                        webhooks::created_at.eq(now),
                        webhooks::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .map_err(peil::db::DbError::from)
            })
            .await
            .unwrap();
    }
    let team = team_with_people(&app, &admin, "Ops", None, 3).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse = app.create_pulse(&admin, &[&team]).await;
    app.send_now(&admin, &pulse).await;
    let log = wait_for_deliveries(&app, &admin, "rebound", |list| {
        list.first()
            .is_some_and(|d| !d["log"].as_array().unwrap().is_empty())
    })
    .await;
    let error = log[0]["log"][0]["error"].as_str().unwrap();
    assert!(error.contains("internal address"), "{error}");
    assert!(log[0]["log"][0]["status_code"].is_null());
    assert!(receiver.posted().is_empty());

    // Only admins manage webhooks.
    let (_, hr) = app.account_token(&admin, "hr", None).await;
    assert_problem(
        app.get("/api/v1/webhooks", Some(&hr)).await,
        403,
        "forbidden",
    )
    .await;
    app.stop().await;
    receiver.stop().await;
}

#[tokio::test]
async fn a_reminder_that_fails_for_good_raises_no_event() {
    // Who is reminded is who has not answered: no event may say so.
    let receiver = Receiver::start().await;
    let smtp = SmtpServer::start().await;
    let mail = format!(
        "[mail]\nenabled = true\npoll_interval_ms = 20\nfrom = \"Peil <peil@example.org>\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout_secs = 5\n",
        smtp.port
    );
    let app = spawn_app_with(&format!("{mail}{}", webhook_settings(""))).await;
    let admin = app.ready_admin_token().await;
    let (webhook, _) = register(
        &app,
        &admin,
        &receiver.url,
        &["delivery.failed", "wave.opened"],
    )
    .await;
    let team = team_with_people(&app, &admin, "Legal", None, 3).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse = app.create_pulse(&admin, &[&team]).await;
    let wave = app.send_now(&admin, &pulse).await;
    smtp.wait_for(3, 20).await;
    receiver.wait_for(1).await;
    // Recorded as sent, not only received: an email still claimed when the
    // clock jumps two days has an expired lease and would go again.
    for _ in 0..250 {
        let detail: Value = app
            .get_json(&format!("/api/v1/waves/{wave}"), Some(&admin))
            .await;
        if detail["delivery"]["invitations"]["sent"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The invitations arrived; now one address refuses, and the reminder
    // to it (nobody has answered) fails permanently.
    smtp.refuse("legal1@example.org");
    app.clock.set(at("2026-03-04T10:00:00Z"));
    assert_eq!(app.run_schedule().await.reminders_queued, 3);
    smtp.wait_for(5, 20).await;
    for _ in 0..250 {
        let detail: Value = app
            .get_json(&format!("/api/v1/waves/{wave}"), Some(&admin))
            .await;
        if detail["delivery"]["reminders"]["failed"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let detail: Value = app
        .get_json(&format!("/api/v1/waves/{wave}"), Some(&admin))
        .await;
    assert_eq!(detail["delivery"]["reminders"]["failed"], 1, "{detail}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events: Vec<String> = deliveries(&app, &admin, &webhook)
        .await
        .iter()
        .map(|d| d["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(events, ["wave.opened"]);
    assert!(receiver.posted().iter().all(|p| p.event() == "wave.opened"));
    app.stop().await;
    receiver.stop().await;
}
