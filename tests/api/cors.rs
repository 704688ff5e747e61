//! CORS: only the configured web origins get the headers a browser needs
//! to let their pages read the API; nothing else changes for anyone.

use crate::helpers::{spawn_app, spawn_app_with};

const DASHBOARD: &str = "https://hr.example.org";

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn a_configured_origin_may_call_the_api_from_a_browser() {
    let app = spawn_app_with(&format!("[server]\ncors_origins = [\"{DASHBOARD}/\"]\n")).await;
    let token = app.ready_admin_token().await;

    // The browser's preflight before an authenticated GET.
    let preflight = app
        .request_with_headers(
            "OPTIONS",
            "/api/v1/results/heatmap",
            None,
            &[
                ("origin", DASHBOARD),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "authorization"),
            ],
        )
        .await;
    assert_eq!(preflight.status(), 200);
    assert_eq!(
        header(&preflight, "access-control-allow-origin"),
        Some(DASHBOARD)
    );
    let allowed = header(&preflight, "access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");

    // The request itself: its answer may be read, ETag included.
    let me = app
        .request_with_headers(
            "GET",
            "/api/v1/auth/me",
            Some(&token),
            &[("origin", DASHBOARD)],
        )
        .await;
    assert_eq!(me.status(), 200);
    assert_eq!(header(&me, "access-control-allow-origin"), Some(DASHBOARD));
    let exposed = header(&me, "access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(exposed.contains("etag"), "{exposed}");

    // Another origin is served as ever, but without the headers, so a
    // browser keeps its page from reading the answer.
    for method in ["GET", "OPTIONS"] {
        let other = app
            .request_with_headers(
                method,
                "/api/v1/auth/me",
                Some(&token),
                &[
                    ("origin", "https://elsewhere.example"),
                    ("access-control-request-method", "GET"),
                ],
            )
            .await;
        if method == "GET" {
            assert_eq!(other.status(), 200, "served, not refused");
        }
        assert_eq!(
            header(&other, "access-control-allow-origin"),
            None,
            "{method}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn without_configured_origins_no_page_elsewhere_may_read_the_api() {
    let app = spawn_app().await;
    let token = app.ready_admin_token().await;
    let me = app
        .request_with_headers(
            "GET",
            "/api/v1/auth/me",
            Some(&token),
            &[("origin", DASHBOARD)],
        )
        .await;
    assert_eq!(me.status(), 200);
    assert_eq!(header(&me, "access-control-allow-origin"), None);
    let preflight = app
        .request_with_headers(
            "OPTIONS",
            "/api/v1/auth/me",
            None,
            &[
                ("origin", DASHBOARD),
                ("access-control-request-method", "GET"),
            ],
        )
        .await;
    assert_eq!(header(&preflight, "access-control-allow-origin"), None);
    app.stop().await;
}
