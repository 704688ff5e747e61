//! The submissions section of `cargo bench --bench api` (`answers`): durable
//! answers per second and their latency at `PEIL_BENCH_ANSWER_CLIENTS`
//! (default 64) concurrent clients, beside the same server's `GET /healthz`
//! under the same load, measured interleaved in the same run.
//!
//! The demo organisation of `PEIL_BENCH_ANSWER_PEOPLE` (default 100,000)
//! people gets one wave; its links come from the token generator, and
//! each is answered once through `POST /api/v1/answers/{token}` (every
//! closed question, no comment), for `PEIL_BENCH_SECS` per run,
//! `PEIL_BENCH_RUNS` runs. Every 201 is an answer committed to disk (SQLite
//! `synchronous = FULL`; PostgreSQL's default synchronous commit); the
//! section checks at the end that the database holds exactly as many.
//! The links' rate limit is off here: every client comes from 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::prelude::*;
use peil::db::schema::{invitations, responses};
use peil::startup::Application;
use serde_json::{Value, json};

use super::{
    Load, Plan, Serving, backend_name, bench_settings, each_run, env_or, load, median, open_wave,
};

pub async fn answers(plan: &Plan, full: bool) -> anyhow::Result<()> {
    let (people, clients) = if full {
        (
            env_or("PEIL_BENCH_ANSWER_PEOPLE", 100_000),
            env_or("PEIL_BENCH_ANSWER_CLIENTS", 64),
        )
    } else {
        (300, 4)
    };
    let dir = tempfile::tempdir()?;
    let (mut settings, url) = bench_settings(&dir)?;
    let keys = settings.server_keys()?;
    let prepared = settings.clone();
    let demo_keys = keys.clone();
    let (wave, tokens) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<(String, Vec<String>)> {
            let (db, _) = peil::startup::prepare_storage(&prepared, false)?;
            let spec = peil::demo::DemoSpec {
                people,
                seed: 1,
                years: 1,
                today: chrono::Utc::now().date_naive(),
                waves: 0,
                team_size: peil::demo::TEAM_SIZE,
            };
            let made = peil::demo::generate(&db, &demo_keys, &spec, |_| {})?;
            let mut conn = db.get()?;
            let wave = open_wave(&mut conn, &made.pulse_id)?.id;
            let ids: Vec<String> = invitations::table
                .filter(invitations::wave_id.eq(&wave))
                .select(invitations::id)
                .load(&mut conn)?;
            let tokens = ids
                .iter()
                .filter_map(|id| keys.invitation_token(id))
                .collect();
            Ok((wave, tokens))
        })
        .await??;
    let invited = tokens.len();

    let app = Application::build(settings.clone()).await?;
    let serving = Serving::start(app);
    let address = serving.address.clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let answer = valid_answer(&client, &address, &tokens[0]).await?;

    let next = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(tokens);
    let (mut healthz, mut submissions) = (Vec::new(), Vec::new());
    for _ in 0..plan.runs {
        let (c, a) = (client.clone(), address.clone());
        healthz.push(load(plan, clients, move |_| c.get(format!("{a}/healthz"))).await?);
        let (next, tokens) = (next.clone(), tokens.clone());
        let (client, address, answer) = (client.clone(), address.clone(), answer.clone());
        submissions.push(
            load(plan, clients, move |_| {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let token = tokens
                    .get(i)
                    .expect("more links than answers; raise PEIL_BENCH_ANSWER_PEOPLE");
                client
                    .post(format!("{address}/api/v1/answers/{token}"))
                    .json(&answer)
            })
            .await?,
        );
    }
    serving.stop().await?;

    // Every acknowledged answer is in the database, once.
    let given = next.load(Ordering::Relaxed).min(invited);
    let db = peil::db::Db::new(&settings.database);
    let stored: i64 = tokio::task::spawn_blocking(move || -> anyhow::Result<i64> {
        Ok(responses::table
            .filter(responses::wave_id.eq(&wave))
            .count()
            .get_result(&mut db.get()?)?)
    })
    .await??;
    anyhow::ensure!(
        usize::try_from(stored)? == given,
        "{stored} responses stored for {given} answers acknowledged"
    );

    let summarise = |loads: &[Load]| {
        let pick = |f: fn(&Load) -> f64| median(&mut loads.iter().map(f).collect::<Vec<_>>());
        (pick(|l| l.rate), pick(|l| l.p50_ms), pick(|l| l.p99_ms))
    };
    let runs_text = |loads: &[Load]| each_run(&loads.iter().map(|l| l.rate).collect::<Vec<_>>(), 0);
    let (h_rate, h_p50, h_p99) = summarise(&healthz);
    let (s_rate, s_p50, s_p99) = summarise(&submissions);
    println!(
        "\nSubmissions ({}; {invited} links, {clients} concurrent clients, {} runs × {} s; {stored} answers stored; medians)\n",
        backend_name(&url),
        plan.runs,
        plan.seconds,
    );
    println!("| what | requests/s | runs | p50 | p99 | ratio to baseline |");
    println!("| --- | ---: | --- | ---: | ---: | ---: |");
    println!(
        "| GET /healthz (baseline) | {h_rate:.0} | {} | {h_p50:.1} ms | {h_p99:.1} ms | 1.000 |",
        runs_text(&healthz)
    );
    println!(
        "| POST /api/v1/answers/{{token}}, durable | {s_rate:.0} | {} | {s_p50:.1} ms | {s_p99:.1} ms | {:.3} |",
        runs_text(&submissions),
        s_rate / h_rate
    );
    if !full {
        anyhow::ensure!(s_rate > 0.0, "no answer was stored");
        println!("\n(smoke run; `cargo bench --bench api` measures)");
    }
    Ok(())
}

/// An answer to every closed question of the survey behind `token` (the
/// middle option), no comments.
async fn valid_answer(
    client: &reqwest::Client,
    address: &str,
    token: &str,
) -> anyhow::Result<Value> {
    let survey: Value = client
        .get(format!("{address}/api/v1/answers/{token}"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut answers = serde_json::Map::new();
    for question in survey["questions"].as_array().into_iter().flatten() {
        let options = question["options"].as_array().cloned().unwrap_or_default();
        if let (Some(id), false) = (question["id"].as_str(), options.is_empty()) {
            answers.insert(id.to_owned(), options[options.len() / 2]["value"].clone());
        }
    }
    Ok(json!({ "answers": answers }))
}
