//! How a write's answer names the fields it found fault with (unknown ones,
//! ones given twice): few of them, each cut short, so that a body of ten
//! thousand typos under a key as long as the body is answered in a bounded
//! header or error.

use crate::telemetry::cut;

/// At most this many fields are named, each at most `LONGEST_NAMED_PATH`
/// long, in the warning headers or the error (then how many more).
pub const NAMED_AT_MOST: usize = 20;

/// A field's path as named: a key may be as long as a body, a header (or an
/// error that names it) may not.
pub fn shortened(path: &str) -> String {
    let kept = cut(path, LONGEST_NAMED_PATH);
    if kept.len() == path.len() {
        return path.to_string();
    }
    format!("{kept}…")
}

/// Bytes of a field's path named in a warning or an error.
pub const LONGEST_NAMED_PATH: usize = 256;
