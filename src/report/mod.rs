//! Turning measured data into text. Measuring code never formats.

pub mod load;
pub mod serve;
