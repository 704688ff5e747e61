//! Templates over the API: the shipped ones, and an organisation's own,
//! checked by the same loader (both languages, two minutes at most).

use serde_json::{Value, json};

use crate::helpers::{assert_problem, problem_fields, spawn_app};

fn agree_labels() -> Value {
    json!([
        {"en": "Strongly disagree", "nl": "Helemaal mee oneens"},
        {"en": "Disagree", "nl": "Mee oneens"},
        {"en": "Neither agree nor disagree", "nl": "Niet eens, niet oneens"},
        {"en": "Agree", "nl": "Mee eens"},
        {"en": "Strongly agree", "nl": "Helemaal mee eens"},
    ])
}

/// A template of `closed` agreement questions and `comments` comments.
pub fn custom_template(key: &str, closed: usize, comments: usize) -> Value {
    let mut questions = Vec::new();
    for i in 0..closed {
        questions.push(json!({
            "id": format!("Q{i}"),
            "theme": "career_outlook",
            "scale": "agree_5",
            "text": {"en": format!("Statement {i}."), "nl": format!("Stelling {i}.")},
        }));
    }
    for i in 0..comments {
        questions.push(json!({
            "id": format!("C{i}"),
            "theme": "career_outlook",
            "scale": "comment",
            "text": {"en": "Anything else?", "nl": "Nog iets?"},
        }));
    }
    json!({
        "key": key,
        "title": {"en": "Career check", "nl": "Loopbaancheck"},
        "intro": {"en": "A few questions.", "nl": "Een paar vragen."},
        "labels": {"agree_5": agree_labels()},
        "questions": questions,
    })
}

#[tokio::test]
async fn the_three_shipped_templates_are_listed_in_both_languages_within_two_minutes() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let list: Vec<Value> = app.get_json("/api/v1/templates", Some(&admin)).await;
    let keys: Vec<&str> = list.iter().map(|t| t["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["development", "career", "safety"]);
    for t in &list {
        assert_eq!(t["origin"], "shipped");
        let seconds = t["estimated_seconds"].as_u64().unwrap();
        assert!(seconds <= 120, "{t}");
        let closed = t["closed_questions"].as_u64().unwrap();
        assert!((5..=8).contains(&closed), "{t}");
        assert_eq!(t["comment_questions"], 1);
    }

    let safety: Value = app.get_json("/api/v1/templates/safety", Some(&admin)).await;
    let questions = safety["questions"].as_array().unwrap();
    assert_eq!(questions[0]["id"], "PSY1");
    assert_eq!(questions[0]["reverse"], true);
    for q in questions {
        assert!(!q["text"]["en"].as_str().unwrap().is_empty());
        assert!(!q["text"]["nl"].as_str().unwrap().is_empty());
    }
    assert!(!safety["intro"]["nl"].as_str().unwrap().is_empty());
    let version = safety["version"].as_u64().unwrap();
    let pinned = app
        .get(
            &format!("/api/v1/templates/safety?version={version}"),
            Some(&admin),
        )
        .await;
    assert_eq!(pinned.status(), 200);
    let missing = app
        .get(
            &format!("/api/v1/templates/safety?version={}", version + 1),
            Some(&admin),
        )
        .await;
    assert_problem(missing, 404, "not-found").await;
    app.stop().await;
}

#[tokio::test]
async fn an_organisation_adds_versions_of_its_own_templates_that_others_cannot_see() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let first = app
        .post_json(
            "/api/v1/templates",
            &custom_template("career-check", 3, 1),
            Some(&admin),
        )
        .await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["version"], 1);
    assert_eq!(first["origin"], "organisation");
    assert_eq!(first["estimated_seconds"], 10 + 3 * 8 + 30);

    let second: Value = app
        .post_json(
            "/api/v1/templates",
            &custom_template("career-check", 4, 1),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["version"], 2);
    let current: Value = app
        .get_json("/api/v1/templates/career-check", Some(&admin))
        .await;
    assert_eq!(current["version"], 2);
    assert_eq!(current["questions"].as_array().unwrap().len(), 5);
    let old: Value = app
        .get_json("/api/v1/templates/career-check?version=1", Some(&admin))
        .await;
    assert_eq!(old["questions"].as_array().unwrap().len(), 4);
    let list: Vec<Value> = app.get_json("/api/v1/templates", Some(&admin)).await;
    assert_eq!(list.len(), 4, "the shipped three and the current version");

    // A new version may reword a question, not change what it measures.
    let mut changed = custom_template("career-check", 4, 1);
    changed["questions"][1]["reverse"] = json!(true);
    changed["questions"][2]["theme"] = json!("psychological_safety");
    let refused = app
        .post_json("/api/v1/templates", &changed, Some(&admin))
        .await;
    let problem = assert_problem(refused, 422, "validation").await;
    assert_eq!(
        problem_fields(&problem),
        ["questions.1.id", "questions.2.id"]
    );

    let other = app.other_organisation_admin().await;
    let hidden = app
        .get("/api/v1/templates/career-check", Some(&other))
        .await;
    assert_problem(hidden, 404, "not-found").await;
    app.stop().await;
}

#[tokio::test]
async fn a_bad_template_is_refused_with_every_problem_and_nothing_stored() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;

    // 8 closed questions and 2 comments: 10 + 64 + 60 = 134 s.
    let too_long = app
        .post_json(
            "/api/v1/templates",
            &custom_template("long-one", 8, 2),
            Some(&admin),
        )
        .await;
    let problem = assert_problem(too_long, 422, "validation").await;
    assert_eq!(problem_fields(&problem), ["questions"]);
    assert!(
        problem["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("134 s"),
        "{problem}"
    );

    let mut broken = custom_template("broken", 2, 1);
    broken["questions"][1]["text"]
        .as_object_mut()
        .unwrap()
        .remove("nl");
    broken["questions"][2]["required"] = json!(true);
    broken["questions"][0]["id"] = json!("Q1");
    let refused = app
        .post_json("/api/v1/templates", &broken, Some(&admin))
        .await;
    let problem = assert_problem(refused, 422, "validation").await;
    let fields = problem_fields(&problem);
    for expected in [
        "questions.1.text.nl",
        "questions.2.required",
        "questions.1.id",
    ] {
        assert!(
            fields.iter().any(|f| f == expected),
            "{expected} in {fields:?}"
        );
    }

    let shipped_key = app
        .post_json(
            "/api/v1/templates",
            &custom_template("safety", 3, 0),
            Some(&admin),
        )
        .await;
    let problem = assert_problem(shipped_key, 422, "validation").await;
    assert_eq!(problem_fields(&problem), ["key"]);

    let list: Vec<Value> = app.get_json("/api/v1/templates", Some(&admin)).await;
    assert_eq!(list.len(), 3, "nothing was stored");
    app.stop().await;
}
