//! One email: an invitation or a reminder, rendered from the templates in
//! `src/delivery/templates/<language>/` (subject, plain text, HTML) and built
//! with lettre as a multipart/alternative message.
//!
//! The templates run once per [`Wording`] (a wave, a language, invitation or
//! reminder) into a [`Draft`] that holds placeholders for the two things
//! that differ per person, the name and the link; each email fills them in.
//! A wave of 100,000 then renders a handful of templates, not 300,000.
//! The templates keep their lines under 76 characters and to ASCII, so a
//! typical email goes out as readable 7-bit text, not quoted-printable.
//!
//! Byte-identical on every render: the `Date` is the time the email was
//! queued, the `Message-ID` and the MIME boundary come from the outbox row's
//! id, and nothing else varies. So a message sent again after a crash is the
//! same message, which receiving systems can recognise and drop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;
use lettre::Address;
use lettre::Message;
use lettre::address::Envelope;
use lettre::message::header::{
    ContentTransferEncoding, ContentType, HeaderName, HeaderValue, Headers, To,
};
use lettre::message::{Body, Mailbox, Mailboxes, MultiPart, SinglePart};
use minijinja::{AutoEscape, Environment, HtmlEscape, context};

/// What every email of one wave says in one language, invitation or reminder.
#[derive(Debug, Clone)]
pub struct Wording {
    /// `nl` or `en`.
    pub language: String,
    pub reminder: bool,
    pub organisation: String,
    /// The template's title in this language: what the wave is about.
    pub title: String,
    pub closes_at: DateTime<Utc>,
    pub time_zone: Tz,
    pub min_group_size: i32,
}

/// What one email adds to its wording.
#[derive(Debug, Clone)]
pub struct Letter {
    /// The outbox row: the `Message-ID` and the MIME boundary derive from it.
    pub outbox_id: String,
    /// The invitation it is for: what erasure and retention find it by.
    pub invitation_id: String,
    pub queued_at: NaiveDateTime,
    pub to_email: String,
    pub to_name: String,
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
    pub invitation_id: String,
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

// Placeholders for the name and the link in a draft: private-use characters,
// removed from every value that goes into a template, so they cannot clash.
const MARK: char = '\u{E000}';
const NAME: &str = "\u{E000}name\u{E000}";
const LINK: &str = "\u{E000}link\u{E000}";

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

/// The language an email is written in: Dutch or, for anything else, English.
fn language_of(language: &str) -> &'static str {
    if language == "nl" { "nl" } else { "en" }
}

fn unmarked(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains(MARK) {
        value.replace(MARK, "").into()
    } else {
        value.into()
    }
}

/// One template of `wording`, with `name` and `link` as given.
fn render_part(
    template: &str,
    wording: &Wording,
    name: &str,
    link: &str,
) -> Result<String, Unbuildable> {
    let language = language_of(&wording.language);
    let failed =
        |e: minijinja::Error| Unbuildable(format!("email template {language}/{template}: {e}"));
    environment()
        .get_template(&format!("{language}/{template}"))
        .map_err(failed)?
        .render(context! {
            reminder => wording.reminder,
            name => name,
            organisation => unmarked(&wording.organisation),
            title => unmarked(&wording.title),
            closes => readable_time(wording.closes_at, wording.time_zone, language),
            k => wording.min_group_size,
            // A URL Peil built (the url crate's serialisation, then a
            // base64url token): no quote or angle bracket can be in it, and
            // escaping its slashes would only make it look odd to filters.
            link => minijinja::Value::from_safe_string(link.to_owned()),
        })
        .map_err(failed)
}

/// A body as plain 7-bit text when it is that already: ASCII without NUL,
/// CRLF line ends, no line over the 78 characters RFC 5322 asks for (lettre
/// itself would stop at 76 and pick quoted-printable, which splits links).
/// Otherwise, say for a name with an accent, lettre chooses the encoding.
fn body(text: String) -> Body {
    if seven_bit(text.as_bytes()) {
        Body::dangerous_pre_encoded(text.into_bytes(), ContentTransferEncoding::SevenBit)
    } else {
        Body::new(text)
    }
}

fn seven_bit(text: &[u8]) -> bool {
    // Whole-word and vectorised scans: this runs for both bodies of every
    // email, and a loop over each byte was a tenth of the worker's own time.
    if !text.is_ascii() || memchr::memchr(0, text).is_some() {
        return false;
    }
    let mut line = 0; // where the current line starts
    let mut ends = memchr::memchr2_iter(b'\r', b'\n', text);
    while let Some(at) = ends.next() {
        if text[at] == b'\n' || text.get(at + 1) != Some(&b'\n') || at - line > 78 {
            return false; // a bare LF or CR, or a long line
        }
        ends.next(); // the LF after this CR
        line = at + 2;
    }
    text.len() - line <= 78
}

fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// A rendered template cut at its placeholders: text, then what goes
/// between each two pieces of text (the name or the link).
#[derive(Debug, Clone)]
struct Pieces {
    text: Vec<String>,
    holes: Vec<Hole>,
}

#[derive(Debug, Clone, Copy)]
enum Hole {
    Name,
    Link,
}

impl Pieces {
    fn cut(rendered: &str) -> Self {
        let mut text = Vec::new();
        let mut holes = Vec::new();
        // Placeholders are `MARK word MARK`, and no value holds a MARK: every
        // other part between marks is a placeholder's word.
        for (i, part) in rendered.split(MARK).enumerate() {
            if i % 2 == 0 {
                text.push(part.to_owned());
            } else {
                holes.push(if part == "name" {
                    Hole::Name
                } else {
                    Hole::Link
                });
            }
        }
        Self { text, holes }
    }

    fn fill(&self, name: &str, link: &str) -> String {
        let mut filled = String::with_capacity(
            self.text.iter().map(String::len).sum::<usize>() + self.holes.len() * 80,
        );
        for (i, text) in self.text.iter().enumerate() {
            filled.push_str(text);
            match self.holes.get(i) {
                Some(Hole::Name) => filled.push_str(name),
                Some(Hole::Link) => filled.push_str(link),
                None => {}
            }
        }
        filled
    }
}

/// The templates of one wording, rendered, with placeholders for the name
/// and the link, for one sender.
#[derive(Debug)]
pub struct Draft {
    language: &'static str,
    subject: String,
    text: Pieces,
    html: Pieces,
    sender: Sender,
    /// The message lettre builds for this draft, per queue time (a wave's
    /// emails share one), cut where each email differs; `None` where it
    /// failed its check and every email is built whole.
    stencils: Mutex<HashMap<NaiveDateTime, Option<Arc<Stencil>>>>,
}

impl Draft {
    pub fn new(wording: &Wording, sender: &Sender) -> Result<Self, Unbuildable> {
        let part = |template| render_part(template, wording, NAME, LINK);
        Ok(Self {
            language: language_of(&wording.language),
            // No name or link in a subject: a spam trait, and it is shown in lists.
            subject: part("subject.txt")?.trim().to_owned(),
            // Lines end in CRLF already, as on the wire: lettre then has
            // nothing to insert, which was a third of the time per email.
            text: Pieces::cut(&crlf(&part("body.txt")?)),
            html: Pieces::cut(&crlf(&part("body.html")?)),
            sender: sender.clone(),
            stencils: Mutex::default(),
        })
    }

    /// Builds one email. The same letter always gives the same bytes, the
    /// same as rendering the templates with its name and link and building
    /// the message with lettre would ([`Draft::build`]).
    pub fn render(&self, letter: &Letter) -> Result<Rendered, Unbuildable> {
        let stencil = self.stencil(letter.queued_at);
        match stencil.as_deref().and_then(|s| s.fill(self, letter)) {
            Some(rendered) => rendered,
            None => self.build(letter),
        }
    }

    /// The letter's own parts: its recipient, and its bodies filled in.
    fn parts(&self, letter: &Letter) -> Result<(Mailbox, String, String), Unbuildable> {
        let address: Address = letter
            .to_email
            .parse()
            .map_err(|e| Unbuildable(format!("the address is not valid: {e}")))?;
        // lettre quotes or encodes the display name as it needs.
        let display: String = letter.to_name.chars().filter(|c| !c.is_control()).collect();
        let to = Mailbox::new((!display.trim().is_empty()).then_some(display), address);
        let name = unmarked(&letter.to_name);
        let link = unmarked(&letter.link);
        let text = self.text.fill(&name, &link);
        let html = self.html.fill(&HtmlEscape(&name).to_string(), &link);
        Ok((to, text, html))
    }

    /// Builds one email whole with lettre's message builder.
    fn build(&self, letter: &Letter) -> Result<Rendered, Unbuildable> {
        let (to, text, html) = self.parts(letter)?;
        let message = self.message(
            to,
            &letter.outbox_id,
            letter.queued_at,
            body(text),
            body(html),
        )?;
        Ok(Rendered {
            outbox_id: letter.outbox_id.clone(),
            invitation_id: letter.invitation_id.clone(),
            envelope: message.envelope().clone(),
            bytes: message.formatted(),
        })
    }

    fn message(
        &self,
        to: Mailbox,
        outbox_id: &str,
        queued_at: NaiveDateTime,
        text: Body,
        html: Body,
    ) -> Result<Message, Unbuildable> {
        let sender = &self.sender;
        let domain = sender.from.email.domain();
        let mut builder = Message::builder()
            // Given, not left to lettre, which would parse it back out of
            // the headers it has just written.
            .envelope(self.envelope(&to)?)
            .from(sender.from.clone())
            .to(to)
            .subject(self.subject.clone())
            .message_id(Some(format!("<{outbox_id}@{domain}>")))
            .date(queued_at.and_utc().into())
            // RFC 3834: no out-of-office replies to an automated invitation.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Content-Language"),
                self.language.to_owned(),
            ));
        if let Some(reply_to) = &sender.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        builder
            .multipart(
                MultiPart::alternative()
                    .boundary(format!("peil-{outbox_id}"))
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
            .map_err(unbuildable)
    }

    /// From the sender to the one recipient.
    fn envelope(&self, to: &Mailbox) -> Result<Envelope, Unbuildable> {
        Envelope::new(Some(self.sender.from.email.clone()), vec![to.email.clone()])
            .map_err(unbuildable)
    }

    /// This draft's stencil for emails queued at `queued_at`, made on first use.
    fn stencil(&self, queued_at: NaiveDateTime) -> Option<Arc<Stencil>> {
        let mut stencils = self.stencils.lock().ok()?;
        stencils
            .entry(queued_at)
            .or_insert_with(|| Stencil::new(self, queued_at).map(Arc::new))
            .clone()
    }
}

/// One draft's message as lettre builds it, with stand-ins where each email
/// differs: the `To` header, the outbox id (in the `Message-ID` and the
/// MIME boundary) and the two bodies. Filling it in gives the bytes lettre
/// would build, where that is sure: the `To` header is written by lettre's
/// own header encoder, the bodies go out as they are (7-bit, so lettre
/// copies them), and every outbox id is a UUID of the same length and
/// characters. Anything else (a name that needs quoted-printable, say)
/// is built whole. Building each email whole was most of the worker's time.
#[derive(Debug)]
struct Stencil {
    pieces: Vec<Piece>,
    size: usize,
}

#[derive(Debug)]
enum Piece {
    Bytes(Vec<u8>),
    Hole(Slot),
}

/// What differs per email.
#[derive(Debug, Clone, Copy)]
enum Slot {
    To,
    Id,
    Text,
    Html,
}

impl Stencil {
    /// Builds the stencil, then checks it: a letter filled in must equal
    /// the same letter built whole, or there is no stencil. There is none
    /// either where even a plain letter is built whole (an organisation
    /// name with an accent makes every body 8-bit).
    fn new(draft: &Draft, queued_at: NaiveDateTime) -> Option<Self> {
        let stand_in = || uuid::Uuid::new_v4().to_string();
        let (id, text, html) = (stand_in(), stand_in(), stand_in());
        let to = Mailbox::new(None, format!("{}@example.org", stand_in()).parse().ok()?);
        let to_line = to_line(&to);
        let message = draft
            .message(to, &id, queued_at, body(text.clone()), body(html.clone()))
            .ok()?;
        let stencil = Self::cut(
            &message.formatted(),
            &[
                (to_line.as_bytes(), Slot::To),
                (text.as_bytes(), Slot::Text),
                (html.as_bytes(), Slot::Html),
                (id.as_bytes(), Slot::Id),
            ],
        );
        let probe = Letter {
            outbox_id: stand_in(),
            invitation_id: stand_in(),
            queued_at,
            to_email: "probe.person@example.org".into(),
            to_name: "Probe Person".into(),
            link: format!("https://peil.example.org/s/{}", stand_in()),
        };
        let filled = stencil.fill(draft, &probe)?.ok()?;
        let built = draft.build(&probe).ok()?;
        if filled.bytes != built.bytes || filled.envelope != built.envelope {
            // A lettre that writes messages differently: correct, but slower.
            tracing::warn!(
                "an email stencil did not match lettre's build; building each email whole"
            );
            return None;
        }
        Some(stencil)
    }

    /// `bytes` cut at every occurrence of each stand-in.
    fn cut(bytes: &[u8], stand_ins: &[(&[u8], Slot)]) -> Self {
        let mut pieces = Vec::new();
        let mut from = 0;
        let mut at = 0;
        while at < bytes.len() {
            let found = stand_ins
                .iter()
                .find(|(pattern, _)| bytes[at..].starts_with(pattern));
            match found {
                Some((pattern, slot)) => {
                    pieces.push(Piece::Bytes(bytes[from..at].to_vec()));
                    pieces.push(Piece::Hole(*slot));
                    at += pattern.len();
                    from = at;
                }
                None => at += 1,
            }
        }
        pieces.push(Piece::Bytes(bytes[from..].to_vec()));
        Self {
            size: bytes.len(),
            pieces,
        }
    }

    /// The letter's email, or `None` where only a whole build is sure.
    fn fill(&self, draft: &Draft, letter: &Letter) -> Option<Result<Rendered, Unbuildable>> {
        if !uuid_shaped(&letter.outbox_id) {
            return None;
        }
        let (to, text, html) = match draft.parts(letter) {
            Ok(parts) => parts,
            Err(e) => return Some(Err(e)),
        };
        if !seven_bit(text.as_bytes()) || !seven_bit(html.as_bytes()) {
            return None;
        }
        let to_line = to_line(&to);
        let envelope = match draft.envelope(&to) {
            Ok(envelope) => envelope,
            Err(e) => return Some(Err(e)),
        };
        let mut bytes = Vec::with_capacity(self.size + text.len() + html.len() + to_line.len());
        for piece in &self.pieces {
            bytes.extend_from_slice(match piece {
                Piece::Bytes(b) => b,
                Piece::Hole(Slot::To) => to_line.as_bytes(),
                Piece::Hole(Slot::Id) => letter.outbox_id.as_bytes(),
                Piece::Hole(Slot::Text) => text.as_bytes(),
                Piece::Hole(Slot::Html) => html.as_bytes(),
            });
        }
        Some(Ok(Rendered {
            outbox_id: letter.outbox_id.clone(),
            invitation_id: letter.invitation_id.clone(),
            envelope,
            bytes,
        }))
    }
}

fn unbuildable(e: impl std::fmt::Display) -> Unbuildable {
    Unbuildable(format!("the message cannot be built: {e}"))
}

/// The `To` header line as lettre writes it in a message.
fn to_line(to: &Mailbox) -> String {
    let mut headers = Headers::new();
    headers.set(To::from(Mailboxes::from(to.clone())));
    headers.to_string()
}

/// A UUID as `uuid` writes it: what every outbox id is.
fn uuid_shaped(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn wording(language: &str, reminder: bool) -> Wording {
        Wording {
            language: language.into(),
            reminder,
            organisation: "Acme & Zonen".into(),
            title: "Ontwikkelmogelijkheden".into(),
            closes_at: "2026-01-09T16:00:00Z".parse().unwrap(),
            time_zone: chrono_tz::Europe::Amsterdam,
            min_group_size: 5,
        }
    }

    fn letter() -> Letter {
        Letter {
            invitation_id: "invitation-1".into(),
            outbox_id: "0b5e5d3c-5b7a-4f55-8d6e-2f1b9c2a7d10".into(),
            queued_at: "2026-01-05T08:00:00".parse().unwrap(),
            to_email: "anna.de.vries@example.org".into(),
            to_name: "Anna de Vries".into(),
            link: "https://peil.example.org/s/abc".into(),
        }
    }

    fn sender() -> Sender {
        Sender {
            from: "Peil <peil@example.org>".parse().unwrap(),
            reply_to: Some("hr@example.org".parse().unwrap()),
        }
    }

    fn render(wording: &Wording, letter: &Letter) -> String {
        let rendered = Draft::new(wording, &sender())
            .unwrap()
            .render(letter)
            .unwrap();
        String::from_utf8(rendered.bytes).unwrap()
    }

    #[test]
    fn the_same_letter_renders_to_the_same_bytes() {
        let draft = Draft::new(&wording("nl", false), &sender()).unwrap();
        let a = draft.render(&letter()).unwrap();
        let b = Draft::new(&wording("nl", false), &sender())
            .unwrap()
            .render(&letter())
            .unwrap();
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
    fn a_plain_email_is_readable_seven_bit_text() {
        for language in ["nl", "en"] {
            for reminder in [false, true] {
                let text = render(&wording(language, reminder), &letter());
                assert!(text.is_ascii(), "{text}");
                assert!(!text.contains("quoted-printable"), "{text}");
                assert!(!text.contains("base64"), "{text}");
                assert!(text.contains("Content-Transfer-Encoding: 7bit"), "{text}");
                // Unbroken, so filters and people see the whole link.
                assert!(
                    text.contains("href=\"https://peil.example.org/s/abc\""),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn filling_a_draft_equals_rendering_the_templates_with_the_values() {
        let names = [
            "Anna de Vries",
            "José Müller-Lüdenscheidt",
            "<script>alert(1)</script> & \"Bob\" O'Neil",
            "Name \u{E000}link\u{E000} tricky",
        ];
        for language in ["nl", "en"] {
            for reminder in [false, true] {
                let wording = wording(language, reminder);
                let draft = Draft::new(&wording, &sender()).unwrap();
                for name in names {
                    let clean = unmarked(name);
                    let link = "https://peil.example.org/s/abc";
                    let direct = |part| render_part(part, &wording, &clean, link).unwrap();
                    assert_eq!(draft.text.fill(&clean, link), crlf(&direct("body.txt")));
                    assert_eq!(
                        draft.html.fill(&HtmlEscape(&clean).to_string(), link),
                        crlf(&direct("body.html"))
                    );
                    assert_eq!(draft.subject, direct("subject.txt").trim());
                    let mut letter = letter();
                    letter.to_name = name.into();
                    let email = render(&wording, &letter);
                    assert!(!email.contains(MARK), "{email}");
                }
            }
        }
    }

    #[test]
    fn letters_speak_the_persons_language_and_escape_html() {
        let nl = wording("nl", false);
        let part = |w: &Wording, name| {
            render_part(name, w, "Anna", "https://peil.example.org/s/abc").unwrap()
        };
        let text = part(&nl, "body.txt");
        assert!(text.contains("ongeveer twee minuten"), "{text}");
        assert!(text.contains("vrijdag 9 januari om 17:00"), "{text}");
        assert!(text.contains("https://peil.example.org/s/abc"));
        assert!(text.contains("Acme & Zonen"), "plain text is not escaped");
        let html = part(&nl, "body.html");
        assert!(html.contains("Acme &amp; Zonen"), "HTML is: {html}");
        assert!(html.contains("href=\"https://peil.example.org/s/abc\""));
        let en = wording("en", true);
        let text = part(&en, "body.txt");
        assert!(text.contains("about two minutes"), "{text}");
        assert!(text.contains("Friday 9 January at 17:00"), "{text}");
        assert!(text.contains("anonymous"));
        let subject = part(&en, "subject.txt");
        assert!(
            subject.starts_with("Reminder: Ontwikkelmogelijkheden"),
            "{subject}"
        );
        let subject = part(&nl, "subject.txt");
        assert!(subject.starts_with("Ontwikkelmogelijkheden"), "{subject}");
        let mut html_name = letter();
        html_name.to_name = "<b>Bob</b>".into();
        let email = render(&en, &html_name);
        assert!(
            email.contains("Hello &lt;b&gt;Bob&lt;&#x2f;b&gt;,</p>"),
            "{email}"
        );
        assert!(email.contains("Hello <b>Bob</b>,\r\n"), "{email}");
    }

    #[test]
    fn seven_bit_means_ascii_crlf_and_short_lines() {
        assert!(seven_bit(b"Hello,\r\n\r\nbye\r\n"));
        assert!(seven_bit(&[b'x'; 78]));
        assert!(!seven_bit(&[b'x'; 79]));
        let line = |n: usize| [vec![b'x'; n], b"\r\nend".to_vec()].concat();
        assert!(seven_bit(&line(78)));
        assert!(!seven_bit(&line(79)), "a long line before a CRLF");
        assert!(!seven_bit(b"a\r\n\nb"), "a bare LF after a CRLF");
        let second = |n: usize| [b"first\r\n".to_vec(), line(n)].concat();
        assert!(seven_bit(&second(78)));
        assert!(!seven_bit(&second(79)), "a long second line");
        assert!(!seven_bit("Jos\u{e9}".as_bytes()));
        assert!(!seven_bit(b"a\nb"), "a bare LF");
        assert!(!seven_bit(b"a\rb"), "a bare CR");
        assert!(!seven_bit(b"a\r"), "a CR at the end");
        assert!(!seven_bit(b"a\0b"));
    }

    #[test]
    fn a_name_with_specials_stays_one_recipient() {
        let mut comma = letter();
        comma.to_name = "de Vries, Anna \"AJ\"".into();
        let draft = Draft::new(&wording("en", false), &sender()).unwrap();
        let rendered = draft.render(&comma).unwrap();
        assert_eq!(rendered.envelope.to().len(), 1);
        let text = String::from_utf8(rendered.bytes).unwrap();
        // An RFC 2047 word: base64 of `de Vries, Anna "AJ"`, comma and all.
        assert!(
            text.contains(
                "To: =?utf-8?b?ZGUgVnJpZXMsIEFubmEgIkFKIg==?= <anna.de.vries@example.org>\r\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_plain_letter_is_filled_into_the_stencil() {
        let draft = Draft::new(&wording("nl", false), &sender()).unwrap();
        let letter = letter();
        let stencil = draft.stencil(letter.queued_at).expect("a stencil");
        let filled = stencil.fill(&draft, &letter).expect("filled").unwrap();
        assert_eq!(filled.bytes, draft.build(&letter).unwrap().bytes);
        // A name lettre writes as quoted-printable is built whole.
        let mut accented = letter;
        accented.to_name = "Jos\u{e9} M\u{fc}ller".into();
        assert!(stencil.fill(&draft, &accented).is_none());
        let email = String::from_utf8(draft.render(&accented).unwrap().bytes).unwrap();
        assert!(email.contains("quoted-printable"), "{email}");
    }

    #[test]
    fn a_bad_address_is_unbuildable() {
        let mut bad = letter();
        bad.to_email = "not an address".into();
        let draft = Draft::new(&wording("en", false), &sender()).unwrap();
        assert!(draft.render(&bad).is_err());
    }

    proptest::proptest! {
        /// Whatever the name, address, id and time, an email filled into a
        /// stencil is byte for byte the email lettre builds whole.
        #[test]
        fn a_stencil_gives_what_lettre_builds(
            name in proptest::prop_oneof![
                "[ -~]{0,100}",
                "\\PC{0,40}",
                proptest::sample::select(vec![
                    String::new(), " ".into(), "de Vries, Anna \"AJ\"".into(),
                    "=?utf-8?q?x?=".into(), "a\u{E000}link\u{E000}b".into(),
                    "Ren\u{e9}e".into(), "<b>Bob</b> & 'Al'".into(),
                ]),
            ],
            local in "[a-z0-9][a-z0-9._+-]{0,60}",
            id in proptest::prelude::any::<u128>(),
            odd_id in proptest::prelude::any::<bool>(),
            reminder in proptest::prelude::any::<bool>(),
            dutch in proptest::prelude::any::<bool>(),
            minutes in 0i64..1_000_000,
            token in "[A-Za-z0-9_-]{43}",
            reply_to in proptest::prelude::any::<bool>(),
            domain in "[a-z]{1,20}\\.(org|example)",
        ) {
            let sender = Sender {
                from: format!("Peil <peil@{domain}>").parse().unwrap(),
                reply_to: reply_to.then(|| format!("hr@{domain}").parse().unwrap()),
            };
            let draft = Draft::new(&wording(if dutch { "nl" } else { "en" }, reminder), &sender).unwrap();
            let base: NaiveDateTime = "2026-01-05T08:00:00".parse().unwrap();
            let outbox_id = uuid::Uuid::from_u128(id).to_string();
            let letter = Letter {
                // Now and then an id that is not a UUID: built whole.
                outbox_id: if odd_id { outbox_id.to_uppercase() } else { outbox_id },
                invitation_id: "invitation-1".into(),
                queued_at: base + Duration::minutes(minutes),
                to_email: format!("{local}@example.org"),
                to_name: name,
                link: format!("https://peil.example.org/s/{token}"),
            };
            let stencil = draft.stencil(letter.queued_at).expect("a stencil");
            // Filled in exactly when lettre would copy both bodies as they are.
            let fits = match draft.parts(&letter) {
                Ok((_, text, html)) => {
                    uuid_shaped(&letter.outbox_id)
                        && seven_bit(text.as_bytes())
                        && seven_bit(html.as_bytes())
                }
                Err(_) => uuid_shaped(&letter.outbox_id),
            };
            let Some(filled) = stencil.fill(&draft, &letter) else {
                proptest::prop_assert!(!fits, "a plain letter was built whole");
                return Ok(());
            };
            proptest::prop_assert!(fits);
            match (filled, draft.build(&letter)) {
                (Ok(filled), Ok(built)) => {
                    proptest::prop_assert_eq!(
                        String::from_utf8_lossy(&filled.bytes),
                        String::from_utf8_lossy(&built.bytes)
                    );
                    proptest::prop_assert_eq!(filled.envelope, built.envelope);
                }
                (Err(_), Err(_)) => {}
                (filled, built) => proptest::prop_assert!(false, "{:?} vs {:?}", filled.is_ok(), built.is_ok()),
            }
        }

        /// The scan for 7-bit text says what a plain loop over each byte says.
        #[test]
        fn seven_bit_scans_as_a_byte_loop_would(
            text in proptest::collection::vec(
                // Mostly text, so that long lines and later lines come up.
                proptest::sample::select(
                    [vec![b'a'; 30], vec![b' ', b'\r', b'\n', b'\r', b'\n', 0u8, 0xC3]].concat(),
                ),
                0..400,
            ),
            long in 0usize..100,
        ) {
            let mut text = text;
            text.splice(0..0, std::iter::repeat_n(b'x', long));
            let mut line = 0;
            let mut after_cr = false;
            let mut expected = true;
            for &byte in &text {
                match byte {
                    b'\n' if after_cr => line = 0,
                    b'\r' if !after_cr => {}
                    0 | b'\r' | b'\n' | 0x80.. => { expected = false; break }
                    _ if after_cr => { expected = false; break }
                    _ => line += 1,
                }
                after_cr = byte == b'\r';
                if line > 78 { expected = false; break }
            }
            expected = expected && !after_cr;
            proptest::prop_assert_eq!(seven_bit(&text), expected);
        }
    }
}
