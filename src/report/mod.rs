//! Turning measured data into text. Measuring code never formats.

pub mod compare;
pub mod export;
mod grid;
pub mod load;
pub mod progress;
pub mod serve;
pub mod soak;
pub mod transfer;
