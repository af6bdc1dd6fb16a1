//! The progress bar on stderr; silent when stderr is not a terminal.

use crate::bench::Step;
use indicatif::{HumanDuration, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::fmt::Write;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the spinner and the clocks move while a step runs.
const TICK: Duration = Duration::from_millis(150);

pub struct Progress {
    bar: ProgressBar,
    pace: Arc<Mutex<Pace>>,
}

/// What the ETA goes by besides the bar's clock, kept together so that a redraw
/// between two updates sees them agree.
#[derive(Default)]
struct Pace {
    /// The job's planned length, from its steps.
    planned: Option<Duration>,
    done: usize,
    total: usize,
    /// The bar's clock when the last step ended.
    ended_at: Duration,
}

impl Progress {
    /// A bar, its clock started, whose length and message come with each [`Step`].
    pub fn start() -> Progress {
        let pace = Arc::new(Mutex::new(Pace::default()));
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.enable_steady_tick(TICK);
            bar
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {wide_bar} {pos}/{len} [{elapsed}]{eta}")
                .expect("valid template")
                .with_key("eta", eta(pace.clone())),
        );
        Progress { bar, pace }
    }

    /// `step.done` steps are finished; `step.what` is running now. The total comes
    /// with every step: an experiment knows it only once it has decided which
    /// points can run here.
    pub fn show(&self, step: &Step) {
        // Read before taking the lock: a redraw takes the two the other way round.
        let now = self.bar.elapsed();
        if let Ok(mut pace) = self.pace.lock() {
            if step.done != pace.done {
                pace.ended_at = now;
            }
            pace.planned = step.planned;
            pace.done = step.done;
            pace.total = step.total;
        }
        self.bar.set_length(step.total as u64);
        self.bar.set_position(step.done as u64);
        self.bar.set_message(step.what.to_string());
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The time left for the whole job, counting down while a step runs: once a step
/// has ended, the mean time of the ended ones for each step not ended (the steps of
/// a job last about as long as each other), less the time the running one has had;
/// before that, the plan's, if there is one; else nothing, not a guess.
fn eta(pace: Arc<Mutex<Pace>>) -> impl Fn(&ProgressState, &mut dyn Write) + Send + Sync + Clone {
    move |state, w| {
        let Ok(pace) = pace.lock() else { return };
        let whole = match pace.done {
            0 => pace.planned,
            done => Some(pace.ended_at.mul_f64(pace.total as f64 / done as f64)),
        };
        if let Some(whole) = whole {
            let left = whole.saturating_sub(state.elapsed());
            let _ = write!(w, " ETA {:#}", HumanDuration(left));
        }
    }
}
