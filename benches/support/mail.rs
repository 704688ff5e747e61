//! The email section of `cargo bench --bench api`: a wave of
//! `PEIL_BENCH_MAIL_EMAILS` (default 10,000) invitations sent by the outbox
//! worker — claim from the database, render, SMTP, record — into the Rust
//! SMTP server of `tests/api/smtp.rs` on loopback, beside the rate a
//! minimal client reaches against the same server: the same messages'
//! bytes, already rendered, over the same number of lettre connections on
//! TCP_NODELAY sockets, with no database and no rendering. Each run is
//! interleaved (worker, then client); medians of `PEIL_BENCH_MAIL_RUNS`
//! (default 3). `PEIL_BENCH_MAIL_CONNECTIONS` (default 4) for both;
//! `PEIL_BENCH_MAIL_BATCH` (default 500, as `mail.batch_size`). Beside each
//! rate, the CPU time this process spent per email: on two cores both sides
//! are CPU-bound, so the difference is what Peil's own work costs.

use std::sync::Arc;
use std::time::Instant;

use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use peil::config::Settings;
use peil::surveys::waves::{self, Closing};

use super::smtp::{Received, SmtpServer};
use super::{backend_name, each_run, env_or, median, open_wave};

pub async fn mail(full: bool) -> anyhow::Result<()> {
    let emails: usize = if full {
        env_or("PEIL_BENCH_MAIL_EMAILS", 10_000)
    } else {
        40
    };
    let runs: usize = if full {
        env_or("PEIL_BENCH_MAIL_RUNS", 3)
    } else {
        1
    };
    let connections: usize = env_or("PEIL_BENCH_MAIL_CONNECTIONS", 4);
    let batch: usize = env_or("PEIL_BENCH_MAIL_BATCH", 500);
    let server = SmtpServer::start().await;
    let dir = tempfile::tempdir()?;
    let url = std::env::var("PEIL_BENCH_BACKEND_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("peil.db").display()));
    let toml = format!(
        "data_dir = \"{}\"\n[database]\nurl = \"{url}\"\npool_size = 8\n[log]\nlevel = \"warn\"\n[mail]\nfrom = \"Peil <peil@example.org>\"\nbatch_size = {batch}\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nconnections = {connections}\n",
        dir.path().join("data").display(),
        server.port
    );
    let mut settings = Settings::from_toml(&[&toml])?;
    let keys = settings.server_keys()?;
    let prepared = settings.clone();
    let (db, pulse_id) = tokio::task::spawn_blocking(move || prepare(&prepared, emails)).await??;
    let worker = peil::delivery::worker::Worker::new(
        db.clone(),
        Arc::new(peil::delivery::mailer::Mailer::new(&settings.mail)),
        keys.clone(),
        settings.mail.clone(),
        settings.server.public_url.clone(),
    );

    let clock: peil::clock::SharedClock = Arc::new(peil::clock::SystemClock);
    let mut peil_rates = Vec::new();
    let mut client_rates = Vec::new();
    let (mut peil_cpu, mut client_cpu) = (Vec::new(), Vec::new());
    let mut sizes = 0;
    for _ in 0..runs {
        // Peil: open the wave, then rounds until its outbox is empty.
        let before = server.count();
        let opened = {
            let (db, pulse_id) = (db.clone(), pulse_id.clone());
            tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
                let mut conn = db.get()?;
                Ok(open_wave(&mut conn, &pulse_id)?.id)
            })
            .await??
        };
        let cpu0 = cpu_seconds();
        let started = Instant::now();
        // The worker as the service runs it (pipelined), until nothing is due.
        let (_keep, mut stop) = tokio::sync::watch::channel(false);
        worker.run(&clock, &mut stop, true).await;
        let seconds = started.elapsed().as_secs_f64();
        peil_cpu.push((cpu_seconds() - cpu0) * 1e6 / emails as f64);
        let received: Vec<Received> = server.received()[before..].to_vec();
        anyhow::ensure!(
            received.len() == emails,
            "{} of {emails} emails arrived",
            received.len()
        );
        peil_rates.push(emails as f64 / seconds);
        sizes = received.iter().map(|m| m.data.len()).sum::<usize>() / emails;

        // The floor: the same bytes through bare connections.
        let cpu0 = cpu_seconds();
        let started = Instant::now();
        minimal_client(server.port, connections, &received).await?;
        client_cpu.push((cpu_seconds() - cpu0) * 1e6 / emails as f64);
        client_rates.push(emails as f64 / started.elapsed().as_secs_f64());

        let (db, keys) = (db.clone(), keys.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let mut conn = db.get()?;
            waves::close_and_checkpoint(
                &mut conn,
                &keys,
                &opened,
                Closing::Now,
                chrono::Utc::now(),
            )
            .map_err(|e| anyhow::anyhow!("closing the wave: {e}"))?;
            Ok(())
        })
        .await??;
    }
    let (peil_runs, client_runs) = (each_run(&peil_rates, 0), each_run(&client_rates, 0));
    let (peil, client) = (median(&mut peil_rates), median(&mut client_rates));
    println!(
        "\nEmail delivery ({}; {emails} emails of ~{sizes} bytes, {connections} connections, {runs} runs; medians)\n",
        backend_name(&url),
    );
    let (peil_cpu, client_cpu) = (median(&mut peil_cpu), median(&mut client_cpu));
    println!(
        "| what | emails/s | runs | ratio to the minimal client | CPU of this process per email |"
    );
    println!("| --- | ---: | --- | ---: | ---: |");
    println!(
        "| minimal client, same bytes (floor) | {client:.0} | {client_runs} | 1.00 | {client_cpu:.0} µs |"
    );
    println!(
        "| outbox worker: claim, render, send, record | {peil:.0} | {peil_runs} | {:.2} | {peil_cpu:.0} µs |",
        peil / client
    );
    if !full {
        println!("\n(smoke run; `cargo bench --bench api` measures)");
    }
    Ok(())
}

/// An organisation with one team of `people` people and a pulse asking them.
fn prepare(settings: &Settings, people: usize) -> anyhow::Result<(peil::db::Db, String)> {
    let (db, _) = peil::startup::prepare_storage(settings, false)?;
    let organisation = peil::admin::create_organisation(
        &db,
        &peil::org::NewOrganisation::named(peil::domain::OrganisationName::parse("Mail bench")?),
    )?;
    let mut conn = db.get()?;
    let pulse = peil::db::write(&mut conn, |conn| -> anyhow::Result<String> {
        let team = peil::org::teams::store::insert(
            conn,
            &peil::org::teams::store::NewTeam {
                organisation_id: &organisation,
                parent_id: None,
                name: "Everyone",
                external_id: None,
            },
        )?;
        for i in 0..people {
            let email = format!("person{i}@example.org");
            let name = format!("Person {i}");
            peil::org::people::store::insert(
                conn,
                &organisation,
                &peil::org::people::store::PersonValues {
                    email: &email,
                    name: &name,
                    team_id: &team.id,
                    language: if i.is_multiple_of(2) { "nl" } else { "en" },
                    job_title: None,
                    level: None,
                    external_id: None,
                    status: "active",
                    exit_kind: None,
                },
            )?;
        }
        let id = peil::surveys::pulses::store::insert(
            conn,
            &organisation,
            &peil::surveys::pulses::store::PulseValues {
                name: "Mail bench",
                templates: "[\"development\"]".into(),
                audience: serde_json::to_string(&[&team.id])?,
                excluded_teams: "[]".into(),
                cron: "0 9 * * 1",
                time_zone: "Europe/Amsterdam",
                open_hours: 120,
                reminder_hours: "[]".into(),
                start_date: None,
                end_date: None,
                status: "paused",
                min_group_size: 5,
                schedule_from: peil::db::now(),
            },
        )?;
        Ok(id)
    })?;
    Ok((db, pulse))
}

/// Sends every message over `connections` lettre connections, as bare as
/// a client gets: no database, no rendering, no pool logic.
async fn minimal_client(
    port: u16,
    connections: usize,
    messages: &[Received],
) -> anyhow::Result<()> {
    let lanes = connections.clamp(1, messages.len().max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..lanes {
        let mine: Vec<Received> = messages.iter().skip(lane).step_by(lanes).cloned().collect();
        tasks.spawn(async move {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            stream.set_nodelay(true)?;
            let mut conn =
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &ClientId::default())
                    .await?;
            for message in mine {
                let envelope = lettre::address::Envelope::new(
                    Some(message.from.parse()?),
                    message
                        .to
                        .iter()
                        .map(|t| t.parse())
                        .collect::<Result<_, _>>()?,
                )?;
                conn.send(&envelope, &message.data).await?;
            }
            let _ = conn.quit().await;
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// CPU time this process has used (user + system), in seconds: the SMTP
/// server, the client and the worker all run in it (PostgreSQL does not).
/// From `/proc/self/stat`, in clock ticks of 1/100 s (Linux's USER_HZ); 0
/// where there is no `/proc`.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses: utime and
    // stime are the 12th and 13th of them.
    let after = stat.rsplit(')').next().unwrap_or_default();
    let ticks: f64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}
