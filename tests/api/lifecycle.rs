//! The binary's life: first start, configuration errors, several instances
//! at once, and draining on SIGTERM. These run `peil` as a child process.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    Backend, PeilProcess, TestDatabase, backend, blocking_json, data_dir, peil_command,
    printed_password,
};

#[test]
fn first_start_prints_the_admin_password_once_and_never_again() {
    let database = TestDatabase::new();
    let dir = data_dir(&database);

    let first = PeilProcess::serve(peil_command(&dir, &database.url));
    let (stdout, stderr) = first.stop();
    let password = printed_password(&stdout).expect("the first start prints a password");
    assert!(stdout.contains("admin@example.org"), "{stdout}");
    assert!(
        !stderr.contains(&password),
        "the password never reaches the log"
    );
    assert!(dir.join("secret").is_file(), "a server secret is generated");

    let second = PeilProcess::serve(peil_command(&dir, &database.url));
    let login = json!({"email": "admin@example.org", "password": password});
    let (status, body) = blocking_json(
        "POST",
        &second.url("/api/v1/auth/login"),
        Some(&login),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["must_change_password"], true);
    let token = body["token"].as_str().unwrap().to_owned();
    let (status, _) = blocking_json("GET", &second.url("/api/v1/auth/me"), None, Some(&token));
    assert_eq!(status, 403);
    let (stdout, stderr) = second.stop();
    assert_eq!(printed_password(&stdout), None, "printed again:\n{stdout}");
    assert!(!stdout.contains("one-time password"), "{stdout}");
    assert!(
        !stderr.contains(&password) && !stderr.contains(&token),
        "{stderr}"
    );
    assert!(
        !stderr.contains("admin@example.org"),
        "no emails in logs:\n{stderr}"
    );
}

#[test]
fn json_logs_carry_the_request_id_and_never_a_link_token() {
    let database = TestDatabase::new();
    let mut command = peil_command(&data_dir(&database), &database.url);
    command.env("PEIL__LOG__FORMAT", "json");
    let server = PeilProcess::serve(command);
    let (status, _) = blocking_json("GET", &server.url("/healthz"), None, None);
    assert_eq!(status, 200);
    // A link's token is its credential: the log names the route only.
    let token = "Tq0Lk2xVb8c4QmZr7YwE1nHsD5fUjA9oP3iG6tKyXe0";
    for path in [format!("/s/{token}"), format!("/api/v1/answers/{token}")] {
        let (status, _) = blocking_json("GET", &server.url(&path), None, None);
        assert_eq!(status, 404, "{path}");
    }
    let (_, stderr) = server.stop();
    assert!(
        !stderr.contains(token),
        "a link token in the log:\n{stderr}"
    );
    for route in ["/s/{token}", "/api/v1/answers/{token}"] {
        assert!(
            stderr.contains(&format!("\"route\":\"{route}\"")),
            "no access log line for {route}:\n{stderr}"
        );
    }
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let request = lines
        .iter()
        .find(|l| l["fields"]["message"] == "request completed")
        .expect("an access log line");
    assert_eq!(request["fields"]["route"], "/healthz");
    assert!(
        request["span"]["request_id"].as_str().is_some(),
        "{request}"
    );
}

#[test]
fn a_config_error_names_the_key_and_where_it_came_from() {
    let database = TestDatabase::new();
    let dir = data_dir(&database);

    let output = peil_command(&dir, &database.url)
        .env("PEIL__SERVER__PORT", "eighty")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`server.port`"), "{stderr}");
    assert!(stderr.contains("PEIL__SERVER__PORT"), "{stderr}");

    let output = peil_command(&dir, &database.url)
        .env("PEIL__SERVER__PROT", "8080")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`server.prot`") && stderr.contains("unknown key"),
        "{stderr}"
    );

    let file = database.dir.path().join("bad.toml");
    std::fs::write(&file, "[database]\npool_size = 0\n").unwrap();
    let output = peil_command(&dir, &database.url)
        .env_remove("PEIL__DATABASE__URL")
        .arg("--config")
        .arg(&file)
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`database.pool_size`"), "{stderr}");
    assert!(!dir.exists(), "a refused configuration creates nothing");
}

#[test]
fn an_unknown_database_scheme_is_refused_not_made_into_a_file() {
    let database = TestDatabase::new();
    let dir = data_dir(&database);
    for url in ["mysql://peil@localhost/peil", "peil.db"] {
        let output = peil_command(&dir, url).arg("serve").output().unwrap();
        assert_eq!(output.status.code(), Some(78));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("`database.url`"), "{stderr}");
        assert!(stderr.contains("scheme"), "{stderr}");
    }
    let left: Vec<_> = std::fs::read_dir(database.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "nothing created: {left:?}");
}

#[test]
fn two_instances_starting_at_once_migrate_and_bootstrap_once() {
    let database = TestDatabase::new();
    let spawn = |name: &str| {
        let dir = database.dir.path().join(name);
        let url = database.url.clone();
        std::thread::spawn(move || PeilProcess::serve(peil_command(&dir, &url)))
    };
    let (a, b) = (spawn("a"), spawn("b"));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    for server in [&a, &b] {
        let (status, _) = blocking_json("GET", &server.url("/readyz"), None, None);
        assert_eq!(status, 200);
    }
    let (a_out, a_err) = a.stop();
    let (b_out, b_err) = b.stop();
    let printed = [&a_out, &b_out]
        .iter()
        .filter(|out| printed_password(out).is_some())
        .count();
    assert_eq!(printed, 1, "exactly one instance bootstraps");
    let applied: Vec<usize> = [&a_err, &b_err]
        .iter()
        .map(|err| err.matches("migration applied").count())
        .collect();
    // Each backend has its own migrations (SQLite has one PostgreSQL does not need).
    let folder = match backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres { .. } => "postgres",
    };
    let migrations = std::fs::read_dir(format!(
        "{}/migrations/{folder}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .count();
    assert!(
        applied == [migrations, 0] || applied == [0, migrations],
        "exactly one instance applies every migration: {applied:?}\n{a_err}\n{b_err}"
    );
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_then_exits_cleanly() {
    let database = TestDatabase::new();
    let mut server = PeilProcess::serve(peil_command(&data_dir(&database), &database.url));
    let body = br#"{"email": "admin@example.org", "password": "certainly not it"}"#;
    let (head, tail) = body.split_at(20);

    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: peil\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(head).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    server.terminate();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        TcpStream::connect(("127.0.0.1", server.port)).is_err(),
        "no new connections after SIGTERM"
    );

    stream.write_all(tail).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(
        response.contains("urn:peil:problem:invalid-credentials"),
        "{response}"
    );

    assert!(
        server.wait(Duration::from_secs(15)),
        "clean exit:\n{}",
        server.stderr()
    );
    let stderr = server.stderr();
    assert!(stderr.contains("draining"), "{stderr}");
    assert!(stderr.contains("shutdown complete"), "{stderr}");
}
