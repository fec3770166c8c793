//! One named test per conformance vector (`tests/vectors/*.json` and `CREDPOOL_EXTRA_VECTORS`).

use credpool_conformance::{run_vector, vector_dirs, vector_files};
use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for (index, dir) in vector_dirs().into_iter().enumerate() {
        let files = match vector_files(&dir) {
            Ok(files) => files,
            Err(e) => {
                let name = format!("vector_dir::{}", dir.display());
                let message = format!("cannot read {}: {e}", dir.display());
                trials.push(Trial::test(name, move || Err(Failed::from(message))));
                continue;
            }
        };
        for path in files {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let prefix = if index == 0 { "vector" } else { "extra" };
            trials.push(Trial::test(format!("{prefix}::{stem}"), move || {
                let text =
                    std::fs::read_to_string(&path).map_err(|e| Failed::from(e.to_string()))?;
                let vector: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| Failed::from(format!("not JSON: {e}")))?;
                if vector
                    .get("description")
                    .and_then(serde_json::Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(Failed::from("vector has no description"));
                }
                run_vector(&vector).map_err(Failed::from)
            }));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
