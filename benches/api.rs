//! `cargo bench --bench api`: Peil's request paths, each beside the same
//! server's no-op endpoint (`GET /healthz`) measured in the same run, so the
//! ratio says what Peil's own work costs on whatever machine runs it.
//!
//! Scenarios: `healthz` (baseline: routing, middleware, JSON), `me` (a bearer
//! session looked up in the database), `login` (an Argon2id verification and
//! a session insert). Each is run `RUNS` times, interleaved; the median is
//! reported. Under `cargo test` (no `--bench` argument) it runs a tiny smoke
//! pass instead, so the tool cannot rot unnoticed.
//!
//! Then a people import: `POST /api/v1/people/import` of `PEIL_BENCH_IMPORT_ROWS`
//! (default 10,000) CSV rows into an empty organisation, beside the floor it
//! cannot beat: the same number of people rows inserted straight through the
//! store in one transaction, no parsing, matching, teams or history.
//!
//! Then `peil demo`'s generator for `PEIL_BENCH_DEMO_PEOPLE` (default 100,000)
//! people, `PEIL_BENCH_DEMO_RUNS` times (default 3), beside the same floor.
//!
//! Last, opening a wave: the demo organisation of `PEIL_BENCH_WAVE_PEOPLE`
//! (default 100,000) people is generated once, and its pulse (every active
//! person) gets a wave opened by hand `PEIL_BENCH_WAVE_RUNS` times (default
//! 5): audience snapshot, invitations, per-team counts and the outbox, in one
//! transaction. Each run is another wave of the same pulse, closed after it
//! is timed (closing deletes its outbox rows; its invitations stay, so the
//! invitations table grows run by run, as it would in use). Beside it,
//! interleaved, the floor: as many rows as the wave's invitations and their
//! outbox emails (twice the invitations) bulk-inserted in one transaction,
//! the same way (multi-row INSERTs on SQLite, COPY on PostgreSQL), into a
//! bare table the benchmark creates (and drops after each run) in the same
//! database.
//!
//! Then email delivery (`mail`, in `support/mail.rs`): 10,000 invitations
//! through the outbox worker into a Rust SMTP server on loopback, beside a
//! minimal client sending the same bytes to the same server.
//!
//! Then submissions (`answers`, in `support/answers.rs`): durable answers per
//! second and their p50/p99 latency at 64 concurrent clients, beside
//! `GET /healthz` under the same load.
//!
//! Then results (`results`, in `support/results.rs`): publishing a wave,
//! the heatmap, a trend and the CSV feed over a data set of 100,000 people
//! and 52 closed waves, built once and reused.
//!
//! Then mobility (`mobility`, in `support/mobility.rs`): the
//! organisation-wide report for 100,000 people with five years of history.
//!
//! After each section it prints the process's peak resident memory during
//! that section (the server runs in-process, beside the load generator).
//! Memory a section frees stays resident for the next: for a section's own
//! peak, run it alone (`PEIL_BENCH_ONLY`).
//!
//! Options: `PEIL_BENCH_BACKEND_URL=postgres://…` to measure on PostgreSQL
//! (a database that will be migrated and bootstrapped; default: SQLite in a
//! temporary directory), `PEIL_BENCH_SECS` per measurement (default 3),
//! `PEIL_BENCH_RUNS` (default 5), `PEIL_BENCH_CONCURRENCY` (default 32),
//! `PEIL_BENCH_ONLY=wave` (or a comma-separated list of `api`, `import`,
//! `demo`, `wave`, `mail`, `answers`, `results`, `mobility`) to run only
//! those sections.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use peil::config::Settings;
use peil::startup::Application;
use serde_json::json;

#[path = "support/answers.rs"]
mod answers;
#[path = "support/mail.rs"]
mod mail;
#[path = "support/mobility.rs"]
mod mobility;
#[path = "support/results.rs"]
mod results;
// The tests' SMTP server; the benchmark uses only part of it.
#[allow(dead_code)]
#[path = "../tests/api/smtp.rs"]
mod smtp;

const NEW_PASSWORD: &str = "benchmark passphrase 1";

/// The API's rate limits, off: a benchmark is one address sending as fast
/// as it can, and a 429 is quicker than any real answer.
pub const NO_RATE_LIMITS: &str = "[rate_limits]\napi_per_address = { per_minute = 0, burst = 0 }\napi_per_credential = { per_minute = 0, burst = 0 }\nsign_in_per_address = { per_minute = 0, burst = 0 }\nsign_in_per_account = { per_minute = 0, burst = 0 }\n";

/// A benchmark server running in this process until [`Serving::stop`].
struct Serving {
    /// `http://127.0.0.1:PORT`.
    address: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Serving {
    fn start(app: Application) -> Self {
        let address = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Self {
            address,
            stop,
            server,
        }
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.server.await?
    }
}

struct Plan {
    runs: usize,
    seconds: f64,
    concurrency: usize,
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let plan = if full {
        Plan {
            runs: env_or("PEIL_BENCH_RUNS", 5),
            seconds: env_or("PEIL_BENCH_SECS", 3.0),
            concurrency: env_or("PEIL_BENCH_CONCURRENCY", 32),
        }
    } else {
        Plan {
            runs: 1,
            seconds: 0.2,
            concurrency: 2,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(async {
            if selected("api") {
                let peak = PeakRss::start();
                run(&plan, full).await?;
                peak.report("api");
            }
            if selected("import") {
                let peak = PeakRss::start();
                import(&plan, full).await?;
                peak.report("import");
            }
            if selected("demo") {
                let peak = PeakRss::start();
                demo(full).await?;
                peak.report("demo");
            }
            if selected("wave") {
                let peak = PeakRss::start();
                wave(full).await?;
                peak.report("wave");
            }
            if selected("mail") {
                let peak = PeakRss::start();
                mail::mail(full).await?;
                peak.report("mail");
            }
            if selected("answers") {
                let peak = PeakRss::start();
                answers::answers(&plan, full).await?;
                peak.report("answers");
            }
            if selected("results") {
                let peak = PeakRss::start();
                results::results(&plan, full).await?;
                peak.report("results");
            }
            if selected("mobility") {
                let peak = PeakRss::start();
                mobility::mobility(&plan, full).await?;
                peak.report("mobility");
            }
            Ok::<_, anyhow::Error>(())
        })
        .inspect_err(|_| drop_made_databases())?;
    drop_made_databases();
    Ok(())
}

/// The process's peak resident memory over one section (Linux: the
/// high-water mark is reset at the start by writing 5 to clear_refs). The
/// server runs in this process, beside the load generator and the data set
/// it builds, so the figure bounds the server's from above.
struct PeakRss {
    reset: bool,
}

impl PeakRss {
    fn start() -> Self {
        Self {
            reset: std::fs::write("/proc/self/clear_refs", "5").is_ok(),
        }
    }

    fn report(self, section: &str) {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        };
        match (self.reset, field("VmHWM:")) {
            (true, Some(kib)) => println!(
                "peak RSS during {section}: {:.0} MiB (server, load generator and data set in one process)",
                kib as f64 / 1024.0
            ),
            _ => println!("peak RSS during {section}: not measurable here"),
        }
    }
}

/// Whether `PEIL_BENCH_ONLY` (unset: every section) names this section.
fn selected(section: &str) -> bool {
    std::env::var("PEIL_BENCH_ONLY").map_or(true, |only| {
        only.split(',')
            .any(|s| s.trim().eq_ignore_ascii_case(section))
    })
}

#[derive(Clone, Copy)]
enum Scenario {
    Healthz,
    Me,
    Login,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::Healthz => "GET /healthz (baseline)",
            Self::Me => "GET /api/v1/auth/me",
            Self::Login => "POST /api/v1/auth/login",
        }
    }
}

async fn run(plan: &Plan, full: bool) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (settings, url) = bench_settings(&dir)?;
    let mut app = Application::build(settings).await?;
    let admin = app
        .take_initial_admin()
        .ok_or_else(|| anyhow::anyhow!("the benchmark needs an empty database"))?;
    let serving = Serving::start(app);
    let address = serving.address.clone();

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.concurrency)
        .build()?;
    let token = sign_in(&client, &address, &admin.email, admin.password.expose()).await?;
    let login = json!({"email": admin.email, "password": NEW_PASSWORD});

    let scenarios = [Scenario::Healthz, Scenario::Me, Scenario::Login];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); scenarios.len()];
    for _ in 0..plan.runs {
        // Interleaved, so drift on a shared machine hits every scenario alike.
        for (i, scenario) in scenarios.iter().enumerate() {
            let rate = measure(&client, &address, &token, &login, *scenario, plan).await?;
            rates[i].push(rate);
        }
    }
    serving.stop().await?;

    let medians: Vec<f64> = rates.iter_mut().map(|r| median(r)).collect();
    println!(
        "\nPeil API benchmark ({}; {} runs × {} s, {} concurrent clients; medians)\n",
        backend_name(&url),
        plan.runs,
        plan.seconds,
        plan.concurrency
    );
    println!("| scenario | requests/s | ratio to baseline |");
    println!("| --- | ---: | ---: |");
    for (scenario, rate) in scenarios.iter().zip(&medians) {
        println!(
            "| {} | {:.0} | {:.3} |",
            scenario.name(),
            rate,
            rate / medians[0]
        );
    }
    if !full {
        anyhow::ensure!(
            medians.iter().all(|r| *r > 0.0),
            "a scenario completed no request"
        );
        println!("\n(smoke run; `cargo bench --bench api` measures)");
    }
    Ok(())
}

/// PostgreSQL databases the benchmark made, to drop when it ends.
static MADE: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Where a server the benchmark starts keeps its data: SQLite in `dir`, or
/// on PostgreSQL a new database beside `PEIL_BENCH_BACKEND_URL`'s, so that
/// every run (an import into an empty organisation, say) starts empty.
fn database_url(dir: &tempfile::TempDir) -> anyhow::Result<String> {
    use diesel::{Connection, RunQueryDsl};
    match std::env::var("PEIL_BENCH_BACKEND_URL") {
        Ok(url) if url.starts_with("postgres") => {
            let name = format!("peil_bench_{}", uuid::Uuid::new_v4().simple());
            let mut server = diesel::PgConnection::establish(&url)?;
            diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut server)?;
            MADE.lock()
                .expect("the list of databases")
                .push((url.clone(), name.clone()));
            let mut own = url::Url::parse(&url)?;
            own.set_path(&name);
            Ok(own.to_string())
        }
        Ok(url) => Ok(url),
        Err(_) => Ok(format!("sqlite://{}", dir.path().join("peil.db").display())),
    }
}

fn drop_made_databases() {
    use diesel::{Connection, RunQueryDsl};
    let made = std::mem::take(&mut *MADE.lock().expect("the list of databases"));
    for (url, name) in made {
        if let Ok(mut server) = diesel::PgConnection::establish(&url) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut server);
        }
    }
}

fn bench_settings(dir: &tempfile::TempDir) -> anyhow::Result<(Settings, String)> {
    let url = database_url(dir)?;
    let base = format!(
        "data_dir = \"{}\"\n[server]\nport = 0\n[database]\nurl = \"{url}\"\npool_size = 16\n[log]\nlevel = \"warn\"\n[scheduler]\nenabled = false\n[mail]\nenabled = false\n[answers.rate_limit]\nper_minute = 0\n",
        dir.path().join("data").display()
    );
    Ok((Settings::from_toml(&[&base, NO_RATE_LIMITS])?, url))
}

/// A realistic HRIS export: `rows` people in 50 teams under 5 departments.
fn import_csv(rows: usize) -> String {
    let mut csv =
        String::from("external_id,email,name,team,language,job_title,level,effective_date\n");
    for i in 0..rows {
        let department = i % 5;
        let team = i % 50;
        let language = if i % 3 == 0 { "en" } else { "nl" };
        csv.push_str(&format!(
            "HR{i:06},person{i}@example.org,Person {i},Department {department}/Team {team},{language},Engineer,{},2024-01-{:02}\n",
            i % 8,
            1 + i % 28
        ));
    }
    csv
}

async fn import(plan: &Plan, full: bool) -> anyhow::Result<()> {
    let rows: usize = if full {
        env_or("PEIL_BENCH_IMPORT_ROWS", 10_000)
    } else {
        200
    };
    let csv = import_csv(rows);
    let mut imports = Vec::new();
    let mut floors = Vec::new();
    for _ in 0..plan.runs {
        floors.push(floor(rows).await?);

        let dir = tempfile::tempdir()?;
        let (settings, _) = bench_settings(&dir)?;
        let mut app = Application::build(settings).await?;
        let admin = app.take_initial_admin().expect("an empty database");
        let serving = Serving::start(app);
        let address = serving.address.clone();
        let client = reqwest::Client::new();
        let token = sign_in(
            &client,
            &address,
            admin.email.as_str(),
            admin.password.expose(),
        )
        .await?;
        let started = Instant::now();
        let response = client
            .post(format!("{address}/api/v1/people/import"))
            .bearer_auth(&token)
            .header("Content-Type", "text/csv")
            .body(csv.clone())
            .send()
            .await?;
        let status = response.status();
        let summary: serde_json::Value = response.json().await?;
        imports.push(started.elapsed().as_secs_f64());
        anyhow::ensure!(
            status == 200 && summary["created"] == rows,
            "import failed: {status} {summary}"
        );
        serving.stop().await?;
    }
    let (import, floor) = (median(&mut imports), median(&mut floors));
    println!(
        "\nPeople import ({rows} CSV rows into an empty organisation; {} runs; medians)\n",
        plan.runs
    );
    println!("| what | seconds | rows/s | ratio to floor |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| store inserts only (floor) | {floor:.2} | {:.0} | 1.00 |",
        rows as f64 / floor
    );
    println!(
        "| `POST /api/v1/people/import` | {import:.2} | {:.0} | {:.2} |",
        rows as f64 / import,
        import / floor
    );
    Ok(())
}

/// Seconds to insert `rows` people rows straight through the store in one
/// transaction: what any way of creating that many people must at least do.
async fn floor(rows: usize) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let (settings, _) = bench_settings(&dir)?;
    let (db, _) = peil::startup::prepare_storage(&settings, true)?;
    let started = Instant::now();
    db.run(move |conn| {
        peil::db::write(conn, |conn| {
            let organisation = peil::org::store::list(conn)?[0].id.clone();
            let team = peil::org::teams::store::insert(
                conn,
                &peil::org::teams::store::NewTeam {
                    organisation_id: &organisation,
                    parent_id: None,
                    name: "Team",
                    external_id: None,
                },
            )?;
            for i in 0..rows {
                let email = format!("person{i}@example.org");
                let external = format!("HR{i:06}");
                peil::org::people::store::insert(
                    conn,
                    &organisation,
                    &peil::org::people::store::PersonValues {
                        email: &email,
                        name: "Person",
                        team_id: &team.id,
                        language: "nl",
                        job_title: Some("Engineer"),
                        level: Some(3),
                        external_id: Some(&external),
                        status: "active",
                        exit_kind: None,
                    },
                )?;
            }
            Ok::<_, peil::db::DbError>(())
        })
    })
    .await?;
    Ok(started.elapsed().as_secs_f64())
}

async fn demo(full: bool) -> anyhow::Result<()> {
    let (people, runs) = if full {
        (
            env_or("PEIL_BENCH_DEMO_PEOPLE", 100_000),
            env_or("PEIL_BENCH_DEMO_RUNS", 3),
        )
    } else {
        (100, 1)
    };
    let mut demos = Vec::new();
    let mut floors = Vec::new();
    let mut made = peil::demo::DemoSummary::default();
    for _ in 0..runs {
        floors.push(floor(people).await?);
        let dir = tempfile::tempdir()?;
        let (mut settings, _) = bench_settings(&dir)?;
        let (db, _) = peil::startup::prepare_storage(&settings, false)?;
        let keys = settings.server_keys()?;
        let spec = peil::demo::DemoSpec {
            people,
            seed: 1,
            years: 3,
            today: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).expect("a date"),
            waves: 0,
            team_size: peil::demo::TEAM_SIZE,
        };
        let started = Instant::now();
        made = tokio::task::spawn_blocking(move || peil::demo::generate(&db, &keys, &spec, |_| {}))
            .await??;
        demos.push(started.elapsed().as_secs_f64());
    }
    let events: usize = made.events.values().sum();
    let (demo, floor) = (median(&mut demos), median(&mut floors));
    println!(
        "\n`peil demo --people {people}` ({} teams, {events} history events; {runs} runs; medians)\n",
        made.teams
    );
    println!("| what | seconds | people/s | ratio to floor |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| store inserts only (floor) | {floor:.2} | {:.0} | 1.00 |",
        people as f64 / floor
    );
    println!(
        "| demo generator | {demo:.2} | {:.0} | {:.2} |",
        people as f64 / demo,
        demo / floor
    );
    Ok(())
}

diesel::table! {
    /// The wave benchmark's floor: a bare table about as wide as `invitations`.
    bench_rows (id) {
        id -> Text,
        a -> Text,
        b -> Text,
        n -> Integer,
    }
}

/// Rows per INSERT in the floor, as in the wave's own stores.
const FLOOR_CHUNK: usize = 2_000;

async fn wave(full: bool) -> anyhow::Result<()> {
    let (people, runs) = if full {
        (
            env_or("PEIL_BENCH_WAVE_PEOPLE", 100_000),
            env_or("PEIL_BENCH_WAVE_RUNS", 5),
        )
    } else {
        (200, 1)
    };
    let dir = tempfile::tempdir()?;
    let (settings, url) = bench_settings(&dir)?;
    let (db, _) = peil::startup::prepare_storage(&settings, false)?;
    let keys = settings.clone().server_keys()?;
    let spec = peil::demo::DemoSpec {
        people,
        seed: 1,
        years: 3,
        today: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).expect("a date"),
        waves: 0,
        team_size: peil::demo::TEAM_SIZE,
    };
    let generated = Instant::now();
    let made = {
        let (db, keys) = (db.clone(), keys.clone());
        tokio::task::spawn_blocking(move || peil::demo::generate(&db, &keys, &spec, |_| {}))
            .await??
    };
    let generated = generated.elapsed().as_secs_f64();

    let mut waves = Vec::new();
    let mut floors = Vec::new();
    let mut written = 0;
    for _ in 0..runs {
        let pulse_id = made.pulse_id.clone();
        let invited = made.active;
        let (db, keys) = (db.clone(), keys.clone());
        let (floor, wave, rows) = tokio::task::spawn_blocking(move || {
            let mut conn = db.get()?;
            // As many rows as the wave's invitations and their emails.
            let floor = floor_insert(&mut conn, 2 * invited)?;
            let started = Instant::now();
            let opened = open_wave(&mut conn, &pulse_id)?;
            let wave = started.elapsed().as_secs_f64();
            anyhow::ensure!(
                usize::try_from(opened.invited)? == invited,
                "the wave invited {} of {invited} active people",
                opened.invited
            );
            let teams = peil::surveys::waves::store::team_counts(&mut conn, &opened.id)?.len();
            // Waves of one pulse never overlap: close this one for the next run.
            peil::surveys::waves::close_and_checkpoint(
                &mut conn,
                &keys,
                &opened.id,
                peil::surveys::waves::Closing::Now,
                chrono::Utc::now(),
            )
            .map_err(|e| anyhow::anyhow!("closing the wave: {e}"))?;
            // Invitations, their emails, the per-team counts.
            Ok::<_, anyhow::Error>((floor, wave, 2 * invited + teams))
        })
        .await??;
        floors.push(floor);
        waves.push(wave);
        written = rows;
    }
    let (wave_runs, floor_runs) = (each_run(&waves, 2), each_run(&floors, 2));
    let (wave, floor) = (median(&mut waves), median(&mut floors));
    let invited = made.active as f64;
    println!(
        "\nOpening a wave ({}; {} active of {people} people in {} teams, generated in {generated:.1} s; the wave writes {written} rows; {runs} runs; medians)\n",
        backend_name(&url),
        made.active,
        made.teams,
    );
    println!("| what | seconds | invitations/s | ratio to floor |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| bulk insert of {} rows, as many as the wave's invitations + outbox (floor) | {floor:.2} | {:.0} | 1.00 |",
        2 * made.active,
        invited / floor
    );
    println!(
        "| open a wave (`Trigger::Manual`) | {wave:.2} | {:.0} | {:.2} |",
        invited / wave,
        wave / floor
    );
    println!("\nEach run, seconds: wave {wave_runs}; floor {floor_runs}");
    Ok(())
}

/// Seconds to insert `rows` rows into a fresh bare table in one transaction,
/// ids generated as the wave's are; the table is dropped afterwards.
fn floor_insert(conn: &mut peil::db::DbConnection, rows: usize) -> anyhow::Result<f64> {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    conn.batch_execute(
        "DROP TABLE IF EXISTS bench_rows; \
         CREATE TABLE bench_rows (id TEXT PRIMARY KEY, a TEXT NOT NULL, b TEXT NOT NULL, n INTEGER NOT NULL)",
    )?;
    let a = uuid::Uuid::new_v4().to_string();
    let started = Instant::now();
    peil::db::write(conn, |conn| {
        for start in (0..rows).step_by(FLOOR_CHUNK) {
            let values: Vec<_> = (start..rows.min(start + FLOOR_CHUNK))
                .map(|i| {
                    (
                        bench_rows::id.eq(uuid::Uuid::new_v4().to_string()),
                        bench_rows::a.eq(&a),
                        bench_rows::b.eq(format!("{i:036}")),
                        bench_rows::n.eq(i32::try_from(i).unwrap_or(i32::MAX)),
                    )
                })
                .collect();
            peil::batch_insert!(conn, bench_rows::table, values)?;
        }
        Ok::<_, diesel::result::Error>(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    conn.batch_execute("DROP TABLE bench_rows")?;
    Ok(seconds)
}

/// Signs in with a one-time password and replaces it; returns the token.
async fn sign_in(
    client: &reqwest::Client,
    address: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let token = client
        .post(format!("{address}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let changed = client
        .post(format!("{address}/api/v1/auth/password"))
        .bearer_auth(&token)
        .json(&json!({"current_password": password, "new_password": NEW_PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(changed.status() == 204, "password change failed");
    Ok(token)
}

async fn measure(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    login: &serde_json::Value,
    scenario: Scenario,
    plan: &Plan,
) -> anyhow::Result<f64> {
    let (client, address, token, login) = (
        client.clone(),
        address.to_owned(),
        token.to_owned(),
        login.clone(),
    );
    let request = move |_| match scenario {
        Scenario::Healthz => client.get(format!("{address}/healthz")),
        Scenario::Me => client
            .get(format!("{address}/api/v1/auth/me"))
            .bearer_auth(&token),
        Scenario::Login => client
            .post(format!("{address}/api/v1/auth/login"))
            .json(&login),
    };
    Ok(load(plan, plan.concurrency, request).await?.rate)
}

/// One measurement: requests completed per second and their latencies.
struct Load {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// `clients` clients sending `request(client)` back to back for the plan's
/// seconds; every response must be a success.
async fn load<F>(plan: &Plan, clients: usize, request: F) -> anyhow::Result<Load>
where
    F: Fn(usize) -> reqwest::RequestBuilder + Clone + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for n in 0..clients {
        let (stop, request) = (stop.clone(), request.clone());
        workers.spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let response = request(n).send().await?;
                let status = response.status();
                response.bytes().await?;
                anyhow::ensure!(status.is_success(), "unexpected status {status}");
                latencies.push(sent.elapsed().as_secs_f64() * 1e3);
            }
            Ok::<_, anyhow::Error>(latencies)
        });
    }
    tokio::time::sleep(Duration::from_secs_f64(plan.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    while let Some(done) = workers.join_next().await {
        latencies.extend(done??);
    }
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(!latencies.is_empty(), "no request completed");
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Ok(Load {
        rate: latencies.len() as f64 / seconds,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
    })
}

/// Opens a wave of `pulse_id` by hand, now, in its own transaction.
fn open_wave(
    conn: &mut peil::db::DbConnection,
    pulse_id: &str,
) -> anyhow::Result<Box<peil::surveys::waves::store::WaveRow>> {
    use peil::surveys::waves::{self, Opening, Trigger};
    match peil::db::write(conn, |conn| {
        waves::open(conn, pulse_id, Trigger::Manual, chrono::Utc::now())
    })
    .map_err(|e| anyhow::anyhow!("opening a wave: {e}"))?
    {
        Opening::Opened(wave) => Ok(wave),
        other => anyhow::bail!("the wave did not open: {other:?}"),
    }
}

/// The backend a database URL names, for the tables' headings.
fn backend_name(url: &str) -> &'static str {
    if url.starts_with("sqlite") {
        "SQLite"
    } else {
        "PostgreSQL"
    }
}

/// Each run's figure, for the tables: `12, 14, 13`.
fn each_run(values: &[f64], decimals: usize) -> String {
    values
        .iter()
        .map(|v| format!("{v:.decimals$}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
