//! Delivery: the emails Peil sends. Every email is first written to the
//! outbox in the same transaction as what it announces (an invitation, a
//! reminder), so none is lost to a crash or an SMTP outage; a worker sends
//! what is queued (see the email issue). The outbox row's id is the stable
//! `Message-ID` of the email, so a resend after a crash is the same message.

pub mod outbox;
