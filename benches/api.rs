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
//! Options: `PEIL_BENCH_BACKEND_URL=postgres://…` to measure on PostgreSQL
//! (a database that will be migrated and bootstrapped; default: SQLite in a
//! temporary directory), `PEIL_BENCH_SECS` per measurement (default 3),
//! `PEIL_BENCH_RUNS` (default 5), `PEIL_BENCH_CONCURRENCY` (default 32).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use peil::config::Settings;
use peil::startup::Application;
use serde_json::json;

const NEW_PASSWORD: &str = "benchmark passphrase 1";

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
    runtime.block_on(run(plan, full))
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

async fn run(plan: Plan, full: bool) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = std::env::var("PEIL_BENCH_BACKEND_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("peil.db").display()));
    let base = format!(
        "data_dir = \"{}\"\n[server]\nport = 0\n[database]\nurl = \"{url}\"\npool_size = 16\n[log]\nlevel = \"warn\"\n",
        dir.path().join("data").display()
    );
    let settings = Settings::from_toml(&[&base])?;
    let mut app = Application::build(settings).await?;
    let admin = app
        .take_initial_admin()
        .ok_or_else(|| anyhow::anyhow!("the benchmark needs an empty database"))?;
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.concurrency)
        .build()?;
    let login = json!({"email": admin.email, "password": admin.password.expose()});
    let token: String = client
        .post(format!("{address}/api/v1/auth/login"))
        .json(&login)
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
        .json(&json!({"current_password": admin.password.expose(), "new_password": NEW_PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(changed.status() == 204, "password change failed");
    let login = json!({"email": admin.email, "password": NEW_PASSWORD});

    let scenarios = [Scenario::Healthz, Scenario::Me, Scenario::Login];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); scenarios.len()];
    for _ in 0..plan.runs {
        // Interleaved, so drift on a shared machine hits every scenario alike.
        for (i, scenario) in scenarios.iter().enumerate() {
            let rate = measure(&client, &address, &token, &login, *scenario, &plan).await?;
            rates[i].push(rate);
        }
    }
    let _ = stop.send(());
    server.await??;

    let medians: Vec<f64> = rates.iter_mut().map(|r| median(r)).collect();
    println!(
        "\nPeil API benchmark ({}; {} runs × {} s, {} concurrent clients; medians)\n",
        if url.starts_with("sqlite") {
            "SQLite"
        } else {
            "PostgreSQL"
        },
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

async fn measure(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    login: &serde_json::Value,
    scenario: Scenario,
    plan: &Plan,
) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..plan.concurrency {
        let (client, done, stop) = (client.clone(), done.clone(), stop.clone());
        let request = match scenario {
            Scenario::Healthz => client.get(format!("{address}/healthz")),
            Scenario::Me => client
                .get(format!("{address}/api/v1/auth/me"))
                .bearer_auth(token),
            Scenario::Login => client
                .post(format!("{address}/api/v1/auth/login"))
                .json(login),
        };
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let request = request.try_clone().expect("a cloneable request");
                let response = request.send().await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "unexpected status {}",
                    response.status()
                );
                response.bytes().await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(plan.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
