//! Every error is `application/problem+json` with a machine-readable type,
//! and bad input is refused with a 4xx without changing anything.

use serde_json::json;

use crate::helpers::{assert_problem, problem_fields, spawn_app, spawn_app_with};

#[tokio::test]
async fn unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    let response = app.get("/api/v1/no-such-thing", None).await;
    assert_problem(response, 404, "not-found").await;
    let odd = app.get("/api/v1/%FF%00..%2F", None).await;
    assert_problem(odd, 404, "not-found").await;
    app.stop().await;
}

#[tokio::test]
async fn a_method_a_path_does_not_have_is_405_with_allow() {
    let app = spawn_app().await;
    for (method, path, allow) in [
        ("GET", "/api/v1/auth/login", "POST"),
        ("TRACE", "/api/v1/teams", "GET, POST"),
        ("PUT", "/api/v1/teams/any-id", "GET, DELETE, PATCH"),
    ] {
        let response = app.request(method, path, None, None).await;
        assert_eq!(
            response.headers().get("allow").map(|v| v.to_str().unwrap()),
            Some(allow),
            "{method} {path}"
        );
        assert_problem(response, 405, "method-not-allowed").await;
    }
    // Not a path Peil serves at all: 404, whatever the method.
    let response = app.request("PUT", "/api/v1/teams/a/b", None, None).await;
    assert_problem(response, 404, "not-found").await;
    let response = app.request("PUT", "/api/v1/teams/", None, None).await;
    assert_problem(response, 404, "not-found").await;
    app.stop().await;
}

#[tokio::test]
async fn validation_names_every_bad_field() {
    let app = spawn_app().await;
    let response = app
        .post_json("/api/v1/auth/login", &json!({"email": 42}), None)
        .await;
    let problem = assert_problem(response, 422, "validation").await;
    assert_eq!(problem_fields(&problem), vec!["email", "password"]);
    for error in problem["errors"].as_array().unwrap() {
        assert!(error["pointer"].as_str().unwrap().starts_with('/'));
        assert!(!error["detail"].as_str().unwrap().is_empty());
    }
    let not_object = app
        .post_json("/api/v1/auth/login", &json!([1, 2]), None)
        .await;
    assert_problem(not_object, 422, "validation").await;
    app.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_400() {
    let app = spawn_app().await;
    for body in [
        b"{\"email\": ".to_vec(),
        b"\xff\xfe\x00garbage".to_vec(),
        "[".repeat(100_000).into_bytes(),
        b"{\"email\": 1e999999}".to_vec(),
    ] {
        let response = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!(status == 400 || status == 413 || status == 422, "{status}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("Content-Type", "text/plain")
        .body("email=a&password=b")
        .send()
        .await
        .unwrap();
    assert_problem(response, 415, "unsupported-media-type").await;
    let missing = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(missing, 415, "unsupported-media-type").await;
    app.stop().await;
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = spawn_app_with("[server]\nmax_body_bytes = 4096").await;
    let padding = "x".repeat(10_000);
    let response = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": padding, "password": "p"}),
            None,
        )
        .await;
    let problem = assert_problem(response, 413, "payload-too-large").await;
    assert!(problem["detail"].as_str().unwrap().contains("4096"));
    // The server is still there.
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    app.stop().await;
}
