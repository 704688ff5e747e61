//! `GET /metrics`: the counters and gauges follow what the service does,
//! and the endpoint is served where the configuration says, to whom it says.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::answers::invitation_ids;
use crate::helpers::{TestApp, assert_problem, spawn_app_with};
use crate::mail::wait_for_delivery;
use crate::pulses::{at, team_with_people};

/// Every sample of a scrape by its name and labels, e.g.
/// `peil_waves{state="open"}`.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape_at(app: &TestApp, base: &str) -> BTreeMap<String, f64> {
    let response = app
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "a complete exposition");
    samples(&text)
}

fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("{key} missing from {:#?}", samples.keys()))
}

#[tokio::test]
async fn metrics_follow_requests_emails_waves_webhooks_and_the_pool() {
    let webhooks = "[webhooks]\nenabled = true\nallow_private_addresses = true\nrequire_https = false\npoll_interval_ms = 20\nretry_base_secs = 600\n";
    let app = spawn_app_with(webhooks).await;
    let admin = app.ready_admin_token().await;
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/teams", Some(&admin)).await.status(), 200);
    }
    assert_eq!(app.get("/api/v1/teams", None).await.status(), 401);
    // Nothing listens on port 9: every attempt fails.
    let hook = app
        .post_json(
            "/api/v1/webhooks",
            &json!({"url": "http://127.0.0.1:9/hook", "events": ["wave.opened", "wave.closed"]}),
            Some(&admin),
        )
        .await;
    assert_eq!(hook.status(), 201);
    let team = team_with_people(&app, &admin, "Finance", None, 3).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse = app.create_pulse(&admin, &[&team]).await;
    let wave = app.send_now(&admin, &pulse).await;
    // An answer: its route is counted by pattern, its token nowhere.
    let token = app
        .keys()
        .invitation_token(&invitation_ids(&app, &wave).await[0])
        .unwrap();
    let answered = app
        .post_json(
            &format!("/api/v1/answers/{token}"),
            &json!({"answers": {"DEV1": 4}}),
            None,
        )
        .await;
    assert_eq!(answered.status(), 201, "{}", answered.text().await.unwrap());

    let open = scrape_at(&app, &app.address).await;
    let teams_ok = r#"peil_http_requests_total{method="GET",route="/api/v1/teams",status="200"}"#;
    assert_eq!(value(&open, teams_ok), 3.0);
    assert_eq!(
        value(
            &open,
            r#"peil_http_requests_total{method="GET",route="/api/v1/teams",status="401"}"#
        ),
        1.0
    );
    assert!(
        value(
            &open,
            r#"peil_http_request_duration_seconds_count{method="GET",route="/api/v1/teams"}"#
        ) >= 4.0
    );
    assert_eq!(
        value(
            &open,
            r#"peil_http_requests_total{method="POST",route="/api/v1/answers/{token}",status="201"}"#
        ),
        1.0
    );
    assert!(
        !open.keys().any(|k| k.contains(&token)),
        "no link token in the metrics"
    );
    // The mail worker is off in this app: the invitations wait.
    assert_eq!(value(&open, "peil_outbox_depth"), 3.0);
    assert!(value(&open, "peil_outbox_oldest_age_seconds") >= 0.0);
    assert_eq!(value(&open, "peil_waves_opened_total"), 1.0);
    assert_eq!(value(&open, r#"peil_waves{state="open"}"#), 1.0);
    assert_eq!(value(&open, "peil_database_up"), 1.0);
    assert_eq!(value(&open, "peil_db_pool_max_connections"), 4.0);
    assert!(value(&open, "peil_db_pool_connections") >= 1.0);

    // A replica with the mail worker on sends them, and counts them.
    let replica = app
        .another_instance(
            app.clock.clone(),
            // Its own webhook worker would take the deliveries (and refuse
            // the loopback address, counting the failure as its own).
            "[mail]\nenabled = true\npoll_interval_ms = 20\n[webhooks]\nenabled = false\n",
        )
        .await;
    wait_for_delivery(&app, &admin, &wave, |d| d["invitations"]["sent"] == 3).await;
    let sent = scrape_at(&app, &replica.address).await;
    assert_eq!(value(&sent, r#"peil_emails_total{outcome="sent"}"#), 3.0);
    replica.stop().await;

    app.close_wave(&admin, &wave).await;
    // The endpoint fails its first post; the rest wait for it to recover
    // (one probe at a time, after the back-off).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let closed = loop {
        let now = scrape_at(&app, &app.address).await;
        let failed = now
            .get(r#"peil_webhook_attempts_total{outcome="failed"}"#)
            .copied()
            .unwrap_or(0.0);
        if failed >= 1.0 {
            break now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failed webhook attempt counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(value(&closed, "peil_outbox_depth"), 0.0);
    assert_eq!(value(&closed, "peil_outbox_oldest_age_seconds"), 0.0);
    assert_eq!(value(&closed, "peil_waves_closed_total"), 1.0);
    assert_eq!(value(&closed, r#"peil_waves{state="closed"}"#), 1.0);
    assert_eq!(
        value(&closed, "peil_webhook_queue_depth"),
        2.0,
        "opened and closed, waiting"
    );
    assert!(value(&closed, "peil_webhook_queue_oldest_age_seconds") >= 0.0);
    app.stop().await;
}

#[tokio::test]
async fn metrics_are_for_loopback_by_default_for_the_token_or_on_their_own_address() {
    // Default: loopback clients; behind a trusted proxy, the forwarded client decides.
    let app = spawn_app_with("[server]\ntrusted_proxies = [\"127.0.0.1\"]\n").await;
    scrape_at(&app, &app.address).await;
    let proxied = app
        .request_with_headers(
            "GET",
            "/metrics",
            None,
            &[("x-forwarded-for", "203.0.113.5")],
        )
        .await;
    assert_problem(proxied, 403, "forbidden").await;
    app.stop().await;
    // An untrusted proxy on the same host is a loopback peer too: what it
    // forwarded is not local.
    let app = spawn_app_with("").await;
    scrape_at(&app, &app.address).await;
    for header in ["x-forwarded-for", "forwarded"] {
        let proxied = app
            .request_with_headers("GET", "/metrics", None, &[(header, "for=203.0.113.5")])
            .await;
        assert_problem(proxied, 403, "forbidden").await;
    }
    app.stop().await;

    let token = "a scraper's long token";
    let app = spawn_app_with(&format!("[metrics]\ntoken = \"{token}\"\n")).await;
    assert_problem(app.get("/metrics", None).await, 401, "unauthenticated").await;
    assert_problem(
        app.get("/metrics", Some("not the token at all")).await,
        403,
        "forbidden",
    )
    .await;
    let scraped = app.get("/metrics", Some(token)).await;
    assert_eq!(scraped.status(), 200);
    assert!(scraped.text().await.unwrap().contains("peil_database_up 1"));
    app.stop().await;

    let app = spawn_app_with("[metrics]\nlisten = \"127.0.0.1:0\"\n").await;
    let port = app.metrics_port.expect("a port of its own");
    assert_eq!(
        app.get("/metrics", None).await.status(),
        404,
        "not on the main address"
    );
    let own = scrape_at(&app, &format!("http://127.0.0.1:{port}")).await;
    assert_eq!(value(&own, "peil_database_up"), 1.0);
    app.stop().await;
}
