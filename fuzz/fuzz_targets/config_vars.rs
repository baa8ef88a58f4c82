//! Fuzzes configuration parsing: the input is read as `KEY=value` lines (as in `.env`),
//! and `Config::from_vars` must return a config or an error naming a variable that was
//! set (or the variable a cross-field rule blames), never panic.

#![no_main]
#![deny(unsafe_code)]

use hubbub::config::Config;
use libfuzzer_sys::fuzz_target;

/// The variables the cross-field rules in `Config::validate` name in their errors.
const CROSS_FIELD: [&str; 2] = ["CLIENT_TIMEOUT_MS", "MAX_PENDING_BYTES"];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let vars: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    if let Err(err) = Config::from_vars(vars.clone()) {
        assert!(
            vars.iter().any(|(key, _)| *key == err.variable)
                || CROSS_FIELD.contains(&err.variable.as_str()),
            "{err} names a variable that was not set"
        );
    }
});
