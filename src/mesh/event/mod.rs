//! CloudEvents on the wire (HTTP protocol binding 1.0.2): reading binary,
//! structured and batched requests into the SDK's `Event`, Kyma's legacy v1 JSON,
//! and writing an event back out in binary or structured mode. Limits on body
//! size are the caller's (the ingress reads bodies with a limit).

mod binary;
mod error;
mod fields;
pub mod hop;
mod legacy;
mod mode;
mod prepared;
mod structured;

pub use binary::{binary_headers, ce_header, fits_binary, read_binary};
pub use error::EventError;
pub use fields::{check_text, data_bytes, time_text};
pub use legacy::{LegacyError, read_legacy};
pub use mode::{Mode, mode_of, unsupported_format};
pub use prepared::{PREFER, PreparedEvent, Wire};
pub use structured::{
    BATCH_CONTENT_TYPE, STRUCTURED_CONTENT_TYPE, read_batch, read_structured, write_structured,
};

pub use cloudevents::{
    AttributesReader, AttributesWriter, Data, Event, EventBuilder, EventBuilderV10,
};
