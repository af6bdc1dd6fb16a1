//! The progress bar on stderr; silent when stderr is not a terminal.

use crate::experiment::Step;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub struct Progress(ProgressBar);

impl Progress {
    pub fn new(total: u64) -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}]")
                .expect("valid template"),
        );
        Progress(bar)
    }

    /// `done` steps are finished; `what` is running now.
    pub fn show(&self, done: usize, what: &str) {
        self.0.set_position(done as u64);
        self.0.set_message(what.to_string());
    }

    /// An experiment's step, which brings its total: the experiment knows it only
    /// once it has decided which points can run here.
    pub fn step(&self, step: &Step) {
        self.0.set_length(step.total as u64);
        self.show(step.done, step.what);
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}
