//! The API's rate limits (`rate_limits`): per client address and per
//! credential, on sign-in and on every API request; 429 with Retry-After,
//! and recovery once that wait is over. Each test turns on only the limit
//! it is about, at 12 a minute: one every 5 s after the burst, so that a
//! slow machine does not earn a request back while a test spends a burst.

use std::time::Duration;

use reqwest::Response;
use serde_json::json;

use crate::helpers::{TestApp, assert_problem, spawn_app_with};

const OFF: &str = "{ per_minute = 0, burst = 0 }";

/// Settings with every API limit off but `name`, which allows `burst`.
fn only(name: &str, burst: u32, extra: &str) -> String {
    let limits = [
        "api_per_address",
        "api_per_credential",
        "sign_in_per_address",
        "sign_in_per_account",
    ]
    .map(|limit| {
        if limit == name {
            format!("{limit} = {{ per_minute = 12, burst = {burst} }}")
        } else {
            format!("{limit} = {OFF}")
        }
    });
    format!("{extra}\n[rate_limits]\n{}\n", limits.join("\n"))
}

/// Asserts a 429 problem and returns its Retry-After in seconds.
async fn refused(response: Response) -> u64 {
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert_problem(response, 429, "too-many-requests").await;
    assert!((1..=5).contains(&retry_after), "{retry_after}");
    retry_after
}

async fn wait(seconds: u64) {
    tokio::time::sleep(Duration::from_secs(seconds) + Duration::from_millis(100)).await;
}

async fn sign_in_from(app: &TestApp, email: &str, forwarded_for: Option<&str>) -> Response {
    let mut request = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": "not the password"}));
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.expect("POST /auth/login")
}

#[tokio::test]
async fn sign_in_per_address_answers_429_and_recovers() {
    let app = spawn_app_with(&only("sign_in_per_address", 3, "")).await;
    for n in 0..3 {
        let email = format!("nobody{n}@example.org");
        assert_eq!(sign_in_from(&app, &email, None).await.status(), 401);
    }
    let wait_for = refused(sign_in_from(&app, "someone@example.org", None).await).await;
    // The same route spelt with a percent-escape is the same route.
    let escaped = app
        .client
        .post(app.url("/api/v1/auth/logi%6E"))
        .json(&json!({"email": "x@example.org", "password": "y"}))
        .send()
        .await
        .unwrap();
    refused(escaped).await;
    // The rest of the API is not the sign-in limit's business.
    assert_eq!(app.get("/api/v1/auth/me", None).await.status(), 401);
    wait(wait_for).await;
    let token = app.admin_token().await;
    assert!(!token.is_empty(), "signing in works again after the wait");
    app.stop().await;
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_a_trusted_proxy() {
    // The test client is the proxy: behind it, each forwarded address has
    // its own bucket.
    let trusted = only(
        "sign_in_per_address",
        2,
        "[server]\ntrusted_proxies = [\"127.0.0.1\"]",
    );
    let app = spawn_app_with(&trusted).await;
    let a = Some("198.51.100.1");
    let b = Some("198.51.100.2, 127.0.0.1");
    for _ in 0..2 {
        assert_eq!(sign_in_from(&app, "x@example.org", a).await.status(), 401);
    }
    refused(sign_in_from(&app, "x@example.org", a).await).await;
    assert_eq!(
        sign_in_from(&app, "x@example.org", b).await.status(),
        401,
        "another client behind the proxy (the proxy's own hop skipped) is not limited"
    );
    app.stop().await;

    // Not trusted: the header is the client's word and changes nothing.
    let app = spawn_app_with(&only("sign_in_per_address", 2, "")).await;
    assert_eq!(sign_in_from(&app, "x@example.org", a).await.status(), 401);
    assert_eq!(sign_in_from(&app, "x@example.org", b).await.status(), 401);
    refused(sign_in_from(&app, "x@example.org", Some("198.51.100.3")).await).await;
    app.stop().await;
}

#[tokio::test]
async fn sign_in_per_account_counts_each_email_address_tried() {
    let app = spawn_app_with(&only("sign_in_per_account", 2, "")).await;
    let admin = app.admin.email.clone();
    for _ in 0..2 {
        assert_eq!(sign_in_from(&app, &admin, None).await.status(), 401);
    }
    // The same address in another case is the same account.
    let wait_for = refused(sign_in_from(&app, &admin.to_uppercase(), None).await).await;
    assert_eq!(
        sign_in_from(&app, "unknown@example.org", None)
            .await
            .status(),
        401,
        "another email address has its own count"
    );
    wait(wait_for).await;
    let token = app.admin_token().await;
    assert!(!token.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn api_per_credential_counts_an_account_across_its_sessions_and_each_key_apart() {
    let app = spawn_app_with(&only("api_per_credential", 40, "")).await;
    let token = app.ready_admin_token().await;
    let (_, key) = app.api_key(&token, &["results:read"]).await;
    // Spend what is left of the burst (the password change took one).
    let mut allowed = 0;
    let retry_after = loop {
        let response = app.get("/api/v1/teams", Some(&token)).await;
        if response.status() == 429 {
            break refused(response).await;
        }
        assert_eq!(response.status(), 200);
        allowed += 1;
        assert!(allowed <= 40, "the limit never answered");
    };
    assert!(allowed >= 30, "only {allowed} requests were allowed");
    // A new session of the same account shares the account's count.
    let login = app
        .login(&app.admin.email, crate::helpers::NEW_PASSWORD)
        .await;
    assert_eq!(login.status(), 200, "signing in is not an API request");
    let second: serde_json::Value = login.json().await.unwrap();
    let second = second["token"].as_str().unwrap();
    refused(app.get("/api/v1/teams", Some(second)).await).await;
    assert_eq!(
        app.get("/api/v1/teams", Some(&key)).await.status(),
        200,
        "an API key has its own count"
    );
    wait(retry_after).await;
    assert_eq!(app.get("/api/v1/teams", Some(&token)).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn api_per_address_covers_the_api_but_not_answer_links_or_probes() {
    let app = spawn_app_with(&only("api_per_address", 3, "")).await;
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/auth/me", None).await.status(), 401);
    }
    let retry_after = refused(app.get("/api/v1/teams", None).await).await;
    // Percent-escapes route like the letters they stand for, and count so.
    refused(app.get("/api/%761/teams", None).await).await;
    // Answer links have their own limit (answers.rate_limit); probes none.
    assert_eq!(
        app.get("/api/v1/answers/not-a-token", None).await.status(),
        404
    );
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    wait(retry_after).await;
    assert_eq!(app.get("/api/v1/auth/me", None).await.status(), 401);
    app.stop().await;
}
