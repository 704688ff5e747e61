//! The property test of issue 7: random small trees, audiences and
//! answers are published, and then, with code that shares nothing with
//! the suppression code, the publication is attacked:
//!
//! - **Direct checks**: no published cell is under its minimum (k; for
//!   comments max(10, k)), and for every published group and every set of
//!   non-overlapping published groups inside it, what remains is 0 or at
//!   least the minimum — found by enumerating those sets, not by sumsets.
//! - **Brute force**: for each closed question, every assignment of
//!   answers to respondents that reproduces all the question's published
//!   figures (n, mean, sd, shares, distribution) is enumerated, with the
//!   attacker told even how many people of each team answered. Below the
//!   detail level a cell shows n, mean and favourable share only. A
//!   respondent whose answer is the same in every such assignment is
//!   exposed — unless at least k respondents are pinned to that same
//!   value, which is the group-level fact DESIGN.md accepts (invariant 4).
//!   Themes are published only where all their questions are, and are
//!   covered by the direct checks.
//! - Sealing's tags hold 0 or at least k responses each.
//! - The same again after a raised k (k + 1), published from what sealing
//!   left; and every question cell published then has the true n and mean.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proptest::prelude::*;

use super::publish::{Figures, Measure, Publication, comment_minimum, publish};
use super::republish::{Before, Units, republish};
use super::score::{Response, Shares};
use super::suppress::Group;
use crate::answers::answer::Answer;
use crate::answers::coarsen::coarsen;
use crate::surveys::template::{Question, Scale, Template, Texts, Theme};

const QUESTIONS: [&str; 2] = ["Q1", "Q2"];

fn template() -> Template {
    let text = || Texts {
        en: "?".into(),
        nl: "?".into(),
    };
    let question = |id: &str, reverse: bool| Question {
        id: id.to_owned(),
        theme: Theme::CareerOutlook,
        scale: Scale::Agree5,
        reverse,
        required: false,
        text: text(),
        max_length: None,
        dont_know: true,
    };
    let mut comment = question("QT", false);
    comment.scale = Scale::Comment;
    comment.dont_know = false;
    comment.max_length = Some(100);
    Template {
        key: "property".into(),
        version: 1,
        title: text(),
        intro: text(),
        labels: Default::default(),
        questions: vec![question("Q1", false), question("Q2", true), comment],
    }
}

/// One generated wave.
#[derive(Debug, Clone)]
struct Case {
    /// Team i's parent, an earlier team or none.
    parents: Vec<Option<usize>>,
    /// Invited per team, at least its respondents.
    invited: Vec<u32>,
    /// Per team, each respondent's answers to Q1 and Q2 (None: skipped).
    answers: Vec<Vec<[Option<u8>; 2]>>,
    k: u32,
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..=4, 3u32..=4).prop_flat_map(|(teams, k)| {
        let parents = (0..teams)
            .map(|i| {
                if i == 0 {
                    Just(None).boxed()
                } else {
                    prop::option::weighted(0.8, 0..i).boxed()
                }
            })
            .collect::<Vec<_>>();
        let answer = prop::option::weighted(0.85, 1u8..=5);
        let respondent = [answer.clone(), answer];
        let answers = prop::collection::vec(prop::collection::vec(respondent, 0..=4), teams);
        let extra = prop::collection::vec(0u32..=2, teams);
        (parents, answers, extra).prop_map(move |(parents, answers, extra)| Case {
            invited: answers
                .iter()
                .zip(&extra)
                .map(|(a, e)| a.len() as u32 + e)
                .collect(),
            parents,
            answers,
            k,
        })
    })
}

fn team(i: usize) -> String {
    format!("t{i}")
}

impl Case {
    fn parents(&self) -> BTreeMap<String, Option<String>> {
        self.parents
            .iter()
            .enumerate()
            .map(|(i, p)| (team(i), p.map(team)))
            .collect()
    }

    fn responses(&self) -> Vec<(String, Response)> {
        let mut out = Vec::new();
        for (i, respondents) in self.answers.iter().enumerate() {
            for (r, answers) in respondents.iter().enumerate() {
                let mut response = Response::new();
                for (q, answer) in QUESTIONS.iter().zip(answers) {
                    if let Some(v) = answer {
                        response.insert((*q).to_owned(), Answer::Number(i64::from(*v)));
                    }
                }
                if r % 2 == 0 {
                    response.insert("QT".into(), Answer::Text(format!("comment {i}.{r}")));
                }
                out.push((team(i), response));
            }
        }
        out
    }

    /// The teams a group holds, by index: written here again, from the
    /// parent list, rather than taken from the tree code.
    fn members(&self, group: &Group) -> BTreeSet<usize> {
        let index = |id: &str| id[1..].parse::<usize>().unwrap();
        let all = 0..self.parents.len();
        match group {
            Group::Organisation => all.collect(),
            Group::Team(t) => BTreeSet::from([index(t)]),
            Group::Subtree(t) => {
                let top = index(t);
                all.filter(|&i| {
                    let mut at = Some(i);
                    while let Some(a) = at {
                        if a == top {
                            return true;
                        }
                        at = self.parents[a];
                    }
                    false
                })
                .collect()
            }
        }
    }
}

/// Per measure, the published groups and their n.
fn published(publication: &Publication) -> BTreeMap<String, BTreeMap<Group, u32>> {
    let mut out: BTreeMap<String, BTreeMap<Group, u32>> = BTreeMap::new();
    for cell in &publication.cells {
        let key = match &cell.measure {
            Measure::Participation => "participation".to_owned(),
            Measure::Question(q) => format!("question {q}"),
            Measure::Theme(t) => format!("theme {}", t.as_str()),
            Measure::Comments(q) => format!("comments {q}"),
        };
        let entry = out.entry(key).or_default();
        if let Ok(figures) = &cell.outcome {
            entry.insert(cell.group.clone(), figures.n());
        }
    }
    out
}

/// Direct checks for one measure: every published size at least
/// `minimum`, every residual 0 or at least `minimum`.
fn check_residuals(case: &Case, cells: &BTreeMap<Group, u32>, minimum: u32) -> Result<(), String> {
    let groups: Vec<(BTreeSet<usize>, u32, &Group)> = cells
        .iter()
        .map(|(g, n)| (case.members(g), *n, g))
        .collect();
    for (members, n, group) in &groups {
        if *n < minimum {
            return Err(format!("{group:?} published with {n} < {minimum}"));
        }
        let inside: Vec<&(BTreeSet<usize>, u32, &Group)> = groups
            .iter()
            .filter(|(m, _, _)| m.is_subset(members) && m != members)
            .collect();
        // A team's own members are inside its subtree although a leaf's
        // two groups have the same teams: those are one group, skipped.
        for choice in 1u32..(1 << inside.len()) {
            let chosen: Vec<_> = (0..inside.len())
                .filter(|i| choice >> i & 1 == 1)
                .map(|i| inside[i])
                .collect();
            let disjoint = chosen
                .iter()
                .enumerate()
                .all(|(i, a)| chosen[i + 1..].iter().all(|b| a.0.is_disjoint(&b.0)));
            if !disjoint {
                continue;
            }
            let covered: u32 = chosen.iter().map(|c| c.1).sum();
            let rest = n - covered.min(*n);
            if rest > 0 && rest < minimum {
                return Err(format!(
                    "{group:?} ({n}) minus {:?} leaves {rest}",
                    chosen.iter().map(|c| c.2).collect::<Vec<_>>()
                ));
            }
        }
    }
    Ok(())
}

/// What the attacker reads off a published closed-question cell, as whole
/// numbers: n, sum and favourable count always; at the detail level the
/// sum of squares, the three bands' counts and the histogram.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    n: u32,
    sum: i64,
    favourable: u32,
    detail: Option<(i64, [u32; 3], [u32; 5])>,
}

fn seen(figures: &Figures) -> Seen {
    let Figures::Question(f) = figures else {
        unreachable!("a question's cell")
    };
    let n = f64::from(f.n);
    let sum = f.mean * n;
    let count = |share: f64| (share * n).round() as u32;
    let detail = match (f.sd, &f.shares, &f.distribution) {
        (
            Some(sd),
            Some(Shares::Agreement {
                favourable,
                neutral,
                unfavourable,
            }),
            Some(d),
        ) => {
            let squares = sd * sd * (n - 1.0) + sum * sum / n;
            let mut h = [0; 5];
            h.copy_from_slice(d);
            Some((
                squares.round() as i64,
                [count(*unfavourable), count(*neutral), count(*favourable)],
                h,
            ))
        }
        _ => None,
    };
    Seen {
        n: f.n,
        sum: sum.round() as i64,
        favourable: count(f.favourable.unwrap_or_default()),
        detail,
    }
}

/// The same numbers from a candidate histogram (scored values 1–5).
fn seen_of(histogram: &[u32; 5], detailed: bool) -> Seen {
    let (mut n, mut sum, mut squares, mut bands) = (0, 0, 0, [0u32; 3]);
    for (i, &c) in histogram.iter().enumerate() {
        let v = i as i64 + 1;
        n += c;
        sum += v * i64::from(c);
        squares += v * v * i64::from(c);
        bands[match v {
            1 | 2 => 0,
            3 => 1,
            _ => 2,
        }] += c;
    }
    Seen {
        n,
        sum,
        favourable: bands[2],
        detail: detailed.then_some((squares, bands, *histogram)),
    }
}

/// Every histogram of `size` answers over 1–5.
fn histograms(size: u32) -> Vec<[u32; 5]> {
    let mut out = Vec::new();
    for a in 0..=size {
        for b in 0..=size - a {
            for c in 0..=size - a - b {
                for d in 0..=size - a - b - c {
                    out.push([a, b, c, d, size - a - b - c - d]);
                }
            }
        }
    }
    out
}

/// For one question: for each team, the values its respondents can hold
/// in some assignment consistent with everything published.
fn possible_values(answered: &[u32], cells: &[(BTreeSet<usize>, Seen)]) -> Vec<BTreeSet<usize>> {
    let teams = answered.len();
    // A group is checked once its last team is assigned.
    let last: Vec<usize> = cells
        .iter()
        .map(|(m, _)| m.iter().max().copied().unwrap_or(0))
        .collect();
    let options: Vec<Vec<[u32; 5]>> = answered.iter().map(|&c| histograms(c)).collect();
    let mut possible = vec![BTreeSet::new(); teams];
    let mut chosen: Vec<[u32; 5]> = Vec::with_capacity(teams);
    fn search(
        at: usize,
        options: &[Vec<[u32; 5]>],
        cells: &[(BTreeSet<usize>, Seen)],
        last: &[usize],
        chosen: &mut Vec<[u32; 5]>,
        possible: &mut [BTreeSet<usize>],
    ) {
        if at == options.len() {
            for (team, h) in chosen.iter().enumerate() {
                possible[team].extend((0..5).filter(|v| h[*v] > 0));
            }
            return;
        }
        for h in &options[at] {
            chosen.push(*h);
            let consistent = cells.iter().zip(last).all(|((members, want), l)| {
                if *l != at {
                    return true;
                }
                let mut total = [0u32; 5];
                for m in members {
                    for v in 0..5 {
                        total[v] += chosen[*m][v];
                    }
                }
                seen_of(&total, want.detail.is_some()) == *want
            });
            if consistent {
                search(at + 1, options, cells, last, chosen, possible);
            }
            chosen.pop();
        }
    }
    search(0, &options, cells, &last, &mut chosen, &mut possible);
    possible
}

fn attack(
    case: &Case,
    publication: &Publication,
    template: &Template,
    k: u32,
) -> Result<(), String> {
    for (q_index, q) in QUESTIONS.iter().enumerate() {
        let question = template.question(q).unwrap();
        // Scored values per team: what the attacker tries to learn.
        let truth: Vec<Vec<u8>> = case
            .answers
            .iter()
            .map(|rs| {
                rs.iter()
                    .filter_map(|a| a[q_index].and_then(|v| question.score(v)))
                    .collect()
            })
            .collect();
        let answered: Vec<u32> = truth.iter().map(|t| t.len() as u32).collect();
        let cells: Vec<(BTreeSet<usize>, Seen)> = publication
            .cells
            .iter()
            .filter(|c| c.measure == Measure::Question((*q).to_owned()))
            .filter_map(|c| Some((case.members(&c.group), seen(c.outcome.as_ref().ok()?))))
            .collect();
        let possible = possible_values(&answered, &cells);
        // The true answers are one consistent assignment.
        for (team, values) in truth.iter().enumerate() {
            for v in values {
                if !possible[team].contains(&(usize::from(*v) - 1)) {
                    return Err(format!("{q}: the true answers are not consistent"));
                }
            }
        }
        let mut pinned: HashMap<usize, u32> = HashMap::new();
        for (team, values) in possible.iter().enumerate() {
            if values.len() == 1 && answered[team] > 0 {
                *pinned.entry(*values.first().unwrap()).or_default() += answered[team];
            }
        }
        for (value, people) in pinned {
            if people < k {
                return Err(format!(
                    "{q}: {people} respondent(s) pinned to {} (k = {})",
                    value + 1,
                    k
                ));
            }
        }
    }
    Ok(())
}

/// The direct checks and the attack on one publication made with `k`.
fn examine(
    case: &Case,
    publication: &Publication,
    template: &Template,
    k: u32,
) -> Result<(), String> {
    for (measure, cells) in published(publication) {
        let minimum = if measure.starts_with("comments") {
            comment_minimum(k)
        } else {
            k
        };
        check_residuals(case, &cells, minimum).map_err(|e| format!("{measure}: {e}"))?;
    }
    attack(case, publication, template, k)
}

/// Per tag (team id, scope), two counts summed.
type PerTag = BTreeMap<(String, &'static str), (u32, u32)>;

/// Each tag holds 0 or at least `k` of `counts`; returns the per-tag sums.
fn check_tags(
    tags: &crate::answers::coarsen::Tags,
    counts: &BTreeMap<String, (u32, u32)>,
    k: u32,
) -> Result<PerTag, String> {
    let mut per_tag = PerTag::new();
    for (t, (n, m)) in counts {
        if let Some(Some(tag)) = tags.get(t) {
            let entry = per_tag
                .entry((tag.team_id.clone(), tag.scope.as_str()))
                .or_default();
            entry.0 += n;
            entry.1 += m;
        }
    }
    if let Some((tag, (n, _))) = per_tag.iter().find(|(_, (n, _))| *n < k) {
        return Err(format!("tag {tag:?} holds {n} < {k}"));
    }
    Ok(per_tag)
}

fn check(case: &Case) -> Result<(), String> {
    let template = template();
    let parents = case.parents();
    let invited: BTreeMap<String, u32> = case
        .invited
        .iter()
        .enumerate()
        .map(|(i, n)| (team(i), *n))
        .collect();
    let responses = case.responses();
    let publication = publish(&template, &parents, &invited, &responses, case.k);
    examine(case, &publication, &template, case.k)?;

    // Sealing: responses and participation coarsened to what was published.
    let hashed: HashMap<String, Option<String>> = parents
        .iter()
        .map(|(t, p)| (t.clone(), p.clone()))
        .collect();
    let mut counts: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for (t, _) in &responses {
        counts.entry(t.clone()).or_default().0 += 1;
    }
    let sizes = |c: &BTreeMap<String, (u32, u32)>| -> BTreeMap<String, usize> {
        c.iter()
            .map(|(t, (n, _))| (t.clone(), *n as usize))
            .collect()
    };
    let tags = coarsen(&hashed, "org", &sizes(&counts), case.k as usize);
    check_tags(&tags, &counts, case.k)?;
    let mut people: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for (i, n) in case.invited.iter().enumerate() {
        people.insert(team(i), (*n, case.answers[i].len() as u32));
    }
    let invited_tags = coarsen(&hashed, "org", &sizes(&people), case.k as usize);
    let atoms = check_tags(&invited_tags, &people, case.k)?;

    // A raised k, from what sealing left.
    let k = case.k + 1;
    let mut response_units = Units::new(&parents, "org");
    let units: Vec<(String, Response)> = responses
        .iter()
        .filter_map(|(t, r)| {
            let tag = tags.get(t).cloned().flatten()?;
            Some((response_units.unit(&tag), r.clone()))
        })
        .collect();
    let mut participation_units = Units::new(&parents, "org");
    let mut unit_counts: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for ((team_id, scope), counts) in atoms {
        let tag = crate::answers::coarsen::Tag {
            team_id,
            scope: crate::answers::coarsen::Scope::parse(scope).unwrap(),
        };
        unit_counts.insert(participation_units.unit(&tag), counts);
    }
    let before: Vec<Before> = publication
        .cells
        .iter()
        .map(|c| Before {
            group: c.group.clone(),
            measure: c.measure.clone(),
            suppressed: c.outcome.as_ref().err().copied(),
            comments: match &c.outcome {
                Ok(Figures::Comments(f)) => Some(f.clone()),
                _ => None,
            },
        })
        .collect();
    let again = republish(
        &template,
        &response_units,
        &units,
        &participation_units,
        &unit_counts,
        &before,
        k,
    );
    examine(case, &again.publication, &template, k).map_err(|e| format!("k + 1: {e}"))?;
    // Every published number is the true one.
    let members = |group: &Group| -> Vec<&Response> {
        let teams = case.members(group);
        responses
            .iter()
            .filter(|(t, _)| teams.contains(&t[1..].parse::<usize>().unwrap()))
            .map(|(_, r)| r)
            .collect()
    };
    for cell in &again.publication.cells {
        let (Measure::Question(id), Ok(Figures::Question(f))) = (&cell.measure, &cell.outcome)
        else {
            continue;
        };
        let truth =
            super::score::question_score(template.question(id).unwrap(), members(&cell.group))
                .ok_or("a published cell nobody answered")?;
        if truth.n != f.n || (truth.mean - f.mean).abs() > 1e-9 {
            return Err(format!(
                "k + 1: {:?} {id} is {f:?}, truly {truth:?}",
                cell.group
            ));
        }
    }
    let retagged: BTreeMap<String, (u32, u32)> =
        units.iter().fold(BTreeMap::new(), |mut m, (u, _)| {
            m.entry(u.clone()).or_default().0 += 1;
            m
        });
    check_tags(&again.response_tags, &retagged, k).map_err(|e| format!("k + 1: {e}"))?;
    check_tags(&again.participation_tags, &unit_counts, k).map_err(|e| format!("k + 1: {e}"))?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_publication_gives_away_an_answer(case in case()) {
        if let Err(problem) = check(&case) {
            prop_assert!(false, "{problem}\n{case:?}");
        }
    }
}
