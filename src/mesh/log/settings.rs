//! What an event log is opened with (from the command line).

use std::time::Duration;

use crate::config::Fsync;

#[derive(Debug, Clone, Copy)]
pub struct LogSettings {
    pub fsync: Fsync,
    /// Bytes all the Broker logs of one namespace may hold.
    pub namespace_bytes: u64,
    /// Bytes one Channel's log may hold.
    pub channel_bytes: u64,
    /// How long events are kept even when every cursor has passed them.
    pub retention: Duration,
}
