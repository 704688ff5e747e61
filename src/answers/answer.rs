//! A set of answers, checked against the wave's template before anything is
//! stored: every answer on its question's scale, every required question
//! answered, comments within their length and scrubbed of email addresses
//! and of the names of the answering person's team.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;
use crate::surveys::template::{DEFAULT_COMMENT_LENGTH, Template};

/// One stored answer: a number on the question's scale, `"dont_know"`
/// where the question offers it, or the text of a comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    Number(i64),
    Text(String),
}

/// What the JSON API and the page send: answers by question id. A question
/// left out (or null) is not answered.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GivenAnswers {
    /// Question id → a number, `"dont_know"`, or a comment's text.
    #[schema(value_type = Object, example = json!({"DEV1": 4, "DEV2": "dont_know", "DEV_T": "More time to learn"}))]
    pub answers: BTreeMap<String, serde_json::Value>,
}

/// Answers that fit their template, comments scrubbed: what is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answers(pub BTreeMap<String, Answer>);

pub const DONT_KNOW: &str = "dont_know";

impl Answers {
    /// Checks `given` against `template`; every problem at once, each naming
    /// its field (`answers.DEV1`). `names` are words to scrub from comments.
    pub fn check(
        template: &Template,
        given: &GivenAnswers,
        names: &HashSet<String>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut problems = Vec::new();
        let mut answers = BTreeMap::new();
        for id in given.answers.keys() {
            if template.question(id).is_none() {
                problems.push(FieldError::new(
                    format!("answers.{id}"),
                    "This question is not in the survey.",
                ));
            }
        }
        for question in &template.questions {
            let field = format!("answers.{}", question.id);
            // Typed here, not by the deserialiser, so that every bad answer
            // is named at once.
            let answer = match given.answers.get(&question.id) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(text))
                    if !question.is_closed() && text.trim().is_empty() =>
                {
                    None
                }
                Some(serde_json::Value::String(text)) => Some(Answer::Text(text.clone())),
                Some(serde_json::Value::Number(n)) => Some(match n.as_i64() {
                    Some(n) => Answer::Number(n),
                    // A fraction or a huge number: off every scale.
                    None => Answer::Number(i64::MIN),
                }),
                Some(_) => {
                    problems.push(FieldError::new(
                        &field,
                        "An answer is a number or, for a comment, text.",
                    ));
                    continue;
                }
            };
            let Some(answer) = answer else {
                if question.required {
                    problems.push(FieldError::new(&field, "This question needs an answer."));
                }
                continue;
            };
            match (question.scale.answer_range(), answer) {
                (Some(range), Answer::Number(n)) => {
                    if u8::try_from(n).is_ok_and(|n| range.contains(&n)) {
                        answers.insert(question.id.clone(), Answer::Number(n));
                    } else {
                        problems.push(FieldError::new(
                            &field,
                            format!(
                                "Choose a whole number from {} to {}.",
                                range.start(),
                                range.end()
                            ),
                        ));
                    }
                }
                (Some(_), Answer::Text(text)) if question.dont_know && text == DONT_KNOW => {
                    answers.insert(question.id.clone(), Answer::Text(DONT_KNOW.into()));
                }
                (Some(range), Answer::Text(_)) => problems.push(FieldError::new(
                    &field,
                    if question.dont_know {
                        format!(
                            "Choose a whole number from {} to {}, or \"{DONT_KNOW}\".",
                            range.start(),
                            range.end()
                        )
                    } else {
                        format!(
                            "Choose a whole number from {} to {}.",
                            range.start(),
                            range.end()
                        )
                    },
                )),
                (None, Answer::Number(_)) => {
                    problems.push(FieldError::new(&field, "A comment is text."));
                }
                (None, Answer::Text(text)) => {
                    let max = question.max_length.unwrap_or(DEFAULT_COMMENT_LENGTH) as usize;
                    let length = text.trim().chars().count();
                    if length > max {
                        problems.push(FieldError::new(
                            &field,
                            format!("At most {max} characters; this is {length}."),
                        ));
                    } else {
                        answers
                            .insert(question.id.clone(), Answer::Text(scrub(text.trim(), names)));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(Self(answers))
        } else {
            Err(problems)
        }
    }
}

/// A comment with email addresses and the given names replaced, so that
/// "ask Anna (anna@acme.nl)" reaches nobody as written. Words are compared
/// as written (a name is capitalised), whole words only.
pub fn scrub(text: &str, names: &HashSet<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.is_empty() {
            return;
        }
        if word.contains('@') && word.rsplit('@').next().is_some_and(|d| d.contains('.')) {
            out.push_str("[email]");
        } else if names.contains(word.as_str()) {
            out.push_str("[name]");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        // Letters, digits and what joins them inside an address or a name.
        if c.is_alphanumeric() || matches!(c, '@' | '.' | '_' | '-' | '+' | '\'') {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    // A sentence's full stop stuck to a name: "… Anna." is checked again without it.
    fix_trailing_dots(&out, names)
}

fn fix_trailing_dots(text: &str, names: &HashSet<String>) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, piece) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let bare = piece.trim_end_matches(['.', '\'']);
        if bare.len() < piece.len() && names.contains(bare) {
            out.push_str("[name]");
            out.push_str(&piece[bare.len()..]);
        } else {
            out.push_str(piece);
        }
    }
    out
}

/// The words of people's names worth scrubbing: each part of at least
/// three letters ("de", "van" stay).
pub fn name_words<'a>(names: impl IntoIterator<Item = &'a str>) -> HashSet<String> {
    names
        .into_iter()
        .flat_map(|n| n.split_whitespace())
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_lose_addresses_and_names() {
        let names = name_words(["Anna de Vries", "Bram van Dijk"]);
        assert_eq!(
            scrub(
                "Ask Anna (anna.devries@acme.nl) or Bram. De Vries knows.",
                &names
            ),
            "Ask [name] ([email]) or [name]. De [name] knows."
        );
        assert_eq!(
            scrub("Annabel and vries stay", &names),
            "Annabel and vries stay"
        );
        assert_eq!(
            scrub("mail x@y.org, please", &names),
            "mail [email], please"
        );
        assert_eq!(scrub("at @home", &names), "at @home");
    }
}
