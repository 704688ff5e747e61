//! Probes and the OpenAPI document.

use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_and_readyz_answer_when_migrated() {
    let app = spawn_app().await;
    let alive = app.get("/healthz", None).await;
    assert_eq!(alive.status(), 200);
    assert_eq!(alive.json::<Value>().await.unwrap()["status"], "alive");
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
    app.stop().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_echoes_a_sane_one() {
    let app = spawn_app().await;
    let generated = app.get("/healthz", None).await;
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    let echoed = app
        .client
        .get(app.url("/healthz"))
        .header("X-Request-Id", "lb-1234_abc")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "lb-1234_abc");
    // Anything that could smuggle text into logs is replaced.
    let hostile = app
        .client
        .get(app.url("/healthz"))
        .header("X-Request-Id", "a b\"c")
        .send()
        .await
        .unwrap();
    assert_ne!(hostile.headers()["x-request-id"], "a b\"c");
    app.stop().await;
}

#[tokio::test]
async fn openapi_document_is_3_1_and_lists_every_route() {
    let app = spawn_app().await;
    let response = app.get("/api/openapi.json", None).await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for (path, method) in [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/password", "post"),
        ("/api/v1/auth/me", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert_eq!(
        doc["paths"]["/api/v1/auth/me"]["get"]["security"][0]["bearer"],
        serde_json::json!([])
    );
    // OpenAPI requires a description on every response.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status} has no description"
                );
            }
            // What whole kinds of operations answer is documented on each.
            let documented = |status: &str| operation["responses"][status].is_object();
            let has_parameters = operation["parameters"]
                .as_array()
                .is_some_and(|p| !p.is_empty());
            if operation["requestBody"].is_object() {
                for status in ["400", "413", "415"] {
                    assert!(documented(status), "{method} {path} lacks {status}");
                }
            } else if has_parameters {
                assert!(documented("400"), "{method} {path} lacks 400");
            }
        }
    }
    app.stop().await;
}

/// Every handler in the source, by its route attribute, against the served
/// document: a route the document lacks fails here, however it was mounted.
/// The answer page's HTML (`/s/…`) is for people, not part of the API.
#[tokio::test]
async fn no_route_in_the_source_is_missing_from_the_openapi_document() {
    let app = spawn_app().await;
    let doc: Value = app.get_json("/api/openapi.json", None).await;
    let mut files = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    let mut routes = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        for line in source.lines().map(str::trim) {
            for method in ["get", "post", "put", "patch", "delete"] {
                let Some(rest) = line.strip_prefix(&format!("#[{method}(\"")) else {
                    continue;
                };
                let route = rest.split('"').next().unwrap().to_owned();
                routes.push((method, route, path.clone()));
            }
        }
    }
    assert!(
        routes.len() > 60,
        "the source's routes were found: {routes:?}"
    );
    let mut missing = Vec::new();
    for (method, route, file) in &routes {
        let full = if route.starts_with("/s/") {
            continue;
        } else if file.ends_with("http/health.rs") {
            route.clone()
        } else {
            format!("/api/v1{route}")
        };
        if !doc["paths"][&full][*method].is_object() {
            missing.push(format!("{method} {full} ({})", file.display()));
        }
    }
    assert!(missing.is_empty(), "not in the document: {missing:#?}");
    app.stop().await;
}

#[tokio::test]
async fn the_docs_page_is_served_from_the_binary() {
    let app = spawn_app().await;
    let page = app.get("/api/docs/", None).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    app.stop().await;
}
