//! The answer page in a real browser: Debian's headless chromium, driven by
//! `tests/browser/answer.mjs` (Playwright), opens links taken from the
//! `.eml` files the outbox wrote, answers on a 360 px viewport, and checks
//! the thank-you, "already answered" and Dutch pages. Screenshots of each
//! state land in `target/browser-screenshots/`.
//!
//! Needs `chromium`, `node` and `npm ci --prefix tests/browser`; `.ci/run`
//! installs them. Without them the test says so loudly and passes, except
//! under `CI=true`, where a skip is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::spawn_app_with;
use crate::pulses::{at, team_with_people};

fn missing() -> Option<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("PEIL_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("no chromium at {chromium}"));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("no node".into());
    }
    if !root
        .join("tests/browser/node_modules/playwright-core")
        .exists()
    {
        return Some("no playwright-core (npm ci --prefix tests/browser)".into());
    }
    None
}

/// The link in an `.eml` file, and the file's language.
fn link_in(file: &Path) -> (String, String) {
    let text = std::fs::read_to_string(file).unwrap();
    let language = text
        .lines()
        .find_map(|l| l.strip_prefix("Content-Language: "))
        .unwrap()
        .trim()
        .to_owned();
    let at = text.find("http://").expect("a link");
    let link: String = text[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<')
        .collect();
    (link, language)
}

#[tokio::test]
async fn a_person_answers_on_a_phone_in_a_real_browser() {
    if let Some(why) = missing() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the browser test cannot run under CI: {why}"
        );
        eprintln!("\n*** SKIPPED the browser test: {why} ***\n");
        return;
    }
    let app = spawn_app_with("[mail]\nenabled = true\npoll_interval_ms = 20\n").await;
    let admin = app.ready_admin_token().await;
    let team = team_with_people(&app, &admin, "Support", None, 4).await;
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let pulse = app.create_pulse(&admin, &[&team]).await;
    app.send_now(&admin, &pulse).await;

    // The links as delivered: from the outbox's .eml folder.
    let folder = app.settings.data_dir.join("mail");
    let mut files: Vec<PathBuf> = Vec::new();
    for _ in 0..250 {
        files = std::fs::read_dir(&folder)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        if files.len() == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(files.len(), 4, "four invitations written");
    let links: Vec<(String, String)> = files.iter().map(|f| link_in(f)).collect();
    let english = links.iter().find(|(_, l)| l == "en").unwrap().0.clone();
    let dutch = links.iter().find(|(_, l)| l == "nl").unwrap().0.clone();
    assert!(
        english.starts_with(&app.address),
        "{english} is this server's"
    );

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target/browser-screenshots");
    std::fs::create_dir_all(&out).unwrap();
    let config = serde_json::json!({"english": english, "dutch": dutch, "out": out});
    let script = root.join("tests/browser/answer.mjs");
    // Off the runtime: the server under test keeps serving meanwhile.
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(config.to_string())
            .output()
    })
    .await
    .unwrap()
    .expect("node runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "the browser run failed:\n{said}");
    for shot in [
        "1-form-en",
        "2-filled-en",
        "3-thanks-en",
        "4-answered-en",
        "5-form-nl",
    ] {
        let file = out.join(format!("{shot}.png"));
        assert!(
            std::fs::metadata(&file).is_ok_and(|m| m.len() > 1000),
            "{shot}.png"
        );
    }
    app.stop().await;
}
