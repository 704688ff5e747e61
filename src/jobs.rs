//! Background work that runs beside the HTTP server. Each job loops until
//! shutdown is signalled and checks for it only between steps, so a step in
//! progress (a database write) always completes: SIGTERM drains, never cuts.
//!
//! The survey schedule is woken by tokio-cron-scheduler (`scheduler.wake`,
//! every minute by default) and once at start, to catch up after downtime.
//! It only wakes the service: what is due is read from the database.
//!
//! The outbox worker (when `mail.enabled`) sends what waves queue; see
//! `delivery::worker`. The webhook worker (when `webhooks.enabled`) posts
//! queued events; see `webhooks::sender`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::clock::SharedClock;
use crate::config::SchedulerSettings;
use crate::crypto::ServerKeys;
use crate::db::{Db, DbError};
use crate::delivery::worker::Worker;
use crate::error::ApiError;
use crate::webhooks::sender::Sender;

pub struct Background {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    cron: Option<JobScheduler>,
    /// Held while a schedule pass runs: passes never overlap within one
    /// instance, and stopping waits for the one in progress.
    pass: Arc<Mutex<()>>,
}

/// The jobs an instance runs, as its settings chose them.
pub struct Jobs {
    /// The outbox worker, when `mail.enabled`.
    pub mail: Option<Worker>,
    /// The webhook worker, when `webhooks.enabled`.
    pub webhooks: Option<Sender>,
    pub keys: ServerKeys,
    pub retention: Retention,
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Background {
    pub async fn start(
        db: Db,
        clock: SharedClock,
        settings: &SchedulerSettings,
        jobs: Jobs,
    ) -> anyhow::Result<Self> {
        let Jobs {
            mail,
            webhooks,
            keys,
            retention,
            metrics,
        } = jobs;
        let (stop, _) = watch::channel(false);
        let mut background = Self {
            stop,
            tasks: JoinSet::new(),
            cron: None,
            pass: Arc::new(Mutex::new(())),
        };
        let sweep_db = db.clone();
        background.every("expiry sweep", Duration::from_secs(600), move || {
            let db = sweep_db.clone();
            async move { sweep_expired(&db).await }
        });
        let (retention_db, retention_clock) = (db.clone(), clock.clone());
        background.every("retention", Duration::from_secs(600), move || {
            let (db, clock, retention) = (
                retention_db.clone(),
                retention_clock.clone(),
                retention.clone(),
            );
            async move { retention.pass(&db, &clock).await.map(drop) }
        });
        if let Some(worker) = mail {
            background.send_mail(worker, clock.clone());
        }
        if let Some(sender) = webhooks {
            background.deliver_webhooks(sender, clock.clone());
        }
        if settings.enabled {
            let cron = JobScheduler::new().await?;
            let (job_db, job_clock, job_pass, job_keys, job_metrics) = (
                db.clone(),
                clock.clone(),
                background.pass.clone(),
                keys.clone(),
                metrics.clone(),
            );
            cron.add(Job::new_async(settings.wake.as_str(), move |_, _| {
                let (db, clock, pass, keys, metrics) = (
                    job_db.clone(),
                    job_clock.clone(),
                    job_pass.clone(),
                    job_keys.clone(),
                    job_metrics.clone(),
                );
                Box::pin(async move { schedule_pass(&db, &clock, &pass, keys, &metrics).await })
            })?)
            .await?;
            cron.start().await?;
            background.cron = Some(cron);
            // Catch up at start rather than at the first wake-up.
            let pass = background.pass.clone();
            background
                .tasks
                .spawn(async move { schedule_pass(&db, &clock, &pass, keys, &metrics).await });
        }
        Ok(background)
    }

    fn every<F, Fut>(&mut self, name: &'static str, period: Duration, mut step: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), DbError>> + Send,
    {
        let mut stop = self.stop.subscribe();
        self.tasks.spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = ticks.tick() => {
                        if let Err(error) = step().await {
                            tracing::warn!(job = name, %error, "background step failed; retrying next period");
                        }
                    }
                }
            }
            tracing::debug!(job = name, "stopped");
        });
    }

    /// The outbox worker (see [`Worker::run`]). A round in progress
    /// finishes (its sends are recorded) before the worker stops.
    fn send_mail(&mut self, worker: Worker, clock: SharedClock) {
        let mut stop = self.stop.subscribe();
        self.tasks.spawn(async move {
            worker.run(&clock, &mut stop, false).await;
            tracing::debug!(job = "outbox", "stopped");
        });
    }

    /// The webhook worker (see [`Sender::run`]); a round in progress is
    /// recorded before it stops.
    fn deliver_webhooks(&mut self, sender: Sender, clock: SharedClock) {
        let mut stop = self.stop.subscribe();
        self.tasks.spawn(async move {
            sender.run(&clock, &mut stop).await;
            tracing::debug!(job = "webhooks", "stopped");
        });
    }

    /// Signals every job to stop and waits until each has finished its step.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(mut cron) = self.cron.take()
            && let Err(error) = cron.shutdown().await
        {
            tracing::warn!(%error, "stopping the schedule's wake-up");
        }
        // Wait for a schedule pass in progress to finish its step.
        let _pass = self.pass.lock().await;
        while let Some(result) = self.tasks.join_next().await {
            if let Err(error) = result {
                tracing::error!(%error, "background job ended abnormally");
            }
        }
    }
}

/// What the retention job keeps to (`retention` in the settings).
#[derive(Debug, Clone)]
pub struct Retention {
    pub invitation_days: u32,
    pub audit_days: u32,
    /// The `.eml` folder, when mail goes to one.
    pub mail_dir: Option<std::path::PathBuf>,
}

impl Retention {
    pub fn of(settings: &crate::config::Settings) -> Self {
        Self {
            invitation_days: settings.retention.invitation_days,
            audit_days: settings.retention.audit_days,
            mail_dir: match &settings.mail.transport {
                crate::config::MailTransport::Folder(dir) => Some(dir.clone()),
                crate::config::MailTransport::Smtp(_) => None,
            },
        }
    }

    /// One pass at the clock's now (see [`crate::privacy::retention`]).
    pub async fn pass(
        &self,
        db: &Db,
        clock: &SharedClock,
    ) -> Result<crate::privacy::retention::Pruned, DbError> {
        let pruned = crate::privacy::retention::run(
            db,
            clock.now(),
            self.invitation_days,
            self.audit_days,
            self.mail_dir.clone(),
        )
        .await?;
        if pruned != Default::default() {
            tracing::info!(
                waves = pruned.waves,
                invitations = pruned.invitations,
                files = pruned.files,
                audit_entries = pruned.audit_entries,
                "retention: deleted what had served its time"
            );
        }
        Ok(pruned)
    }
}

/// Expired sessions and idempotency keys past their replay window.
async fn sweep_expired(db: &Db) -> Result<(), DbError> {
    let (sessions, keys) = db
        .run(|conn| {
            let sessions = crate::auth::store::delete_expired_sessions(conn, crate::db::now())?;
            let keys = crate::http::idempotency::sweep(conn)?;
            Ok::<_, DbError>((sessions, keys))
        })
        .await?;
    if sessions + keys > 0 {
        tracing::info!(sessions, idempotency_keys = keys, "expired entries removed");
    }
    Ok(())
}

/// One pass of the survey schedule, unless one is still running here.
async fn schedule_pass(
    db: &Db,
    clock: &SharedClock,
    pass: &Mutex<()>,
    keys: ServerKeys,
    metrics: &crate::metrics::Metrics,
) {
    let Ok(_running) = pass.try_lock() else {
        tracing::debug!("previous schedule pass still running; skipping this wake-up");
        return;
    };
    let now = clock.now();
    let outcome = db
        .run(move |conn| crate::surveys::scheduler::run_due(conn, &keys, now))
        .await;
    match outcome {
        Ok(pass) if !pass.is_empty() => {
            metrics.waves(pass.opened as u64, pass.closed as u64);
            tracing::info!(
                opened = pass.opened,
                skipped = pass.skipped,
                closed = pass.closed,
                reminders_queued = pass.reminders_queued,
                "schedule pass"
            )
        }
        Ok(_) => {}
        Err(ApiError::Unavailable) => {
            tracing::warn!("schedule pass: database unavailable; retrying at the next wake-up")
        }
        Err(error) => tracing::warn!(%error, "schedule pass failed; retrying at the next wake-up"),
    }
}
