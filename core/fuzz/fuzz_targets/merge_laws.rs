#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| credpool_core_fuzz::merge_laws::run(data));
