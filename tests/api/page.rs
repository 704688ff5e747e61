//! The answer page (`/s/{token}`) over real HTTP: the form in the person's
//! language with a switch, errors inline with the given answers kept, the
//! thank-you page, and the pages for an answered, closed or unknown link —
//! each with its status and the security headers, and no cookies.

use reqwest::Response;
use reqwest::header::CONTENT_TYPE;

use crate::answers::open_wave;
use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_with};

async fn page(app: &TestApp, path: &str) -> Response {
    app.client.get(app.url(path)).send().await.unwrap()
}

async fn post_form(app: &TestApp, path: &str, form: &str) -> Response {
    app.client
        .post(app.url(path))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .unwrap()
}

/// Status, the security headers, and the HTML.
async fn html(response: Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    let headers = response.headers().clone();
    assert!(
        headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{headers:?}"
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
        "{csp}"
    );
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(!headers.contains_key("set-cookie"), "no cookies");
    let body = response.text().await.unwrap();
    assert!(
        !body.contains("http://") && !body.contains("https://"),
        "no third-party assets"
    );
    body
}

#[tokio::test]
async fn the_form_speaks_the_persons_language_and_switches() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let (_, links) = open_wave(&app, &admin).await;
    // links are ordered by invitation id; find a Dutch and an English one.
    let mut seen = (false, false);
    for (token, _) in &links {
        let body = html(page(&app, &format!("/s/{token}")).await, 200).await;
        assert!(body.contains("<fieldset"), "{body}");
        assert!(body.contains("<legend>"));
        assert!(body.contains("type=\"radio\" name=\"DEV1\" value=\"1\""));
        assert!(body.contains("<textarea id=\"c-DEV_T\" name=\"DEV_T\""));
        assert!(body.contains("href=\"/s/assets/peil.css\""));
        if body.contains("<html lang=\"nl\">") {
            assert!(body.contains("Wie ziet wat"), "{body}");
            assert!(body.contains("minstens 5 mensen"));
            seen.0 = true;
            let english = html(page(&app, &format!("/s/{token}?language=en")).await, 200).await;
            assert!(english.contains("<html lang=\"en\">"));
            assert!(english.contains("Who sees what"));
        } else {
            assert!(body.contains("Who sees what"), "{body}");
            seen.1 = true;
        }
    }
    assert_eq!(seen, (true, true), "both languages among the invitations");
    let css = page(&app, "/s/assets/peil.css").await;
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

#[tokio::test]
async fn a_bad_answer_comes_back_inline_with_the_others_kept_then_thanks_then_answered() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let (_, links) = open_wave(&app, &admin).await;
    let path = format!("/s/{}", links[0].0);

    let body = html(
        post_form(&app, &path, "language=en&DEV1=9&DEV2=3&DEV_T=hello%20there").await,
        422,
    )
    .await;
    assert!(body.contains("role=\"alert\""), "{body}");
    assert!(
        body.contains("href=\"#q-DEV1\""),
        "the error links to its question"
    );
    assert!(body.contains("aria-invalid=\"true\""));
    assert!(
        body.contains("name=\"DEV2\" value=\"3\" checked"),
        "given answers kept: {body}"
    );
    assert!(body.contains(">hello there</textarea>"));

    let thanks = html(
        post_form(&app, &path, "language=en&DEV1=4&DEV2=3").await,
        200,
    )
    .await;
    assert!(thanks.contains("Thank you"), "{thanks}");
    let answered = html(page(&app, &format!("{path}?language=en")).await, 409).await;
    assert!(answered.contains("Already answered"), "{answered}");
    let again = html(post_form(&app, &path, "language=nl&DEV1=1").await, 409).await;
    assert!(again.contains("Al beantwoord"), "{again}");
}

#[tokio::test]
async fn unknown_links_get_one_404_page_and_a_closed_wave_a_410() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let (wave, links) = open_wave(&app, &admin).await;
    let never = app
        .keys()
        .invitation_token("0b5e5d3c-5b7a-4f55-8d6e-2f1b9c2a7d10")
        .unwrap();
    let unknown = html(page(&app, &format!("/s/{never}")).await, 404).await;
    let garbage = html(page(&app, "/s/not-a-token").await, 404).await;
    assert_eq!(
        unknown, garbage,
        "the same page, nothing to tell them apart"
    );
    html(post_form(&app, "/s/not-a-token", "DEV1=3").await, 404).await;

    app.close_wave(&admin, &wave).await;
    let path = format!("/s/{}", links[2].0);
    let body = html(page(&app, &path).await, 410).await;
    assert!(
        body.contains("closed") || body.contains("gesloten"),
        "{body}"
    );
    html(post_form(&app, &path, "DEV1=3").await, 410).await;
}

/// Links are rate-limited per client address (`answers.rate_limit`, here
/// one every 3 seconds after a burst of 3): past the burst every link request gets a
/// 429 with Retry-After — the page as HTML in the asked language, the JSON
/// flow as a problem — known link or not, whatever `X-Forwarded-For` says
/// (no proxy is trusted); once the wait is over, links open again.
#[tokio::test]
async fn links_are_rate_limited_per_address_and_open_again_after_the_wait() {
    let app = spawn_app_with("[answers.rate_limit]\nper_minute = 20\nburst = 3\n").await;
    let admin = app.ready_admin_token().await;
    let (_, links) = open_wave(&app, &admin).await;
    let token = &links[0].0;
    for _ in 0..3 {
        html(page(&app, &format!("/s/{token}")).await, 200).await;
    }

    let busy = page(&app, &format!("/s/{token}?language=nl")).await;
    let wait: u64 = busy.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&wait), "Retry-After {wait}");
    let body = html(busy, 429).await;
    assert!(body.contains("Te veel verzoeken"), "{body}");
    assert!(!body.contains("<form"), "nothing of the survey: {body}");

    let json = app
        .client
        .get(app.url(&format!("/api/v1/answers/{token}")))
        .header("x-forwarded-for", "198.51.100.1")
        .send()
        .await
        .unwrap();
    assert!(json.headers().contains_key("retry-after"));
    assert_problem(json, 429, "too-many-requests").await;
    let unknown = post_form(&app, &format!("/s/{}", "A".repeat(43)), "DEV1=3").await;
    html(unknown, 429).await;

    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    html(page(&app, &format!("/s/{token}")).await, 200).await;
}
