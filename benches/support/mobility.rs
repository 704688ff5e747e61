//! The mobility section of `cargo bench --bench api` (`mobility`): the
//! organisation-wide report (`GET /api/v1/mobility/report`: the
//! organisation and every team's own and subtree figures over the last
//! year) for the demo organisation of `PEIL_BENCH_MOBILITY_PEOPLE` (default
//! 100,000) people with `PEIL_BENCH_MOBILITY_YEARS` (default 5) years of
//! history, in leaf teams of about 63 (2,004 teams in five levels). Built
//! once into `PEIL_BENCH_MOBILITY_DIR` (default `target/bench-mobility`) and
//! reused; CI's smoke run uses 300 people.
//!
//! Measured, `PEIL_BENCH_RUNS` times, medians: p50 and p95 of
//! `PEIL_BENCH_MOBILITY_REQUESTS` (default 20) sequential requests of the
//! report and of the organisation's figures alone (timelines kept after
//! the first request, as in use), beside `GET /healthz` and beside the raw
//! query the report starts from (every history event's columns it reads,
//! loaded in one query); and the figures computed with nothing kept, the
//! cost of the first read after the history changed.

use std::time::Instant;

use peil::startup::Application;
use serde_json::Value;

use super::results::{data_set, latencies, token};
use super::{Plan, Serving, backend_name, env_or, median};

pub async fn mobility(plan: &Plan, full: bool) -> anyhow::Result<()> {
    let (people, years, requests) = if full {
        (
            env_or("PEIL_BENCH_MOBILITY_PEOPLE", 100_000),
            env_or("PEIL_BENCH_MOBILITY_YEARS", 5),
            env_or("PEIL_BENCH_MOBILITY_REQUESTS", 20),
        )
    } else {
        (300, 2, 3)
    };
    let temporary = tempfile::tempdir()?;
    let (dir, url) = data_set(
        full.then_some(("PEIL_BENCH_MOBILITY_DIR", "target/bench-mobility")),
        &format!("{people}-{years}y"),
        temporary.path(),
    )?;
    let base = format!(
        "data_dir = \"{}\"\n[server]\nport = 0\n[database]\nurl = \"{url}\"\npool_size = 8\n[log]\nlevel = \"warn\"\n[scheduler]\nenabled = false\n[mail]\nenabled = false\n[webhooks]\nenabled = false\n",
        dir.join("data").display()
    );
    let mut settings = peil::config::Settings::from_toml(&[&base, crate::NO_RATE_LIMITS])?;
    let keys = settings.server_keys()?;

    let marker = dir.join("ready.json");
    let built = if marker.exists() {
        None
    } else {
        let started = Instant::now();
        let prepared = settings.clone();
        let made = tokio::task::spawn_blocking(move || {
            let (db, _) = peil::startup::prepare_storage(&prepared, false)?;
            let spec = peil::demo::DemoSpec {
                people,
                seed: 1,
                years,
                today: chrono::Utc::now().date_naive(),
                waves: 0,
                team_size: 63,
            };
            peil::demo::generate(&db, &keys, &spec, |_| {})
        })
        .await??;
        let (_, email, password) = &made.accounts[0];
        let events: usize = made.events.values().sum();
        std::fs::write(
            &marker,
            serde_json::to_string(&serde_json::json!({
                "email": email,
                "password": password.expose(),
                "organisation_id": made.organisation_id,
                "teams": made.teams,
                "events": events,
            }))?,
        )?;
        Some(started.elapsed().as_secs_f64())
    };
    let set: Value = serde_json::from_str(&std::fs::read_to_string(&marker)?)?;
    let text = |key: &str| set[key].as_str().unwrap_or_default().to_owned();
    let organisation_id = text("organisation_id");
    let db = peil::db::Db::new(&settings.database);

    let app = Application::build(settings.clone()).await?;
    let serving = Serving::start(app);
    let address = serving.address.clone();
    let client = reqwest::Client::new();
    let token = token(&client, &address, &text("email"), &text("password")).await?;

    let (mut healthz, mut report, mut organisation, mut raw, mut cold) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut report_bytes = 0;
    for _ in 0..plan.runs {
        healthz.push(latencies(&client, &format!("{address}/healthz"), None, requests).await?);
        report.push(
            latencies(
                &client,
                &format!("{address}/api/v1/mobility/report"),
                Some(&token),
                requests,
            )
            .await?,
        );
        organisation.push(
            latencies(
                &client,
                &format!("{address}/api/v1/mobility/organisation"),
                Some(&token),
                requests,
            )
            .await?,
        );
        let (db2, organisation_id2) = (db.clone(), organisation_id.clone());
        raw.push(
            tokio::task::spawn_blocking(move || raw_history_ms(&db2, &organisation_id2)).await??,
        );
        let (db2, organisation_id2) = (db.clone(), organisation_id.clone());
        cold.push(tokio::task::spawn_blocking(move || cold_ms(&db2, &organisation_id2)).await??);
    }
    let sample = client
        .get(format!("{address}/api/v1/mobility/report"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    report_bytes += sample.len();
    let parsed: Value = serde_json::from_slice(&sample)?;
    serving.stop().await?;

    let pick = |runs: &[(f64, f64)], q: usize| {
        median(
            &mut runs
                .iter()
                .map(|r| if q == 50 { r.0 } else { r.1 })
                .collect::<Vec<_>>(),
        )
    };
    let (h50, h95) = (pick(&healthz, 50), pick(&healthz, 95));
    let (r50, r95) = (pick(&report, 50), pick(&report, 95));
    let (o50, o95) = (pick(&organisation, 50), pick(&organisation, 95));
    let raw = median(&mut raw);
    let cold = median(&mut cold);
    println!(
        "\nMobility ({}; {people} people in {} teams, {years} years, {} history events{}; report {} KiB; {} runs × {requests} requests; medians)\n",
        backend_name(&url),
        set["teams"],
        set["events"],
        built.map_or_else(
            || ", data set reused".to_owned(),
            |s| format!(", data set built in {s:.0} s")
        ),
        report_bytes / 1024,
        plan.runs,
    );
    println!("| what | p50 | p95 | ratio (p50) to the raw query | target |");
    println!("| --- | ---: | ---: | ---: | --- |");
    println!(
        "| GET /healthz | {h50:.2} ms | {h95:.2} ms | {:.3} | |",
        h50 / raw
    );
    println!(
        "| reading every history event the report reads, one query (baseline) | {raw:.0} ms | | 1.0 | |"
    );
    println!(
        "| GET /api/v1/mobility/report (organisation, every team and subtree) | {r50:.0} ms | {r95:.0} ms | {:.2} | < 500 ms |",
        r50 / raw
    );
    println!(
        "| GET /api/v1/mobility/organisation | {o50:.0} ms | {o95:.0} ms | {:.2} | |",
        o50 / raw
    );
    println!(
        "| the report's figures with no timelines kept (the first read after the history changed; no HTTP, no JSON) | {cold:.0} ms | | {:.2} | |",
        cold / raw
    );
    let teams = parsed["teams"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(teams > 0, "the report named no team");
    anyhow::ensure!(
        parsed["organisation"]["headcount"]["end"].as_u64() > Some(0),
        "the report counted nobody"
    );
    if !full {
        println!("\n(smoke run; `cargo bench --bench api` measures)");
    }
    Ok(())
}

/// Milliseconds to compute every group's figures from the database with no
/// timelines kept: the cost of the first read after the history changed.
fn cold_ms(db: &peil::db::Db, organisation_id: &str) -> anyhow::Result<f64> {
    let mut conn = db.get()?;
    let today = chrono::Utc::now().date_naive();
    let period = peil::mobility::figures::Period {
        from: today - chrono::Duration::days(365),
        to: today,
    };
    let started = Instant::now();
    let computed = peil::mobility::compute(
        &mut conn,
        &peil::mobility::Timelines::default(),
        organisation_id,
        period,
    )?;
    let counted: u64 = computed
        .tallies
        .iter()
        .map(|t| u64::from(t.figures(period, 36).headcount.end))
        .sum();
    anyhow::ensure!(counted > 0, "nobody counted");
    Ok(started.elapsed().as_secs_f64() * 1e3)
}

/// Milliseconds to load every history event's columns the report reads,
/// with the very query the report starts from.
fn raw_history_ms(db: &peil::db::Db, organisation_id: &str) -> anyhow::Result<f64> {
    let mut conn = db.get()?;
    let started = Instant::now();
    let rows = peil::mobility::history(&mut conn, organisation_id)?;
    anyhow::ensure!(!rows.is_empty(), "no history");
    Ok(started.elapsed().as_secs_f64() * 1e3)
}
