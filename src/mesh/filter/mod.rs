//! Trigger filters, compiled once when the routing table is built and evaluated
//! per event: `filter.attributes` (exact, "" = present with any value) and the
//! Subscriptions API dialects (`exact`, `prefix`, `suffix`, `all`, `any`, `not`,
//! `cesql`; `filters` overrides `filter`). `index` keeps the cost per event
//! independent of the Triggers that cannot match by their exact `type`, and
//! counts and logs the filters a CESQL limit kept from being decided (which
//! then do not match).

mod attributes;
mod compile;
mod index;

pub use attributes::attribute;
pub use compile::Filter;
pub use index::{Entry, TriggerIndex, passes};
