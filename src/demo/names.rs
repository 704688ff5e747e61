//! Names for the synthetic organisation: Dutch and English people, and team
//! names by level of the tree.

use rand::RngExt;
use rand::rngs::ChaCha8Rng;

const DUTCH_FIRST: &[&str] = &[
    "Anna", "Daan", "Sanne", "Lars", "Fleur", "Bram", "Eva", "Thijs", "Noor", "Jeroen", "Lotte",
    "Ruben", "Iris", "Sem", "Femke", "Joost", "Maud", "Pieter", "Roos", "Wouter", "Esther", "Koen",
    "Lieke", "Niels", "Marloes", "Gijs", "Ilse", "Stijn", "Annelies", "Maarten",
];
const DUTCH_LAST: &[&str] = &[
    "de Vries",
    "Jansen",
    "van den Berg",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Leeuwen",
    "Dekker",
    "Brouwer",
    "de Wit",
    "Dijkstra",
    "Smits",
    "de Graaf",
    "van der Meer",
    "Kok",
    "Jacobs",
    "de Haan",
    "Vermeulen",
    "van Dijk",
    "Schouten",
    "Willems",
    "Hoekstra",
];
const ENGLISH_FIRST: &[&str] = &[
    "Olivia", "James", "Amelia", "Oliver", "Isla", "Harry", "Emily", "George", "Sophie", "Jack",
    "Grace", "Noah", "Lily", "Leo", "Chloe", "Arthur", "Ella", "Oscar", "Mia", "Henry", "Priya",
    "Samuel", "Zara", "Daniel", "Aisha", "Thomas", "Hannah", "Ethan", "Ruby", "Lucas",
];
const ENGLISH_LAST: &[&str] = &[
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Wood", "Jackson", "Clarke", "Khan", "Lewis", "Harris", "Martin", "Cooper", "King", "Lee",
    "Baker", "Hughes",
];

pub const DEPARTMENTS: &[&str] = &[
    "Engineering",
    "Sales",
    "Operations",
    "Customer Care",
    "Finance",
    "People & Culture",
    "Marketing",
    "Product",
    "Legal",
    "Logistics",
    "Research",
    "Facilities",
];

const AREAS: &[&str] = &[
    "North",
    "South",
    "East",
    "West",
    "Central",
    "Platform",
    "Growth",
    "Core",
    "Services",
    "Digital",
    "Field",
    "Enterprise",
];

/// A team's name at `depth` (0 = department), unique among its siblings.
pub fn team_name(depth: usize, department: usize, child: usize) -> String {
    let base = DEPARTMENTS[department % DEPARTMENTS.len()];
    match depth {
        0 if department < DEPARTMENTS.len() => base.to_owned(),
        0 => format!("{base} {}", department / DEPARTMENTS.len() + 1),
        1 => format!("{base} {}", AREAS[child % AREAS.len()]) + &suffix(child, AREAS.len()),
        2 => format!("Unit {}", child + 1),
        _ => format!("Team {}", child + 1),
    }
}

fn suffix(child: usize, len: usize) -> String {
    if child < len {
        String::new()
    } else {
        format!(" {}", child / len + 1)
    }
}

pub fn person(rng: &mut ChaCha8Rng, dutch: bool) -> (&'static str, &'static str) {
    let (first, last) = if dutch {
        (DUTCH_FIRST, DUTCH_LAST)
    } else {
        (ENGLISH_FIRST, ENGLISH_LAST)
    };
    (
        first[rng.random_range(0..first.len())],
        last[rng.random_range(0..last.len())],
    )
}

/// Lower-case ASCII letters only, for email addresses.
pub fn email_part(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A job title for a level.
pub fn title(level: i64) -> &'static str {
    match level {
        ..=1 => "Junior specialist",
        2 => "Specialist",
        3 => "Senior specialist",
        4 => "Lead",
        5 => "Principal",
        6 => "Manager",
        7 => "Senior manager",
        _ => "Director",
    }
}
