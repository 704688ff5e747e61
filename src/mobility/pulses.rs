//! Mobility beside the pulses: per team, its latest published theme score
//! next to what its people did in the months after, and across teams how
//! the two go together. Team level only, by construction: a response is
//! never linked to a person, so "what did the leavers answer" has no
//! answer in Peil, and no figure here comes from fewer than the published
//! team's k respondents.

use serde::Serialize;
use utoipa::ToSchema;

/// How a theme score and a later rate go together across teams: Pearson's
/// r, with a 95% confidence interval by Fisher's z transformation. Teams are
/// the units, each weighing the same.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Correlation {
    /// Teams with both a score and people in the window.
    pub teams: u32,
    /// None with fewer than 3 teams, or when either side does not vary.
    pub r: Option<f64>,
    /// None with fewer than 4 teams (or r of ±1).
    pub ci95: Option<[f64; 2]>,
}

/// Pearson's r of `points` and its Fisher-z 95% interval, to 4 decimals.
pub fn correlation(points: &[(f64, f64)]) -> Correlation {
    let n = points.len();
    let teams = u32::try_from(n).unwrap_or(u32::MAX);
    let none = Correlation {
        teams,
        r: None,
        ci95: None,
    };
    if n < 3 {
        return none;
    }
    let count = n as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(x, y), p| (x + p.0 / count, y + p.1 / count));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in points {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    if sxx <= f64::EPSILON || syy <= f64::EPSILON {
        return none;
    }
    let r = (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0);
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    let ci95 = (n >= 4 && r.abs() < 1.0).then(|| {
        let z = r.atanh();
        let half = 1.959_963_984_540_054 / (count - 3.0).sqrt();
        [round((z - half).tanh()), round((z + half).tanh())]
    });
    Correlation {
        teams,
        r: Some(round(r)),
        ci95,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_and_fisher_match_a_worked_example() {
        // x = 1..5, y = 2, 4, 5, 4, 5: r = 0.7746 (sxy 6, sxx 10, syy 6).
        let points = [(1.0, 2.0), (2.0, 4.0), (3.0, 5.0), (4.0, 4.0), (5.0, 5.0)];
        let c = correlation(&points);
        assert_eq!(c.teams, 5);
        assert_eq!(c.r, Some(0.7746));
        // z = atanh(0.7746) = 1.0317, ± 1.96 / sqrt(2) = 1.3859: tanh of each.
        assert_eq!(c.ci95, Some([-0.3401, 0.9842]));
    }

    #[test]
    fn too_few_teams_or_no_variation_give_no_figure() {
        assert_eq!(correlation(&[(1.0, 2.0), (2.0, 3.0)]).r, None);
        let flat = correlation(&[(1.0, 2.0), (2.0, 2.0), (3.0, 2.0), (4.0, 2.0)]);
        assert_eq!((flat.teams, flat.r), (4, None));
        let three = correlation(&[(1.0, 1.0), (2.0, 3.0), (3.0, 2.0)]);
        assert_eq!(three.r, Some(0.5));
        assert_eq!(three.ci95, None);
        let perfect = correlation(&[(1.0, 1.0), (2.0, 2.0), (3.0, 3.0), (4.0, 4.0)]);
        assert_eq!((perfect.r, perfect.ci95), (Some(1.0), None));
    }
}
