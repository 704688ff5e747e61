//! Survey templates: versioned question sets a pulse asks from. Each
//! question has a stable id, a theme, a scale, a reverse-coded flag and its
//! text in every language Peil speaks (English and Dutch).
//!
//! Templates come from two places: the files in `survey-templates/`
//! (embedded in the binary with `include_str!`, so every replica has the
//! same; a broken file stops start-up) and organisations, which POST the
//! same structure as JSON. Both pass through one checker that reports every
//! problem at once. The file format, with every key and limit, is described
//! in `survey-templates/README.md`.
//!
//! A template must fit in a two-minute pulse. The estimate is 10 s for the
//! intro, 8 s per closed question and 30 s per (always optional) comment;
//! above [`MAX_SECONDS`] a template is refused.
//!
//! Changed wording is a new version; a question id keeps its meaning across
//! versions, so results stay comparable by id.

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A template taking longer than this by [`Template::estimated_seconds`] is refused.
pub const MAX_SECONDS: u32 = 120;
/// Seconds the estimate allows for reading the intro.
pub const INTRO_SECONDS: u32 = 10;
/// Seconds the estimate allows per closed question.
pub const CLOSED_SECONDS: u32 = 8;
/// Seconds the estimate allows per comment question.
pub const COMMENT_SECONDS: u32 = 30;
/// A comment's length limit when the template sets none, in characters.
pub const DEFAULT_COMMENT_LENGTH: u32 = 1000;
/// The highest length limit a template may set on a comment, in characters.
pub const MAX_COMMENT_LENGTH: u32 = 2000;
/// Reverse-coded questions a template may have at most.
pub const MAX_REVERSE: usize = 2;

const KEY_LENGTH: RangeInclusive<usize> = 2..=64;
const ID_MAX_LENGTH: usize = 32;
const TITLE_MAX: usize = 100;
const INTRO_MAX: usize = 1000;
const QUESTION_TEXT_MAX: usize = 300;
const LABEL_MAX: usize = 60;

/// What a question measures. Set per question, so a template may mix themes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Theme {
    #[serde(rename = "development_opportunities")]
    DevelopmentOpportunities,
    #[serde(rename = "career_outlook")]
    CareerOutlook,
    #[serde(rename = "psychological_safety")]
    PsychologicalSafety,
}

impl Theme {
    pub const ALL: [Theme; 3] = [
        Self::DevelopmentOpportunities,
        Self::CareerOutlook,
        Self::PsychologicalSafety,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DevelopmentOpportunities => "development_opportunities",
            Self::CareerOutlook => "career_outlook",
            Self::PsychologicalSafety => "psychological_safety",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

/// How a question is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Scale {
    /// 1 (strongly disagree) to 5 (strongly agree).
    #[serde(rename = "agree_5")]
    Agree5,
    /// 0 (not at all likely) to 10 (extremely likely); reported on its own,
    /// never mixed into a 1–5 theme mean.
    #[serde(rename = "likelihood_11")]
    Likelihood11,
    /// Free text: personal data of its author, so always optional.
    #[serde(rename = "comment")]
    Comment,
}

impl Scale {
    pub const ALL: [Scale; 3] = [Self::Agree5, Self::Likelihood11, Self::Comment];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agree5 => "agree_5",
            Self::Likelihood11 => "likelihood_11",
            Self::Comment => "comment",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Closed questions are answered with a number; comments with text.
    pub fn is_closed(self) -> bool {
        self != Self::Comment
    }

    /// The valid answers of a closed scale; `None` for comments.
    pub fn answer_range(self) -> Option<RangeInclusive<u8>> {
        match self {
            Self::Agree5 => Some(1..=5),
            Self::Likelihood11 => Some(0..=10),
            Self::Comment => None,
        }
    }
}

/// Text in every language Peil speaks: both required, trimmed, non-empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    pub en: String,
    pub nl: String,
}

impl Texts {
    /// The text in `language` ("nl" gives Dutch; anything else English).
    pub fn get(&self, language: &str) -> &str {
        if language == "nl" { &self.nl } else { &self.en }
    }
}

/// One question of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// Stable across versions: `[A-Z][A-Z0-9_]{0,31}`, unique in the template.
    #[schema(pattern = "^[A-Z][A-Z0-9_]{0,31}$")]
    pub id: String,
    pub theme: Theme,
    pub scale: Scale,
    /// Reverse-coded: scored 6 − x on 1–5 and 10 − x on 0–10. Closed questions only.
    #[serde(default)]
    pub reverse: bool,
    /// Whether an answer is needed to submit. Never true for a comment.
    #[serde(default)]
    pub required: bool,
    /// At most 300 characters per language.
    pub text: Texts,
    /// Comments only: the longest answer accepted, in characters (default 1000, at most 2000).
    /// Set on every comment of a checked template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 2000)]
    pub max_length: Option<u32>,
    /// Closed questions only: offer "don't know", which is excluded from scores.
    #[serde(default)]
    pub dont_know: bool,
}

impl Question {
    pub fn is_closed(&self) -> bool {
        self.scale.is_closed()
    }

    /// An answer on the question's scale, reverse-coded where the question
    /// says so; `None` for an answer off the scale or a comment.
    pub fn score(&self, answer: u8) -> Option<u8> {
        let range = self.scale.answer_range()?;
        if !range.contains(&answer) {
            return None;
        }
        Some(if self.reverse {
            range.start() + range.end() - answer
        } else {
            answer
        })
    }
}

/// The words shown on a scale's answer options. Every label that a scale
/// used in the template needs must be present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    /// The five points of `agree_5`, from 1 (strongly disagree) to 5 (strongly agree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 5, max_items = 5)]
    pub agree_5: Option<Vec<Texts>>,
    /// The two ends of `likelihood_11`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likelihood_11: Option<EndLabels>,
    /// The "don't know" option, needed when a question offers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dont_know: Option<Texts>,
}

/// The labels at the two ends of a 0–10 scale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndLabels {
    /// Shown at 0.
    pub low: Texts,
    /// Shown at 10.
    pub high: Texts,
}

/// A versioned question set. Its JSON is what the API serves, the database
/// stores and each wave pins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// `[a-z][a-z0-9-]*`, 2–64 characters.
    #[schema(pattern = "^[a-z][a-z0-9-]{1,63}$")]
    pub key: String,
    /// At least 1. Set in a file; assigned by the server for a template sent to the API.
    #[schema(read_only, minimum = 1)]
    pub version: u32,
    pub title: Texts,
    pub intro: Texts,
    #[serde(default)]
    pub labels: Labels,
    pub questions: Vec<Question>,
}

impl Template {
    /// Parses and checks a template file; errors name the file, the question
    /// and the problem, all problems at once.
    pub fn from_toml(file: &str, source: &str) -> Result<Template, TemplateError> {
        let value: Value = toml::from_str(source).map_err(|error| TemplateError::Syntax {
            file: file.to_owned(),
            message: describe_toml_error(source, &error),
        })?;
        check(&value, Origin::File).map_err(|problems| TemplateError::Invalid {
            file: file.to_owned(),
            problems,
        })
    }

    /// Checks a template document received as JSON through the API (the
    /// file's structure, without `version`: the caller assigns it and passes
    /// it in). Reports all problems at once.
    pub fn from_json_value(
        value: serde_json::Value,
        version: u32,
    ) -> Result<Template, Vec<TemplateProblem>> {
        check(&value, Origin::Api { version })
    }

    /// 10 s intro + 8 s per closed question + 30 s per comment.
    pub fn estimated_seconds(&self) -> u32 {
        let closed = self.closed_questions().count();
        estimate(closed, self.questions.len() - closed)
    }

    pub fn closed_questions(&self) -> impl Iterator<Item = &Question> {
        self.questions.iter().filter(|q| q.is_closed())
    }

    pub fn comment_questions(&self) -> impl Iterator<Item = &Question> {
        self.questions.iter().filter(|q| !q.is_closed())
    }

    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
    }

    /// The themes asked, each once, in order of first appearance.
    pub fn themes(&self) -> Vec<Theme> {
        let mut themes = Vec::new();
        for question in &self.questions {
            if !themes.contains(&question.theme) {
                themes.push(question.theme);
            }
        }
        themes
    }
}

fn estimate(closed: usize, comments: usize) -> u32 {
    let seconds = INTRO_SECONDS as usize
        + CLOSED_SECONDS as usize * closed
        + COMMENT_SECONDS as usize * comments;
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

/// One problem with a template: the field as a dotted path into the
/// document as sent (`questions.2.text.nl`, `key`, `questions`), the id of
/// the question it concerns when there is one, and what is wrong in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TemplateProblem {
    pub field: String,
    pub question: Option<String>,
    pub detail: String,
}

impl fmt::Display for TemplateProblem {
    /// `question DEV3: text.nl is missing`, `key must be …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = match &self.question {
            Some(id) => {
                write!(f, "question {id}: ")?;
                within_question(&self.field)
            }
            None => &self.field,
        };
        if field.is_empty() {
            write!(f, "{}", self.detail)
        } else {
            write!(f, "{field} {}", self.detail)
        }
    }
}

/// `questions.2.text.nl` → `text.nl`.
fn within_question(field: &str) -> &str {
    field
        .strip_prefix("questions.")
        .and_then(|rest| rest.split_once('.'))
        .map_or(field, |(_, inside)| inside)
}

/// Why a template file was refused.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// Not TOML at all.
    #[error("{file}: not valid TOML: {message}")]
    Syntax { file: String, message: String },
    /// TOML, but not a valid template; one line per problem.
    #[error("{}", list_problems(.file, .problems))]
    Invalid {
        file: String,
        problems: Vec<TemplateProblem>,
    },
}

fn list_problems(file: &str, problems: &[TemplateProblem]) -> String {
    problems
        .iter()
        .map(|problem| format!("{file}: {problem}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `line 3, column 7: invalid string`, from the error's byte span.
fn describe_toml_error(source: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim();
    let Some(span) = error.span() else {
        return message.to_owned();
    };
    let before = source.get(..span.start).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |current| current.chars().count())
        + 1;
    format!("line {line}, column {column}: {message}")
}

// ---------------------------------------------------------------------------
// The checker. It walks the document as a JSON value (a TOML file is read
// into one first) rather than deserialising into `Template` directly, so
// that it can report every problem, type errors and unknown keys included,
// instead of stopping at the first. The serde derives above read back what
// the checker built (stored templates); a test keeps the two in step.

/// Where a document comes from: a file carries its own version, the API's
/// caller assigns one. Also decides whether to say "table" or "object".
#[derive(Debug, Clone, Copy)]
enum Origin {
    File,
    Api { version: u32 },
}

const TEMPLATE_KEYS: &[&str] = &["key", "version", "title", "intro", "labels", "questions"];
const QUESTION_KEYS: &[&str] = &[
    "id",
    "theme",
    "scale",
    "reverse",
    "required",
    "text",
    "max_length",
    "dont_know",
];
const LABEL_KEYS: &[&str] = &["agree_5", "likelihood_11", "dont_know"];
const END_KEYS: &[&str] = &["low", "high"];
const LANGUAGES: &[&str] = &["en", "nl"];

fn check(value: &Value, origin: Origin) -> Result<Template, Vec<TemplateProblem>> {
    let mut checker = Checker {
        origin,
        problems: Vec::new(),
    };
    let template = checker.template(value);
    match template {
        Some(template) if checker.problems.is_empty() => Ok(template),
        _ => {
            if checker.problems.is_empty() {
                // Every path that gives up records why; this is a safety net.
                checker.problem("", None, "could not be read as a template");
            }
            Err(checker.problems)
        }
    }
}

struct Checker {
    origin: Origin,
    problems: Vec<TemplateProblem>,
}

/// Which labels a document gives, whether or not they are valid.
#[derive(Debug, Default, Clone, Copy)]
struct GivenLabels {
    agree_5: bool,
    likelihood_11: bool,
    dont_know: bool,
}

/// What a question contributes to the checks across questions, known even
/// when the question itself has problems.
struct Seen {
    id: Option<String>,
    scale: Option<Scale>,
    reverse: bool,
    dont_know: bool,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A value that is absent or `null` counts as not given.
fn get<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    map.get(key).filter(|v| !v.is_null())
}

fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    KEY_LENGTH.contains(&key.len())
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    id.len() <= ID_MAX_LENGTH
        && chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

impl Checker {
    fn problem(&mut self, field: &str, question: Option<&str>, detail: impl Into<String>) {
        self.problems.push(TemplateProblem {
            field: field.to_owned(),
            question: question.map(str::to_owned),
            detail: detail.into(),
        });
    }

    fn table_word(&self) -> &'static str {
        match self.origin {
            Origin::File => "a table",
            Origin::Api { .. } => "an object",
        }
    }

    /// The value as a table, with every key not in `known` reported.
    fn table<'v>(
        &mut self,
        value: &'v Value,
        path: &str,
        question: Option<&str>,
        known: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Some(map) = value.as_object() else {
            let detail = format!("must be {}", self.table_word());
            self.problem(path, question, detail);
            return None;
        };
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                let detail = format!("is not a known key (expected one of: {})", known.join(", "));
                self.problem(&join(path, key), question, detail);
            }
        }
        Some(map)
    }

    fn required<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        path: &str,
        key: &str,
        question: Option<&str>,
    ) -> Option<&'v Value> {
        let value = get(map, key);
        if value.is_none() {
            self.problem(&join(path, key), question, "is missing");
        }
        value
    }

    fn string<'v>(
        &mut self,
        value: &'v Value,
        path: &str,
        question: Option<&str>,
    ) -> Option<&'v str> {
        let text = value.as_str();
        if text.is_none() {
            self.problem(path, question, "must be a string");
        }
        text
    }

    /// An optional `true`/`false`, `false` when absent (and when wrong,
    /// after reporting it).
    fn flag(&mut self, map: &Map<String, Value>, path: &str, key: &str, q: Option<&str>) -> bool {
        match get(map, key) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.problem(&join(path, key), q, "must be true or false");
                false
            }
        }
    }

    fn template(&mut self, value: &Value) -> Option<Template> {
        let map = self.table(value, "", None, TEMPLATE_KEYS)?;

        let key = self.required(map, "", "key", None).and_then(|v| {
            let key = self.string(v, "key", None)?;
            if is_valid_key(key) {
                Some(key.to_owned())
            } else {
                self.problem(
                    "key",
                    None,
                    "must be 2 to 64 characters: a lower-case letter, then lower-case letters, digits or `-`",
                );
                None
            }
        });

        let version = match self.origin {
            Origin::File => self.required(map, "", "version", None).and_then(|v| {
                let version = v.as_u64().and_then(|n| u32::try_from(n).ok());
                match version {
                    Some(n) if n >= 1 => Some(n),
                    _ => {
                        self.problem("version", None, "must be a whole number, at least 1");
                        None
                    }
                }
            }),
            Origin::Api { version } => {
                if get(map, "version").is_some() {
                    self.problem("version", None, "is assigned by the server: leave it out");
                }
                if version == 0 {
                    self.problem("version", None, "must be at least 1");
                }
                Some(version)
            }
        };

        let title = self.texts(get(map, "title"), "title", None, TITLE_MAX);
        let intro = self.texts(get(map, "intro"), "intro", None, INTRO_MAX);
        let labels_value = get(map, "labels");
        let labels = match labels_value {
            None => Some(Labels::default()),
            Some(value) => self.labels(value),
        };
        // Which labels are there at all, good or bad, to tell a missing one
        // apart from one already reported; unknown when `labels` is no table.
        let given = match labels_value {
            None => Some(GivenLabels::default()),
            Some(value) => value.as_object().map(|labels| GivenLabels {
                agree_5: get(labels, "agree_5").is_some(),
                likelihood_11: get(labels, "likelihood_11").is_some(),
                dont_know: get(labels, "dont_know").is_some(),
            }),
        };
        let questions = self.questions(get(map, "questions"), given);

        Some(Template {
            key: key?,
            version: version?,
            title: title?,
            intro: intro?,
            labels: labels?,
            questions: questions?,
        })
    }

    fn texts(
        &mut self,
        value: Option<&Value>,
        path: &str,
        question: Option<&str>,
        max: usize,
    ) -> Option<Texts> {
        let Some(value) = value else {
            self.problem(path, question, "is missing");
            return None;
        };
        if !value.is_object() {
            let detail = format!("must be {} with `en` and `nl` texts", self.table_word());
            self.problem(path, question, detail);
            return None;
        }
        let map = self.table(value, path, question, LANGUAGES)?;
        let en = self.text(map, path, "en", question, max);
        let nl = self.text(map, path, "nl", question, max);
        Some(Texts { en: en?, nl: nl? })
    }

    fn text(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        language: &str,
        question: Option<&str>,
        max: usize,
    ) -> Option<String> {
        let value = self.required(map, path, language, question)?;
        let path = join(path, language);
        let text = self.string(value, &path, question)?.trim();
        let length = text.chars().count();
        if text.is_empty() {
            self.problem(&path, question, "must not be empty");
            None
        } else if text.chars().any(char::is_control) {
            self.problem(
                &path,
                question,
                "must not contain control characters (line breaks, tabs)",
            );
            None
        } else if length > max {
            self.problem(
                &path,
                question,
                format!("must be at most {max} characters, not {length}"),
            );
            None
        } else {
            Some(text.to_owned())
        }
    }

    fn labels(&mut self, value: &Value) -> Option<Labels> {
        let map = self.table(value, "labels", None, LABEL_KEYS)?;
        let mut ok = true;

        let agree_5 = match get(map, "agree_5") {
            None => None,
            Some(value) => {
                let labels = self.agree_labels(value);
                ok &= labels.is_some();
                labels
            }
        };
        let likelihood_11 = match get(map, "likelihood_11") {
            None => None,
            Some(value) => {
                let path = "labels.likelihood_11";
                let ends = self.table(value, path, None, END_KEYS).and_then(|ends| {
                    let low = self.texts(get(ends, "low"), &join(path, "low"), None, LABEL_MAX);
                    let high = self.texts(get(ends, "high"), &join(path, "high"), None, LABEL_MAX);
                    Some(EndLabels {
                        low: low?,
                        high: high?,
                    })
                });
                ok &= ends.is_some();
                ends
            }
        };
        let dont_know = match get(map, "dont_know") {
            None => None,
            Some(value) => {
                let texts = self.texts(Some(value), "labels.dont_know", None, LABEL_MAX);
                ok &= texts.is_some();
                texts
            }
        };

        ok.then_some(Labels {
            agree_5,
            likelihood_11,
            dont_know,
        })
    }

    fn agree_labels(&mut self, value: &Value) -> Option<Vec<Texts>> {
        let path = "labels.agree_5";
        let Some(points) = value.as_array() else {
            self.problem(path, None, "must be an array of 5 labels, from 1 to 5");
            return None;
        };
        if points.len() != 5 {
            let detail = format!(
                "must have 5 labels, from 1 (strongly disagree) to 5 (strongly agree), not {}",
                points.len()
            );
            self.problem(path, None, detail);
            return None;
        }
        let labels: Vec<Option<Texts>> = points
            .iter()
            .enumerate()
            .map(|(i, point)| self.texts(Some(point), &join(path, &i.to_string()), None, LABEL_MAX))
            .collect();
        labels.into_iter().collect()
    }

    fn questions(
        &mut self,
        value: Option<&Value>,
        labels: Option<GivenLabels>,
    ) -> Option<Vec<Question>> {
        let Some(value) = value else {
            self.problem("questions", None, "is missing");
            return None;
        };
        let Some(items) = value.as_array() else {
            self.problem("questions", None, "must be an array of questions");
            return None;
        };

        let mut questions = Vec::with_capacity(items.len());
        let mut seen: Vec<Seen> = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let (question, what) = self.question(item, &format!("questions.{index}"));
            if let Some(id) = &what.id
                && let Some(first) = seen.iter().position(|s| s.id.as_ref() == Some(id))
            {
                self.problem(
                    &format!("questions.{index}.id"),
                    Some(id),
                    format!("is used twice (first at questions.{first})"),
                );
            }
            questions.push(question);
            seen.push(what);
        }

        self.across_questions(&seen, labels);
        questions.into_iter().collect()
    }

    fn question(&mut self, value: &Value, path: &str) -> (Option<Question>, Seen) {
        let mut seen = Seen {
            id: None,
            scale: None,
            reverse: false,
            dont_know: false,
        };
        // The question's id, to name it in its other problems when it is valid.
        if let Some(id) = value
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| is_valid_id(id))
        {
            seen.id = Some(id.to_owned());
        }
        let q = seen.id.clone();
        let q = q.as_deref();
        let Some(map) = self.table(value, path, q, QUESTION_KEYS) else {
            return (None, seen);
        };

        let id = self.required(map, path, "id", q).and_then(|v| {
            let id = self.string(v, &join(path, "id"), q)?;
            if is_valid_id(id) {
                Some(id.to_owned())
            } else {
                self.problem(
                    &join(path, "id"),
                    None,
                    "must be 1 to 32 characters: an upper-case letter, then upper-case letters, digits or `_` (like DEV1)",
                );
                None
            }
        });
        let theme = self.required(map, path, "theme", q).and_then(|v| {
            let theme = Theme::parse(self.string(v, &join(path, "theme"), q)?);
            if theme.is_none() {
                let names: Vec<&str> = Theme::ALL.iter().map(|t| t.as_str()).collect();
                let detail = format!("must be one of: {}", names.join(", "));
                self.problem(&join(path, "theme"), q, detail);
            }
            theme
        });
        let scale = self.required(map, path, "scale", q).and_then(|v| {
            let scale = Scale::parse(self.string(v, &join(path, "scale"), q)?);
            if scale.is_none() {
                let names: Vec<&str> = Scale::ALL.iter().map(|s| s.as_str()).collect();
                let detail = format!("must be one of: {}", names.join(", "));
                self.problem(&join(path, "scale"), q, detail);
            }
            scale
        });
        seen.scale = scale;
        let comment = scale == Some(Scale::Comment);

        let reverse = self.flag(map, path, "reverse", q);
        if reverse && comment {
            self.problem(
                &join(path, "reverse"),
                q,
                "is only allowed on closed questions (agree_5, likelihood_11)",
            );
        }
        seen.reverse = reverse && !comment;

        let required = self.flag(map, path, "required", q);
        if required && comment {
            self.problem(
                &join(path, "required"),
                q,
                "must be false: a comment is personal data of its author, so answering it is always optional",
            );
        }

        let dont_know = self.flag(map, path, "dont_know", q);
        if dont_know && comment {
            self.problem(
                &join(path, "dont_know"),
                q,
                "is only allowed on closed questions (agree_5, likelihood_11)",
            );
        }
        seen.dont_know = dont_know && !comment;

        let max_length = match get(map, "max_length") {
            None => Some(None),
            Some(value) => {
                let field = join(path, "max_length");
                let limit = value.as_u64().and_then(|n| u32::try_from(n).ok());
                match limit {
                    _ if scale.is_some_and(Scale::is_closed) => {
                        self.problem(&field, q, "is only allowed on comment questions");
                        None
                    }
                    Some(n) if (1..=MAX_COMMENT_LENGTH).contains(&n) => Some(Some(n)),
                    _ => {
                        let detail =
                            format!("must be a whole number from 1 to {MAX_COMMENT_LENGTH}");
                        self.problem(&field, q, detail);
                        None
                    }
                }
            }
        };

        let text = self.texts(get(map, "text"), &join(path, "text"), q, QUESTION_TEXT_MAX);

        let question = match (id, theme, scale, text, max_length) {
            (Some(id), Some(theme), Some(scale), Some(text), Some(max_length)) => Some(Question {
                id,
                theme,
                scale,
                reverse,
                required,
                text,
                // Every comment of a checked template carries its limit.
                max_length: if scale.is_closed() {
                    None
                } else {
                    Some(max_length.unwrap_or(DEFAULT_COMMENT_LENGTH))
                },
                dont_know,
            }),
            _ => None,
        };
        (question, seen)
    }

    /// The rules about the question set as a whole: a closed question, few
    /// reverse-coded ones, the labels the scales need, two minutes.
    fn across_questions(&mut self, seen: &[Seen], labels: Option<GivenLabels>) {
        let closed = seen
            .iter()
            .filter(|s| s.scale.is_some_and(Scale::is_closed))
            .count();
        let comments = seen
            .iter()
            .filter(|s| s.scale == Some(Scale::Comment))
            .count();
        let unknown = seen.iter().any(|s| s.scale.is_none());

        if closed == 0 && !unknown {
            self.problem(
                "questions",
                None,
                "must include at least one closed question (agree_5 or likelihood_11)",
            );
        }

        let reversed: Vec<String> = seen
            .iter()
            .enumerate()
            .filter(|(_, s)| s.reverse)
            .map(|(i, s)| s.id.clone().unwrap_or_else(|| format!("questions.{i}")))
            .collect();
        if reversed.len() > MAX_REVERSE {
            let detail = format!(
                "may have at most {MAX_REVERSE} reverse-coded questions, not {} ({})",
                reversed.len(),
                reversed.join(", ")
            );
            self.problem("questions", None, detail);
        }

        // Labels can only be judged missing when `labels` itself is a table.
        if let Some(labels) = labels {
            let first_with = |wanted: &dyn Fn(&Seen) -> bool| {
                seen.iter()
                    .enumerate()
                    .find(|(_, s)| wanted(s))
                    .map(|(i, s)| s.id.clone().unwrap_or_else(|| format!("questions.{i}")))
            };
            if !labels.agree_5
                && let Some(user) = first_with(&|s| s.scale == Some(Scale::Agree5))
            {
                let detail = format!("is missing: question {user} uses the agree_5 scale");
                self.problem("labels.agree_5", None, detail);
            }
            if !labels.likelihood_11
                && let Some(user) = first_with(&|s| s.scale == Some(Scale::Likelihood11))
            {
                let detail = format!("is missing: question {user} uses the likelihood_11 scale");
                self.problem("labels.likelihood_11", None, detail);
            }
            if !labels.dont_know
                && let Some(user) = first_with(&|s| s.dont_know)
            {
                let detail = format!("is missing: question {user} offers \"don't know\"");
                self.problem("labels.dont_know", None, detail);
            }
        }

        let seconds = estimate(closed, comments);
        if seconds > MAX_SECONDS {
            let detail = format!(
                "take an estimated {seconds} s to answer ({INTRO_SECONDS} s intro + {closed} closed × {CLOSED_SECONDS} s + {comments} {} × {COMMENT_SECONDS} s), more than the {MAX_SECONDS} s a two-minute pulse allows",
                if comments == 1 { "comment" } else { "comments" }
            );
            self.problem("questions", None, detail);
        }
    }
}

// ---------------------------------------------------------------------------
// The shipped templates.

/// The files of `survey-templates/`, embedded in the binary. A test fails
/// when a `.toml` file in that directory is missing here.
pub const BUILTIN_FILES: [(&str, &str); 3] = [
    (
        "development.toml",
        include_str!("../../survey-templates/development.toml"),
    ),
    (
        "career.toml",
        include_str!("../../survey-templates/career.toml"),
    ),
    (
        "safety.toml",
        include_str!("../../survey-templates/safety.toml"),
    ),
];

/// The shipped templates, parsed and checked once. An error names the file
/// and every problem in it; start-up should refuse to run on one.
pub fn builtin() -> Result<&'static [Template], &'static TemplateError> {
    static BUILTIN: OnceLock<Result<Vec<Template>, TemplateError>> = OnceLock::new();
    BUILTIN
        .get_or_init(|| load_builtin(&BUILTIN_FILES))
        .as_ref()
        .map(Vec::as_slice)
}

fn load_builtin(files: &[(&str, &str)]) -> Result<Vec<Template>, TemplateError> {
    files
        .iter()
        .map(|(name, source)| {
            let file = format!("survey-templates/{name}");
            let template = Template::from_toml(&file, source)?;
            // The file name is the key, so keys are unique and easy to find.
            let stem = name.strip_suffix(".toml").unwrap_or(name);
            if template.key != stem {
                return Err(TemplateError::Invalid {
                    file,
                    problems: vec![TemplateProblem {
                        field: "key".into(),
                        question: None,
                        detail: format!("must match the file name: \"{stem}\""),
                    }],
                });
            }
            Ok(template)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A valid document in the API's shape (no `version`), to break one piece at a time.
    fn document() -> Value {
        json!({
            "key": "mini",
            "title": { "en": "Mini", "nl": "Mini" },
            "intro": { "en": "Two questions.", "nl": "Twee vragen." },
            "labels": {
                "agree_5": [
                    { "en": "Strongly disagree", "nl": "Helemaal mee oneens" },
                    { "en": "Disagree", "nl": "Mee oneens" },
                    { "en": "Neither", "nl": "Niet eens, niet oneens" },
                    { "en": "Agree", "nl": "Mee eens" },
                    { "en": "Strongly agree", "nl": "Helemaal mee eens" }
                ]
            },
            "questions": [
                {
                    "id": "Q1",
                    "theme": "psychological_safety",
                    "scale": "agree_5",
                    "text": { "en": "I feel safe.", "nl": "Ik voel me veilig." }
                },
                {
                    "id": "Q_T",
                    "theme": "psychological_safety",
                    "scale": "comment",
                    "text": { "en": "Anything else?", "nl": "Nog iets?" }
                }
            ]
        })
    }

    fn closed(id: &str) -> Value {
        json!({
            "id": id,
            "theme": "career_outlook",
            "scale": "agree_5",
            "text": { "en": "A statement.", "nl": "Een stelling." }
        })
    }

    fn comment(id: &str) -> Value {
        json!({
            "id": id,
            "theme": "career_outlook",
            "scale": "comment",
            "text": { "en": "Why?", "nl": "Waarom?" }
        })
    }

    fn problems(value: Value) -> Vec<TemplateProblem> {
        match Template::from_json_value(value, 1) {
            Ok(template) => panic!("expected problems, got {template:?}"),
            Err(problems) => problems,
        }
    }

    fn has(problems: &[TemplateProblem], field: &str, question: Option<&str>, detail: &str) {
        assert!(
            problems.iter().any(|p| p.field == field
                && p.question.as_deref() == question
                && p.detail.contains(detail)),
            "no problem at {field} ({question:?}) containing {detail:?} in {problems:#?}"
        );
    }

    const TOML_DOCUMENT: &str = r#"
key = "mini"
version = 1
title = { en = "Mini", nl = "Mini" }
intro = { en = "Two questions.", nl = "Twee vragen." }

[labels]
agree_5 = [
    { en = "1", nl = "1" }, { en = "2", nl = "2" }, { en = "3", nl = "3" },
    { en = "4", nl = "4" }, { en = "5", nl = "5" },
]

[[questions]]
id = "DEV1"
theme = "development_opportunities"
scale = "agree_5"
text = { en = "I learn.", nl = "Ik leer." }

[[questions]]
id = "DEV3"
theme = "development_opportunities"
scale = "agree_5"
text = { en = "I have time to learn." }
"#;

    #[test]
    fn a_valid_document_is_accepted_trimmed_and_normalised() {
        let mut value = document();
        value["title"]["en"] = json!("  Mini  ");
        let template = Template::from_json_value(value, 3).expect("valid");
        assert_eq!(template.version, 3);
        assert_eq!(template.title.en, "Mini");
        assert_eq!(template.estimated_seconds(), 10 + 8 + 30);
        let comment = template.question("Q_T").expect("Q_T");
        assert_eq!(comment.max_length, Some(DEFAULT_COMMENT_LENGTH));
        assert!(!comment.required);
        assert_eq!(template.question("Q1").and_then(|q| q.max_length), None);
        assert_eq!(template.closed_questions().count(), 1);
        assert_eq!(template.comment_questions().count(), 1);
    }

    #[test]
    fn a_file_problem_names_the_file_the_question_and_the_problem() {
        let error = Template::from_toml("survey-templates/x.toml", TOML_DOCUMENT)
            .expect_err("text.nl is missing");
        assert_eq!(
            error.to_string(),
            "survey-templates/x.toml: question DEV3: text.nl is missing"
        );
        match error {
            TemplateError::Invalid { file, problems } => {
                assert_eq!(file, "survey-templates/x.toml");
                assert_eq!(
                    problems,
                    vec![TemplateProblem {
                        field: "questions.1.text.nl".into(),
                        question: Some("DEV3".into()),
                        detail: "is missing".into(),
                    }]
                );
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        let fixed = TOML_DOCUMENT.replace(
            r#"{ en = "I have time to learn." }"#,
            r#"{ en = "I have time to learn.", nl = "Ik heb tijd om te leren." }"#,
        );
        let template = Template::from_toml("x.toml", &fixed).expect("fixed");
        assert_eq!(template.version, 1);
        assert_eq!(template.themes(), vec![Theme::DevelopmentOpportunities]);
    }

    #[test]
    fn toml_syntax_and_type_errors_say_where() {
        let error =
            Template::from_toml("bad.toml", "key = \"mini\"\nversion = \n").expect_err("syntax");
        let message = error.to_string();
        assert!(
            message.starts_with("bad.toml: not valid TOML: line 2"),
            "{message}"
        );

        let typed = TOML_DOCUMENT
            .replace("version = 1", "version = \"one\"")
            .replace(
                "scale = \"agree_5\"\ntext = { en = \"I learn.\"",
                "scale = \"agree_5\"\nreverse = \"yes\"\ntext = { en = \"I learn.\"",
            );
        let error = Template::from_toml("x.toml", &typed).expect_err("types");
        let message = error.to_string();
        assert!(
            message.contains("x.toml: version must be a whole number, at least 1"),
            "{message}"
        );
        assert!(
            message.contains("x.toml: question DEV1: reverse must be true or false"),
            "{message}"
        );
        assert!(
            message.contains("x.toml: question DEV3: text.nl is missing"),
            "{message}"
        );
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let mut value = document();
        value["key"] = json!("Mini Survey");
        value["intro"]["nl"] = json!("   ");
        value["questions"][0]["text"]["en"] = json!(5);
        value["questions"][1]["required"] = json!(true);
        let found = problems(value);
        has(&found, "key", None, "lower-case letter");
        has(&found, "intro.nl", None, "must not be empty");
        has(
            &found,
            "questions.0.text.en",
            Some("Q1"),
            "must be a string",
        );
        has(
            &found,
            "questions.1.required",
            Some("Q_T"),
            "always optional",
        );
        assert_eq!(found.len(), 4, "{found:#?}");
    }

    #[test]
    fn key_and_version_rules() {
        for bad in ["m", "1mini", "mini_survey", "Mini", &"m".repeat(65)] {
            let mut value = document();
            value["key"] = json!(bad);
            has(&problems(value), "key", None, "2 to 64 characters");
        }
        for good in ["mi", "team-pulse-2", &"m".repeat(64)] {
            let mut value = document();
            value["key"] = json!(good);
            assert!(Template::from_json_value(value, 1).is_ok(), "{good}");
        }
        let mut value = document();
        value["version"] = json!(4);
        has(&problems(value), "version", None, "assigned by the server");
        has(
            &Template::from_json_value(document(), 0).expect_err("version 0"),
            "version",
            None,
            "at least 1",
        );

        let without_version = TOML_DOCUMENT.replace("version = 1\n", "").replace(
            "{ en = \"I have time to learn.\" }",
            "{ en = \"T\", nl = \"T\" }",
        );
        let error = Template::from_toml("x.toml", &without_version).expect_err("no version");
        assert_eq!(error.to_string(), "x.toml: version is missing");
        let zero = without_version.replace("key = \"mini\"", "key = \"mini\"\nversion = 0");
        let error = Template::from_toml("x.toml", &zero).expect_err("version 0");
        assert_eq!(
            error.to_string(),
            "x.toml: version must be a whole number, at least 1"
        );
    }

    #[test]
    fn texts_need_both_languages_without_control_characters_within_limits() {
        let mut value = document();
        value["title"] = json!("Mini");
        value["intro"]["en"] = json!("x".repeat(1001));
        value["questions"][0]["text"]["nl"] = json!("Twee\nregels");
        value["questions"][1]["text"]["en"] = json!("x".repeat(301));
        value["questions"][1]["text"]["de"] = json!("Noch etwas?");
        let found = problems(value);
        has(
            &found,
            "title",
            None,
            "must be an object with `en` and `nl` texts",
        );
        has(
            &found,
            "intro.en",
            None,
            "at most 1000 characters, not 1001",
        );
        has(
            &found,
            "questions.0.text.nl",
            Some("Q1"),
            "control characters",
        );
        has(
            &found,
            "questions.1.text.en",
            Some("Q_T"),
            "at most 300 characters",
        );
        has(
            &found,
            "questions.1.text.de",
            Some("Q_T"),
            "not a known key",
        );

        let mut value = document();
        value["questions"][0]["text"]["en"] = json!("é".repeat(300));
        assert!(
            Template::from_json_value(value, 1).is_ok(),
            "300 characters, not bytes"
        );
    }

    #[test]
    fn question_ids_are_well_formed_and_unique() {
        let mut value = document();
        value["questions"] = json!([
            closed("DEV1"),
            closed("dev2"),
            closed("DEV1"),
            comment("A_")
        ]);
        let found = problems(value);
        has(&found, "questions.1.id", None, "upper-case letter");
        has(
            &found,
            "questions.2.id",
            Some("DEV1"),
            "used twice (first at questions.0)",
        );
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(is_valid_id(&format!("A{}", "1".repeat(31))));
        assert!(!is_valid_id(&format!("A{}", "1".repeat(32))));
        assert!(!is_valid_id("_A") && !is_valid_id("") && !is_valid_id("DÉV"));
    }

    #[test]
    fn theme_and_scale_must_be_known() {
        let mut value = document();
        value["questions"][0]["theme"] = json!("wellbeing");
        value["questions"][1]["scale"] = json!("text");
        value["questions"][1]["theme"] = Value::Null;
        let found = problems(value);
        has(
            &found,
            "questions.0.theme",
            Some("Q1"),
            "must be one of: development_opportunities, career_outlook, psychological_safety",
        );
        has(
            &found,
            "questions.1.scale",
            Some("Q_T"),
            "must be one of: agree_5, likelihood_11, comment",
        );
        has(&found, "questions.1.theme", Some("Q_T"), "is missing");
    }

    #[test]
    fn comments_are_optional_and_only_comments_have_a_length() {
        let mut value = document();
        value["questions"][0]["max_length"] = json!(100);
        value["questions"][1]["reverse"] = json!(true);
        value["questions"][1]["dont_know"] = json!(true);
        value["questions"][1]["max_length"] = json!(2001);
        let found = problems(value);
        has(
            &found,
            "questions.0.max_length",
            Some("Q1"),
            "only allowed on comment questions",
        );
        has(
            &found,
            "questions.1.reverse",
            Some("Q_T"),
            "only allowed on closed questions",
        );
        has(
            &found,
            "questions.1.dont_know",
            Some("Q_T"),
            "only allowed on closed questions",
        );
        has(
            &found,
            "questions.1.max_length",
            Some("Q_T"),
            "from 1 to 2000",
        );

        for bad in [json!(0), json!(-1), json!(1.5), json!("long")] {
            let mut value = document();
            value["questions"][1]["max_length"] = bad;
            has(
                &problems(value),
                "questions.1.max_length",
                Some("Q_T"),
                "from 1 to 2000",
            );
        }
        let mut value = document();
        value["questions"][1]["max_length"] = json!(2000);
        let template = Template::from_json_value(value, 1).expect("2000 is allowed");
        assert_eq!(template.questions[1].max_length, Some(2000));
    }

    #[test]
    fn at_least_one_closed_question_and_at_most_two_reverse_coded() {
        let mut value = document();
        value["questions"] = json!([comment("T")]);
        has(
            &problems(value),
            "questions",
            None,
            "at least one closed question",
        );
        let mut value = document();
        value["questions"] = json!([]);
        has(
            &problems(value),
            "questions",
            None,
            "at least one closed question",
        );
        let mut value = document();
        value["questions"] = json!("Q1");
        has(&problems(value), "questions", None, "must be an array");

        let mut value = document();
        let mut items = vec![closed("A"), closed("B"), closed("C"), closed("D")];
        for item in &mut items[..3] {
            item["reverse"] = json!(true);
        }
        value["questions"] = Value::Array(items.clone());
        has(
            &problems(value),
            "questions",
            None,
            "at most 2 reverse-coded questions, not 3 (A, B, C)",
        );
        items[2]["reverse"] = json!(false);
        let mut value = document();
        value["questions"] = Value::Array(items);
        assert!(Template::from_json_value(value, 1).is_ok());
    }

    #[test]
    fn labels_needed_by_the_scales_used_must_be_there() {
        let mut value = document();
        value["labels"] = json!({});
        let mut likely = closed("CAR6");
        likely["scale"] = json!("likelihood_11");
        likely["dont_know"] = json!(true);
        value["questions"][1] = likely;
        let found = problems(value);
        has(
            &found,
            "labels.agree_5",
            None,
            "question Q1 uses the agree_5 scale",
        );
        has(
            &found,
            "labels.likelihood_11",
            None,
            "question CAR6 uses the likelihood_11 scale",
        );
        has(&found, "labels.dont_know", None, "question CAR6 offers");

        let mut value = document();
        value["labels"]["agree_5"] = json!([{ "en": "No", "nl": "Nee" }]);
        value["labels"]["likelihood_11"] = json!({ "low": { "en": "Never" }, "middle": {} });
        value["labels"]["dont_know"] = json!({ "en": "?", "nl": "" });
        value["labels"]["comment"] = json!({ "en": "?", "nl": "?" });
        let found = problems(value);
        has(&found, "labels.agree_5", None, "must have 5 labels");
        has(&found, "labels.likelihood_11.low.nl", None, "is missing");
        has(&found, "labels.likelihood_11.high", None, "is missing");
        has(
            &found,
            "labels.likelihood_11.middle",
            None,
            "not a known key",
        );
        has(&found, "labels.dont_know.nl", None, "must not be empty");
        has(&found, "labels.comment", None, "not a known key");

        // A broken label does not hide a missing one.
        let mut value = document();
        value["labels"] = json!({ "dont_know": "Don't know" });
        value["questions"][0]["dont_know"] = json!(true);
        let found = problems(value);
        has(
            &found,
            "labels.dont_know",
            None,
            "must be an object with `en` and `nl`",
        );
        has(
            &found,
            "labels.agree_5",
            None,
            "question Q1 uses the agree_5 scale",
        );
        assert_eq!(found.len(), 2, "{found:#?}");
    }

    #[test]
    fn unknown_keys_are_refused_everywhere() {
        let mut value = document();
        value["colour"] = json!("blue");
        value["questions"][0]["weight"] = json!(2);
        let found = problems(value);
        has(
            &found,
            "colour",
            None,
            "is not a known key (expected one of: key, version, title",
        );
        has(
            &found,
            "questions.0.weight",
            Some("Q1"),
            "is not a known key",
        );

        let error = Template::from_toml(
            "x.toml",
            &TOML_DOCUMENT.replace("version = 1", "version = 1\nauthor = \"HR\""),
        )
        .expect_err("unknown key");
        assert!(
            error
                .to_string()
                .contains("x.toml: author is not a known key"),
            "{error}"
        );

        let not_an_object = problems(json!(["key"]));
        has(&not_an_object, "", None, "must be an object");
    }

    #[test]
    fn the_two_minute_estimate() {
        let with = |closed_count: usize, comments: usize| {
            let mut items: Vec<Value> = (0..closed_count)
                .map(|i| closed(&format!("C{i}")))
                .collect();
            items.extend((0..comments).map(|i| comment(&format!("T{i}"))));
            let mut value = document();
            value["questions"] = Value::Array(items);
            Template::from_json_value(value, 1)
        };
        let seconds = |result: Result<Template, Vec<TemplateProblem>>| {
            result.expect("accepted").estimated_seconds()
        };
        assert_eq!(seconds(with(7, 1)), 96);
        assert_eq!(seconds(with(8, 1)), 104);
        assert_eq!(seconds(with(9, 1)), 112);
        assert_eq!(seconds(with(12, 0)), 106);
        assert_eq!(seconds(with(5, 2)), 110);
        let refused = with(8, 2).expect_err("134 s");
        has(
            &refused,
            "questions",
            None,
            "take an estimated 134 s to answer (10 s intro + 8 closed × 8 s + 2 comments × 30 s)",
        );
        has(
            &refused,
            "questions",
            None,
            "more than the 120 s a two-minute pulse allows",
        );
        has(&with(14, 0).expect_err("122 s"), "questions", None, "122 s");

        let mut long = TOML_DOCUMENT.replace(
            "{ en = \"I have time to learn.\" }",
            "{ en = \"T\", nl = \"T\" }",
        );
        for i in 0..6 {
            long.push_str(&format!(
                "\n[[questions]]\nid = \"X{i}\"\ntheme = \"career_outlook\"\nscale = \"agree_5\"\ntext = {{ en = \"x\", nl = \"x\" }}\n"
            ));
        }
        long.push_str("\n[[questions]]\nid = \"T1\"\ntheme = \"career_outlook\"\nscale = \"comment\"\ntext = { en = \"x\", nl = \"x\" }\n");
        long.push_str("\n[[questions]]\nid = \"T2\"\ntheme = \"career_outlook\"\nscale = \"comment\"\ntext = { en = \"x\", nl = \"x\" }\n");
        let error = Template::from_toml("survey-templates/x.toml", &long).expect_err("too long");
        assert!(
            error.to_string().starts_with(
                "survey-templates/x.toml: questions take an estimated 134 s to answer"
            ),
            "{error}"
        );
    }

    #[test]
    fn json_round_trips() {
        for template in builtin().expect("shipped templates load") {
            let json = serde_json::to_string(template).expect("serialises");
            let back: Template = serde_json::from_str(&json).expect("deserialises");
            assert_eq!(&back, template);

            // The checker accepts what it produced, unchanged: the API can
            // take back a template it served (without its version).
            let mut value = serde_json::to_value(template).expect("serialises");
            if let Some(map) = value.as_object_mut() {
                map.remove("version");
            }
            let checked = Template::from_json_value(value, template.version).expect("valid");
            assert_eq!(&checked, template);
        }
        // Stored JSON is read strictly too.
        let stored = r#"{"key":"k1","version":1,"title":{"en":"a","nl":"b"},"intro":{"en":"a","nl":"b"},"questions":[],"extra":1}"#;
        assert!(serde_json::from_str::<Template>(stored).is_err());
    }

    #[test]
    fn the_shipped_templates_load_and_fit_in_two_minutes() {
        let templates = builtin().expect("shipped templates load");
        let keys: Vec<&str> = templates.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["development", "career", "safety"]);
        let themes: Vec<Vec<Theme>> = templates.iter().map(Template::themes).collect();
        assert_eq!(
            themes,
            [
                vec![Theme::DevelopmentOpportunities],
                vec![Theme::CareerOutlook],
                vec![Theme::PsychologicalSafety]
            ]
        );
        for template in templates {
            let closed = template.closed_questions().count();
            let comments: Vec<&Question> = template.comment_questions().collect();
            assert!(
                (5..=8).contains(&closed),
                "{}: {closed} closed",
                template.key
            );
            assert_eq!(comments.len(), 1, "{}", template.key);
            assert!(!comments[0].required && comments[0].id.ends_with("_T"));
            assert!(template.estimated_seconds() <= MAX_SECONDS);
            assert!(template.questions.iter().filter(|q| q.reverse).count() <= MAX_REVERSE);
            assert_eq!(template.version, 1);
        }
        let safety = &templates[2];
        assert_eq!(safety.estimated_seconds(), 96);
        assert!(
            safety
                .intro
                .en
                .contains("the people you work with most closely")
        );
        assert!(
            safety
                .intro
                .nl
                .contains("de mensen met wie je het nauwst samenwerkt")
        );
        let car6 = templates[1].question("CAR6").expect("CAR6");
        assert_eq!(car6.scale, Scale::Likelihood11);
        let reversed: Vec<&str> = templates
            .iter()
            .flat_map(|t| {
                t.questions
                    .iter()
                    .filter(|q| q.reverse)
                    .map(|q| q.id.as_str())
            })
            .collect();
        assert_eq!(reversed, ["DEV6", "CAR4", "PSY1", "PSY4"]);
    }

    #[test]
    fn every_file_in_survey_templates_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/survey-templates");
        let embedded: Vec<&str> = BUILTIN_FILES.iter().map(|(name, _)| *name).collect();
        let mut on_disk = Vec::new();
        for entry in std::fs::read_dir(dir).expect("survey-templates/ is readable") {
            let name = entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            if name.ends_with(".toml") {
                assert!(
                    embedded.contains(&name.as_str()),
                    "survey-templates/{name} is not in BUILTIN_FILES: add it there"
                );
                on_disk.push(name);
            }
        }
        assert_eq!(on_disk.len(), embedded.len());
    }

    #[test]
    fn a_shipped_file_must_be_named_after_its_key() {
        let source = BUILTIN_FILES[0].1;
        let error = load_builtin(&[("growth.toml", source)]).expect_err("name mismatch");
        assert_eq!(
            error.to_string(),
            "survey-templates/growth.toml: key must match the file name: \"growth\""
        );
    }

    #[test]
    fn the_readme_example_is_a_valid_template() {
        let readme = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/survey-templates/README.md"
        ))
        .expect("survey-templates/README.md is readable");
        let example = readme
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("README.md has a ```toml example");
        let template = Template::from_toml("README.md", example).expect("the example is valid");
        assert_eq!(template.estimated_seconds(), 10 + 2 * 8 + 30);

        let example = readme
            .split("```json\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("README.md has a ```json example");
        let value: Value = serde_json::from_str(example).expect("the JSON example is JSON");
        let template = Template::from_json_value(value, 1).expect("the JSON example is valid");
        assert_eq!(template.estimated_seconds(), 10 + 8);
    }

    #[test]
    fn scales_texts_and_scores() {
        let texts = Texts {
            en: "Hello".into(),
            nl: "Hallo".into(),
        };
        assert_eq!(texts.get("nl"), "Hallo");
        assert_eq!(texts.get("en"), "Hello");
        assert_eq!(texts.get("de"), "Hello");
        for theme in Theme::ALL {
            assert_eq!(Theme::parse(theme.as_str()), Some(theme));
            assert_eq!(
                serde_json::to_value(theme).ok(),
                Some(json!(theme.as_str()))
            );
        }
        for scale in Scale::ALL {
            assert_eq!(Scale::parse(scale.as_str()), Some(scale));
            assert_eq!(
                serde_json::to_value(scale).ok(),
                Some(json!(scale.as_str()))
            );
        }
        let templates = builtin().expect("shipped templates load");
        let dev6 = templates[0].question("DEV6").expect("DEV6");
        assert_eq!(
            (dev6.score(1), dev6.score(5), dev6.score(6)),
            (Some(5), Some(1), None)
        );
        let car6 = templates[1].question("CAR6").expect("CAR6");
        assert_eq!(
            (car6.score(0), car6.score(10), car6.score(11)),
            (Some(0), Some(10), None)
        );
        let reversed = Question {
            reverse: true,
            ..car6.clone()
        };
        assert_eq!((reversed.score(0), reversed.score(7)), (Some(10), Some(3)));
        assert_eq!(
            templates[0].question("DEV_T").and_then(|q| q.score(3)),
            None
        );
    }

    #[test]
    fn a_problem_displays_with_its_question() {
        let problem = TemplateProblem {
            field: "questions.12.text.nl".into(),
            question: Some("DEV3".into()),
            detail: "is missing".into(),
        };
        assert_eq!(problem.to_string(), "question DEV3: text.nl is missing");
        let problem = TemplateProblem {
            field: "questions.1.id".into(),
            question: None,
            detail: "must be …".into(),
        };
        assert_eq!(problem.to_string(), "questions.1.id must be …");
    }
}
