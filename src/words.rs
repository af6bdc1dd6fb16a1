//! Counted nouns as people write them: "1 run", "3 runs", "1,024 processes".
//!
//! Here at the bottom, not in `report`, because the demos and the error messages of
//! the lower layers count things too; `report` re-exports it.
//!
//! Layer: the bottom; uses nothing of ours.

use std::fmt::Display;

/// `n`, then `noun`, in the plural unless `n` shows as `1`. Decided on the shown
/// number, so that a count already grouped (`report::count`, "1,024") and a plain
/// one both work, and "1.0" takes the plural as English does. The plural of the
/// last word: +es after s, x, ch, sh ("processes", "switches"), -y to -ies after a
/// consonant ("entries"), +s otherwise; a noun of more words ("mismatched byte")
/// changes its last.
pub fn plural(n: impl Display, noun: &str) -> String {
    let n = n.to_string();
    if n == "1" {
        return format!("{n} {noun}");
    }
    let vowel_y = ["ay", "ey", "oy", "uy"].iter().any(|v| noun.ends_with(v));
    if let Some(stem) = noun.strip_suffix('y').filter(|_| !vowel_y) {
        format!("{n} {stem}ies")
    } else if ["s", "x", "ch", "sh"].iter().any(|e| noun.ends_with(e)) {
        format!("{n} {noun}es")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::plural;

    #[test]
    fn one_is_singular_every_other_count_plural() {
        assert_eq!(plural(1, "run"), "1 run");
        assert_eq!(plural(0, "run"), "0 runs");
        assert_eq!(plural(3usize, "log"), "3 logs");
        assert_eq!(plural(1u64, "byte"), "1 byte");
        assert_eq!(plural("1,024", "connection"), "1,024 connections");
        assert_eq!(plural("1", "request"), "1 request");
        assert_eq!(plural(1.5, "second"), "1.5 seconds");
        assert_eq!(plural(11, "CPU"), "11 CPUs");
    }

    #[test]
    fn plurals_that_are_not_plus_s() {
        assert_eq!(plural(2, "process"), "2 processes");
        assert_eq!(plural(2, "pass"), "2 passes");
        assert_eq!(plural(2, "switch"), "2 switches");
        assert_eq!(plural(2, "box"), "2 boxes");
        assert_eq!(plural(2, "entry"), "2 entries");
        assert_eq!(plural(2, "key"), "2 keys");
        assert_eq!(plural(2, "unexpected close"), "2 unexpected closes");
        assert_eq!(plural(1, "unexpected close"), "1 unexpected close");
    }
}
