//! Fields a JSON body gives twice. A JSON object is read into a map, where
//! the last of two equal keys wins without a word; the Kubernetes API server
//! names each such field, by the request's `fieldValidation`, as it names an
//! unknown one (`duplicate field "spec.broker"`: a warning, or, under
//! `Strict`, part of the 400). YAML bodies need no such pass: their parser
//! refuses a repeated key.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The paths (`spec.filter.attributes.type`, `spec.items[2].x`) of the
/// fields `json` gives more than once, in the order met; none for a body
/// that is not JSON (reading it says why).
pub fn duplicate_fields(json: &[u8]) -> Vec<String> {
    let mut walk = Walk::default();
    let mut reader = serde_json::Deserializer::from_slice(json);
    match (&mut walk).deserialize(&mut reader) {
        Ok(()) => walk.found,
        Err(_) => Vec::new(),
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
    found: Vec<String>,
}

impl Walk {
    fn here(&self, field: &str) -> String {
        let mut path = String::new();
        for step in &self.path {
            match step {
                Step::Field(name) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(name);
                }
                Step::Item(index) => path.push_str(&format!("[{index}]")),
            }
        }
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(field);
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
                self.found.push(self.here(&field));
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
            duplicate_fields(body),
            [
                "metadata.name",
                "spec.filters[0].exact.type",
                "spec.broker",
                "spec"
            ]
        );
    }

    #[test]
    fn equal_names_in_different_objects_are_no_duplicates() {
        let body = br#"{"a": {"x": 1}, "b": {"x": 2}, "c": [{"x": 1}, {"x": 2}], "x": "\u0078"}"#;
        assert!(duplicate_fields(body).is_empty());
    }

    #[test]
    fn an_escaped_spelling_of_the_same_name_is_a_duplicate() {
        assert_eq!(
            duplicate_fields(br#"{"kind": 1, "\u006bind": 2}"#),
            ["kind"]
        );
    }

    #[test]
    fn a_body_that_is_not_json_has_none() {
        assert!(duplicate_fields(b"{\"a\": 1, \"a\"").is_empty());
    }
}
