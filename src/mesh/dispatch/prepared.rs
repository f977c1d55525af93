//! An accepted event, shared by every subscriber it goes to, with its wire forms
//! rendered at most once however many subscribers receive it.

use std::sync::OnceLock;

use axum::http::HeaderMap;
use bytes::Bytes;
use cloudevents::Event;

use crate::mesh::event::{write_binary, write_structured};

pub struct PreparedEvent {
    pub event: Event,
    binary: OnceLock<(HeaderMap, Bytes)>,
    structured: OnceLock<Bytes>,
}

impl PreparedEvent {
    pub fn new(event: Event) -> Self {
        Self {
            event,
            binary: OnceLock::new(),
            structured: OnceLock::new(),
        }
    }

    pub fn event_id(&self) -> &str {
        cloudevents::AttributesReader::id(&self.event)
    }

    pub fn binary(&self) -> &(HeaderMap, Bytes) {
        self.binary.get_or_init(|| write_binary(&self.event))
    }

    pub fn structured(&self) -> &Bytes {
        self.structured
            .get_or_init(|| write_structured(&self.event))
    }
}
