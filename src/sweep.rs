//! Test support: a deterministic sweep over small team trees with counts,
//! for the checks that the anonymity rules hold on every shape of tree.

/// One case: teams `t0…` with their parents (each an earlier team or
/// none) and a count per team.
pub type Case = (
    Vec<(&'static str, Option<&'static str>)>,
    Vec<(&'static str, u32)>,
);

/// `cases` trees of 1 to 5 teams, counts 0 to `max_count`, the same every
/// run for the same `seed` (a linear congruential generator: no
/// dependency, and a failure names its case).
pub fn small_trees(seed: u64, cases: usize, max_count: u32) -> Vec<Case> {
    const NAMES: [&str; 5] = ["t0", "t1", "t2", "t3", "t4"];
    let mut state = seed;
    let mut next = |bound: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % bound
    };
    (0..cases)
        .map(|_| {
            let size = 1 + next(NAMES.len() as u64) as usize;
            let tree = NAMES[..size]
                .iter()
                .enumerate()
                .map(|(i, team)| {
                    let parent = next(i as u64 + 1) as usize;
                    (*team, (parent < i).then(|| NAMES[parent]))
                })
                .collect();
            let counts = NAMES[..size]
                .iter()
                .map(|team| (*team, next(u64::from(max_count) + 1) as u32))
                .collect();
            (tree, counts)
        })
        .collect()
}
