//! Turning measured data into text. Measuring code never formats.

pub mod serve;
