//! What a caller sent, as a log line or an error quotes it: an event's id
//! or type, or a field's name, may be as long as its request (a megabyte),
//! and a log line per dead letter, or a warning header, should not be.

/// At most this many bytes of a caller's text go into a log line.
const LOGGED_MOST: usize = 256;

/// `text` cut to `LOGGED_MOST` bytes (see `cut`).
pub fn shortened(text: &str) -> &str {
    cut(text, LOGGED_MOST)
}

/// `text` cut to at most `most` bytes, at a character boundary.
pub fn cut(text: &str, most: usize) -> &str {
    if text.len() <= most {
        return text;
    }
    let mut end = most;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        assert_eq!(shortened("order-1"), "order-1");
        let long = "é".repeat(200);
        let kept = shortened(&long);
        assert!(kept.len() <= LOGGED_MOST && kept.len() >= LOGGED_MOST - 1);
        assert!(long.starts_with(kept));
        assert_eq!(cut("aé", 2), "a", "not inside the é");
    }
}
