//! Surveys: what Peil asks and when.
//!
//! - `template`: the file format of a question set and its loader (the
//!   two-minute rule); `templates`: the shipped ones plus those an
//!   organisation adds, and their API.
//! - `cadence`: cron in a time zone, with the daylight-saving rules.
//! - `pulses`: recurring survey programs (templates, audience, cadence,
//!   window, reminders) and their API.
//! - `waves`: one occurrence of a pulse: opening (audience snapshot,
//!   invitations, outbox, in one transaction), reminding, closing.
//! - `scheduler`: the steps the clock drives. The database is the source of
//!   truth; tokio-cron-scheduler only wakes the service, and every step is
//!   idempotent, on any number of replicas.

pub mod cadence;
pub mod pulses;
pub mod scheduler;
pub mod template;
pub mod templates;
pub mod waves;
