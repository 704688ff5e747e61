//! Configuration: the embedded `config/default.toml`, then an optional file,
//! then `PEIL__*` environment variables (`PEIL__SERVER__PORT` is `server.port`).
//! Everything is checked here, once, at start; an error names the bad key.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;
use url::Url;

const DEFAULTS: &str = include_str!("../config/default.toml");
const SECRET_FILE: &str = "secret";
const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    data_dir: PathBuf,
    secret: Option<String>,
    server: RawServer,
    database: RawDatabase,
    log: LogSettings,
    auth: AuthSettings,
    bootstrap: BootstrapSettings,
    scheduler: SchedulerSettings,
    mail: RawMail,
    answers: AnswerSettings,
    rate_limits: RateLimits,
    retention: RetentionSettings,
    metrics: RawMetrics,
    webhooks: WebhookSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: String,
    token: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMail {
    enabled: bool,
    from: String,
    reply_to: Option<String>,
    folder: Option<PathBuf>,
    batch_size: usize,
    poll_interval_ms: u64,
    lease_secs: u64,
    retry_base_secs: u64,
    retry_max_secs: u64,
    smtp: RawSmtp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: Option<String>,
    port: u16,
    tls: SmtpTls,
    username: Option<String>,
    password: Option<String>,
    connections: usize,
    rate_per_second: u32,
    timeout_secs: u64,
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    host: String,
    port: u16,
    public_url: Option<String>,
    workers: usize,
    shutdown_timeout_secs: u64,
    max_body_bytes: usize,
    max_import_bytes: usize,
    trusted_proxies: Vec<IpAddr>,
    cors_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<String>,
    pool_size: u32,
    connect_timeout_secs: u64,
    busy_timeout_ms: u32,
}

/// The validated configuration the service runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    /// `None` until [`Settings::ensure_secret`] has read or generated it.
    pub secret: Option<ServerSecret>,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub auth: AuthSettings,
    pub bootstrap: BootstrapSettings,
    pub scheduler: SchedulerSettings,
    pub mail: MailSettings,
    pub answers: AnswerSettings,
    pub rate_limits: RateLimits,
    pub retention: RetentionSettings,
    pub metrics: MetricsSettings,
    pub webhooks: WebhookSettings,
}

/// Where `GET /metrics` is served, and to whom.
#[derive(Clone)]
pub struct MetricsSettings {
    /// An address of its own (`host:port`); `None`: the main address.
    pub listen: Option<String>,
    /// A bearer token scrapers must send; `None`: none (on the main
    /// address, loopback clients only).
    pub token: Option<String>,
}

// Never print the token.
impl fmt::Debug for MetricsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsSettings")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// How long what identifies people is kept after it has served.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// Days after a wave closes that its invitations (the link tokens
    /// derive from them) and its `.eml` copies are deleted.
    pub invitation_days: u32,
    /// Days the audit log keeps an entry (it names accounts and addresses).
    pub audit_days: u32,
}

/// The API's rate limits (answer links have their own, `answers.rate_limit`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Every request under `/api/v1` but the answer links, per client address.
    pub api_per_address: RateLimitSettings,
    /// Every authenticated request, per account (all its sessions) or API key.
    pub api_per_credential: RateLimitSettings,
    /// `POST /api/v1/auth/login`, per client address.
    pub sign_in_per_address: RateLimitSettings,
    /// `POST /api/v1/auth/login`, per email address tried (known or not).
    pub sign_in_per_account: RateLimitSettings,
}

impl RateLimits {
    fn named(&self) -> [(&'static str, RateLimitSettings); 4] {
        [
            ("api_per_address", self.api_per_address),
            ("api_per_credential", self.api_per_credential),
            ("sign_in_per_address", self.sign_in_per_address),
            ("sign_in_per_account", self.sign_in_per_account),
        ]
    }
}

/// Webhooks: the delivery worker, and which endpoints may be registered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Off: this instance never delivers (the queue keeps everything for another).
    pub enabled: bool,
    /// Allow endpoints on loopback, private, link-local and other internal
    /// addresses. Off (the default), webhooks cannot probe the network Peil runs in.
    pub allow_private_addresses: bool,
    /// Refuse `http://` endpoints.
    pub require_https: bool,
    pub timeout_secs: u64,
    pub poll_interval_ms: u64,
    pub lease_secs: u64,
    pub batch_size: usize,
    pub concurrency: usize,
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    /// Attempts of one delivery before it is given up as failed.
    pub max_attempts: i32,
    /// Failed attempts in a row, with no success between, after which an
    /// endpoint is disabled.
    pub disable_after_failures: i32,
}

/// The links people answer through (`/s/…`, `/api/v1/answers/…`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerSettings {
    pub rate_limit: RateLimitSettings,
}

/// A steady rate per client address and a burst on top; 0 per minute: off.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub per_minute: u32,
    pub burst: u32,
}

/// Sending email: the outbox worker, and where mail goes.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// Off: this instance never sends (the outbox keeps everything for another).
    pub enabled: bool,
    pub from: lettre::message::Mailbox,
    pub reply_to: Option<lettre::message::Mailbox>,
    /// SMTP, or `.eml` files in a folder when no SMTP host is configured.
    pub transport: MailTransport,
    pub batch_size: usize,
    pub poll_interval_ms: u64,
    pub lease_secs: u64,
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
}

#[derive(Debug, Clone)]
pub enum MailTransport {
    Folder(PathBuf),
    Smtp(SmtpSettings),
}

#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub credentials: Option<(String, String)>,
    pub connections: usize,
    /// Messages per second at most; 0: no limit.
    pub rate_per_second: u32,
    pub timeout_secs: u64,
    /// PEM certificates trusted besides the public roots (a relay with a
    /// private CA), read from `mail.smtp.ca_file` at start.
    pub extra_roots: Option<Vec<u8>>,
}

// Never print the SMTP password.
impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("authenticated", &self.credentials.is_some())
            .field("connections", &self.connections)
            .field("rate_per_second", &self.rate_per_second)
            .field("extra_roots", &self.extra_roots.is_some())
            .finish_non_exhaustive()
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text: only for a relay on the same host or network.
    None,
    /// Upgrade with STARTTLS (usually port 587); refused if the server cannot.
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub public_url: Url,
    pub workers: usize,
    pub shutdown_timeout_secs: u64,
    pub max_body_bytes: usize,
    pub max_import_bytes: usize,
    /// Proxies whose `X-Forwarded-For` names the client (rate limits).
    pub trusted_proxies: Vec<IpAddr>,
    /// Web origins allowed to call the API from a browser, as
    /// `scheme://host[:port]`; empty: none.
    pub cors_origins: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: DatabaseUrl,
    pub pool_size: u32,
    pub connect_timeout_secs: u64,
    pub busy_timeout_ms: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub session_hours: u32,
}

/// The in-process wake-up of the schedule (the database holds the schedule).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSettings {
    /// Off: this instance serves HTTP only and never opens, reminds or closes waves.
    pub enabled: bool,
    /// When to wake, as a cron expression with seconds (six fields), in UTC.
    pub wake: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapSettings {
    pub organisation_name: String,
    pub admin_email: String,
}

/// Where the data lives; the scheme picks the backend. An unknown scheme is an
/// error, never a new SQLite file named after the URL.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let Some((scheme, rest)) = raw.split_once(':') else {
            return Err("has no scheme: use sqlite://PATH or postgres://…".into());
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Err("sqlite:// needs a file path".into());
                }
                Ok(Self::Sqlite(PathBuf::from(path)))
            }
            "postgres" | "postgresql" => {
                Url::parse(raw).map_err(|e| format!("is not a valid PostgreSQL URL: {e}"))?;
                Ok(Self::Postgres(raw.to_owned()))
            }
            other => Err(format!(
                "has unknown scheme `{other}`: use sqlite://PATH or postgres://…"
            )),
        }
    }
}

// Never print a PostgreSQL password.
impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(raw) => match Url::parse(raw) {
                Ok(mut url) => {
                    if url.password().is_some() {
                        let _ = url.set_password(Some("***"));
                    }
                    write!(f, "{url}")
                }
                Err(_) => f.write_str("postgres://(unparseable)"),
            },
        }
    }
}

/// The server secret. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct ServerSecret(String);

impl ServerSecret {
    fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.chars().count() < MIN_SECRET_LEN {
            return Err(format!("must be at least {MIN_SECRET_LEN} characters"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSecret(***)")
    }
}

/// A configuration problem, naming the key and where its value came from.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: `{key}`{source_hint}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub source_hint: String,
    pub message: String,
}

impl ConfigError {
    fn key(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            source_hint: String::new(),
            message: message.into(),
        }
    }

    fn from_figment(error: figment::Error) -> Self {
        let key = if error.path.is_empty() {
            "(root)".to_owned()
        } else {
            error.path.join(".")
        };
        let source_hint = match error.metadata.as_ref() {
            Some(m) if m.name.contains("environment") => {
                format!(" (from PEIL__{})", error.path.join("__").to_uppercase())
            }
            Some(m) => match &m.source {
                Some(figment::Source::File(path)) => format!(" (in {})", path.display()),
                _ => String::new(),
            },
            None => String::new(),
        };
        let mut message = error.kind.to_string();
        if let figment::error::Kind::UnknownField(field, _) = &error.kind {
            message = format!("unknown key `{field}`");
        }
        let key = match &error.kind {
            figment::error::Kind::UnknownField(field, _) if !key.ends_with(field.as_str()) => {
                if key == "(root)" {
                    field.clone()
                } else {
                    format!("{key}.{field}")
                }
            }
            _ => key,
        };
        Self {
            key,
            source_hint,
            message,
        }
    }
}

fn validate_metrics(raw: RawMetrics) -> Result<MetricsSettings, ConfigError> {
    let listen = raw.listen.trim().to_owned();
    if !listen.is_empty()
        && listen
            .rsplit_once(':')
            .is_none_or(|(_, p)| p.parse::<u16>().is_err())
    {
        return Err(ConfigError::key(
            "metrics.listen",
            "must be host:port, such as \"0.0.0.0:9464\", or empty for the main address",
        ));
    }
    let token = raw.token.trim().to_owned();
    if !token.is_empty() && token.chars().count() < 16 {
        return Err(ConfigError::key(
            "metrics.token",
            "must be at least 16 characters, or empty for none",
        ));
    }
    Ok(MetricsSettings {
        listen: (!listen.is_empty()).then_some(listen),
        token: (!token.is_empty()).then_some(token),
    })
}

/// The PEM certificates in `path`, checked to be there and to parse.
fn read_certificates(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let key = "mail.smtp.ca_file";
    let pem = std::fs::read(path)
        .map_err(|e| ConfigError::key(key, format!("cannot read {}: {e}", path.display())))?;
    let holds_one = String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----");
    if !holds_one || lettre::transport::smtp::client::Certificate::from_pem(&pem).is_err() {
        return Err(ConfigError::key(
            key,
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Ok(pem)
}

impl Settings {
    /// Reads defaults, then `file` if given, then the environment, and validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new().merge(Toml::string(DEFAULTS));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::key(
                    "--config",
                    format!("file {} does not exist", file.display()),
                ));
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(Env::prefixed("PEIL__").split("__"));
        let raw: RawSettings = figment.extract().map_err(ConfigError::from_figment)?;
        Self::validate(raw)
    }

    /// Defaults with each of `layers` (TOML) laid over them in turn, ignoring
    /// the environment: for tests and for embedding Peil in another program.
    pub fn from_toml(layers: &[&str]) -> Result<Self, ConfigError> {
        let figment = layers
            .iter()
            .fold(Figment::new().merge(Toml::string(DEFAULTS)), |f, layer| {
                f.merge(Toml::string(layer))
            });
        let raw: RawSettings = figment.extract().map_err(ConfigError::from_figment)?;
        Self::validate(raw)
    }

    fn validate(raw: RawSettings) -> Result<Self, ConfigError> {
        if raw.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::key("data_dir", "must not be empty"));
        }
        let secret = match raw.secret.as_deref() {
            Some(s) => Some(ServerSecret::parse(s).map_err(|m| ConfigError::key("secret", m))?),
            None => None,
        };
        if raw.server.host.trim().is_empty() {
            return Err(ConfigError::key("server.host", "must not be empty"));
        }
        let public_url = match raw.server.public_url.as_deref() {
            Some(s) => {
                let url = Url::parse(s)
                    .map_err(|e| ConfigError::key("server.public_url", format!("{e}")))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(ConfigError::key(
                        "server.public_url",
                        "must be an http:// or https:// URL",
                    ));
                }
                url
            }
            None => Url::parse(&format!("http://{}:{}", raw.server.host, raw.server.port))
                .map_err(|e| ConfigError::key("server.host", format!("{e}")))?,
        };
        if raw.server.max_body_bytes < 1024 {
            return Err(ConfigError::key(
                "server.max_body_bytes",
                "must be at least 1024",
            ));
        }
        if raw.server.max_import_bytes < raw.server.max_body_bytes {
            return Err(ConfigError::key(
                "server.max_import_bytes",
                "must be at least server.max_body_bytes",
            ));
        }
        let url = match raw.database.url.as_deref() {
            Some(s) => DatabaseUrl::parse(s).map_err(|m| ConfigError::key("database.url", m))?,
            None => DatabaseUrl::Sqlite(raw.data_dir.join("peil.db")),
        };
        if raw.database.pool_size == 0 {
            return Err(ConfigError::key("database.pool_size", "must be at least 1"));
        }
        if raw.database.connect_timeout_secs == 0 {
            return Err(ConfigError::key(
                "database.connect_timeout_secs",
                "must be at least 1",
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&raw.log.level) {
            return Err(ConfigError::key("log.level", format!("{e}")));
        }
        if !(1..=24 * 30).contains(&raw.auth.session_hours) {
            return Err(ConfigError::key(
                "auth.session_hours",
                "must be between 1 and 720",
            ));
        }
        if crate::domain::OrganisationName::parse(&raw.bootstrap.organisation_name).is_err() {
            return Err(ConfigError::key(
                "bootstrap.organisation_name",
                "must be 1 to 200 characters",
            ));
        }
        if crate::domain::EmailAddress::parse(&raw.bootstrap.admin_email).is_err() {
            return Err(ConfigError::key(
                "bootstrap.admin_email",
                "is not a valid email address",
            ));
        }
        if raw.scheduler.wake.split_whitespace().count() != 6
            || raw.scheduler.wake.parse::<croner::Cron>().is_err()
        {
            return Err(ConfigError::key(
                "scheduler.wake",
                "must be a cron expression with six fields (seconds first), e.g. \"0 * * * * *\"",
            ));
        }
        let limits = raw
            .rate_limits
            .named()
            .map(|(name, limit)| (format!("rate_limits.{name}.burst"), limit));
        let answers = [(
            "answers.rate_limit.burst".to_owned(),
            raw.answers.rate_limit,
        )];
        for (key, limit) in answers.into_iter().chain(limits) {
            if limit.per_minute > 0 && limit.burst == 0 {
                return Err(ConfigError::key(
                    &key,
                    "must be at least 1 while the limit is on",
                ));
            }
        }
        if raw.retention.invitation_days > 3650 {
            return Err(ConfigError::key(
                "retention.invitation_days",
                "must be 0 to 3650 (ten years)",
            ));
        }
        if !(1..=3650).contains(&raw.retention.audit_days) {
            return Err(ConfigError::key(
                "retention.audit_days",
                "must be 1 to 3650 (ten years)",
            ));
        }
        let metrics = validate_metrics(raw.metrics)?;
        let mail = Self::validate_mail(raw.mail, &raw.data_dir)?;
        validate_webhooks(&raw.webhooks)?;
        let cors_origins = raw
            .server
            .cors_origins
            .iter()
            .map(|origin| web_origin(origin))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ConfigError::key(
                    "server.cors_origins",
                    "each must be an http or https origin such as \"https://hr.example.org\" (no path)",
                )
            })?;
        Ok(Self {
            data_dir: raw.data_dir,
            secret,
            server: ServerSettings {
                host: raw.server.host,
                port: raw.server.port,
                public_url,
                workers: raw.server.workers,
                shutdown_timeout_secs: raw.server.shutdown_timeout_secs,
                max_body_bytes: raw.server.max_body_bytes,
                max_import_bytes: raw.server.max_import_bytes,
                trusted_proxies: raw.server.trusted_proxies,
                cors_origins,
            },
            database: DatabaseSettings {
                url,
                pool_size: raw.database.pool_size,
                connect_timeout_secs: raw.database.connect_timeout_secs,
                busy_timeout_ms: raw.database.busy_timeout_ms,
            },
            log: raw.log,
            auth: raw.auth,
            bootstrap: raw.bootstrap,
            scheduler: raw.scheduler,
            mail,
            answers: raw.answers,
            rate_limits: raw.rate_limits,
            retention: raw.retention,
            metrics,
            webhooks: raw.webhooks,
        })
    }

    fn validate_mail(raw: RawMail, data_dir: &Path) -> Result<MailSettings, ConfigError> {
        let from = raw
            .from
            .parse()
            .map_err(|e| ConfigError::key("mail.from", format!("is not an address: {e}")))?;
        let reply_to = raw
            .reply_to
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| ConfigError::key("mail.reply_to", format!("is not an address: {e}")))?;
        if !(1..=10_000).contains(&raw.batch_size) {
            return Err(ConfigError::key("mail.batch_size", "must be 1 to 10000"));
        }
        if raw.poll_interval_ms == 0 {
            return Err(ConfigError::key(
                "mail.poll_interval_ms",
                "must be at least 1",
            ));
        }
        if raw.lease_secs < 10 {
            return Err(ConfigError::key("mail.lease_secs", "must be at least 10"));
        }
        if raw.retry_base_secs == 0 || raw.retry_max_secs < raw.retry_base_secs {
            return Err(ConfigError::key(
                "mail.retry_max_secs",
                "must be at least mail.retry_base_secs, which must be at least 1",
            ));
        }
        let transport = match raw.smtp.host.as_deref().map(str::trim) {
            None | Some("") => {
                MailTransport::Folder(raw.folder.unwrap_or_else(|| data_dir.join("mail")))
            }
            Some(host) => {
                if !(1..=64).contains(&raw.smtp.connections) {
                    return Err(ConfigError::key("mail.smtp.connections", "must be 1 to 64"));
                }
                if raw.smtp.timeout_secs == 0 {
                    return Err(ConfigError::key(
                        "mail.smtp.timeout_secs",
                        "must be at least 1",
                    ));
                }
                let credentials = match (raw.smtp.username, raw.smtp.password) {
                    (Some(user), Some(password)) => Some((user, password)),
                    (None, None) => None,
                    (Some(_), None) => {
                        return Err(ConfigError::key(
                            "mail.smtp.password",
                            "is needed with mail.smtp.username",
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(ConfigError::key(
                            "mail.smtp.username",
                            "is needed with mail.smtp.password",
                        ));
                    }
                };
                let extra_roots = raw
                    .smtp
                    .ca_file
                    .as_deref()
                    .map(read_certificates)
                    .transpose()?;
                MailTransport::Smtp(SmtpSettings {
                    host: host.to_owned(),
                    port: raw.smtp.port,
                    tls: raw.smtp.tls,
                    credentials,
                    connections: raw.smtp.connections,
                    rate_per_second: raw.smtp.rate_per_second,
                    timeout_secs: raw.smtp.timeout_secs,
                    extra_roots,
                })
            }
        };
        Ok(MailSettings {
            enabled: raw.enabled,
            from,
            reply_to,
            transport,
            batch_size: raw.batch_size,
            poll_interval_ms: raw.poll_interval_ms,
            lease_secs: raw.lease_secs,
            retry_base_secs: raw.retry_base_secs,
            retry_max_secs: raw.retry_max_secs,
        })
    }

    /// Creates the data directory and reads the server secret, generating one
    /// into `<data_dir>/secret` (mode 0600) when the configuration has none.
    /// Returns whether it was generated now.
    pub fn ensure_secret(&mut self) -> anyhow::Result<bool> {
        use anyhow::Context;
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating data directory {}", self.data_dir.display()))?;
        if self.secret.is_some() {
            return Ok(false);
        }
        let path = self.data_dir.join(SECRET_FILE);
        if path.exists() {
            let raw = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let secret = ServerSecret::parse(&raw)
                .map_err(|m| anyhow::anyhow!("{}: the stored secret {m}", path.display()))?;
            self.secret = Some(secret);
            return Ok(false);
        }
        let bytes: [u8; 32] = rand::random();
        let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
        write_private(&path, &encoded).with_context(|| format!("writing {}", path.display()))?;
        self.secret = Some(ServerSecret(encoded));
        Ok(true)
    }

    /// The keys derived from the server secret, read or generated first
    /// ([`Settings::ensure_secret`]).
    pub fn server_keys(&mut self) -> anyhow::Result<crate::crypto::ServerKeys> {
        self.ensure_secret()?;
        let secret = self
            .secret
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the server secret is set by ensure_secret"))?;
        Ok(crate::crypto::ServerKeys::derive(secret))
    }
}

fn validate_webhooks(raw: &WebhookSettings) -> Result<(), ConfigError> {
    let at_least_one = [
        ("webhooks.timeout_secs", raw.timeout_secs),
        ("webhooks.poll_interval_ms", raw.poll_interval_ms),
        ("webhooks.retry_base_secs", raw.retry_base_secs),
        ("webhooks.batch_size", raw.batch_size as u64),
        ("webhooks.concurrency", raw.concurrency as u64),
        (
            "webhooks.max_attempts",
            u64::try_from(raw.max_attempts).unwrap_or(0),
        ),
        (
            "webhooks.disable_after_failures",
            u64::try_from(raw.disable_after_failures).unwrap_or(0),
        ),
    ];
    for (key, value) in at_least_one {
        if value == 0 {
            return Err(ConfigError::key(key, "must be at least 1"));
        }
    }
    if raw.retry_max_secs < raw.retry_base_secs {
        return Err(ConfigError::key(
            "webhooks.retry_max_secs",
            "must be at least webhooks.retry_base_secs",
        ));
    }
    // A round posts its batch `concurrency` at a time and records it at
    // the end: the claim must outlast the slowest round, or another
    // replica would take the same deliveries meanwhile.
    let slowest_round = raw
        .batch_size
        .div_ceil(raw.concurrency)
        .saturating_mul(usize::try_from(raw.timeout_secs).unwrap_or(usize::MAX));
    if usize::try_from(raw.lease_secs).unwrap_or(usize::MAX) <= slowest_round.saturating_add(10) {
        return Err(ConfigError::key(
            "webhooks.lease_secs",
            "must be over 10 s longer than the slowest round: ceil(batch_size / concurrency) × timeout_secs",
        ));
    }
    Ok(())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// `https://Host:443/` as a browser sends it in `Origin`
/// (`https://host`); None for anything that is not just an origin.
fn web_origin(text: &str) -> Option<String> {
    let url = Url::parse(text).ok()?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    bare.then(|| url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_are_bare_web_origins_written_as_browsers_send_them() {
        assert_eq!(
            web_origin("https://HR.example.org:443/").as_deref(),
            Some("https://hr.example.org")
        );
        assert_eq!(
            web_origin("http://localhost:5173").as_deref(),
            Some("http://localhost:5173")
        );
        for bad in [
            "hr.example.org",
            "ftp://hr.example.org",
            "https://hr.example.org/dashboard",
            "https://user@hr.example.org",
            "https://hr.example.org/?x=1",
            "*",
        ] {
            assert_eq!(web_origin(bad), None, "{bad}");
        }
        let error = Settings::from_toml(&["[server]\ncors_origins = [\"https://a.example/x\"]\n"])
            .unwrap_err();
        assert!(error.to_string().contains("server.cors_origins"), "{error}");
    }

    #[test]
    fn the_production_example_is_a_valid_configuration() {
        let settings =
            Settings::from_toml(&[include_str!("../config/production.example.toml")]).unwrap();
        assert_eq!(
            settings.server.trusted_proxies,
            ["10.0.0.2".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(settings.answers.rate_limit.per_minute, 600);
    }

    #[test]
    fn an_smtp_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "not a certificate").unwrap();
        let layer = format!(
            "[mail.smtp]\nhost = \"smtp.example.org\"\nca_file = \"{}\"\n",
            file.display()
        );
        let error = Settings::from_toml(&[&layer]).unwrap_err();
        assert_eq!(error.key, "mail.smtp.ca_file");
        let missing = layer.replace("ca.pem", "missing.pem");
        let error = Settings::from_toml(&[&missing]).unwrap_err();
        assert_eq!(error.key, "mail.smtp.ca_file");
        assert!(error.message.contains("cannot read"), "{}", error.message);
    }

    #[test]
    fn an_api_rate_limit_that_is_on_needs_a_burst() {
        let error = Settings::from_toml(&[
            "[rate_limits]\nsign_in_per_address = { per_minute = 10, burst = 0 }\n",
        ])
        .unwrap_err();
        assert_eq!(error.key, "rate_limits.sign_in_per_address.burst");
    }

    #[test]
    fn a_rate_limit_that_is_on_needs_a_burst() {
        let error = Settings::from_toml(&["[answers.rate_limit]\nper_minute = 10\nburst = 0\n"])
            .unwrap_err();
        assert_eq!(error.key, "answers.rate_limit.burst");
    }

    #[test]
    fn database_url_schemes() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/peil.db"),
            Ok(DatabaseUrl::Sqlite("data/peil.db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/x.db"),
            Ok(DatabaseUrl::Sqlite("/tmp/x.db".into()))
        );
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u@h/db"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        let err = DatabaseUrl::parse("mysql://u@h/db").unwrap_err();
        assert!(err.contains("unknown scheme `mysql`"), "{err}");
        assert!(DatabaseUrl::parse("data/peil.db").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn postgres_password_is_never_displayed() {
        let url = DatabaseUrl::parse("postgres://peil:hunter2@db/peil").unwrap();
        assert!(!format!("{url} {url:?}").contains("hunter2"));
    }

    #[test]
    fn secret_debug_hides_value() {
        let s = ServerSecret::parse(&"x".repeat(40)).unwrap();
        assert_eq!(format!("{s:?}"), "ServerSecret(***)");
        assert!(ServerSecret::parse("short").is_err());
    }
}
