//! Test harness: a fresh database per test on the backend chosen by
//! `PEIL_TEST_BACKEND` (`sqlite`, the default, or `postgres` with
//! `PEIL_TEST_POSTGRES_URL` pointing at a server's maintenance database),
//! the real server in-process on port 0 ([`spawn_app`]), or the real binary
//! as a child process ([`PeilProcess`]).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::{Connection, RunQueryDsl};
use peil::clock::ManualClock;
use peil::config::Settings;
use peil::db::Db;
use peil::startup::Application;
use reqwest::Response;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const NEW_PASSWORD: &str = "a long and new passphrase";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres { admin_url: String },
}

pub fn backend() -> Backend {
    match std::env::var("PEIL_TEST_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres {
            admin_url: std::env::var("PEIL_TEST_POSTGRES_URL")
                .expect("PEIL_TEST_BACKEND=postgres needs PEIL_TEST_POSTGRES_URL"),
        },
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("unknown PEIL_TEST_BACKEND {other:?}"),
    }
}

/// A database of its own for one test, dropped with it.
pub struct TestDatabase {
    pub url: String,
    pub dir: TempDir,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        match backend() {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}", dir.path().join("peil.db").display()),
                dir,
                postgres: None,
            },
            Backend::Postgres { admin_url } => {
                let name = format!("peil_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = diesel::PgConnection::establish(&admin_url)
                    .expect("connecting to PEIL_TEST_POSTGRES_URL");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .expect("creating a test database");
                let mut url = url::Url::parse(&admin_url).expect("PEIL_TEST_POSTGRES_URL");
                url.set_path(&name);
                Self {
                    url: url.to_string(),
                    dir,
                    postgres: Some((admin_url, name)),
                }
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// Runs SQL on the server's maintenance database (PostgreSQL only).
    pub fn admin_sql(&self, sql: &str) {
        let (admin_url, _) = self.postgres.as_ref().expect("a PostgreSQL test database");
        let mut admin = diesel::PgConnection::establish(admin_url).expect("admin connection");
        diesel::sql_query(sql).execute(&mut admin).expect(sql);
    }

    pub fn name(&self) -> Option<&str> {
        self.postgres.as_ref().map(|(_, name)| name.as_str())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.postgres
            && let Ok(mut admin) = diesel::PgConnection::establish(admin_url)
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin);
        }
    }
}

/// Settings for a test server: port 0, one worker, the test's database.
pub fn test_settings(database: &TestDatabase, extra: &str) -> Settings {
    let data_dir = database.dir.path().join("data");
    let base = format!(
        r#"
        data_dir = "{}"
        [server]
        port = 0
        workers = 1
        shutdown_timeout_secs = 5
        [database]
        url = "{}"
        pool_size = 4
        connect_timeout_secs = 2
        [scheduler]
        # Tests drive the schedule with run_schedule() on a manual clock.
        enabled = false
        [mail]
        # Tests that send mail switch the worker on with their own server.
        enabled = false
        "#,
        data_dir.display(),
        database.url
    );
    Settings::from_toml(&[&base, extra]).expect("test settings")
}

pub struct Credentials {
    pub email: String,
    pub password: String,
}

pub struct TestApp {
    pub address: String,
    /// `/metrics`'s own port, when `metrics.listen` gives it one.
    pub metrics_port: Option<u16>,
    pub client: reqwest::Client,
    pub admin: Credentials,
    pub settings: Settings,
    pub database: TestDatabase,
    /// The clock the server's schedule and wave endpoints read.
    pub clock: Arc<ManualClock>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// The real server, in-process, on a fresh database, with its first admin.
pub async fn spawn_app() -> TestApp {
    spawn_app_with("").await
}

pub async fn spawn_app_with(extra_settings: &str) -> TestApp {
    let database = TestDatabase::new();
    let settings = test_settings(&database, extra_settings);
    // Tests move the clock forward from here (the background worker may
    // have read it a moment before; a clock that jumped back would make that
    // reading a future in which the test's waves had closed).
    let clock = ManualClock::at(
        "2026-01-01T00:00:00Z"
            .parse()
            .expect("a start for the test clock"),
    );
    let mut application = Application::build_with_clock(settings.clone(), clock.clone())
        .await
        .expect("building the application");
    let admin = application
        .take_initial_admin()
        .expect("a fresh database bootstraps an admin");
    let address = format!("http://127.0.0.1:{}", application.port());
    let metrics_port = application.metrics_port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(application.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        metrics_port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client"),
        admin: Credentials {
            email: admin.email,
            password: admin.password.expose().to_owned(),
        },
        settings,
        database,
        clock,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("GET")
    }

    /// GET, expecting a JSON body of type `T`.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> T {
        let response = self.get(path, token).await;
        let status = response.status();
        let body = response.text().await.expect("a body");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {status}: {e}: {body}"))
    }

    pub async fn post_json(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("POST")
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
            None,
        )
        .await
    }

    /// Signs in as the first admin with the one-time password.
    pub async fn admin_token(&self) -> String {
        let response = self.login(&self.admin.email, &self.admin.password).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("login JSON");
        body["token"].as_str().expect("token").to_owned()
    }

    /// Signs in as the first admin and replaces the one-time password, so
    /// the token may use the whole API.
    pub async fn ready_admin_token(&self) -> String {
        let token = self.admin_token().await;
        let response = self
            .post_json(
                "/api/v1/auth/password",
                &json!({"current_password": self.admin.password, "new_password": NEW_PASSWORD}),
                Some(&token),
            )
            .await;
        assert_eq!(response.status(), 204);
        token
    }

    /// Any method, optional bearer token, optional JSON body.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("HTTP method");
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request")
    }

    /// Any method with extra request headers, optional bearer token.
    pub async fn request_with_headers(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("HTTP method");
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request")
    }

    /// Creates an account through the API and returns its id and a token
    /// that may use the API (its one-time password already replaced).
    pub async fn account_token(
        &self,
        admin_token: &str,
        role: &str,
        team_id: Option<&str>,
    ) -> (String, String) {
        let email = format!("{role}-{}@example.org", uuid::Uuid::new_v4().simple());
        let created = self
            .post_json(
                "/api/v1/accounts",
                &json!({"email": email, "role": role, "team_id": team_id}),
                Some(admin_token),
            )
            .await;
        assert_eq!(created.status(), 201);
        let created: Value = created.json().await.unwrap();
        let id = created["account"]["id"].as_str().unwrap().to_owned();
        let one_time = created["one_time_password"].as_str().unwrap().to_owned();
        let token = self.ready_token(&email, &one_time).await;
        (id, token)
    }

    /// Signs in with a one-time password and replaces it.
    pub async fn ready_token(&self, email: &str, one_time: &str) -> String {
        let login = self.login(email, one_time).await;
        assert_eq!(login.status(), 200);
        let token = login.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let changed = self
            .post_json(
                "/api/v1/auth/password",
                &json!({"current_password": one_time, "new_password": NEW_PASSWORD}),
                Some(&token),
            )
            .await;
        assert_eq!(changed.status(), 204);
        token
    }

    pub async fn create_team(&self, token: &str, name: &str, parent_id: Option<&str>) -> String {
        let response = self
            .post_json(
                "/api/v1/teams",
                &json!({"name": name, "parent_id": parent_id}),
                Some(token),
            )
            .await;
        assert_eq!(response.status(), 201);
        response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A weekly pulse (Mondays 9:00, Amsterdam, open 72 h, reminder after
    /// 48 h) asking the shipped development template of these teams.
    pub async fn create_pulse(&self, token: &str, audience: &[&str]) -> String {
        self.create_pulse_with(token, &weekly_pulse(audience)).await
    }

    /// Creates a pulse from this body; returns its id.
    pub async fn create_pulse_with(&self, token: &str, body: &Value) -> String {
        let response = self.post_json("/api/v1/pulses", body, Some(token)).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Opens a wave of the pulse now; returns the wave's id.
    pub async fn send_now(&self, token: &str, pulse_id: &str) -> String {
        let response = self
            .request(
                "POST",
                &format!("/api/v1/pulses/{pulse_id}/waves"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Closes a wave now, as an admin would.
    pub async fn close_wave(&self, token: &str, wave_id: &str) {
        let closed = self
            .request(
                "POST",
                &format!("/api/v1/waves/{wave_id}/close"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(closed.status(), 200, "{}", closed.text().await.unwrap());
    }

    /// Creates an API key with these scopes; returns its id and secret.
    pub async fn api_key(&self, admin_token: &str, scopes: &[&str]) -> (String, String) {
        let response = self
            .post_json(
                "/api/v1/api-keys",
                &json!({"name": format!("key {scopes:?}"), "scopes": scopes}),
                Some(admin_token),
            )
            .await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        (
            body["id"].as_str().unwrap().to_owned(),
            body["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// An admin token of a second organisation on the same server.
    pub async fn other_organisation_admin(&self) -> String {
        let db = self.db();
        let email = format!("other-{}@example.org", uuid::Uuid::new_v4().simple());
        let account_email = email.clone();
        let one_time = tokio::task::spawn_blocking(move || {
            let name = peil::domain::OrganisationName::parse("Other B.V.").unwrap();
            let id =
                peil::admin::create_organisation(&db, &peil::org::NewOrganisation::named(name))
                    .unwrap();
            let email = peil::domain::EmailAddress::parse(&account_email).unwrap();
            peil::admin::create_account(&db, &id, &email, peil::domain::Role::Admin).unwrap()
        })
        .await
        .unwrap();
        self.ready_token(&email, one_time.expose()).await
    }

    /// Another instance of Peil on this test's database, as a replica or the
    /// same service after a restart would be: its own clock, its own
    /// settings laid over the test's (e.g. the scheduler switched on).
    pub async fn another_instance(&self, clock: Arc<ManualClock>, extra: &str) -> Instance {
        let settings = test_settings(&self.database, extra);
        let application = Application::build_with_clock(settings, clock)
            .await
            .expect("building another instance");
        let address = format!("http://127.0.0.1:{}", application.port());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(application.run_until(async {
            let _ = stopped.await;
        }));
        Instance {
            address,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// One pass of the survey schedule at the test clock's time, as the
    /// scheduler would run it.
    pub async fn run_schedule(&self) -> peil::surveys::scheduler::Pass {
        let now = peil::clock::Clock::now(&*self.clock);
        let keys = self.keys();
        self.db()
            .run(move |conn| peil::surveys::scheduler::run_due(conn, &keys, now))
            .await
            .expect("a schedule pass")
    }

    /// One retention pass at the test clock's now, as the background job runs it.
    pub async fn run_retention(&self) -> peil::privacy::retention::Pruned {
        let clock: peil::clock::SharedClock = self.clock.clone();
        peil::jobs::Retention::of(&self.settings)
            .pass(&self.db(), &clock)
            .await
            .expect("a retention pass")
    }

    /// The server's keys, as derived from its secret: links and nullifiers.
    pub fn keys(&self) -> peil::crypto::ServerKeys {
        self.settings
            .clone()
            .server_keys()
            .expect("the server secret")
    }

    /// A pool on the test's database, for checks behind the API's back.
    pub fn db(&self) -> Db {
        Db::new(&self.settings.database)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A second server on a test's database; see [`TestApp::another_instance`].
pub struct Instance {
    /// Where it serves HTTP.
    pub address: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Instance {
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("instance task")
                .expect("instance stops cleanly");
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The body of a weekly pulse: Mondays 9:00 Europe/Amsterdam, open 72 h,
/// one reminder after 48 h, the shipped development template.
pub fn weekly_pulse(audience: &[&str]) -> Value {
    json!({
        "name": "Weekly development pulse",
        "templates": ["development"],
        "audience": audience,
        "cron": "0 9 * * 1",
        "time_zone": "Europe/Amsterdam",
        "open_hours": 72,
        "reminder_hours": [48],
    })
}

/// Asserts an RFC 9457 problem document with this status and type slug.
pub async fn assert_problem(response: Response, status: u16, slug: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("problem JSON");
    assert_eq!(body["type"], format!("urn:peil:problem:{slug}"), "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    body
}

/// The fields a validation problem names, sorted.
pub fn problem_fields(problem: &Value) -> Vec<String> {
    let mut fields: Vec<String> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect();
    fields.sort();
    fields
}

/// The `peil` binary with a clean environment for one data directory and database.
pub fn peil_command(data_dir: &Path, database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_peil"));
    for (key, _) in std::env::vars() {
        if key.starts_with("PEIL__") || key == "PEIL_CONFIG" || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
        .current_dir(data_dir.parent().unwrap_or(data_dir))
        .env("PEIL__DATA_DIR", data_dir)
        .env("PEIL__DATABASE__URL", database_url)
        .env("PEIL__SERVER__PORT", "0")
        .env("PEIL__SERVER__WORKERS", "1")
        .env("PEIL__SERVER__SHUTDOWN_TIMEOUT_SECS", "10")
        .stdin(Stdio::null());
    command
}

/// A running `peil serve` child process, with its output collected.
pub struct PeilProcess {
    child: Child,
    pub port: u16,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let buffer = Arc::new(Mutex::new(String::new()));
    let sink = buffer.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut sink = sink.lock().expect("output buffer");
            sink.push_str(&line);
            sink.push('\n');
        }
    });
    buffer
}

impl PeilProcess {
    /// Starts `command serve` and waits until it logs its listening address.
    pub fn serve(mut command: Command) -> Self {
        command
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("starting peil");
        let stdout = collect(child.stdout.take().expect("stdout"));
        let stderr = collect(child.stderr.take().expect("stderr"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let port = listening_port(&stderr.lock().expect("stderr"));
            if let Some(port) = port {
                return Self {
                    child,
                    port,
                    stdout,
                    stderr,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "peil exited with {status} before listening:\n{}",
                    stderr.lock().expect("stderr")
                );
            }
            assert!(Instant::now() < deadline, "peil did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("stdout").clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr").clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit and returns whether it exited with 0.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(100));
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("peil did not exit within {timeout:?}:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: a crash, with no chance to finish anything. Waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then asserts a clean exit.
    pub fn stop(mut self) -> (String, String) {
        self.terminate();
        assert!(
            self.wait(Duration::from_secs(30)),
            "clean exit:\n{}",
            self.stderr()
        );
        (self.stdout(), self.stderr())
    }
}

impl Drop for PeilProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listening_port(stderr: &str) -> Option<u16> {
    stderr.lines().find_map(|line| {
        let address = match serde_json::from_str::<Value>(line) {
            Ok(json) if json["fields"]["message"] == "listening" => {
                json["fields"]["address"].as_str()?.to_owned()
            }
            _ => line
                .split("listening address=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .to_owned(),
        };
        address.rsplit(':').next()?.parse().ok()
    })
}

/// The one-time password a first start printed, if it printed one.
pub fn printed_password(stdout: &str) -> Option<String> {
    stdout.lines().find_map(|line| {
        line.trim()
            .strip_prefix("one-time password:")
            .map(|p| p.trim().to_owned())
    })
}

/// A data directory inside the test database's temporary directory.
pub fn data_dir(database: &TestDatabase) -> PathBuf {
    database.dir.path().join("data")
}

/// A blocking HTTP request from a child-process test.
pub fn blocking_json(
    method: &str,
    url: &str,
    body: Option<&Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut request = match method {
            "GET" => client.get(url),
            _ => client.post(url),
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
}
