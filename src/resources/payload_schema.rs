//! An event type's payload schema, compiled for the ingress, and how data is
//! checked against it at a cost bounded whatever the data.
//!
//! Whether data is valid is asked with `is_valid`: it stops at the first
//! failing keyword and the first passing `anyOf` branch, and remembers a
//! recursive `$ref`'s outcome per data node, so a self-referring schema costs
//! about the data's size. Saying where invalid data fails is another matter:
//! collecting errors walks every branch of every `anyOf`, `oneOf` and
//! `allOf` on every level, so a plain "tree node" schema
//! (`anyOf: [{properties: {child: {$ref: "#"}}, …}, …]`) against 300 bytes of
//! nested data cost 7 s and 2.8 GB (an outside probe). Errors are collected
//! only for a schema whose `$ref`s, written out, stay small; for any other
//! the refusal names the schema but not the place.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// The most schema nodes a schema may have with its `$ref`s written out for
/// invalid data to be told where it fails.
const MOST_EXPANDED_NODES: usize = 16 * 1024;

pub struct PayloadSchema {
    validator: jsonschema::Validator,
    /// Whether collecting errors costs at most the schema written out.
    explains: bool,
}

impl PayloadSchema {
    pub fn compile(schema: &Value) -> Result<Self, jsonschema::ValidationError<'static>> {
        Ok(Self {
            validator: payload_validator(schema)?,
            explains: expanded_size(schema).is_some(),
        })
    }

    /// Ok for valid data; otherwise why, with where when it can be told
    /// cheaply. `named` names the schema (its event type and version), and is
    /// written out only for a refusal.
    pub fn check(&self, data: &Value, named: &dyn std::fmt::Display) -> Result<(), String> {
        if self.validator.is_valid(data) {
            return Ok(());
        }
        let error = match self.explains {
            true => self.validator.iter_errors(data).next(),
            false => None,
        };
        let Some(error) = error else {
            return Err(format!(
                "data does not match the schema of {named} (too intricate to say where at a bounded cost)"
            ));
        };
        let at = error.instance_path().to_string();
        let at = if at.is_empty() { "/".to_string() } else { at };
        Err(format!(
            "data does not match the schema of {named} at {at}: {error}"
        ))
    }
}

/// A payload schema's validator. Its `pattern`s run on the `regex` engine,
/// linear in the text, not on jsonschema's default backtracking engine: that
/// one bounds each string (a million steps, ~60 ms here) but not an event,
/// so an array of short strings against a look-ahead pattern cost minutes of
/// CPU an event. Patterns that need backtracking (look-around, backreferences)
/// do not compile, and the Application is refused. Each pattern may take a
/// MiB compiled and a MiB of matching cache (the engine's defaults are 10 and
/// 2), so a schema's memory stays near its bounded text.
fn payload_validator(
    schema: &Value,
) -> Result<jsonschema::Validator, jsonschema::ValidationError<'static>> {
    const PATTERN_BYTES: usize = 1 << 20;
    jsonschema::options()
        .with_pattern_options(
            jsonschema::PatternOptions::regex()
                .size_limit(PATTERN_BYTES)
                .dfa_size_limit(PATTERN_BYTES),
        )
        .build(schema)
}

/// How many nodes the schema has with every `$ref` written out in place;
/// None past `MOST_EXPANDED_NODES` (or `MOST_DEPTH` levels deep), for a `$ref`
/// that refers back to where it is (written out, endless), or for one this
/// walk does not follow: anything but a pointer into the document
/// (`#/$defs/node`), any `$ref` inside a subschema with an `$id` of its own
/// (resolved against that), `$dynamicRef`.
fn expanded_size(schema: &Value) -> Option<usize> {
    let mut expansion = Expansion {
        root: schema,
        sizes: HashMap::new(),
        open: HashSet::new(),
        visits: 0,
    };
    let size = expansion.schema(schema, 0, true)?;
    (size <= MOST_EXPANDED_NODES).then_some(size)
}

/// Levels of nesting, `$ref`s followed included, the walk goes down at most
/// (a thread's stack holds far more; no payload schema needs as many).
const MOST_DEPTH: usize = 256;

/// Keywords whose value is a map from names to subschemas: its keys are
/// names, whatever they spell (`default`, `enum`).
const NAME_MAPS: [&str; 6] = [
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
    "dependencies",
];

/// Keywords whose value is data, not a schema.
const DATA: [&str; 5] = ["enum", "const", "examples", "default", "required"];

struct Expansion<'a> {
    root: &'a Value,
    /// Each `$ref` target's size, written out, by its decoded pointer.
    sizes: HashMap<String, usize>,
    /// The targets being written out now: one met again is a cycle.
    open: HashSet<String>,
    /// Nodes walked, each time: bounds the walk's own cost.
    visits: usize,
}

impl Expansion<'_> {
    /// A subschema's size (the root's own `$id` is its base; any other
    /// resource's is not followed).
    fn schema(&mut self, node: &Value, depth: usize, root: bool) -> Option<usize> {
        self.visit(depth)?;
        let Value::Object(members) = node else {
            // `true`, `false`, or an array of subschemas (`allOf`, `items`).
            return match node {
                Value::Array(items) => self.each(items.iter(), depth),
                _ => Some(1),
            };
        };
        if !root && (members.contains_key("$id") || members.get("id").is_some_and(Value::is_string))
        {
            return None;
        }
        let mut size = 1usize;
        for (key, value) in members {
            size += match (key.as_str(), value) {
                ("$ref", Value::String(target)) => self.target(target, depth)?,
                ("$dynamicRef" | "$recursiveRef", _) => return None,
                (keyword, _) if DATA.contains(&keyword) => 1,
                (keyword, Value::Object(map)) if NAME_MAPS.contains(&keyword) => {
                    self.each(map.values(), depth)?
                }
                _ => self.schema(value, depth + 1, false)?,
            };
            if size > MOST_EXPANDED_NODES {
                return None;
            }
        }
        Some(size)
    }

    fn each<'v>(&mut self, values: impl Iterator<Item = &'v Value>, depth: usize) -> Option<usize> {
        let mut size = 1usize;
        for value in values {
            size += self.schema(value, depth + 1, false)?;
            if size > MOST_EXPANDED_NODES {
                return None;
            }
        }
        Some(size)
    }

    fn visit(&mut self, depth: usize) -> Option<()> {
        self.visits += 1;
        (depth <= MOST_DEPTH && self.visits <= 4 * MOST_EXPANDED_NODES).then_some(())
    }

    fn target(&mut self, target: &str, depth: usize) -> Option<usize> {
        let pointer = percent_decoded(target.strip_prefix('#')?)?;
        if let Some(size) = self.sizes.get(&pointer) {
            return Some(*size);
        }
        let node = self.root.pointer(&pointer)?;
        if !self.open.insert(pointer.clone()) {
            return None;
        }
        let size = self.schema(node, depth + 1, pointer.is_empty());
        self.open.remove(&pointer);
        let size = size?;
        self.sizes.insert(pointer, size);
        Some(size)
    }
}

/// A URI fragment's JSON pointer with its `%XX` escapes decoded.
fn percent_decoded(fragment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(fragment)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tree_node() -> Value {
        json!({"anyOf": [
            {"type": "object", "properties": {"child": {"$ref": "#"}}, "required": ["a"]},
            {"type": "object", "properties": {"child": {"$ref": "#"}}, "required": ["b"]},
        ]})
    }

    fn nested(depth: usize) -> Value {
        let text = format!("{}{{}}{}", r#"{"child":"#.repeat(depth), "}".repeat(depth));
        serde_json::from_str(&text).expect("JSON")
    }

    #[test]
    fn a_schema_that_refers_to_itself_or_doubles_with_each_ref_is_not_explained() {
        assert_eq!(expanded_size(&tree_node()), None, "refers to itself");
        // Each level refers to the next twice: written out, 2^40 nodes.
        let mut defs = serde_json::Map::new();
        for i in 0..40 {
            let next = format!("#/$defs/a{}", i + 1);
            defs.insert(
                format!("a{i}"),
                json!({"anyOf": [{"$ref": next}, {"$ref": next}]}),
            );
        }
        defs.insert("a40".into(), json!({"required": ["x"]}));
        let doubling = json!({"$ref": "#/$defs/a0", "$defs": defs});
        assert_eq!(expanded_size(&doubling), None);
        assert_eq!(
            expanded_size(&json!({"$dynamicRef": "#node"})),
            None,
            "not followed"
        );
        // A property may be called anything a keyword is.
        let named_default = json!({"anyOf": [
            {"properties": {"default": {"$ref": "#"}}, "required": ["a"]},
            {"properties": {"enum": {"$ref": "#"}}, "required": ["b"]},
        ]});
        assert_eq!(expanded_size(&named_default), None);
        // Inside a resource of its own, `#/…` is that resource's.
        let embedded = json!({
            "$defs": {"n": {"type": "object"}},
            "properties": {"tree": {"$id": "https://example.com/tree",
                "anyOf": [{"properties": {"child": {"$ref": "#/$defs/n"}}}],
                "$defs": {"n": {"$ref": "#"}}}},
        });
        assert_eq!(expanded_size(&embedded), None);
        // A long chain of `$ref`s ends the walk before the stack does.
        let chain: serde_json::Map<String, Value> = (0..2_000)
            .map(|i| {
                (
                    format!("a{i}"),
                    json!({"$ref": format!("#/$defs/a{}", i + 1)}),
                )
            })
            .chain([("a2000".to_string(), json!({}))])
            .collect();
        assert_eq!(
            expanded_size(&json!({"$ref": "#/$defs/a0", "$defs": chain})),
            None
        );
    }

    #[test]
    fn a_schema_with_a_few_refs_is_explained() {
        let schema = json!({
            "type": "object",
            "properties": {"from": {"$ref": "#/$defs/address"}, "to": {"$ref": "#/%24defs/address"}},
            "$defs": {"address": {"type": "object", "required": ["city"]}},
        });
        assert!(expanded_size(&schema).is_some());
        let checked = PayloadSchema::compile(&schema).expect("compiles");
        let error = checked
            .check(&json!({"from": {"city": "Oslo"}, "to": {}}), &"trip v1")
            .expect_err("no city");
        assert!(error.contains("of trip v1 at /to"), "{error}");
        assert!(
            checked
                .check(&json!({"to": {"city": "Bergen"}}), &"trip v1")
                .is_ok()
        );
    }

    /// Deep invalid data against a self-referring schema is refused at about
    /// the data's cost: collecting its errors would take 2^40 steps, so this
    /// test would not end before the deadline the harness gives it.
    #[test]
    fn deep_invalid_data_against_a_self_referring_schema_is_refused_without_walking_every_branch() {
        let checked = PayloadSchema::compile(&tree_node()).expect("compiles");
        let error = checked
            .check(&nested(40), &"tree v1")
            .expect_err("neither a nor b");
        assert!(error.contains("too intricate"), "{error}");
        let mut valid = nested(40);
        let mut node = &mut valid;
        for _ in 0..40 {
            node["a"] = json!(1);
            node = &mut node["child"];
        }
        node["b"] = json!(2);
        assert!(checked.check(&valid, &"tree v1").is_ok());
    }
}
