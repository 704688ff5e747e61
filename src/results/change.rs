//! Whether a change between two waves is worth showing (SURVEY-METHOD.md):
//! meaningful only when both waves published the cell, both have n ≥ 10,
//! and the difference is large and clear — at least 10 points of
//! favourability with a 90% Newcombe interval that excludes 0, or at least
//! 0.3 on the 1–5 score with a 90% Welch interval that excludes 0.
//! Anything else is "no clear change", however large it looks.
//!
//! A theme pools its items' answers, but one person's answers to them are
//! not independent: both intervals take the respondents as the sample
//! size, not the answers, which errs towards "no clear change". A score
//! change needs both waves' standard deviations, published from 2k on;
//! without them only the favourable share can show a clear change.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::publish::ThemeFigures;

/// The fewest respondents in each wave for a change to count.
pub const MIN_N: u32 = 10;
/// Favourability: at least 10 points.
pub const MIN_FAVOURABLE: f64 = 0.10;
/// Score: at least 0.3 on 1–5.
pub const MIN_SCORE: f64 = 0.3;
/// The normal quantile of a two-sided 90% interval.
const Z90: f64 = 1.644_853_626_951_472_2;

/// A theme's change since the previous wave that asked it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Change {
    /// The wave compared with.
    pub since_wave_id: String,
    /// Score now minus score then; none when either is suppressed.
    pub score: Option<f64>,
    /// Favourable share now minus then, as a fraction; none when either is
    /// suppressed.
    pub favourable: Option<f64>,
    /// True only when the rule above holds.
    pub meaningful: bool,
}

/// The change from `before` to `after` (either `None`: suppressed).
pub fn change(
    since_wave_id: &str,
    before: Option<&ThemeFigures>,
    after: Option<&ThemeFigures>,
) -> Change {
    let (Some(b), Some(a)) = (before, after) else {
        return Change {
            since_wave_id: since_wave_id.to_owned(),
            score: None,
            favourable: None,
            meaningful: false,
        };
    };
    let large_enough = b.n >= MIN_N && a.n >= MIN_N;
    let favourable = a.favourable - b.favourable;
    let score = a.score - b.score;
    let clear_favourable = favourable.abs() >= MIN_FAVOURABLE - 1e-12
        && excludes_zero(newcombe(b.favourable, b.n, a.favourable, a.n));
    // Without both standard deviations (groups under 2k) no Welch interval.
    let clear_score = score.abs() >= MIN_SCORE - 1e-12
        && match (b.sd, a.sd) {
            (Some(sb), Some(sa)) => excludes_zero(welch(b.score, sb, b.n, a.score, sa, a.n)),
            _ => false,
        };
    Change {
        since_wave_id: since_wave_id.to_owned(),
        score: Some(score),
        favourable: Some(favourable),
        meaningful: large_enough && (clear_favourable || clear_score),
    }
}

fn excludes_zero((low, high): (f64, f64)) -> bool {
    low > 0.0 || high < 0.0
}

/// Wilson's 90% score interval for `p` of `n`.
fn wilson(p: f64, n: u32) -> (f64, f64) {
    let n = f64::from(n.max(1));
    let z2 = Z90 * Z90;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z90 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    (centre - half, centre + half)
}

/// Newcombe's hybrid score interval (his method 10) for `p2 − p1`.
fn newcombe(p1: f64, n1: u32, p2: f64, n2: u32) -> (f64, f64) {
    let (l1, u1) = wilson(p1, n1);
    let (l2, u2) = wilson(p2, n2);
    let d = p2 - p1;
    (
        d - ((p2 - l2).powi(2) + (u1 - p1).powi(2)).sqrt(),
        d + ((u2 - p2).powi(2) + (p1 - l1).powi(2)).sqrt(),
    )
}

/// Welch's 90% interval for `m2 − m1`.
fn welch(m1: f64, s1: f64, n1: u32, m2: f64, s2: f64, n2: u32) -> (f64, f64) {
    let (n1, n2) = (f64::from(n1.max(2)), f64::from(n2.max(2)));
    let (v1, v2) = (s1 * s1 / n1, s2 * s2 / n2);
    let se = (v1 + v2).sqrt();
    let d = m2 - m1;
    if se == 0.0 {
        return (d, d);
    }
    let df = (v1 + v2).powi(2) / (v1 * v1 / (n1 - 1.0) + v2 * v2 / (n2 - 1.0));
    let t = t95(df);
    (d - t * se, d + t * se)
}

/// Student's t quantile at 0.95 for `df` degrees of freedom, by the
/// Cornish–Fisher expansion around the normal quantile: within 0.002 of
/// the exact value from 5 degrees of freedom on (n ≥ 10 guarantees more).
fn t95(df: f64) -> f64 {
    let z = Z90;
    let (z3, z5, z7) = (z.powi(3), z.powi(5), z.powi(7));
    z + (z3 + z) / (4.0 * df)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * df * df)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * df.powi(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn theme(n: u32, score: f64, sd: f64, favourable: f64) -> ThemeFigures {
        ThemeFigures {
            n,
            score,
            sd: Some(sd),
            answers: n * 5,
            favourable,
        }
    }

    #[test]
    fn t_quantiles_match_the_tables() {
        // t(0.95) for 5, 10, 30 and 120 degrees of freedom.
        for (df, exact) in [(5.0, 2.015), (10.0, 1.812), (30.0, 1.697), (120.0, 1.658)] {
            assert!((t95(df) - exact).abs() < 0.002, "{df}: {}", t95(df));
        }
    }

    #[test]
    fn newcombe_matches_his_worked_example() {
        // Newcombe (1998), table II, example (a): 56/70 − 48/80 at 95% is
        // 0.0524 to 0.3339; at 90% the interval is narrower and inside it.
        let (low, high) = newcombe(48.0 / 80.0, 80, 56.0 / 70.0, 70);
        assert!(low > 0.0524 && low < 0.09, "{low}");
        assert!(high < 0.3339 && high > 0.30, "{high}");
    }

    #[test]
    fn a_large_change_in_a_small_team_is_not_clear() {
        // SURVEY-METHOD.md: at n = 10, 50% → 80% favourable is not significant.
        let before = theme(10, 3.0, 0.9, 0.5);
        let after = theme(10, 3.1, 0.9, 0.8);
        let c = change("w1", Some(&before), Some(&after));
        assert!(!c.meaningful, "{c:?}");
    }

    #[test]
    fn a_large_clear_change_is_meaningful() {
        let before = theme(40, 3.0, 0.5, 0.4);
        let after = theme(40, 3.6, 0.5, 0.7);
        assert!(change("w1", Some(&before), Some(&after)).meaningful);
    }

    #[test]
    fn a_clear_but_small_change_is_not() {
        // Huge n makes 0.2 clear, but it is under the 0.3 and 10-point bars.
        let before = theme(5_000, 3.0, 0.5, 0.50);
        let after = theme(5_000, 3.2, 0.5, 0.55);
        assert!(!change("w1", Some(&before), Some(&after)).meaningful);
    }

    #[test]
    fn under_ten_respondents_never_counts() {
        let before = theme(9, 2.0, 0.1, 0.1);
        let after = theme(9, 4.5, 0.1, 0.9);
        assert!(!change("w1", Some(&before), Some(&after)).meaningful);
    }

    #[test]
    fn a_suppressed_side_gives_no_change() {
        let after = theme(20, 3.0, 0.5, 0.5);
        let c = change("w1", None, Some(&after));
        assert_eq!((c.score, c.favourable, c.meaningful), (None, None, false));
    }
}
