//! The team tree: paths, moves without cycles, guarded deletes, uniqueness,
//! a manager's view of their subtree.

use serde_json::{Value, json};

use crate::helpers::{assert_problem, problem_fields, spawn_app};

#[tokio::test]
async fn teams_form_a_tree_with_paths() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let engineering = app.create_team(&admin, "Engineering", None).await;
    let platform = app
        .create_team(&admin, "Platform", Some(&engineering))
        .await;
    let data = app.create_team(&admin, "Data", Some(&platform)).await;

    let team: Value = app
        .get(&format!("/api/v1/teams/{data}"), Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(team["path"], "Engineering/Platform/Data");
    assert_eq!(team["parent_id"], platform.as_str());

    let list: Vec<Value> = app
        .get("/api/v1/teams", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let paths: Vec<&str> = list.iter().map(|t| t["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        vec![
            "Engineering",
            "Engineering/Platform",
            "Engineering/Platform/Data"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn moves_rename_and_refuse_cycles() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let engineering = app.create_team(&admin, "Engineering", None).await;
    let platform = app
        .create_team(&admin, "Platform", Some(&engineering))
        .await;
    let sales = app.create_team(&admin, "Sales", None).await;

    for parent in [&engineering, &platform] {
        let cycle = app
            .request(
                "PATCH",
                &format!("/api/v1/teams/{engineering}"),
                Some(&admin),
                Some(&json!({"parent_id": parent})),
            )
            .await;
        let problem = assert_problem(cycle, 422, "validation").await;
        assert_eq!(problem_fields(&problem), vec!["parent_id"]);
    }

    let moved: Value = app
        .request(
            "PATCH",
            &format!("/api/v1/teams/{platform}"),
            Some(&admin),
            Some(&json!({"parent_id": sales, "name": "Sales Platform", "external_id": "SP-1"})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(moved["path"], "Sales/Sales Platform");
    assert_eq!(moved["external_id"], "SP-1");

    let to_root: Value = app
        .request(
            "PATCH",
            &format!("/api/v1/teams/{platform}"),
            Some(&admin),
            Some(&json!({"parent_id": null, "external_id": null})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(to_root["path"], "Sales Platform");
    assert_eq!(to_root["parent_id"], Value::Null);
    assert_eq!(to_root["external_id"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn sibling_names_and_external_ids_are_unique() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let engineering = app.create_team(&admin, "Engineering", None).await;
    app.create_team(&admin, "Platform", Some(&engineering))
        .await;
    let twin = app
        .post_json(
            "/api/v1/teams",
            &json!({"name": "platform", "parent_id": engineering}),
            Some(&admin),
        )
        .await;
    assert_problem(twin, 409, "conflict").await;
    // The same name elsewhere in the tree is fine.
    app.create_team(&admin, "Platform", None).await;

    let first = app
        .post_json(
            "/api/v1/teams",
            &json!({"name": "A", "external_id": "X1"}),
            Some(&admin),
        )
        .await;
    assert_eq!(first.status(), 201);
    let second = app
        .post_json(
            "/api/v1/teams",
            &json!({"name": "B", "external_id": "X1"}),
            Some(&admin),
        )
        .await;
    assert_problem(second, 409, "conflict").await;

    let bad = app
        .post_json(
            "/api/v1/teams",
            &json!({"name": "Eng/Platform", "parent_id": "nope", "external_id": ""}),
            Some(&admin),
        )
        .await;
    let problem = assert_problem(bad, 422, "validation").await;
    assert_eq!(problem_fields(&problem), vec!["external_id", "name"]);
    app.stop().await;
}

#[tokio::test]
async fn a_team_with_children_or_managers_cannot_be_deleted() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let engineering = app.create_team(&admin, "Engineering", None).await;
    let platform = app
        .create_team(&admin, "Platform", Some(&engineering))
        .await;
    let (manager, _) = app.account_token(&admin, "manager", Some(&platform)).await;

    let with_child = app
        .request(
            "DELETE",
            &format!("/api/v1/teams/{engineering}"),
            Some(&admin),
            None,
        )
        .await;
    assert_problem(with_child, 409, "conflict").await;
    let with_manager = app
        .request(
            "DELETE",
            &format!("/api/v1/teams/{platform}"),
            Some(&admin),
            None,
        )
        .await;
    assert_problem(with_manager, 409, "conflict").await;

    let deleted = app
        .request(
            "DELETE",
            &format!("/api/v1/accounts/{manager}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(deleted.status(), 204);
    for team in [&platform, &engineering] {
        let gone = app
            .request(
                "DELETE",
                &format!("/api/v1/teams/{team}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(gone.status(), 204);
    }
    let missing = app
        .get(&format!("/api/v1/teams/{platform}"), Some(&admin))
        .await;
    assert_problem(missing, 404, "not-found").await;
    app.stop().await;
}

#[tokio::test]
async fn a_manager_sees_only_their_subtree() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let engineering = app.create_team(&admin, "Engineering", None).await;
    let platform = app
        .create_team(&admin, "Platform", Some(&engineering))
        .await;
    let data = app.create_team(&admin, "Data", Some(&platform)).await;
    let sales = app.create_team(&admin, "Sales", None).await;
    let (_, manager) = app.account_token(&admin, "manager", Some(&platform)).await;

    let list: Vec<Value> = app
        .get("/api/v1/teams", Some(&manager))
        .await
        .json()
        .await
        .unwrap();
    let mut ids: Vec<&str> = list.iter().map(|t| t["id"].as_str().unwrap()).collect();
    ids.sort();
    let mut expected = vec![platform.as_str(), data.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    for outside in [&engineering, &sales] {
        let hidden = app
            .get(&format!("/api/v1/teams/{outside}"), Some(&manager))
            .await;
        assert_problem(hidden, 404, "not-found").await;
    }
    let write = app
        .post_json("/api/v1/teams", &json!({"name": "Mine"}), Some(&manager))
        .await;
    assert_problem(write, 403, "forbidden").await;
    app.stop().await;
}

#[tokio::test]
async fn a_team_a_pulse_invites_cannot_be_deleted() {
    let app = spawn_app().await;
    let admin = app.ready_admin_token().await;
    let team = app.create_team(&admin, "Research", None).await;
    let pulse = app.create_pulse(&admin, &[&team]).await;
    let refused = app
        .request(
            "DELETE",
            &format!("/api/v1/teams/{team}"),
            Some(&admin),
            None,
        )
        .await;
    let problem = assert_problem(refused, 409, "conflict").await;
    assert!(problem["detail"].as_str().unwrap().contains("pulse"));
    // Once the pulse is gone (it never opened a wave), the team can go.
    let deleted = app
        .request(
            "DELETE",
            &format!("/api/v1/pulses/{pulse}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(deleted.status(), 204);
    let gone = app
        .request(
            "DELETE",
            &format!("/api/v1/teams/{team}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(gone.status(), 204);
    app.stop().await;
}
