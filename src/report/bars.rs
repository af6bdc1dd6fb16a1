//! Horizontal bars in the terminal, one per subject, scaled to the largest: a
//! difference that shows from the back of a room.

use crate::style::{Paint, Style};

pub struct Bar {
    pub name: String,
    pub value: f64,
    /// The value as the table prints it.
    pub text: String,
    /// What to say beside it ("1.52 times faster than select").
    pub note: String,
    pub paint: Option<Paint>,
}

/// Narrowest and widest bar, in columns.
const BAR_WIDTH: (usize, usize) = (8, 40);

/// A title line, then one line per bar: `name  ████▌  value  note`. A note that
/// would not fit beside its bar goes on the line below.
pub fn render(style: &Style, title: &str, bars: &[Bar]) -> String {
    let width = |f: fn(&Bar) -> &str| bars.iter().map(|b| f(b).chars().count()).max();
    let (Some(name_w), Some(text_w), Some(note_w)) =
        (width(|b| &b.name), width(|b| &b.text), width(|b| &b.note))
    else {
        return String::new();
    };
    let fixed = name_w + text_w + 4;
    let room = style.width.saturating_sub(fixed);
    let notes_beside = room >= BAR_WIDTH.0 + note_w;
    let bar_w = match notes_beside {
        true => room - note_w,
        false => room,
    }
    .clamp(BAR_WIDTH.0, BAR_WIDTH.1);
    let largest = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let mut out = style.wrap(title, 2);
    for b in bars {
        let share = if largest > 0.0 {
            b.value / largest
        } else {
            0.0
        };
        let bar = format!("{:<bar_w$}", draw(style, share * bar_w as f64));
        let bar = match b.paint {
            Some(p) => style.paint(&bar, p),
            None => bar,
        };
        let line = format!("{:<name_w$} {bar} {:>text_w$}", b.name, b.text);
        let note = match b.paint {
            Some(Paint::Dim) => style.paint(&b.note, Paint::Dim),
            _ => b.note.clone(),
        };
        out += &match notes_beside {
            true => format!("{line}  {note}").trim_end().to_string() + "\n",
            false => format!("{line}\n{:name_w$}  {note}\n", ""),
        };
    }
    out
}

/// A bar `columns` long (fractional): Unicode eighth blocks, or `#` in ASCII.
fn draw(style: &Style, columns: f64) -> String {
    if !style.unicode {
        return "#".repeat(columns.round() as usize);
    }
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (columns * 8.0).round() as usize;
    let mut bar = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        bar.push(PARTS[eighths % 8]);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(name: &str, value: f64) -> Bar {
        Bar {
            name: name.into(),
            value,
            text: value.to_string(),
            note: "within the noise of select".into(),
            paint: None,
        }
    }

    #[test]
    fn bars_scale_to_the_largest_and_fit_the_width() {
        let style = Style {
            width: 80,
            ..Style::PLAIN
        };
        let out = render(
            &style,
            "requests/s",
            &[bar("select", 50.0), bar("epoll", 100.0)],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        let blocks = |l: &str| l.chars().filter(|&c| c == '█').count();
        assert_eq!(blocks(lines[2]), 2 * blocks(lines[1]), "{out}");
        assert!(out.lines().all(|l| l.chars().count() <= 80), "{out}");
        let ascii = Style {
            unicode: false,
            ..style
        };
        let out = render(
            &ascii,
            "requests/s",
            &[bar("select", 50.0), bar("epoll", 100.0)],
        );
        assert!(out.is_ascii() && out.contains("####"), "{out}");
    }

    #[test]
    fn notes_that_do_not_fit_go_below() {
        let style = Style {
            width: 40,
            ..Style::PLAIN
        };
        let out = render(&style, "t", &[bar("select", 1.0)]);
        assert_eq!(out.lines().count(), 3, "{out}");
        assert!(out.lines().all(|l| l.chars().count() <= 40), "{out}");
    }
}
