//! Builds the application from its settings (storage migrated and
//! bootstrapped, HTTP server bound) and runs it with its background jobs
//! until told to stop, then drains both.

use std::future::Future;
use std::net::TcpListener;

use actix_web::middleware::{Condition, ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::{self, InitialAdmin};
use crate::clock::{SharedClock, SystemClock};
use crate::config::SchedulerSettings;
use crate::config::{DatabaseUrl, Settings};
use crate::crypto::ServerKeys;
use crate::db::{self, Db, MigrationLock};
use crate::delivery::mailer::Mailer;
use crate::delivery::worker::Worker;
use crate::error::ApiError;
use crate::http::{self, BodyLimit, middleware};
use crate::jobs::Background;
use crate::{org, surveys};

/// Connects, takes the migration lock, migrates, and (for `serve`) creates
/// the first organisation and admin on an empty database. Blocking.
pub fn prepare_storage(
    settings: &Settings,
    bootstrap: bool,
) -> anyhow::Result<(Db, Option<InitialAdmin>)> {
    let url = &settings.database.url;
    let mut conn =
        db::establish(&settings.database).with_context(|| format!("connecting to {url}"))?;
    let lock = MigrationLock::acquire(&mut conn, url)?;
    let outcome = db::enable_wal(&mut conn)
        .context("enabling WAL")
        .and_then(|()| db::run_migrations(&mut conn))
        .and_then(|applied| {
            let admin = if bootstrap {
                auth::bootstrap_if_empty(&mut conn, &settings.bootstrap)?
            } else {
                None
            };
            Ok((applied, admin))
        });
    lock.release(&mut conn)?;
    let (applied, admin) = outcome?;
    for version in &applied {
        tracing::info!(version, "migration applied");
    }
    Ok((Db::new(&settings.database), admin))
}

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    db: Db,
    clock: SharedClock,
    scheduler: SchedulerSettings,
    mail: Option<Worker>,
    webhooks: Option<crate::webhooks::sender::Sender>,
    keys: ServerKeys,
    retention: crate::jobs::Retention,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// `/metrics` on an address of its own (`metrics.listen`), when set.
    metrics_server: Option<(u16, actix_web::dev::Server)>,
    initial_admin: Option<InitialAdmin>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, std::sync::Arc::new(SystemClock)).await
    }

    /// With the clock the schedule and the wave endpoints read (tests pass
    /// a [`crate::clock::ManualClock`]).
    pub async fn build_with_clock(
        mut settings: Settings,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        // A broken shipped template is a broken build: refuse to start, naming it.
        surveys::template::builtin().map_err(|e| anyhow::anyhow!("{e}"))?;
        if settings.ensure_secret()? {
            tracing::info!(
                path = %settings.data_dir.join("secret").display(),
                "generated a server secret"
            );
            if matches!(settings.database.url, DatabaseUrl::Postgres(_)) {
                tracing::warn!(
                    "the server secret was generated locally: replicas sharing this database must all be given the same `secret` (PEIL__SECRET)"
                );
            }
        }
        let storage_settings = settings.clone();
        let (db, initial_admin) =
            tokio::task::spawn_blocking(move || prepare_storage(&storage_settings, true))
                .await
                .context("preparing storage")??;

        let address = (settings.server.host.as_str(), settings.server.port);
        let listener = TcpListener::bind(address).with_context(|| {
            format!(
                "binding {}:{} (server.host, server.port)",
                settings.server.host, settings.server.port
            )
        })?;
        let local = listener.local_addr()?;
        // With port 0 (any free port) the default public URL is only known now.
        if settings.server.port == 0 && settings.server.public_url.port() == Some(0) {
            let _ = settings.server.public_url.set_port(Some(local.port()));
        }
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let shutdown_timeout = settings.server.shutdown_timeout_secs;
        let body_limit = settings.server.max_body_bytes;
        let keys = settings.server_keys()?;
        let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
        let mail = settings.mail.enabled.then(|| {
            let mailer = Mailer::new(&settings.mail);
            tracing::info!(mail = %mailer.describe(), "outbox worker on");
            Worker::new(
                db.clone(),
                std::sync::Arc::new(mailer),
                keys.clone(),
                settings.mail.clone(),
                settings.server.public_url.clone(),
            )
            .with_metrics(metrics.clone())
        });
        let webhooks = if settings.webhooks.enabled {
            Some(
                crate::webhooks::sender::Sender::new(
                    db.clone(),
                    keys.clone(),
                    settings.webhooks.clone(),
                )?
                .with_metrics(metrics.clone()),
            )
        } else {
            None
        };
        let keys_data = web::Data::new(keys.clone());
        let clock_data = web::Data::new(clock.clone());
        let scheduler = settings.scheduler.clone();
        let db_data = web::Data::new(db.clone());
        let timelines = web::Data::new(crate::mobility::Timelines::default());
        let latest_cells = web::Data::new(crate::results::http::LatestCells::default());
        let committer = web::Data::new(crate::answers::commit::Committer::start(db.clone()));
        let link_limit = web::Data::new(crate::answers::admission::LinkLimit(
            http::rate_limit::RateLimit::new(&settings.answers.rate_limit),
        ));
        let api_limits = web::Data::new(http::rate_limit::ApiLimits::new(&settings.rate_limits));
        let cors_origins = settings.server.cors_origins.clone();
        let retention = crate::jobs::Retention::of(&settings);
        let metrics_data = web::Data::from(metrics.clone());
        let metrics_server = match &settings.metrics.listen {
            Some(address) => Some(metrics_server(
                address,
                db_data.clone(),
                metrics_data.clone(),
                settings.metrics.clone(),
            )?),
            None => None,
        };
        let metrics_here = metrics_server.is_none();
        let settings_data = web::Data::new(settings);

        let server = HttpServer::new(move || {
            let (app, openapi) = App::new()
                .into_utoipa_app()
                .openapi(http::openapi::ApiDoc::openapi())
                .app_data(db_data.clone())
                .app_data(settings_data.clone())
                .app_data(keys_data.clone())
                .app_data(clock_data.clone())
                .app_data(committer.clone())
                .app_data(timelines.clone())
                .app_data(latest_cells.clone())
                .app_data(link_limit.clone())
                .app_data(api_limits.clone())
                .app_data(metrics_data.clone())
                .app_data(web::PayloadConfig::new(body_limit))
                .app_data(BodyLimit(body_limit))
                .app_data(web::QueryConfig::default().error_handler(|error, _| {
                    ApiError::Malformed(format!("the query string is invalid: {error}")).into()
                }))
                .app_data(web::PathConfig::default().error_handler(|error, _| {
                    ApiError::Malformed(format!("the path is invalid: {error}")).into()
                }))
                .service(http::health::healthz)
                .service(http::health::readyz)
                .service(
                    utoipa_actix_web::scope("/api/v1")
                        .configure(auth::http::routes)
                        .configure(auth::accounts::routes)
                        .configure(auth::api_keys::routes)
                        .configure(org::http::routes)
                        .configure(org::teams::http::routes)
                        .configure(org::people::http::routes)
                        .configure(surveys::templates::http::routes)
                        .configure(surveys::pulses::http::routes)
                        .configure(surveys::waves::http::routes)
                        .configure(crate::delivery::http::routes)
                        .configure(crate::answers::http::routes)
                        .configure(crate::results::http::routes)
                        .configure(crate::mobility::http::routes)
                        .configure(crate::privacy::routes)
                        .configure(crate::webhooks::http::routes)
                        .configure(crate::audit::http::routes),
                )
                .split_for_parts();
            let openapi = http::openapi::complete(openapi);
            let methods = web::Data::new(http::openapi::Methods::of(&openapi));
            app.app_data(methods)
                .service(SwaggerUi::new("/api/docs/{_:.*}").url("/api/openapi.json", openapi))
                // HTML for people, not part of the API document.
                .configure(crate::answers::page::routes)
                // For operators' scrapers, not part of the API document either.
                .configure(|cfg| {
                    if metrics_here {
                        cfg.route("/metrics", web::get().to(crate::metrics::main_endpoint));
                    }
                })
                .default_service(web::to(middleware::no_route))
                .wrap(ErrorHandlers::new().default_handler(middleware::problemise))
                // Inside CORS: preflights are not counted, and a 429 carries
                // the CORS headers a browser needs to read it.
                .wrap(from_fn(middleware::limit_rate))
                .wrap(Condition::new(
                    !cors_origins.is_empty(),
                    middleware::cors(&cors_origins),
                ))
                .wrap(from_fn(middleware::access_log))
        })
        .workers(workers)
        .shutdown_timeout(shutdown_timeout)
        // Signals are Peil's to handle: the server and the background jobs stop together.
        .disable_signals()
        .listen(listener)?
        .run();
        tracing::info!(address = %local, "listening");
        Ok(Self {
            port: local.port(),
            server,
            db,
            clock,
            scheduler,
            mail,
            webhooks,
            keys,
            retention,
            metrics,
            metrics_server,
            initial_admin,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` has to itself (`metrics.listen`), if any.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(port, _)| *port)
    }

    /// The first admin's credentials if this start created them; given out once.
    pub fn take_initial_admin(&mut self) -> Option<InitialAdmin> {
        self.initial_admin.take()
    }

    /// Serves until `shutdown` completes, then stops accepting connections,
    /// lets in-flight requests finish (up to `server.shutdown_timeout_secs`),
    /// and waits for background jobs to finish their current step.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let background = Background::start(
            self.db.clone(),
            self.clock.clone(),
            &self.scheduler,
            crate::jobs::Jobs {
                mail: self.mail,
                webhooks: self.webhooks,
                keys: self.keys.clone(),
                retention: self.retention,
                metrics: self.metrics.clone(),
            },
        )
        .await?;
        let metrics_server = self.metrics_server.map(|(_, server)| {
            let handle = server.handle();
            tokio::spawn(server);
            handle
        });
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        tokio::select! {
            () = shutdown => {
                tracing::info!("shutting down: draining requests and background work");
                handle.stop(true).await;
            }
            result = &mut server => {
                background.stop().await;
                result.context("HTTP server task")?.context("HTTP server")?;
                anyhow::bail!("the HTTP server stopped by itself");
            }
        }
        let served = server.await;
        if let Some(metrics) = metrics_server {
            metrics.stop(true).await;
        }
        background.stop().await;
        served.context("HTTP server task")?.context("HTTP server")?;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// `/metrics` alone on its own address, one worker: scrapes are rare.
fn metrics_server(
    address: &str,
    db: web::Data<Db>,
    metrics: web::Data<crate::metrics::Metrics>,
    settings: crate::config::MetricsSettings,
) -> anyhow::Result<(u16, actix_web::dev::Server)> {
    let listener = TcpListener::bind(address)
        .with_context(|| format!("binding {address} (metrics.listen)"))?;
    let port = listener.local_addr()?.port();
    let settings = web::Data::new(settings);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(db.clone())
            .app_data(metrics.clone())
            .app_data(settings.clone())
            .route("/metrics", web::get().to(crate::metrics::own_endpoint))
            .default_service(web::to(middleware::no_route))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    tracing::info!(address = %listener_address(address, port), "metrics listening");
    Ok((port, server))
}

fn listener_address(address: &str, port: u16) -> String {
    match address.rsplit_once(':') {
        Some((host, _)) => format!("{host}:{port}"),
        None => address.to_owned(),
    }
}

/// Completes on SIGTERM or Ctrl-C. The handlers are installed when this is
/// called, not when the future is first polled, so a SIGTERM that comes
/// while the service is still starting is not lost (nor fatal). Call it
/// inside the runtime, first thing.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let term = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate())
            .inspect_err(|error| tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C only"))
            .ok()
    };
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = term.recv() => {}
                _ = ctrl_c => {}
            }
            return;
        }
        let _ = ctrl_c.await;
    }
}
