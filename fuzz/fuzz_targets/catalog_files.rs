//! Catalog files as a starting or syncing process reads them: a
//! checkpoint, then log files applied to it. Any bytes are decoded or
//! refused with an error, never a panic, and a state that results writes
//! a checkpoint that reads back to the same state.
//!
//! Input: a checkpoint, then log files, separated by `\n---\n`. An empty
//! checkpoint means a new catalog.
#![no_main]

use catalog::CatalogState;
use libfuzzer_sys::fuzz_target;

fn split<'a>(data: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.windows(sep.len()).position(|w| w == sep) {
            Some(i) => {
                rest = Some(&r[i + sep.len()..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let mut parts = split(data, b"\n---\n");
    let checkpoint = parts.next().unwrap_or_default();
    let mut state = if checkpoint.is_empty() {
        CatalogState::default()
    } else {
        match CatalogState::from_json(checkpoint) {
            Ok(s) => s,
            Err(_) => return,
        }
    };
    for log in parts {
        let mut next = state.clone();
        if next.apply_log_file("fuzz", log).is_err() {
            break;
        }
        next.rebuild_indexes();
        state = next;
    }
    let json = state.to_json().expect("a state encodes");
    let back = CatalogState::from_json(&json).expect("a checkpoint reads back");
    assert_eq!(back.to_json().expect("encodes"), json);
});
