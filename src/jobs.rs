//! Background work that runs beside the HTTP server. Each job loops until
//! shutdown is signalled and checks for it only between steps, so a step in
//! progress (a database write) always completes: SIGTERM drains, never cuts.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::db::{Db, DbError};

pub struct Background {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Background {
    pub fn start(db: Db) -> Self {
        let (stop, _) = watch::channel(false);
        let mut background = Self {
            stop,
            tasks: JoinSet::new(),
        };
        background.every("expiry sweep", Duration::from_secs(600), move || {
            let db = db.clone();
            async move { sweep_expired(&db).await }
        });
        background
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

    /// Signals every job to stop and waits until each has finished its step.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while let Some(result) = self.tasks.join_next().await {
            if let Err(error) = result {
                tracing::error!(%error, "background job ended abnormally");
            }
        }
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
