//! Where rendered messages go: an SMTP server, or a folder of `.eml` files
//! (the embedded default, when no SMTP host is configured).
//!
//! SMTP goes through lettre's protocol code over connections Peil opens and
//! pools itself: lettre never sets TCP_NODELAY and writes the message
//! terminator as a packet of its own, so each message waited ~40 ms for a
//! delayed ACK (STACK.md). With our own sockets (`set_nodelay`) and a pool
//! of `mail.smtp.connections` parallel connections, the server is the limit.
//! Implicit TLS (`tls = "tls"`) is the exception: lettre opens that socket
//! itself, as it must wrap it in TLS before the greeting.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use super::message::Rendered;
use crate::config::{MailSettings, MailTransport, SmtpSettings, SmtpTls};

/// How a send failed, which decides what happens next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Connection refused, timeouts, 4xx: retried with back-off.
    Temporary(String),
    /// 5xx, an invalid address: not retried; shown as undeliverable.
    Permanent(String),
}

pub enum Mailer {
    Folder(PathBuf),
    Smtp(Arc<SmtpMailer>),
}

impl Mailer {
    pub fn new(settings: &MailSettings) -> Self {
        match &settings.transport {
            MailTransport::Folder(dir) => Self::Folder(dir.clone()),
            MailTransport::Smtp(smtp) => Self::Smtp(Arc::new(SmtpMailer::new(smtp.clone()))),
        }
    }

    /// For the start-up log: where mail goes (never credentials).
    pub fn describe(&self) -> String {
        match self {
            Self::Folder(dir) => format!("written as .eml files to {}", dir.display()),
            Self::Smtp(smtp) => format!(
                "sent through {}:{} ({:?}, {} connections)",
                smtp.settings.host,
                smtp.settings.port,
                smtp.settings.tls,
                smtp.settings.connections
            ),
        }
    }

    /// Sends every message; the outcome of each, by outbox id.
    pub async fn send_all(&self, messages: Vec<Rendered>) -> Vec<(String, Result<(), SendError>)> {
        match self {
            Self::Folder(dir) => write_files(dir.clone(), messages).await,
            Self::Smtp(smtp) => smtp.clone().send_all(messages).await,
        }
    }
}

/// One file per message, named after its outbox row: writing it again after
/// a crash replaces it with the same bytes. Written then renamed, so a
/// reader never sees half a message.
async fn write_files(
    dir: PathBuf,
    messages: Vec<Rendered>,
) -> Vec<(String, Result<(), SendError>)> {
    let ids: Vec<String> = messages.iter().map(|m| m.outbox_id.clone()).collect();
    let outcome = tokio::task::spawn_blocking(move || {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            let error = SendError::Temporary(format!("cannot create {}: {e}", dir.display()));
            return messages
                .into_iter()
                .map(|m| (m.outbox_id, Err(error.clone())))
                .collect();
        }
        messages
            .into_iter()
            .map(|m| {
                let file = dir.join(eml_name(&m.invitation_id, &m.outbox_id));
                let partial = dir.join(format!(".{}.eml.partial", m.outbox_id));
                let written = std::fs::write(&partial, &m.bytes)
                    .and_then(|()| std::fs::rename(&partial, &file))
                    .map_err(|e| SendError::Temporary(format!("writing {}: {e}", file.display())));
                (m.outbox_id, written)
            })
            .collect()
    })
    .await;
    outcome.unwrap_or_else(|_| {
        ids.into_iter()
            .map(|id| {
                (
                    id,
                    Err(SendError::Temporary("the file writer panicked".into())),
                )
            })
            .collect()
    })
}

/// A pool of SMTP connections, opened on demand and kept while they work.
pub struct SmtpMailer {
    settings: SmtpSettings,
    hello: ClientId,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    limiter: Option<RateLimiter>,
    /// Built once: the root store and TLS configuration are the same for
    /// every connection. A failure is reported when a connection needs it.
    tls: Result<TlsParameters, String>,
}

impl SmtpMailer {
    pub fn new(settings: SmtpSettings) -> Self {
        let limiter = (settings.rate_per_second > 0).then(|| RateLimiter {
            interval: Duration::from_secs(1) / settings.rate_per_second,
            next: Mutex::new(Instant::now()),
        });
        let tls = tls_parameters(&settings).map_err(|e| e.to_string());
        Self {
            settings,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
            limiter,
            tls,
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.timeout_secs)
    }

    /// Sends over up to `connections` lanes, each a connection taking the
    /// next message from one shared queue, so that no lane idles while
    /// another still has a backlog. A lane that cannot connect stops; what
    /// no lane could send waits for the next round.
    async fn send_all(
        self: Arc<Self>,
        messages: Vec<Rendered>,
    ) -> Vec<(String, Result<(), SendError>)> {
        let lanes = self.settings.connections.min(messages.len()).max(1);
        let queue = Arc::new(Mutex::new(std::collections::VecDeque::from(messages)));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..lanes {
            let (mailer, queue) = (self.clone(), queue.clone());
            tasks.spawn(async move { mailer.send_lane(&queue).await });
        }
        let mut outcomes = Vec::new();
        let mut stopped = None;
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((lane, error)) => {
                    outcomes.extend(lane);
                    stopped = stopped.or(error);
                }
                Err(error) => tracing::error!(%error, "an SMTP lane panicked"),
            }
        }
        let left: Vec<Rendered> = queue
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default();
        let error = stopped.unwrap_or_else(|| SendError::Temporary("no SMTP lane was left".into()));
        outcomes.extend(left.into_iter().map(|m| (m.outbox_id, Err(error.clone()))));
        outcomes
    }

    /// One lane: sends from the queue until it is empty, or until there is no
    /// connection (then says why).
    async fn send_lane(
        &self,
        queue: &Mutex<std::collections::VecDeque<Rendered>>,
    ) -> (Vec<(String, Result<(), SendError>)>, Option<SendError>) {
        let mut outcomes = Vec::new();
        let mut connection = self.idle_connection().await;
        // Popped in a function of its own, so no lock is held across a send.
        let next = || queue.lock().ok().and_then(|mut q| q.pop_front());
        while let Some(message) = next() {
            let conn = match &mut connection {
                Some(conn) if !conn.has_broken() => conn,
                _ => match self.connect().await {
                    Ok(fresh) => connection.insert(fresh),
                    Err(error) => {
                        outcomes.push((message.outbox_id, Err(error.clone())));
                        return (outcomes, Some(error));
                    }
                },
            };
            if let Some(limiter) = &self.limiter {
                limiter.wait().await;
            }
            let sent =
                match timeout(self.timeout(), conn.send(&message.envelope, &message.bytes)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(error)) => Err(classify(&error)),
                    Err(_) => {
                        // A connection that timed out mid-message is not reused.
                        connection = None;
                        Err(SendError::Temporary(
                            "the SMTP server did not answer in time".into(),
                        ))
                    }
                };
            outcomes.push((message.outbox_id, sent));
        }
        if let Some(conn) = connection.filter(|c| !c.has_broken())
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.settings.connections
        {
            idle.push(conn);
        }
        (outcomes, None)
    }

    /// A pooled connection that still answers, if there is one.
    async fn idle_connection(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let candidate = self.idle.lock().ok()?.pop();
            let mut conn = candidate?;
            if timeout(self.timeout(), conn.test_connected())
                .await
                .unwrap_or(false)
            {
                return Some(conn);
            }
        }
    }

    /// A fresh connection: connected, greeted, TLS and sign-in done, all
    /// within `mail.smtp.timeout_secs`, so a server that hangs at any step
    /// cannot hold a lane (and with it the worker's shutdown).
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let s = &self.settings;
        timeout(self.timeout(), self.open())
            .await
            .unwrap_or_else(|_| {
                Err(SendError::Temporary(format!(
                    "connecting to {}:{}: timed out",
                    s.host, s.port
                )))
            })
    }

    fn tls(&self) -> Result<TlsParameters, String> {
        self.tls.clone()
    }

    async fn open(&self) -> Result<AsyncSmtpConnection, SendError> {
        let s = &self.settings;
        let temporary = |what: &str, e: &dyn std::fmt::Display| {
            SendError::Temporary(format!("{what} {}:{}: {e}", s.host, s.port))
        };
        let mut conn = match s.tls {
            SmtpTls::Tls => {
                let tls = self.tls().map_err(|e| temporary("TLS for", &e))?;
                AsyncSmtpConnection::connect_tokio1(
                    (s.host.as_str(), s.port),
                    Some(self.timeout()),
                    &self.hello,
                    Some(tls),
                    None,
                )
                .await
                .map_err(|e| temporary("connecting to", &e))?
            }
            SmtpTls::None | SmtpTls::Starttls => {
                let stream = TcpStream::connect((s.host.as_str(), s.port))
                    .await
                    .map_err(|e| temporary("connecting to", &e))?;
                stream
                    .set_nodelay(true)
                    .map_err(|e| temporary("setting TCP_NODELAY on", &e))?;
                let mut conn =
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                        .await
                        .map_err(|e| temporary("greeting", &e))?;
                if s.tls == SmtpTls::Starttls {
                    if !conn.can_starttls() {
                        return Err(temporary("STARTTLS with", &"the server does not offer it"));
                    }
                    let tls = self.tls().map_err(|e| temporary("TLS for", &e))?;
                    conn.starttls(tls, &self.hello)
                        .await
                        .map_err(|e| temporary("STARTTLS with", &e))?;
                }
                conn
            }
        };
        if let Some((user, password)) = &s.credentials {
            conn.auth(
                &[Mechanism::Plain, Mechanism::Login],
                &Credentials::new(user.clone(), password.clone()),
            )
            .await
            .map_err(|e| temporary("signing in to", &e))?;
        }
        Ok(conn)
    }
}

/// 5xx is permanent, 4xx temporary; a message lettre itself refuses (for
/// example an address the server cannot take) is permanent; anything on
/// the network is temporary.
fn classify(error: &lettre::transport::smtp::Error) -> SendError {
    if error.is_permanent() || error.is_client() {
        SendError::Permanent(error.to_string())
    } else {
        SendError::Temporary(error.to_string())
    }
}

/// TLS that verifies the server's certificate for `mail.smtp.host` against
/// the public roots and those of `mail.smtp.ca_file`.
fn tls_parameters(
    settings: &SmtpSettings,
) -> Result<TlsParameters, lettre::transport::smtp::Error> {
    let mut tls = TlsParameters::builder(settings.host.clone());
    if let Some(pem) = &settings.extra_roots {
        tls = tls.add_root_certificate(Certificate::from_pem(pem)?);
    }
    tls.build()
}

/// At most one message per `interval`, across every lane of this instance.
struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    async fn wait(&self) {
        let at = {
            let Ok(mut next) = self.next.lock() else {
                return;
            };
            let at = (*next).max(Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// An email's file in the folder: named by its invitation first, so that
/// erasure and retention find every copy of a person's or a wave's mail
/// from the invitations alone (the outbox rows are gone once a wave closes).
pub fn eml_name(invitation_id: &str, outbox_id: &str) -> String {
    format!("{invitation_id}.{outbox_id}.eml")
}

/// Deletes the folder's emails of these invitations; returns how many.
/// Blocking. A folder that does not exist holds nothing.
pub fn delete_eml_of(dir: &Path, invitation_ids: &HashSet<String>) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut deleted = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let parts: Vec<&str> = name.split('.').collect();
        let [invitation, _, "eml"] = parts[..] else {
            continue;
        };
        if invitation_ids.contains(invitation) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(deleted)
}
