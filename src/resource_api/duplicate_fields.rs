//! Fields a JSON body gives twice. A JSON object is read into a map, where
//! the last of two equal keys wins without a word; the Kubernetes API server
//! names each such field, by the request's `fieldValidation`, as it names an
//! unknown one (`duplicate field "spec.broker"`: a warning, or, under
//! `Strict`, part of the 400). YAML bodies need no such pass: their parser
//! refuses a repeated key.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::field_names::{LONGEST_NAMED_PATH, NAMED_AT_MOST, shortened};

/// The fields a body gives more than once.
#[derive(Debug, Default)]
pub struct Duplicates {
    /// The first `NAMED_AT_MOST` paths (`spec.filter.attributes.type`,
    /// `spec.items[2].x`) in the order met, each cut at `LONGEST_NAMED_PATH`.
    pub named: Vec<String>,
    /// How many there are, named or not.
    pub count: usize,
}

/// The fields `json` gives more than once; none for a body that is not JSON
/// (reading it says why). Only the first few are named: a 1 MiB body can
/// repeat a field under a long path tens of thousands of times.
pub fn duplicate_fields(json: &[u8]) -> Duplicates {
    let mut walk = Walk::default();
    let mut reader = serde_json::Deserializer::from_slice(json);
    match (&mut walk).deserialize(&mut reader) {
        Ok(()) => walk.found,
        Err(_) => Duplicates::default(),
    }
}

enum Step {
    Field(String),
    Item(usize),
}

/// Where the walk is, and what it found.
#[derive(Default)]
struct Walk {
    path: Vec<Step>,
    found: Duplicates,
}

impl Walk {
    fn found(&mut self, field: &str) {
        self.found.count += 1;
        if self.found.named.len() < NAMED_AT_MOST {
            // A field given many times is named once, as Kubernetes sends a
            // warning once: the others keep their places.
            let named = shortened(&self.here(field));
            if !self.found.named.contains(&named) {
                self.found.named.push(named);
            }
        }
    }

    /// The path to `field`, no longer than a name may be (and a little).
    fn here(&self, field: &str) -> String {
        let mut path = String::new();
        let steps = self.path.iter().map(|step| match step {
            Step::Field(name) => (true, name.clone()),
            Step::Item(index) => (false, format!("[{index}]")),
        });
        for (dotted, part) in steps.chain([(true, field.to_string())]) {
            if dotted && !path.is_empty() {
                path.push('.');
            }
            path.push_str(&part);
            if path.len() > LONGEST_NAMED_PATH {
                break;
            }
        }
        path
    }
}

impl<'de> DeserializeSeed<'de> for &mut Walk {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &mut Walk {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(field) = map.next_key::<String>()? {
            if seen.contains(&field) {
                self.found(&field);
            }
            self.path.push(Step::Field(field));
            map.next_value_seed(&mut *self)?;
            if let Some(Step::Field(field)) = self.path.pop() {
                seen.insert(field);
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            self.path.push(Step::Item(index));
            let more = items.next_element_seed(&mut *self)?.is_some();
            self.path.pop();
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_repeated_field_is_named_by_its_path() {
        let body = br#"{"metadata": {"name": "a", "name": "b"},
            "spec": {"broker": "x", "filters": [{"exact": {"type": "t", "type": "u"}}], "broker": "y"},
            "spec": {}}"#;
        assert_eq!(
            duplicate_fields(body).named,
            [
                "metadata.name",
                "spec.filters[0].exact.type",
                "spec.broker",
                "spec"
            ]
        );
    }

    #[test]
    fn at_most_twenty_are_named() {
        let repeated: Vec<String> = (0..100)
            .flat_map(|i| {
                let field = format!(r#""a{i}": 0"#);
                [field.clone(), field]
            })
            .collect();
        let found = duplicate_fields(format!("{{{}}}", repeated.join(", ")).as_bytes());
        assert_eq!(found.count, 100);
        assert_eq!(found.named.len(), NAMED_AT_MOST);
        assert_eq!(found.named[19], "a19");
    }

    #[test]
    fn a_field_given_many_times_is_named_once() {
        let found = duplicate_fields(br#"{"a": 1, "a": 2, "a": 3, "b": 1, "b": 2}"#);
        assert_eq!(found.named, ["a", "b"]);
        assert_eq!(found.count, 3);
    }

    #[test]
    fn equal_names_in_different_objects_are_no_duplicates() {
        let body = br#"{"a": {"x": 1}, "b": {"x": 2}, "c": [{"x": 1}, {"x": 2}], "x": "\u0078"}"#;
        assert_eq!(duplicate_fields(body).count, 0);
    }

    #[test]
    fn an_escaped_spelling_of_the_same_name_is_a_duplicate() {
        assert_eq!(
            duplicate_fields(br#"{"kind": 1, "\u006bind": 2}"#).named,
            ["kind"]
        );
    }

    #[test]
    fn a_body_that_is_not_json_has_none() {
        assert_eq!(duplicate_fields(b"{\"a\": 1, \"a\"").count, 0);
    }

    #[test]
    fn many_duplicates_under_a_long_path_are_counted_and_few_named_short() {
        let key = "k".repeat(100_000);
        let repeated: Vec<String> = (0..5_000).map(|i| format!(r#""a{}": 0"#, i % 40)).collect();
        let body = format!(r#"{{"{key}": {{{}}}}}"#, repeated.join(", "));
        let found = duplicate_fields(body.as_bytes());
        assert_eq!(found.count, 5_000 - 40);
        // Cut at the same place, the forty paths read alike: named once.
        assert_eq!(found.named.len(), 1);
        assert!(
            found
                .named
                .iter()
                .all(|path| path.len() <= LONGEST_NAMED_PATH + '…'.len_utf8())
        );
    }
}
