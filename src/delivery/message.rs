//! One email: an invitation or a reminder, rendered from the templates in
//! `src/delivery/templates/<language>/` (subject, plain text, HTML) and built
//! with lettre as a multipart/alternative message.
//!
//! Byte-identical on every render: the `Date` is the time the email was
//! queued, the `Message-ID` and the MIME boundary come from the outbox row's
//! id, and nothing else varies. So a message sent again after a crash is the
//! same message, which receiving systems can recognise and drop.

use std::sync::OnceLock;

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;
use lettre::Message;
use lettre::address::Envelope;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use minijinja::{AutoEscape, Environment, context};

/// Everything one email says, gathered by the worker.
#[derive(Debug, Clone)]
pub struct Letter {
    /// The outbox row: the `Message-ID` and the MIME boundary derive from it.
    pub outbox_id: String,
    /// 0 for the invitation, 1 or 2 for a reminder.
    pub reminder: i32,
    pub queued_at: NaiveDateTime,
    pub to_email: String,
    pub to_name: String,
    /// `nl` or `en`.
    pub language: String,
    pub organisation: String,
    /// The template's title in the person's language: what the wave is about.
    pub title: String,
    pub closes_at: DateTime<Utc>,
    pub time_zone: Tz,
    pub min_group_size: i32,
    pub link: String,
}

/// Who sends: from `mail.from`, replies to `mail.reply_to`.
#[derive(Debug, Clone)]
pub struct Sender {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
}

/// A message ready for the wire.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub outbox_id: String,
    pub envelope: Envelope,
    pub bytes: Vec<u8>,
}

/// Why a letter cannot be built: always permanent (the same input fails again).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unbuildable(pub String);

const TEMPLATES: [(&str, &str); 6] = [
    ("en/subject.txt", include_str!("templates/en/subject.txt")),
    ("en/body.txt", include_str!("templates/en/body.txt")),
    ("en/body.html", include_str!("templates/en/body.html")),
    ("nl/subject.txt", include_str!("templates/nl/subject.txt")),
    ("nl/body.txt", include_str!("templates/nl/body.txt")),
    ("nl/body.html", include_str!("templates/nl/body.html")),
];

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        for (name, source) in TEMPLATES {
            // The templates are part of the binary; a unit test renders each.
            env.add_template(name, source)
                .expect("the email templates in the binary parse");
        }
        env
    })
}

/// The close time as people read it, in the organisation's zone and the
/// person's language: "Friday 9 January at 17:00", "vrijdag 9 januari om 17:00".
pub fn readable_time(t: DateTime<Utc>, zone: Tz, language: &str) -> String {
    const EN_DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    const NL_DAYS: [&str; 7] = [
        "maandag",
        "dinsdag",
        "woensdag",
        "donderdag",
        "vrijdag",
        "zaterdag",
        "zondag",
    ];
    const EN_MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const NL_MONTHS: [&str; 12] = [
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ];
    let local = t.with_timezone(&zone);
    let day = local.weekday().num_days_from_monday() as usize;
    let month = local.month0() as usize;
    let (days, months, at) = if language == "nl" {
        (NL_DAYS, NL_MONTHS, "om")
    } else {
        (EN_DAYS, EN_MONTHS, "at")
    };
    format!(
        "{} {} {} {at} {:02}:{:02}",
        days[day],
        local.day(),
        months[month],
        local.hour(),
        local.minute()
    )
}

/// The language a letter is written in: Dutch or, for anything else, English.
fn language_of(letter: &Letter) -> &'static str {
    if letter.language == "nl" { "nl" } else { "en" }
}

fn render_part(name: &str, letter: &Letter) -> Result<String, Unbuildable> {
    let language = language_of(letter);
    let template = environment()
        .get_template(&format!("{language}/{name}"))
        .map_err(|e| Unbuildable(format!("email template {language}/{name}: {e}")))?;
    template
        .render(context! {
            reminder => letter.reminder > 0,
            name => &letter.to_name,
            organisation => &letter.organisation,
            title => &letter.title,
            closes => readable_time(letter.closes_at, letter.time_zone, language),
            k => letter.min_group_size,
            // A URL Peil built (the url crate's serialisation, then a
            // base64url token): no quote or angle bracket can be in it, and
            // escaping its slashes would only make it look odd to filters.
            link => minijinja::Value::from_safe_string(letter.link.clone()),
        })
        .map_err(|e| Unbuildable(format!("email template {language}/{name}: {e}")))
}

/// Builds the message. The same letter always gives the same bytes.
pub fn render(letter: &Letter, sender: &Sender) -> Result<Rendered, Unbuildable> {
    let to: Mailbox = format!("{} <{}>", quote_name(&letter.to_name), letter.to_email)
        .parse()
        .or_else(|_| letter.to_email.parse())
        .map_err(|e| Unbuildable(format!("the address is not valid: {e}")))?;
    let subject = render_part("subject.txt", letter)?;
    let text = render_part("body.txt", letter)?;
    let html = render_part("body.html", letter)?;
    let domain = sender.from.email.domain().to_owned();
    let mut builder = Message::builder()
        .from(sender.from.clone())
        .to(to)
        .subject(subject.trim())
        .message_id(Some(format!("<{}@{domain}>", letter.outbox_id)))
        .date(letter.queued_at.and_utc().into())
        // RFC 3834: no out-of-office replies to an automated invitation.
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_owned(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Content-Language"),
            language_of(letter).to_owned(),
        ));
    if let Some(reply_to) = &sender.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    let message = builder
        .multipart(
            MultiPart::alternative()
                .boundary(format!("peil-{}", letter.outbox_id))
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                ),
        )
        .map_err(|e| Unbuildable(format!("the message cannot be built: {e}")))?;
    Ok(Rendered {
        outbox_id: letter.outbox_id.clone(),
        envelope: message.envelope().clone(),
        bytes: message.formatted(),
    })
}

/// A display name as a quoted string, so commas and the like stay in the name.
fn quote_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' || c == '\\' { '\'' } else { c })
        .collect();
    format!("\"{cleaned}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(language: &str, reminder: i32) -> Letter {
        Letter {
            outbox_id: "0b5e5d3c-5b7a-4f55-8d6e-2f1b9c2a7d10".into(),
            reminder,
            queued_at: "2026-01-05T08:00:00".parse().unwrap(),
            to_email: "anna.de.vries@example.org".into(),
            to_name: "Anna de Vries, Platform".into(),
            language: language.into(),
            organisation: "Acme & Zonen".into(),
            title: "Ontwikkelmogelijkheden".into(),
            closes_at: "2026-01-09T16:00:00Z".parse().unwrap(),
            time_zone: chrono_tz::Europe::Amsterdam,
            min_group_size: 5,
            link: "https://peil.example.org/s/abc".into(),
        }
    }

    fn sender() -> Sender {
        Sender {
            from: "Peil <peil@example.org>".parse().unwrap(),
            reply_to: Some("hr@example.org".parse().unwrap()),
        }
    }

    #[test]
    fn the_same_letter_renders_to_the_same_bytes() {
        let a = render(&letter("nl", 0), &sender()).unwrap();
        let b = render(&letter("nl", 0), &sender()).unwrap();
        assert_eq!(a.bytes, b.bytes);
        let text = String::from_utf8(a.bytes).unwrap();
        assert!(text.contains("Message-ID: <0b5e5d3c-5b7a-4f55-8d6e-2f1b9c2a7d10@example.org>"));
        assert!(text.contains("Date: Mon, 05 Jan 2026 08:00:00 +0000"));
        assert!(text.contains("multipart/alternative"));
        assert!(text.contains("Auto-Submitted: auto-generated"));
        assert!(text.contains("Reply-To: hr@example.org"));
        assert_eq!(a.envelope.to()[0].to_string(), "anna.de.vries@example.org");
    }

    #[test]
    fn letters_speak_the_persons_language_and_escape_html() {
        let nl = letter("nl", 0);
        let text = render_part("body.txt", &nl).unwrap();
        assert!(text.contains("ongeveer twee minuten"), "{text}");
        assert!(text.contains("vrijdag 9 januari om 17:00"), "{text}");
        assert!(text.contains("https://peil.example.org/s/abc"));
        assert!(text.contains("Acme & Zonen"), "plain text is not escaped");
        let html = render_part("body.html", &nl).unwrap();
        assert!(html.contains("Acme &amp; Zonen"), "HTML is: {html}");
        assert!(html.contains("href=\"https://peil.example.org/s/abc\""));
        let en = letter("en", 1);
        let text = render_part("body.txt", &en).unwrap();
        assert!(text.contains("about two minutes"), "{text}");
        assert!(text.contains("Friday 9 January at 17:00"), "{text}");
        assert!(text.contains("anonymous"));
        let subject = render_part("subject.txt", &en).unwrap();
        assert!(
            subject.starts_with("Reminder: Ontwikkelmogelijkheden"),
            "{subject}"
        );
        let subject = render_part("subject.txt", &nl).unwrap();
        assert!(subject.starts_with("Ontwikkelmogelijkheden"), "{subject}");
    }

    #[test]
    fn a_bad_address_is_unbuildable() {
        let mut bad = letter("en", 0);
        bad.to_email = "not an address".into();
        assert!(render(&bad, &sender()).is_err());
    }
}
