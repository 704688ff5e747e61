//! Erasure (`POST /api/v1/people/{id}/erase`) and retention: what named a
//! person goes, what was counted stays — results, mobility and a wave's
//! counts read byte for byte the same afterwards.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::answers::{invitation_ids, people_values};
use crate::helpers::{TestApp, assert_problem, spawn_app_with};
use crate::mail::wait_for_delivery;
use crate::pulses::{at, team_with_people};

const MAIL_ON: &str = "[mail]\nenabled = true\npoll_interval_ms = 20\n";

fn mail_folder(app: &TestApp) -> PathBuf {
    app.settings.data_dir.join("mail")
}

/// The text of every `.eml` file in the folder.
fn emails(folder: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// A closed wave of the career template over a team of 6 and Leo, all
/// seven answered, every invitation delivered first; the team, Leo's id
/// and the wave.
async fn answered_wave(app: &TestApp, admin: &str) -> (String, String, String) {
    let team = team_with_people(app, admin, "Support", None, 6).await;
    let leo = app
        .post_json(
            "/api/v1/people",
            &json!({"email": "leo@example.org", "name": "Leo Bakker", "team_id": team,
                    "job_title": "Support lead", "external_id": "E-77", "effective_date": "2025-01-06"}),
            Some(admin),
        )
        .await;
    assert_eq!(leo.status(), 201);
    let leo = leo.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.clock.set(at("2026-03-02T10:00:00Z"));
    let mut body = crate::helpers::weekly_pulse(&[&team]);
    body["templates"] = json!(["career"]);
    let pulse = app.create_pulse_with(admin, &body).await;
    let wave = app.send_now(admin, &pulse).await;
    wait_for_delivery(app, admin, &wave, |d| d["invitations"]["sent"] == 7).await;
    let keys = app.keys();
    for (n, id) in invitation_ids(app, &wave).await.iter().enumerate() {
        let token = keys.invitation_token(id).unwrap();
        let set = json!({"CAR1": 2 + n % 3, "CAR2": 3, "CAR3": 4, "CAR4": 2, "CAR5": 3, "CAR6": 7});
        let stored = app
            .post_json(
                &format!("/api/v1/answers/{token}"),
                &json!({ "answers": set }),
                None,
            )
            .await;
        assert_eq!(stored.status(), 201);
    }
    app.close_wave(admin, &wave).await;
    (team, leo, wave)
}

/// Everything counted that a reader can see, as bytes.
async fn counted(app: &TestApp, admin: &str, wave: &str, team: &str) -> Vec<(String, Vec<u8>)> {
    let mut seen = Vec::new();
    for path in [
        format!("/api/v1/waves/{wave}"),
        format!("/api/v1/waves/{wave}/results"),
        format!("/api/v1/waves/{wave}/results/teams/{team}"),
        format!("/api/v1/waves/{wave}/heatmap"),
        "/api/v1/results/trends".to_owned(),
        "/api/v1/mobility/report".to_owned(),
        format!("/api/v1/mobility/teams/{team}"),
    ] {
        let response = app.get(&path, Some(admin)).await;
        assert_eq!(response.status(), 200, "{path}");
        seen.push((path, response.bytes().await.unwrap().to_vec()));
    }
    seen
}

#[tokio::test]
async fn erasure_removes_what_named_the_person_and_changes_no_count() {
    let app = spawn_app_with(MAIL_ON).await;
    let admin = app.ready_admin_token().await;
    let (team, leo, wave) = answered_wave(&app, &admin).await;
    let erase = format!("/api/v1/people/{leo}/erase");
    // A second wave, still open, invites Leo too.
    let first: Value = app
        .get_json(&format!("/api/v1/waves/{wave}"), Some(&admin))
        .await;
    let pulse = first["pulse_id"].as_str().unwrap().to_owned();
    let second = app.send_now(&admin, &pulse).await;
    wait_for_delivery(&app, &admin, &second, |d| d["invitations"]["sent"] == 7).await;

    // Still active: erasing would leave a placeholder to invite.
    let active = app.request("POST", &erase, Some(&admin), None).await;
    assert_problem(active, 409, "conflict").await;
    let left = app
        .request(
            "DELETE",
            &format!("/api/v1/people/{leo}?effective_date=2026-03-06"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(left.status(), 204);
    // Left, but invited to a wave still open: taking the invitation out
    // would move its participation count.
    let open = app.request("POST", &erase, Some(&admin), None).await;
    let problem = assert_problem(open, 409, "conflict").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("still open"),
        "{problem}"
    );
    app.close_wave(&admin, &second).await;
    // Keys cannot erase, whatever their scope.
    let (_, key) = app.api_key(&admin, &["people:write"]).await;
    let by_key = app.request("POST", &erase, Some(&key), None).await;
    assert_problem(by_key, 403, "forbidden").await;

    let history_before: Vec<Value> = app
        .get_json(&format!("/api/v1/people/{leo}/history"), Some(&admin))
        .await;
    let before = counted(&app, &admin, &wave, &team).await;
    assert!(
        emails(&mail_folder(&app))
            .iter()
            .any(|e| e.contains("leo@example.org"))
    );

    let erased = app.request("POST", &erase, Some(&admin), None).await;
    assert_eq!(erased.status(), 200);
    let erased: Value = erased.json().await.unwrap();
    assert_eq!(erased["person_id"], leo.as_str());
    assert_eq!(erased["invitations"], 2, "one in each wave");
    assert_eq!(erased["files"], 2, "the .eml copies of Leo's invitations");
    assert_eq!(
        erased["titles"], 2,
        "joining and leaving both name the title"
    );

    // Counted things read the same, byte for byte.
    assert_eq!(counted(&app, &admin, &wave, &team).await, before);
    let history_after: Vec<Value> = app
        .get_json(&format!("/api/v1/people/{leo}/history"), Some(&admin))
        .await;
    assert_eq!(
        history_after.len(),
        history_before.len(),
        "history stays, for mobility"
    );
    let before_text = serde_json::to_string(&history_before).unwrap();
    let after_text = serde_json::to_string(&history_after).unwrap();
    assert!(before_text.contains("Support lead"));
    assert!(
        !after_text.contains("Support lead"),
        "no title of Leo's is left"
    );
    assert!(
        after_text.contains("Title 1"),
        "a stand-in, so title changes still count"
    );

    // The placeholder holds nothing of Leo.
    let person: Value = app
        .get_json(&format!("/api/v1/people/{leo}"), Some(&admin))
        .await;
    assert_eq!(person["name"], "Erased person");
    assert_eq!(person["email"], format!("erased-{leo}@erased.invalid"));
    assert!(person["external_id"].is_null() && person["job_title"].is_null());
    assert!(person["erased_at"].is_string());
    let stored = people_values(&app).await.join("\n");
    for value in ["leo@example.org", "Leo Bakker"] {
        assert!(
            !stored.contains(value),
            "the people table still holds {value}"
        );
    }
    assert!(
        !emails(&mail_folder(&app))
            .iter()
            .any(|e| e.contains("leo@example.org")),
        "no copy of an email to Leo is left"
    );
    assert_eq!(invitation_ids(&app, &wave).await.len(), 6);

    // A placeholder cannot be edited back into a person; erasing again is a no-op.
    let edit = app
        .request(
            "PATCH",
            &format!("/api/v1/people/{leo}"),
            Some(&admin),
            Some(&json!({"name": "Leo"})),
        )
        .await;
    assert_problem(edit, 409, "conflict").await;
    let again: Value = app
        .request("POST", &erase, Some(&admin), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["invitations"], 0);
    assert_eq!(again["erased_at"], erased["erased_at"]);

    let audit: Value = app
        .get_json(
            &format!("/api/v1/audit?action=person.erased&target_id={leo}"),
            Some(&admin),
        )
        .await;
    let entries = audit["events"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "erased once, logged once");
    assert_eq!(entries[0]["details"]["invitations"], 2);
    app.stop().await;
}

#[tokio::test]
async fn retention_deletes_a_closed_waves_invitations_and_files_after_the_days_and_keeps_counts() {
    let app = spawn_app_with(&format!("{MAIL_ON}\n[retention]\ninvitation_days = 30\n")).await;
    let admin = app.ready_admin_token().await;
    let (team, _, wave) = answered_wave(&app, &admin).await;
    let folder = mail_folder(&app);
    let token = app
        .keys()
        .invitation_token(&invitation_ids(&app, &wave).await[0])
        .unwrap();
    let before = counted(&app, &admin, &wave, &team).await;
    assert_eq!(emails(&folder).len(), 7);

    // Not yet: the wave closed (at 2026-03-02T10:00 on the test clock) 29 days ago.
    app.clock.set(at("2026-03-31T10:00:00Z"));
    assert_eq!(app.run_retention().await.invitations, 0);
    assert_eq!(invitation_ids(&app, &wave).await.len(), 7);
    assert_eq!(emails(&folder).len(), 7);

    app.clock.set(at("2026-04-01T10:00:01Z"));
    let pruned = app.run_retention().await;
    assert_eq!((pruned.waves, pruned.invitations, pruned.files), (1, 7, 7));
    assert!(invitation_ids(&app, &wave).await.is_empty());
    assert!(emails(&folder).is_empty());
    // The link's token material is gone: it is now like any unknown link.
    let link = app.get(&format!("/api/v1/answers/{token}"), None).await;
    assert_eq!(link.status(), 404);
    // Counts stay. (Mobility's default period ends today, so read it at
    // the same day as before.)
    app.clock.set(at("2026-03-02T10:00:00Z"));
    assert_eq!(counted(&app, &admin, &wave, &team).await, before);

    // A file whose invitation is gone (a crash between the delete and the
    // files) goes at the next pass; other files stay.
    std::fs::write(
        folder.join("0b0f3a4e-dead-4bee-8000-000000000000.x.eml"),
        "left over",
    )
    .unwrap();
    std::fs::write(folder.join("README.txt"), "not mail").unwrap();
    let pruned = app.run_retention().await;
    assert_eq!((pruned.invitations, pruned.files), (0, 1));
    assert!(emails(&folder).is_empty());
    assert!(folder.join("README.txt").exists());

    let audit: Value = app
        .get_json(
            "/api/v1/audit?action=retention.invitations_deleted",
            Some(&admin),
        )
        .await;
    let entries = audit["events"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["actor"]["kind"], "system");
    assert_eq!(entries[0]["target"], json!({"kind": "wave", "id": wave}));
    assert_eq!(entries[0]["details"]["invitations"], 7);
    app.stop().await;
}
