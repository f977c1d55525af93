//! Reading an event's context attributes by name, borrowing where the event holds
//! a string; CESQL sees events through the same lookup.

use std::borrow::Cow;

use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, Event};

use cesql::{Attributes, ValueRef};

use crate::mesh::event::time_text;

/// The attribute as text, as the exact/prefix/suffix dialects compare it.
pub fn attribute<'a>(event: &'a Event, name: &str) -> Option<Cow<'a, str>> {
    match name {
        "specversion" => Some(Cow::Borrowed("1.0")),
        "id" => Some(Cow::Borrowed(event.id())),
        "source" => Some(Cow::Borrowed(event.source().as_str())),
        "type" => Some(Cow::Borrowed(event.ty())),
        "subject" => event.subject().map(Cow::Borrowed),
        "datacontenttype" => event.datacontenttype().map(Cow::Borrowed),
        "dataschema" => event.dataschema().map(|u| Cow::Borrowed(u.as_str())),
        "time" => time_text(event).map(Cow::Owned),
        extension => event.extension(extension).map(|value| match value {
            ExtensionValue::String(s) => Cow::Borrowed(s.as_str()),
            ExtensionValue::Boolean(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            ExtensionValue::Integer(i) => Cow::Owned(i.to_string()),
        }),
    }
}

/// An event as CESQL sees it (the `cesql` crate knows no event type of ours).
pub struct CesqlView<'a>(pub &'a Event);

impl Attributes for CesqlView<'_> {
    fn attribute(&self, name: &str) -> Option<ValueRef<'_>> {
        if let Some(ExtensionValue::Boolean(b)) = self.0.extension(name) {
            return Some(ValueRef::Boolean(*b));
        }
        if let Some(ExtensionValue::Integer(i)) = self.0.extension(name) {
            return Some(match i32::try_from(*i) {
                Ok(small) => ValueRef::Integer(small),
                Err(_) => ValueRef::String(Cow::Owned(i.to_string())),
            });
        }
        attribute(self.0, name).map(ValueRef::String)
    }
}
