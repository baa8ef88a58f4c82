//! Fuzzes the `/ws` frame decoder: whatever text a client sends decodes to a command,
//! plain text or a rejection, never a panic. (Properties with exact expectations are in
//! `tests/spec/properties.rs`; this target only checks what must hold for any input.)

#![no_main]
#![deny(unsafe_code)]

use hubbub::protocol::{self, Inbound, MAX_REF_CHARS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The transport only hands valid UTF-8 to the decoder, so bytes that are not are
    // repaired rather than skipped: the fuzzer's mutations still reach the decoder.
    let text = String::from_utf8_lossy(data);
    let reference = match protocol::decode(&text) {
        Inbound::Plain(plain) => {
            assert_eq!(plain, text, "plain text is echoed unchanged");
            assert!(
                !text.trim_start().starts_with('{'),
                "text starting with '{{' is a command attempt, not plain text"
            );
            None
        }
        Inbound::Command { reference, .. } | Inbound::Rejected { reference, .. } => reference,
    };
    if let Some(reference) = reference {
        assert!(reference.as_str().chars().count() <= MAX_REF_CHARS);
    }
});
