//! Replays every input kept under `core/fuzz/regressions/<target>/` through the same
//! harness code the fuzz targets run (`core/fuzz/src`, included here), on stable, as part
//! of `cargo test -p credpool-core`. A crash the fuzzer finds is fixed, then its input is
//! copied here so it stays fixed.
#![allow(clippy::disallowed_methods)] // reading the kept inputs is this test's job

#[allow(unreachable_pub, dead_code, missing_docs)]
#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::PathBuf;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let Ok(listing) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut files: Vec<PathBuf> = listing.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for file in &files {
        let data = std::fs::read(file).expect("regression input is readable");
        eprintln!("replaying {}", file.display());
        run(&data);
    }
    files.len()
}

#[test]
fn inputs_regressions() {
    replay("inputs", harness::inputs::run);
}

#[test]
fn state_decode_regressions() {
    assert!(replay("state_decode", harness::state_decode::run) > 0);
}

#[test]
fn classify_regressions() {
    replay("classify", harness::classify::run);
}

#[test]
fn merge_laws_regressions() {
    replay("merge_laws", harness::merge_laws::run);
}
