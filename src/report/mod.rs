//! Turning measured data into text. Measuring code never formats.

pub mod compare;
pub mod experiment;
pub mod export;
mod grid;
pub use grid::number;
pub mod load;
pub mod plot;
pub mod progress;
pub mod serve;
pub mod soak;
mod table;
pub mod transfer;
mod warnings;
