#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| credpool_core_fuzz::state_decode::run(data));
