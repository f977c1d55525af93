//! `metadata.generateName` on create: a name made of the prefix and five
//! random characters, as a Kubernetes API server makes one (the prefix cut to
//! leave room for them within 63 characters).

use serde_json::{Map, Value};

/// Kubernetes' alphabet for generated suffixes: no vowels (no words), no
/// characters that look alike.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const SUFFIX: usize = 5;
const LONGEST_PREFIX: usize = 63 - SUFFIX;

/// Names an object that has no name but a `generateName`; leaves others alone
/// (validation then names what is missing).
pub fn name_if_generated(metadata: &mut Map<String, Value>) {
    let named = metadata
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|name| !name.is_empty());
    let Some(prefix) = metadata.get("generateName").and_then(Value::as_str) else {
        return;
    };
    if named || prefix.is_empty() {
        return;
    }
    let mut bytes = [0u8; SUFFIX];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: no name, and validation says a name is required.
        return;
    }
    let cut = prefix
        .char_indices()
        .nth(LONGEST_PREFIX)
        .map_or(prefix, |(at, _)| &prefix[..at]);
    let mut name = cut.to_string();
    name.extend(
        bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])),
    );
    metadata.insert("name".into(), Value::String(name));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn named(metadata: Value) -> Option<String> {
        let mut metadata = metadata.as_object().cloned().unwrap_or_default();
        name_if_generated(&mut metadata);
        metadata
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    #[test]
    fn a_generated_name_is_the_prefix_and_five_characters_of_the_alphabet() {
        let name = named(json!({"generateName": "gen-"})).expect("a name");
        assert_eq!(name.len(), 9, "{name}");
        assert!(name.starts_with("gen-"));
        assert!(name[4..].bytes().all(|b| ALPHABET.contains(&b)), "{name}");
        assert_ne!(named(json!({"generateName": "gen-"})), Some(name), "random");
        let long = named(json!({"generateName": "a".repeat(80)})).expect("a name");
        assert_eq!(long.len(), 63);
    }

    #[test]
    fn a_given_name_or_no_prefix_is_left_alone() {
        assert_eq!(
            named(json!({"name": "mine", "generateName": "gen-"})).as_deref(),
            Some("mine")
        );
        assert_eq!(named(json!({"generateName": ""})), None);
        assert_eq!(named(json!({})), None);
    }
}
