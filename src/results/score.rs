//! What one group's answers come to, per question and per theme, by the
//! scoring rules of SURVEY-METHOD.md. Pure functions over stored answers;
//! which groups exist and which of their numbers may be published is the
//! business of the rest of this module.
//!
//! - "Don't know", comments and answers off the scale count nowhere.
//! - Reverse-coded questions are scored 6 − x on 1–5 and 10 − x on 0–10
//!   ([`Question::score`]) before anything else, distributions included.
//! - 1–5 items: n, mean, sample standard deviation, and the favourable
//!   (4–5), neutral (3) and unfavourable (1–2) shares of the valid answers.
//! - 0–10 items: n, mean, sample standard deviation, and the 0–6 / 7–8 /
//!   9–10 shares with the net score %(9–10) − %(0–6), in points. They are
//!   never mixed into a theme.
//! - A theme's score **averages items' answers**, not respondents: the mean
//!   of every valid answer to the theme's 1–5 items; its favourable share
//!   likewise pools them. With skips the two ways differ. Averaging
//!   respondents (each person's mean, counted when they answered two
//!   thirds of the items) would leave some answers out of the theme but in
//!   its questions, and subtracting one from the other would give those
//!   answers back — one person's, when one person skipped. Pooled, a
//!   theme's figures follow from its questions' and reveal nothing more.
//!   Its n is the respondents who answered at least one of its items.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::answers::answer::Answer;
use crate::surveys::template::{Question, Scale, Template, Theme};

/// One response's answers, by question id.
pub type Response = BTreeMap<String, Answer>;

/// A closed question's figures for one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuestionScore {
    /// Valid answers.
    pub n: u32,
    pub mean: f64,
    /// Sample standard deviation; 0 for a single answer.
    pub sd: f64,
    /// Answers per scored value, lowest value first (1–5 or 0–10).
    pub distribution: Vec<u32>,
    pub shares: Shares,
}

/// The shares of valid answers, as fractions of 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Shares {
    Agreement {
        favourable: f64,
        neutral: f64,
        unfavourable: f64,
    },
    Likelihood {
        /// 0–6.
        low: f64,
        /// 7–8.
        middle: f64,
        /// 9–10.
        high: f64,
        /// %(9–10) − %(0–6), in points from −100 to 100.
        net: f64,
    },
}

/// A theme's figures for one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThemeScore {
    /// Respondents with at least one valid answer to the theme's 1–5 items.
    pub n: u32,
    /// The mean of those answers, 1–5.
    pub score: f64,
    /// Their sample standard deviation.
    pub sd: f64,
    /// Valid answers across the theme's 1–5 items.
    pub answers: u32,
    /// Favourable answers over valid answers, across the theme's 1–5 items.
    pub favourable: f64,
}

/// Whether `response` holds a valid answer to `question` (what its n counts).
pub fn answers(question: &Question, response: &Response) -> bool {
    scored(question, response).is_some()
}

/// A closed question's answer in `response`, scored; `None` for no answer,
/// "don't know", or anything off the scale.
fn scored(question: &Question, response: &Response) -> Option<u8> {
    match response.get(&question.id)? {
        Answer::Number(n) => question.score(u8::try_from(*n).ok()?),
        Answer::Text(_) => None,
    }
}

/// The figures of a closed question over `responses`; `None` for a comment
/// or when nobody gave a valid answer.
pub fn question_score<'a>(
    question: &Question,
    responses: impl IntoIterator<Item = &'a Response>,
) -> Option<QuestionScore> {
    let range = question.scale.answer_range()?;
    let (low, high) = (*range.start(), *range.end());
    let mut distribution = vec![0u32; usize::from(high - low) + 1];
    for value in responses.into_iter().filter_map(|r| scored(question, r)) {
        distribution[usize::from(value - low)] += 1;
    }
    let n: u32 = distribution.iter().sum();
    if n == 0 {
        return None;
    }
    let values = || {
        distribution
            .iter()
            .enumerate()
            .map(move |(i, count)| (f64::from(low) + i as f64, f64::from(*count)))
    };
    let total = f64::from(n);
    let mean = values().map(|(v, c)| v * c).sum::<f64>() / total;
    let sd = if n > 1 {
        (values().map(|(v, c)| c * (v - mean).powi(2)).sum::<f64>() / (total - 1.0)).sqrt()
    } else {
        0.0
    };
    let share = |from: u8, to: u8| {
        f64::from(
            distribution[usize::from(from - low)..=usize::from(to - low)]
                .iter()
                .sum::<u32>(),
        ) / total
    };
    let shares = match question.scale {
        Scale::Agree5 => Shares::Agreement {
            favourable: share(4, 5),
            neutral: share(3, 3),
            unfavourable: share(1, 2),
        },
        _ => {
            let (low, middle, high) = (share(0, 6), share(7, 8), share(9, 10));
            Shares::Likelihood {
                low,
                middle,
                high,
                net: (high - low) * 100.0,
            }
        }
    };
    Some(QuestionScore {
        n,
        mean,
        sd,
        distribution,
        shares,
    })
}

/// The figures of `theme` over `responses`, from the template's 1–5 items of
/// that theme; `None` when it has none or no respondent qualifies.
pub fn theme_score<'a>(
    template: &Template,
    theme: Theme,
    responses: impl IntoIterator<Item = &'a Response>,
) -> Option<ThemeScore> {
    let items: Vec<&Question> = template
        .questions
        .iter()
        .filter(|q| q.theme == theme && q.scale == Scale::Agree5)
        .collect();
    if items.is_empty() {
        return None;
    }
    let (mut n, mut valid, mut favourable, mut sum, mut squares) = (0u32, 0u32, 0u32, 0.0, 0.0);
    for response in responses {
        let mut answered = false;
        for value in items.iter().filter_map(|q| scored(q, response)) {
            answered = true;
            valid += 1;
            favourable += u32::from(value >= 4);
            sum += f64::from(value);
            squares += f64::from(value) * f64::from(value);
        }
        n += u32::from(answered);
    }
    if valid == 0 {
        return None;
    }
    let count = f64::from(valid);
    let score = sum / count;
    let sd = if valid > 1 {
        ((squares - count * score * score).max(0.0) / (count - 1.0)).sqrt()
    } else {
        0.0
    };
    Some(ThemeScore {
        n,
        score,
        sd,
        answers: valid,
        favourable: f64::from(favourable) / count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::surveys::template::Texts;

    fn question(id: &str, theme: Theme, scale: Scale, reverse: bool) -> Question {
        Question {
            id: id.to_owned(),
            theme,
            scale,
            reverse,
            required: false,
            text: Texts {
                en: id.to_owned(),
                nl: id.to_owned(),
            },
            max_length: None,
            dont_know: true,
        }
    }

    fn response(answers: &[(&str, Answer)]) -> Response {
        answers
            .iter()
            .map(|(id, a)| ((*id).to_owned(), a.clone()))
            .collect()
    }

    fn n(value: i64) -> Answer {
        Answer::Number(value)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_five_point_item_counts_valid_answers_only() {
        let q = question(
            "DEV1",
            Theme::DevelopmentOpportunities,
            Scale::Agree5,
            false,
        );
        let responses = [
            response(&[("DEV1", n(5))]),
            response(&[("DEV1", n(4))]),
            response(&[("DEV1", n(3))]),
            response(&[("DEV1", n(1))]),
            response(&[("DEV1", Answer::Text("dont_know".into()))]),
            response(&[("DEV1", n(9))]),
            response(&[]),
        ];
        let score = question_score(&q, &responses).unwrap();
        assert_eq!(score.n, 4);
        assert!(close(score.mean, 13.0 / 4.0));
        // Sample SD of 5, 4, 3, 1: deviations² 3.0625 + 0.5625 + 0.0625 + 5.0625 = 8.75; / 3.
        assert!(close(score.sd, (8.75f64 / 3.0).sqrt()));
        assert_eq!(score.distribution, [1, 0, 1, 1, 1]);
        assert_eq!(
            score.shares,
            Shares::Agreement {
                favourable: 0.5,
                neutral: 0.25,
                unfavourable: 0.25
            }
        );
    }

    #[test]
    fn reverse_coded_items_are_scored_before_anything_else() {
        let q = question("PS2", Theme::PsychologicalSafety, Scale::Agree5, true);
        let responses = [response(&[("PS2", n(1))]), response(&[("PS2", n(2))])];
        let score = question_score(&q, &responses).unwrap();
        assert!(close(score.mean, 4.5), "1 and 2 count as 5 and 4");
        assert_eq!(score.distribution, [0, 0, 0, 1, 1]);
        assert!(
            matches!(score.shares, Shares::Agreement { favourable, .. } if close(favourable, 1.0))
        );
    }

    #[test]
    fn an_eleven_point_item_has_its_bands_and_net_score() {
        let q = question("REC", Theme::CareerOutlook, Scale::Likelihood11, false);
        let values = [0, 6, 7, 8, 9, 10, 10, 10];
        let responses: Vec<Response> = values.iter().map(|v| response(&[("REC", n(*v))])).collect();
        let score = question_score(&q, &responses).unwrap();
        assert_eq!(score.n, 8);
        assert_eq!(score.distribution.len(), 11);
        let Shares::Likelihood {
            low,
            middle,
            high,
            net,
        } = score.shares
        else {
            panic!("bands");
        };
        assert!(close(low, 0.25) && close(middle, 0.25) && close(high, 0.5));
        assert!(close(net, 25.0));
    }

    #[test]
    fn nobody_answering_gives_no_score() {
        let q = question(
            "DEV1",
            Theme::DevelopmentOpportunities,
            Scale::Agree5,
            false,
        );
        assert_eq!(question_score(&q, &[response(&[])]), None);
        let comment = question(
            "DEV_T",
            Theme::DevelopmentOpportunities,
            Scale::Comment,
            false,
        );
        assert_eq!(
            question_score(
                &comment,
                &[response(&[("DEV_T", Answer::Text("x".into()))])]
            ),
            None
        );
    }

    #[test]
    fn a_theme_pools_its_items_answers() {
        let dev = Theme::DevelopmentOpportunities;
        let template = Template {
            questions: vec![
                question("A", dev, Scale::Agree5, false),
                question("B", dev, Scale::Agree5, false),
                question("C", dev, Scale::Agree5, true),
                question("R", dev, Scale::Likelihood11, false),
                question("S", Theme::PsychologicalSafety, Scale::Agree5, false),
            ],
            ..crate::surveys::template::builtin().unwrap()[0].clone()
        };
        let responses = [
            // 5, 4, and C reversed 2 → 4; the 0–10 item counts nowhere.
            response(&[("A", n(5)), ("B", n(4)), ("C", n(2)), ("R", n(0))]),
            // 2 and 3; "don't know" counts nowhere.
            response(&[
                ("A", n(2)),
                ("B", n(3)),
                ("C", Answer::Text("dont_know".into())),
            ]),
            // One item: counts like any other answer.
            response(&[("A", n(5)), ("S", n(1))]),
        ];
        let score = theme_score(&template, dev, &responses).unwrap();
        assert_eq!((score.n, score.answers), (3, 6));
        // 5, 4, 4, 2, 3, 5.
        assert!(close(score.score, 23.0 / 6.0));
        let squares: f64 = [5.0f64, 4.0, 4.0, 2.0, 3.0, 5.0]
            .iter()
            .map(|v| v * v)
            .sum();
        assert!(close(
            score.sd,
            ((squares - 23.0 * 23.0 / 6.0) / 5.0).sqrt()
        ));
        assert!(close(score.favourable, 4.0 / 6.0), "{}", score.favourable);
        assert_eq!(
            theme_score(&template, Theme::CareerOutlook, &responses),
            None
        );
    }
}
