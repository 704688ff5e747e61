//! What a closing wave publishes: every group's cells, decided once, from
//! the responses as they are before sealing (each tagged with its team).
//!
//! 1. **The wave's pattern.** [`suppress`] runs on the number of responses
//!    per team. Its published groups are the only ones any cell of the wave
//!    may be published for, and they are what sealing coarsens tags to
//!    (`crate::answers::coarsen`): every stored response keeps the
//!    smallest published group around its team. So the stored responses
//!    hold exactly the groups the API shows — each residual 0 or at least
//!    k — and results can be computed again from them (a raised k).
//! 2. **Per question** (closed ones): the pattern's suppressed groups stay
//!    suppressed with their reason; the rules run again on the number of
//!    valid answers to that question, since skips and "don't know" make a
//!    question's groups smaller than the wave's. A published cell has n,
//!    the mean and the favourable share (0–10: the net score). The **detail
//!    level** — standard deviation, every share and the answer
//!    distribution — is decided by the same rules with 2k, starting from
//!    the question's suppressed cells: a group of at least 2k whose
//!    remainders are 0 or at least 2k too, so no distribution of fewer
//!    than 2k people can be had by subtraction either (DESIGN.md,
//!    invariant 4). Below it those figures are left out: with them and the
//!    three shares, the counts of a small group's answers could be solved.
//! 3. **Per theme**: as per question, on the respondents who answered any
//!    of its 1–5 items; the figures pool those items' answers, so they
//!    follow from the questions' and add nothing. A theme is suppressed
//!    (complementary) wherever one of its 1–5 questions is, since a
//!    published theme beside the theme's other questions would give the
//!    hidden question's sum back; its sd likewise needs every question's
//!    detail level.
//! 4. **Per comment question**: as per question with max(10, k) and the
//!    non-empty comments; the texts of a published cell in random order,
//!    with nothing else about them.
//!
//! 5. **Participation**: invited (frozen at open) and responded, for every
//!    group the rules publish on the invited counts (DESIGN.md, invariant
//!    5); its own pattern, since invited counts are not answers.
//!
//! Pure: the caller reads and stores (`super::store`).

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::score::{self, Response, Shares};
use super::suppress::{Cells, Group, Suppressed, suppress_from};
use crate::answers::answer::Answer;
use crate::org::teams::Hierarchy;
use crate::surveys::template::{Scale, Template, Theme};

/// What a cell measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Measure {
    /// Invited and responded: the group's size is its invited.
    Participation,
    /// A closed question, by id.
    Question(String),
    Theme(Theme),
    /// A comment question's texts, by id.
    Comments(String),
}

/// A group's participation, counted at close.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ParticipationFigures {
    /// People invited, as the audience was when the wave opened.
    pub invited: u32,
    pub responded: u32,
    /// responded / invited.
    pub rate: f64,
}

impl ParticipationFigures {
    pub fn new(invited: u32, responded: u32) -> Self {
        Self {
            invited,
            responded,
            rate: f64::from(responded) / f64::from(invited.max(1)),
        }
    }
}

/// A published closed question. Below 2k (the detail level, step 2) only
/// n, the mean and the favourable share (1–5) or net score (0–10): with the
/// standard deviation and all three shares as well, a small group's answer
/// counts could be solved for (DESIGN.md, invariant 4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QuestionFigures {
    /// Valid answers ("don't know" and skips excluded).
    pub n: u32,
    /// After reverse-coding.
    pub mean: f64,
    /// 1–5 items: the share of 4–5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub favourable: Option<f64>,
    /// 0–10 items: %(9–10) − %(0–6), in points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<f64>,
    /// Sample standard deviation; at the detail level only.
    pub sd: Option<f64>,
    /// 1–5 items: favourable (4–5), neutral (3), unfavourable (1–2); 0–10
    /// items: low (0–6), middle (7–8), high (9–10) and net (points). At the
    /// detail level only.
    #[schema(value_type = Option<Object>)]
    pub shares: Option<Shares>,
    /// Answers per value after reverse-coding, lowest first; at the detail
    /// level only.
    pub distribution: Option<Vec<u32>>,
}

impl QuestionFigures {
    fn new(score: score::QuestionScore, detailed: bool) -> Self {
        let (favourable, net) = match score.shares {
            Shares::Agreement { favourable, .. } => (Some(favourable), None),
            Shares::Likelihood { net, .. } => (None, Some(net)),
        };
        Self {
            n: score.n,
            mean: score.mean,
            favourable,
            net,
            sd: detailed.then_some(score.sd),
            shares: detailed.then_some(score.shares),
            distribution: detailed.then_some(score.distribution),
        }
    }
}

/// A published theme: its 1–5 items' answers pooled (`super::score`), so
/// that it says nothing its questions do not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ThemeFigures {
    /// Respondents who answered at least one of the theme's 1–5 items.
    pub n: u32,
    /// The mean of every valid answer to the theme's 1–5 items.
    pub score: f64,
    /// Their standard deviation; at the detail level only.
    pub sd: Option<f64>,
    /// Valid answers across the theme's 1–5 items.
    pub answers: u32,
    /// Favourable answers over valid answers across the theme's 1–5 items.
    pub favourable: f64,
}

/// A published comment question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CommentFigures {
    pub n: u32,
    /// In random order, with nothing about who or when.
    pub comments: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Figures {
    Participation(ParticipationFigures),
    Question(QuestionFigures),
    Theme(ThemeFigures),
    Comments(CommentFigures),
}

impl Figures {
    pub fn n(&self) -> u32 {
        match self {
            Self::Participation(f) => f.invited,
            Self::Question(f) => f.n,
            Self::Theme(f) => f.n,
            Self::Comments(f) => f.n,
        }
    }
}

/// One cell: a group's figures for one measure, or why there are none.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub group: Group,
    pub measure: Measure,
    pub outcome: Result<Figures, Suppressed>,
}

/// Everything a wave publishes.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The wave's pattern (step 1), on responses per team.
    pub pattern: Cells,
    pub cells: Vec<Cell>,
}

/// Comments need more people than scores (SURVEY-METHOD.md).
pub fn comment_minimum(k: u32) -> u32 {
    k.max(10)
}

/// Publishes a wave: `parents` is the team tree (team → parent),
/// `invited` the people invited per team, each response comes with its
/// team, `k` is the wave's minimum.
pub fn publish(
    template: &Template,
    parents: &BTreeMap<String, Option<String>>,
    invited: &BTreeMap<String, u32>,
    responses: &[(String, Response)],
    k: u32,
) -> Publication {
    let mut publication = publish_answers(template, parents, responses, k, &Known::default());
    let mut cells = participation(
        parents,
        invited,
        &publication.pattern.sizes,
        k,
        &BTreeMap::new(),
    );
    cells.append(&mut publication.cells);
    publication.cells = cells;
    publication
}

/// Cells that must stay suppressed whatever the counts say: the wave's
/// pattern, and per measure (by [`Measure::key`]). Empty at the close; a
/// recomputation (`super::republish`) fills it from what it cannot know.
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub pattern: BTreeMap<Group, Suppressed>,
    pub measures: BTreeMap<(&'static str, String), BTreeMap<Group, Suppressed>>,
}

impl Known {
    /// What a measure starts from: the pattern's and its own.
    fn start(&self, pattern: &Cells, measure: &Measure) -> BTreeMap<Group, Suppressed> {
        let mut already = pattern.suppressed.clone();
        for (group, why) in self.measures.get(&measure.key()).into_iter().flatten() {
            already.entry(group.clone()).or_insert(*why);
        }
        already
    }
}

impl Measure {
    /// How the measure is stored: its kind and id (empty for participation).
    pub fn key(&self) -> (&'static str, String) {
        match self {
            Self::Participation => ("participation", String::new()),
            Self::Question(id) => ("question", id.clone()),
            Self::Theme(theme) => ("theme", theme.as_str().to_owned()),
            Self::Comments(id) => ("comments", id.clone()),
        }
    }
}

/// Every cell but participation (steps 1–4).
pub fn publish_answers(
    template: &Template,
    parents: &BTreeMap<String, Option<String>>,
    responses: &[(String, Response)],
    k: u32,
    known: &Known,
) -> Publication {
    let count = |keep: &dyn Fn(&Response) -> bool| {
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        for (team, response) in responses {
            if keep(response) {
                *counts.entry(team.clone()).or_default() += 1;
            }
        }
        counts
    };
    let pattern = suppress_from(parents, &count(&|_| true), k, &known.pattern);
    let members = Members::new(parents, responses);
    let mut cells = Vec::new();

    let mut question_cells: BTreeMap<&str, Cells> = BTreeMap::new();
    let mut question_details: BTreeMap<&str, Cells> = BTreeMap::new();
    for question in template.closed_questions() {
        let answered = count(&|r| score::answers(question, r));
        let measure = Measure::Question(question.id.clone());
        let decided = suppress_from(parents, &answered, k, &known.start(&pattern, &measure));
        let detail = suppress_from(parents, &answered, 2 * k, &decided.suppressed);
        for group in decided.sizes.keys() {
            let outcome = match decided.suppressed.get(group) {
                Some(why) => Err(*why),
                None => score::question_score(question, members.of(group).iter().copied())
                    .map(|s| Figures::Question(QuestionFigures::new(s, detail.is_published(group))))
                    .ok_or(Suppressed::BelowMinimum),
            };
            cells.push(Cell {
                group: group.clone(),
                measure: Measure::Question(question.id.clone()),
                outcome,
            });
        }
        question_details.insert(&question.id, detail);
        question_cells.insert(&question.id, decided);
    }

    for theme in template.themes() {
        let items: Vec<&str> = template
            .questions
            .iter()
            .filter(|q| q.theme == theme && q.scale == Scale::Agree5)
            .map(|q| q.id.as_str())
            .collect();
        if items.is_empty() {
            continue;
        }
        let mut already = known.start(&pattern, &Measure::Theme(theme));
        for item in &items {
            for group in question_cells[item].suppressed.keys() {
                already
                    .entry(group.clone())
                    .or_insert(Suppressed::Complementary);
            }
        }
        let item_questions: Vec<_> = items
            .iter()
            .filter_map(|id| template.question(id))
            .collect();
        let scored = count(&|r| item_questions.iter().any(|q| score::answers(q, r)));
        let decided = suppress_from(parents, &scored, k, &already);
        // The pooled sd where every item's is published: then it follows
        // from theirs.
        let mut coarse = decided.suppressed.clone();
        for item in &items {
            for group in question_details[item].suppressed.keys() {
                coarse
                    .entry(group.clone())
                    .or_insert(Suppressed::Complementary);
            }
        }
        let detail = suppress_from(parents, &scored, 2 * k, &coarse);
        for group in decided.sizes.keys() {
            let outcome = match decided.suppressed.get(group) {
                Some(why) => Err(*why),
                None => score::theme_score(template, theme, members.of(group).iter().copied())
                    .map(|s| {
                        Figures::Theme(ThemeFigures {
                            n: s.n,
                            score: s.score,
                            sd: detail.is_published(group).then_some(s.sd),
                            answers: s.answers,
                            favourable: s.favourable,
                        })
                    })
                    .ok_or(Suppressed::BelowMinimum),
            };
            cells.push(Cell {
                group: group.clone(),
                measure: Measure::Theme(theme),
                outcome,
            });
        }
    }

    let minimum = comment_minimum(k);
    for question in template.comment_questions() {
        let text = |r: &Response| match r.get(&question.id) {
            Some(Answer::Text(t)) if !t.trim().is_empty() => Some(t.clone()),
            _ => None,
        };
        let written = count(&|r| text(r).is_some());
        let measure = Measure::Comments(question.id.clone());
        let decided = suppress_from(parents, &written, minimum, &known.start(&pattern, &measure));
        for group in decided.sizes.keys() {
            let outcome = match decided.suppressed.get(group) {
                Some(why) => Err(*why),
                None => {
                    let mut comments: Vec<String> =
                        members.of(group).iter().copied().filter_map(text).collect();
                    comments.shuffle(&mut rand::rng());
                    Ok(Figures::Comments(CommentFigures {
                        n: u32::try_from(comments.len()).unwrap_or(u32::MAX),
                        comments,
                    }))
                }
            };
            cells.push(Cell {
                group: group.clone(),
                measure: Measure::Comments(question.id.clone()),
                outcome,
            });
        }
    }
    Publication { pattern, cells }
}

/// Participation cells: published on the invited counts, with the
/// responded counts of the wave's groups (`responded`). Also what an open
/// wave shows, live.
pub fn participation(
    parents: &BTreeMap<String, Option<String>>,
    invited: &BTreeMap<String, u32>,
    responded: &BTreeMap<Group, u32>,
    k: u32,
    already: &BTreeMap<Group, Suppressed>,
) -> Vec<Cell> {
    participation_cells(&suppress_from(parents, invited, k, already), responded)
}

/// Participation cells of groups already decided on the invited counts.
pub fn participation_cells(decided: &Cells, responded: &BTreeMap<Group, u32>) -> Vec<Cell> {
    decided
        .sizes
        .iter()
        .map(|(group, size)| Cell {
            group: group.clone(),
            measure: Measure::Participation,
            outcome: match decided.suppressed.get(group) {
                Some(why) => Err(*why),
                None => Ok(Figures::Participation(ParticipationFigures::new(
                    *size,
                    responded.get(group).copied().unwrap_or(0),
                ))),
            },
        })
        .collect()
}

/// Which responses each group holds.
struct Members<'a> {
    by_team: BTreeMap<&'a str, Vec<&'a Response>>,
    tree: Hierarchy<'a>,
    /// Each group's responses, collected once for all its measures.
    cache: std::cell::RefCell<BTreeMap<Group, std::rc::Rc<Vec<&'a Response>>>>,
}

impl<'a> Members<'a> {
    fn new(
        parents: &'a BTreeMap<String, Option<String>>,
        responses: &'a [(String, Response)],
    ) -> Self {
        let mut by_team: BTreeMap<&str, Vec<&Response>> = BTreeMap::new();
        for (team, response) in responses {
            by_team.entry(team.as_str()).or_default().push(response);
        }
        // The same tree as `suppress` makes.
        let tree = super::suppress::tree_of(parents, responses.iter().map(|(team, _)| team));
        Self {
            by_team,
            tree,
            cache: Default::default(),
        }
    }

    fn of(&self, group: &Group) -> std::rc::Rc<Vec<&'a Response>> {
        if let Some(cached) = self.cache.borrow().get(group) {
            return cached.clone();
        }
        let found = std::rc::Rc::new(self.collect(group));
        self.cache.borrow_mut().insert(group.clone(), found.clone());
        found
    }

    fn collect(&self, group: &Group) -> Vec<&'a Response> {
        let teams: Vec<&str> = match group {
            Group::Team(team) => vec![team],
            Group::Subtree(team) => self.tree.subtree(team),
            Group::Organisation => self.by_team.keys().copied().collect(),
        };
        teams
            .into_iter()
            .flat_map(|team| self.by_team.get(team).into_iter().flatten().copied())
            .collect()
    }
}
