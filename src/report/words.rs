//! Counts in words: "1 run", "3 runs".

/// `n` and the noun, plural unless `n` is 1.
pub fn plural(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{} {noun}s", super::count(n)),
    }
}
