//! How text meets its reader: the width it is wrapped to, whether it may use Unicode
//! (box drawing, bars, ±, –, ≥) and whether it takes colour. Every renderer is given
//! a [`Style`]; `options` decides it from the flags, the terminal, the locale and
//! `NO_COLOR`.
//!
//! Layer: beside `sys` and `protocol`; uses only `names`. Every part that prints
//! uses it.

use crate::names::named_enum;
use comfy_table::presets::{ASCII_FULL_CONDENSED, UTF8_FULL_CONDENSED};
use comfy_table::{ColumnConstraint, ContentArrangement, Table, Width};
use std::borrow::Cow;

named_enum! {
    /// Which characters the output may use.
    pub enum Charset {
        /// Unicode when the locale (LC_ALL, LC_CTYPE, LANG) is UTF-8, else ASCII
        Auto => "auto",
        /// Box drawing, block bars, ±, –, ≥
        Unicode => "unicode",
        /// Plain ASCII: +-|, # bars, +-, -, >=
        Ascii => "ascii",
    }
}

named_enum! {
    /// Whether the output is coloured.
    pub enum ColorChoice {
        /// When standard output is a terminal and NO_COLOR is not set
        Auto => "auto",
        Always => "always",
        Never => "never",
    }
}

/// A space that [`Style::wrap`] does not break a line at: between a number and its
/// unit.
pub const NBSP: char = '\u{a0}';

/// The width, characters and colour of one output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Style {
    pub width: usize,
    pub unicode: bool,
    pub color: bool,
}

/// What a painted piece of text means.
#[derive(Clone, Copy)]
pub enum Paint {
    /// The best subject, a finding.
    Good,
    /// A warning.
    Warn,
    /// A failure.
    Bad,
    /// What matters less: "within the noise", a footnote.
    Dim,
}

impl Style {
    /// Files, pipes and exports: 100 columns, Unicode, no colour.
    pub const PLAIN: Style = Style {
        width: 100,
        unicode: true,
        color: false,
    };

    /// A table that fits the width, breaking cells at spaces only where it must.
    pub fn table(&self) -> Table {
        let mut t = Table::new();
        t.load_style(match self.unicode {
            true => UTF8_FULL_CONDENSED,
            false => ASCII_FULL_CONDENSED,
        })
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(self.width.min(u16::MAX as usize) as u16);
        t
    }

    /// A table made with [`Style::table`] as text. One that fits the width as it is
    /// is not rearranged (comfy-table's dynamic arrangement would wrap it anyway, to
    /// share the width out evenly); one that does not has no column narrower than
    /// its longest word, so that cells break only at spaces.
    pub fn render(&self, mut table: Table) -> String {
        let columns = table.column_count();
        let (mut longest_word, mut longest_line) = (vec![0; columns], vec![0; columns]);
        for row in table.header().into_iter().chain(table.row_iter()) {
            for (i, cell) in row.cell_iter().enumerate() {
                let text = cell.content();
                let widest = |parts: &mut dyn Iterator<Item = &str>| {
                    parts.map(|p| p.chars().count()).max().unwrap_or(0)
                };
                longest_word[i] = longest_word[i].max(widest(&mut text.split_whitespace()));
                longest_line[i] = longest_line[i].max(widest(&mut text.lines()));
            }
        }
        // Each column: its text, a space either side and a rule; one rule more.
        let natural: usize = longest_line.iter().map(|w| w + 3).sum::<usize>() + 1;
        if natural <= self.width {
            table.set_content_arrangement(ContentArrangement::Disabled);
        }
        for (column, width) in table.column_iter_mut().zip(longest_word) {
            // The bound counts the padding, a space either side.
            let width = Width::Fixed((width + 2).min(u16::MAX as usize) as u16);
            column.set_constraint(ColumnConstraint::LowerBoundary(width));
        }
        format!("{table}\n")
    }

    /// `text` as this style may print it: in ASCII, the few other characters iobench
    /// prints spelled out.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.unicode || text.is_ascii() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '–' | '—' => out.push('-'),
                '≥' => out.push_str(">="),
                '±' => out.push_str("+-"),
                '×' => out.push('x'),
                '…' => out.push_str("..."),
                '→' => out.push_str("->"),
                NBSP => out.push(' '),
                c if c.is_ascii() => out.push(c),
                _ => out.push('?'),
            }
        }
        Cow::Owned(out)
    }

    /// `text` in this style's characters, each of its lines wrapped at spaces to the
    /// width, the continuation lines indented by `indent` spaces; ends with a newline.
    pub fn wrap(&self, text: &str, indent: usize) -> String {
        let text = self.text(text);
        if text.is_empty() {
            return "\n".to_string();
        }
        let mut out = String::new();
        for line in text.lines() {
            let mut width = 0;
            for (i, word) in line.split(' ').enumerate() {
                let len = word.chars().count();
                if i > 0 && width + 1 + len > self.width && width > indent {
                    out.push('\n');
                    out.extend(std::iter::repeat_n(' ', indent));
                    width = indent;
                } else if i > 0 {
                    out.push(' ');
                    width += 1;
                }
                out.push_str(word);
                width += len;
            }
            out.push('\n');
        }
        out
    }

    /// `text` coloured for what it means, when this style has colour.
    pub fn paint(&self, text: &str, paint: Paint) -> String {
        if !self.color {
            return text.to_string();
        }
        let code = match paint {
            Paint::Good => "32",
            Paint::Warn => "33",
            Paint::Bad => "31",
            Paint::Dim => "2",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// A note, warning or failure line (`what: text`), wrapped with a hanging indent
    /// and its label coloured.
    pub fn labelled(&self, what: &str, text: &str) -> String {
        let paint = match what {
            "warning" | "disagreement" => Paint::Warn,
            "failed" => Paint::Bad,
            _ => Paint::Dim,
        };
        let wrapped = self.wrap(&format!("{what}: {text}"), 2);
        let label = format!("{what}:");
        format!("{}{}", self.paint(&label, paint), &wrapped[label.len()..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style(width: usize, unicode: bool) -> Style {
        Style {
            width,
            unicode,
            color: false,
        }
    }

    #[test]
    fn wraps_at_spaces_with_a_hanging_indent() {
        let s = style(20, true);
        let text = "warning: the client was near saturation";
        assert_eq!(
            s.wrap(text, 2),
            "warning: the client\n  was near\n  saturation\n"
        );
        for line in s.wrap(text, 2).lines() {
            assert!(line.chars().count() <= 20, "{line:?}");
        }
        assert_eq!(s.wrap("", 2), "\n", "an empty line stays one");
        // A word longer than the width stays whole, on its own line.
        assert_eq!(
            s.wrap("a abcdefghijklmnopqrstuvwxyz b", 0),
            "a\nabcdefghijklmnopqrstuvwxyz\nb\n"
        );
    }

    #[test]
    fn ascii_spells_out_the_rest() {
        let s = style(80, false);
        assert_eq!(s.text("≥ 1.5 ±3% (1–2) µ"), ">= 1.5 +-3% (1-2) ?");
        // A no-break space holds a number to its unit, and is a space in ASCII.
        assert_eq!(style(5, true).wrap("ab 1\u{a0}s", 0), "ab\n1\u{a0}s\n");
        assert_eq!(s.text("1\u{a0}s"), "1 s");
        assert_eq!(style(80, true).text("±3%"), "±3%");
    }

    #[test]
    fn colour_only_when_asked() {
        assert_eq!(style(80, true).paint("x", Paint::Good), "x");
        let c = Style {
            color: true,
            ..Style::PLAIN
        };
        assert_eq!(c.paint("x", Paint::Good), "\x1b[32mx\x1b[0m");
        assert!(
            c.labelled("warning", "w")
                .starts_with("\x1b[33mwarning:\x1b[0m w")
        );
    }
}
