//! Measured data turned into text, tables, files and plots.
//!
//! Layer: above `experiment` and `bench`; formats, never measures.

mod bars;
pub mod compare;
pub mod experiment;
pub mod export;
mod grid;
pub use grid::{View, count, number};
mod findings;
pub mod load;
pub mod plot;
pub mod progress;
pub mod serve;
pub mod soak;
mod table;
mod tasks;
pub mod transfer;
mod warnings;
// Counted nouns for every renderer: "1 run", "3 runs".
pub use crate::words::plural;
