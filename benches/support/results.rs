//! The results section of `cargo bench --bench api` (`results`): reading
//! precomputed results at the size of a large employer, each beside a
//! baseline measured in the same run.
//!
//! The data set: the demo organisation of `PEIL_BENCH_RESULTS_PEOPLE`
//! (default 100,000) people in leaf teams of about
//! `PEIL_BENCH_RESULTS_TEAM_SIZE` (default 63): 2,004 teams in five levels, with
//! `PEIL_BENCH_RESULTS_WAVES` (default 52) past waves answered by about 60%
//! and closed (so published and sealed) through the same code as real
//! waves. It is built once into `PEIL_BENCH_RESULTS_DIR` (default
//! `target/bench-results`; on PostgreSQL, into the database of
//! `PEIL_BENCH_BACKEND_URL`, remembered by a marker file in that folder)
//! and reused by later runs; it stays out of CI, where a smoke run uses 300
//! people and 3 waves.
//!
//! Measured, `PEIL_BENCH_RUNS` times, medians:
//! - publishing one wave: a 53rd wave is opened and answered by 60% inside a
//!   transaction that is rolled back, and its publication is computed and
//!   written (`results::store::publish_wave`) in a savepoint each run;
//!   beside reading that wave's responses (the raw query publishing starts
//!   from);
//! - the heatmap of all teams (`GET /api/v1/results/heatmap`) and one
//!   team's trend over every wave (`GET /api/v1/results/trends/teams/…`),
//!   p50 and p95 of sequential requests, beside `GET /healthz`, and beside
//!   computing the same heatmap from the stored responses; and the
//!   heatmap with nothing kept (one request to a server started for it,
//!   as the first read after a publication finds it);
//! - the CSV feed: rows per second of one page of up to 1,000,000 rows,
//!   beside reading the same rows with one query.

use std::path::PathBuf;
use std::time::Instant;

use diesel::prelude::*;
use peil::db::schema::{invitations, responses, results};
use peil::startup::Application;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

use super::{NEW_PASSWORD, Plan, Serving, backend_name, each_run, env_or, median};

/// People per leaf team: 100,000 people in 1,600 leaf teams and 2,004
/// teams in all, five levels (the "2,000 teams").
const TEAM_SIZE: usize = 63;

pub async fn results(plan: &Plan, full: bool) -> anyhow::Result<()> {
    let (people, waves, team_size, requests) = if full {
        (
            env_or("PEIL_BENCH_RESULTS_PEOPLE", 100_000),
            env_or("PEIL_BENCH_RESULTS_WAVES", 52),
            env_or("PEIL_BENCH_RESULTS_TEAM_SIZE", TEAM_SIZE),
            env_or("PEIL_BENCH_RESULTS_REQUESTS", 200),
        )
    } else {
        (300, 3, peil::demo::TEAM_SIZE, 5)
    };
    let temporary = tempfile::tempdir()?;
    let (dir, url) = data_set(
        full.then_some(("PEIL_BENCH_RESULTS_DIR", "target/bench-results")),
        &format!("{people}-{waves}-t{team_size}"),
        temporary.path(),
    )?;
    let base = format!(
        "data_dir = \"{}\"\n[server]\nport = 0\n[database]\nurl = \"{url}\"\npool_size = 16\n[log]\nlevel = \"warn\"\n[scheduler]\nenabled = false\n[mail]\nenabled = false\n[answers.rate_limit]\nper_minute = 0\n",
        dir.join("data").display()
    );
    let mut settings = peil::config::Settings::from_toml(&[&base, crate::NO_RATE_LIMITS])?;
    let keys = settings.server_keys()?;

    // The data set, built once.
    let marker = dir.join("ready.json");
    let built = if marker.exists() {
        None
    } else {
        let started = Instant::now();
        let (prepared, keys) = (settings.clone(), keys.clone());
        let made = tokio::task::spawn_blocking(move || {
            let (db, _) = peil::startup::prepare_storage(&prepared, false)?;
            let spec = peil::demo::DemoSpec {
                people,
                seed: 1,
                years: 3,
                today: chrono::Utc::now().date_naive(),
                waves,
                team_size,
            };
            peil::demo::generate(&db, &keys, &spec, |_| {})
        })
        .await??;
        let (_, email, password) = &made.accounts[0];
        std::fs::write(
            &marker,
            serde_json::to_string(&serde_json::json!({
                "email": email,
                "password": password.expose(),
                "pulse_id": made.pulse_id,
                "teams": made.teams,
                "responses": made.responses,
                "waves": made.past_waves,
            }))?,
        )?;
        Some(started.elapsed().as_secs_f64())
    };
    let set: Value = serde_json::from_str(&std::fs::read_to_string(&marker)?)?;
    let text = |key: &str| set[key].as_str().unwrap_or_default().to_owned();
    let pulse_id = text("pulse_id");

    let db = peil::db::Db::new(&settings.database);

    let app = Application::build(settings.clone()).await?;
    let serving = Serving::start(app);
    let address = serving.address.clone();
    let client = reqwest::Client::new();
    let token = token(&client, &address, &text("email"), &text("password")).await?;
    let team = {
        let teams: Value = client
            .get(format!("{address}/api/v1/teams"))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        // A department two levels down: a subtree of several teams.
        let teams = teams.as_array().cloned().unwrap_or_default();
        teams
            .iter()
            .find(|t| {
                t["path"]
                    .as_str()
                    .is_some_and(|p| p.matches('/').count() == 1)
            })
            .or(teams.first())
            .and_then(|t| t["id"].as_str())
            .unwrap_or_default()
            .to_owned()
    };

    let (mut healthz, mut heatmap, mut trend) = (Vec::new(), Vec::new(), Vec::new());
    let (mut feed, mut feed_floor, mut raw_heatmap) = (Vec::new(), Vec::new(), Vec::new());
    let mut first_heatmap = Vec::new();
    let mut feed_rows = 0;
    for _ in 0..plan.runs {
        first_heatmap.push(first_read(&settings, &client, &token).await?);
        healthz.push(latencies(&client, &format!("{address}/healthz"), None, requests).await?);
        heatmap.push(
            latencies(
                &client,
                &format!("{address}/api/v1/results/heatmap"),
                Some(&token),
                requests,
            )
            .await?,
        );
        trend.push(
            latencies(
                &client,
                &format!("{address}/api/v1/results/trends/teams/{team}"),
                Some(&token),
                requests,
            )
            .await?,
        );
        let started = Instant::now();
        let body = client
            .get(format!("{address}/api/v1/results/feed?limit=1000000"))
            .bearer_auth(&token)
            .header("accept", "text/csv")
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let seconds = started.elapsed().as_secs_f64();
        feed_rows = body.lines().count().saturating_sub(1);
        feed.push(feed_rows as f64 / seconds);
        let db2 = db.clone();
        let (rows, seconds) = tokio::task::spawn_blocking(move || raw_rows(&db2)).await??;
        feed_floor.push(rows as f64 / seconds);
        let db2 = db.clone();
        raw_heatmap.push(tokio::task::spawn_blocking(move || raw_heatmap_ms(&db2)).await??);
    }
    serving.stop().await?;
    // Last: its rolled-back writes leave dead rows behind (in PostgreSQL's
    // tables until vacuum) that the reads above should not scan.
    let publishing = {
        let (db, keys, pulse_id) = (db.clone(), keys.clone(), pulse_id.clone());
        let runs = plan.runs;
        tokio::task::spawn_blocking(move || publish_runs(&db, &keys, &pulse_id, runs)).await??
    };

    let pick = |runs: &[(f64, f64)], q: usize| {
        median(
            &mut runs
                .iter()
                .map(|r| if q == 50 { r.0 } else { r.1 })
                .collect::<Vec<_>>(),
        )
    };
    let (h50, h95) = (pick(&healthz, 50), pick(&healthz, 95));
    let (m50, m95) = (pick(&heatmap, 50), pick(&heatmap, 95));
    let (t50, t95) = (pick(&trend, 50), pick(&trend, 95));
    let (publish_runs_text, read_runs_text) =
        (each_run(&publishing.0, 3), each_run(&publishing.1, 3));
    let (publish, read) = (
        median(&mut publishing.0.clone()),
        median(&mut publishing.1.clone()),
    );
    let raw = median(&mut raw_heatmap.clone());
    let first = median(&mut first_heatmap.clone());
    let (feed_rate, floor_rate) = (median(&mut feed.clone()), median(&mut feed_floor.clone()));
    println!(
        "\nResults ({}; {people} people in {} teams, {} waves, {} responses{}; {} runs; medians)\n",
        backend_name(&url),
        set["teams"],
        set["waves"],
        set["responses"],
        built.map_or_else(
            || ", data set reused".to_owned(),
            |s| format!(", data set built in {s:.0} s")
        ),
        plan.runs,
    );
    println!("| what | p50 | p95 | ratio (p50) to baseline | target |");
    println!("| --- | ---: | ---: | ---: | --- |");
    println!("| GET /healthz (baseline), sequential | {h50:.2} ms | {h95:.2} ms | 1.0 | |");
    println!(
        "| GET /api/v1/results/heatmap (all teams × themes) | {m50:.2} ms | {m95:.2} ms | {:.1} | p95 < 20 ms |",
        m50 / h50
    );
    println!(
        "| the heatmap with nothing kept (a server's first read; so the first after a publication) | {first:.2} ms | | {:.1} | |",
        first / h50
    );
    println!(
        "| the same heatmap computed from stored responses (baseline) | {raw:.0} ms | | {:.1} | |",
        raw / h50
    );
    println!(
        "| GET /api/v1/results/trends/teams/{{id}} ({} waves) | {t50:.2} ms | {t95:.2} ms | {:.1} | p95 < 5 ms |",
        set["waves"],
        t50 / h50
    );
    println!("\n| what | value | baseline | ratio | target |");
    println!("| --- | ---: | ---: | ---: | --- |");
    println!(
        "| publishing one wave (s), beside reading its responses | {publish:.3} s | {read:.3} s | {:.1} | < 5 s |",
        publish / read
    );
    println!(
        "| CSV feed, {feed_rows} rows (rows/s), beside one query reading them | {feed_rate:.0} | {floor_rate:.0} | {:.2} | ≥ 100,000 rows/s |",
        feed_rate / floor_rate
    );
    println!(
        "\nEach run: publishing {publish_runs_text} s; reading its responses {read_runs_text} s"
    );
    if !full {
        anyhow::ensure!(feed_rows > 0, "the feed returned no row");
        println!("\n(smoke run; `cargo bench --bench api` measures)");
    }
    Ok(())
}

/// Where a section's data set lives, and the database URL for it: for a
/// full run a folder kept under the root `full` names (its environment
/// variable and default), one per backend and `name`, so the data set is
/// built once; for a smoke run the temporary folder. PostgreSQL's database
/// is `PEIL_BENCH_BACKEND_URL`'s.
pub fn data_set(
    full: Option<(&str, &str)>,
    name: &str,
    temporary: &std::path::Path,
) -> anyhow::Result<(PathBuf, String)> {
    let url = std::env::var("PEIL_BENCH_BACKEND_URL").ok();
    let dir = match full {
        Some((key, default)) => {
            let root: PathBuf = env_or(key, default.to_owned()).into();
            let backend = if url.is_some() { "postgres" } else { "sqlite" };
            root.join(format!("{backend}-{name}"))
        }
        None => temporary.to_owned(),
    };
    std::fs::create_dir_all(&dir)?;
    let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.join("peil.db").display()));
    Ok((dir, url))
}

/// A token for the demo's admin: its one-time password replaced at the
/// first run, the benchmark's own afterwards.
pub async fn token(
    client: &reqwest::Client,
    address: &str,
    email: &str,
    one_time: &str,
) -> anyhow::Result<String> {
    let login = client
        .post(format!("{address}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": NEW_PASSWORD}))
        .send()
        .await?;
    if login.status().is_success() {
        let body: Value = login.json().await?;
        return Ok(body["token"].as_str().unwrap_or_default().to_owned());
    }
    super::sign_in(client, address, email, one_time).await
}

/// Milliseconds of one heatmap request to a server of its own, started
/// for it on the same database: a read with nothing kept, as the first
/// one after a publication is.
async fn first_read(
    settings: &peil::config::Settings,
    client: &reqwest::Client,
    token: &str,
) -> anyhow::Result<f64> {
    let app = Application::build(settings.clone()).await?;
    let serving = Serving::start(app);
    let url = format!("{}/api/v1/results/heatmap", serving.address);
    // `/readyz` first (it takes a pooled database connection), so the timed
    // request pays for no HTTP or database connection of its own.
    client
        .get(url.replace("/api/v1/results/heatmap", "/readyz"))
        .send()
        .await?
        .error_for_status()?;
    let started = Instant::now();
    client
        .get(&url)
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    serving.stop().await?;
    Ok(ms)
}

/// p50 and p95 in milliseconds of `n` sequential GETs.
pub async fn latencies(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    n: usize,
) -> anyhow::Result<(f64, f64)> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let mut request = client.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let started = Instant::now();
        let response = request.send().await?;
        let status = response.status();
        response.bytes().await?;
        anyhow::ensure!(status.is_success(), "{url}: {status}");
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    Ok((at(0.50), at(0.95)))
}

/// Publishing a 53rd wave, `runs` times, in a transaction rolled back at
/// the end: seconds per publication, and seconds to read its responses.
fn publish_runs(
    db: &peil::db::Db,
    keys: &peil::crypto::ServerKeys,
    pulse_id: &str,
    runs: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let mut conn = db.get()?;
    let mut outcome = None;
    let rolled_back = conn.transaction::<(), anyhow::Error, _>(|conn| {
        let wave = open_wave_in(conn, pulse_id)?;
        answer_sixty_percent(conn, keys, &wave.id)?;
        let (mut publishing, mut reading) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let started = Instant::now();
            let rows: Vec<(String, String)> = responses::table
                .filter(responses::wave_id.eq(&wave.id))
                .select((responses::team_id, responses::answers))
                .load(conn)?;
            anyhow::ensure!(!rows.is_empty(), "nobody answered");
            reading.push(started.elapsed().as_secs_f64());
            let _ = conn.transaction::<(), anyhow::Error, _>(|conn| {
                let started = Instant::now();
                peil::results::store::publish_wave(conn, &wave.id, chrono::Utc::now())
                    .map_err(|e| anyhow::anyhow!("publishing: {e}"))?;
                publishing.push(started.elapsed().as_secs_f64());
                anyhow::bail!("roll the publication back")
            });
        }
        outcome = Some((publishing, reading));
        anyhow::bail!("roll the wave back")
    });
    anyhow::ensure!(rolled_back.is_err(), "the benchmark's wave was kept");
    outcome.ok_or_else(|| anyhow::anyhow!("no publication measured"))
}

/// Opens a wave in the caller's transaction.
fn open_wave_in(
    conn: &mut peil::db::DbConnection,
    pulse_id: &str,
) -> anyhow::Result<Box<peil::surveys::waves::store::WaveRow>> {
    use peil::surveys::waves::{self, Opening, Trigger};
    match waves::open(conn, pulse_id, Trigger::Manual, chrono::Utc::now())
        .map_err(|e| anyhow::anyhow!("opening a wave: {e}"))?
    {
        Opening::Opened(wave) => Ok(wave),
        other => anyhow::bail!("the wave did not open: {other:?}"),
    }
}

/// 60% of the wave's invitations answer every closed question at random.
fn answer_sixty_percent(
    conn: &mut peil::db::DbConnection,
    keys: &peil::crypto::ServerKeys,
    wave_id: &str,
) -> anyhow::Result<()> {
    let wave = peil::surveys::waves::store::find(conn, wave_id)?;
    let template = peil::surveys::templates::decode(wave.template.as_deref().unwrap_or("{}"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let invited: Vec<(String, String)> = invitations::table
        .filter(invitations::wave_id.eq(wave_id))
        .select((invitations::id, invitations::team_id))
        .load(conn)?;
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(53);
    for (id, team) in invited {
        if !rng.random_bool(0.6) {
            continue;
        }
        let mut answers = serde_json::Map::new();
        for question in template.closed_questions() {
            let range = question.scale.answer_range().unwrap_or(1..=5);
            answers.insert(
                question.id.clone(),
                rng.random_range(*range.start()..=*range.end()).into(),
            );
        }
        let nullifier = keys.nullifier(&id).unwrap_or_default();
        peil::answers::store::insert(
            conn,
            wave_id,
            &team,
            &serde_json::to_string(&answers)?,
            &nullifier,
        )?;
    }
    Ok(())
}

/// Rows and seconds reading up to 1,000,000 result rows in one query.
fn raw_rows(db: &peil::db::Db) -> anyhow::Result<(usize, f64)> {
    let mut conn = db.get()?;
    let started = Instant::now();
    type Row = (
        i32,
        String,
        String,
        String,
        String,
        Option<i32>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = results::table
        .order((
            results::publication,
            results::group_kind,
            results::team_id,
            results::measure_kind,
            results::measure,
        ))
        .limit(1_000_000)
        .load(&mut conn)?;
    Ok((rows.len(), started.elapsed().as_secs_f64()))
}

/// Milliseconds to compute the teams × themes heatmap from the stored
/// responses of the latest wave that asked each theme: theme scores per
/// stored tag (what the responses can still be grouped by).
fn raw_heatmap_ms(db: &peil::db::Db) -> anyhow::Result<f64> {
    use peil::db::schema::waves;
    use peil::surveys::template::Theme;
    let mut conn = db.get()?;
    let started = Instant::now();
    let closed: Vec<(String, Option<String>)> = waves::table
        .filter(waves::status.eq("closed"))
        .order(waves::closed_at.desc())
        .select((waves::id, waves::template))
        .load(&mut conn)?;
    let mut cells = 0;
    for theme in Theme::ALL {
        let Some((wave, template)) = closed.iter().find_map(|(id, t)| {
            let template = peil::surveys::templates::decode(t.as_deref()?).ok()?;
            template.themes().contains(&theme).then_some((id, template))
        }) else {
            continue;
        };
        let rows: Vec<(String, String)> = responses::table
            .filter(responses::wave_id.eq(wave))
            .select((responses::team_id, responses::answers))
            .load(&mut conn)?;
        let mut by_team: std::collections::HashMap<String, Vec<peil::results::score::Response>> =
            std::collections::HashMap::new();
        for (team, answers) in rows {
            by_team
                .entry(team)
                .or_default()
                .push(serde_json::from_str(&answers)?);
        }
        for responses in by_team.values() {
            if peil::results::score::theme_score(&template, theme, responses).is_some() {
                cells += 1;
            }
        }
    }
    anyhow::ensure!(cells > 0, "no heatmap cell from raw responses");
    Ok(started.elapsed().as_secs_f64() * 1e3)
}
