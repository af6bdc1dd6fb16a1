//! iobench: an I/O multiplexing workbench. The layers, bottom to top (each uses only
//! those below it, never a peer on its own line; tests/layers.rs checks it, and each
//! module's first lines say its rule):
//! - `names`, `units`, `rng`, `words`: enum names, units, the deterministic
//!   generator and counted nouns;
//! - `sys`, `protocol`, `style`: system calls and their counts, framing, and the
//!   output's width, characters and colour;
//! - `backend`: the readiness multiplexers;
//! - `metrics`: measured figures as plain data;
//! - `server`, `load`, `transfer`, `demo`: the things that run;
//! - `bench`: measured runs (server process, load generator, kernel counts);
//! - `experiment`: declarative sweeps of measured runs;
//! - `report`: data turned into text, tables, files and plots;
//! - `cli`: the command line (clap's definitions);
//! - `options`: the command line turned into validated configurations (the binary
//!   wires them to the rest).

pub mod backend;
pub mod bench;
pub mod cli;
pub mod demo;
pub mod experiment;
pub mod load;
pub mod metrics;
pub mod names;
pub mod options;
pub mod protocol;
pub mod report;
pub mod rng;
pub mod server;
pub mod style;
pub mod sys;
pub mod transfer;
pub mod units;
pub mod words;
