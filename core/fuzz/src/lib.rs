//! Fuzz harnesses of credpool-core. Each module's `run(data)` is one libFuzzer target
//! (`fuzz_targets/<name>.rs`); `core/tests/fuzz_regressions.rs` includes these same files
//! and replays `regressions/<name>/*` on stable, so every crash found stays a test.

pub mod classify;
pub mod generate;
pub mod inputs;
pub mod merge_laws;
pub mod state_decode;
