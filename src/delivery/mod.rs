//! Delivery: the emails Peil sends. Every email is first written to the
//! outbox in the same transaction as what it announces (an invitation, a
//! reminder), so none is lost to a crash or an SMTP outage; the worker
//! (`worker`) claims what is due, renders it (`message`, from the templates
//! in `templates/`) and hands it to the mailer (`mailer`: SMTP, or `.eml`
//! files). Temporary failures retry with back-off until the wave closes;
//! permanent ones are recorded and listed for HR (`http`). The outbox row's
//! id is the email's `Message-ID`, so a resend after a crash is the same message.

pub mod http;
pub mod mailer;
pub mod message;
pub mod outbox;
pub mod worker;
