//! The error every validation returns: which field, and what is wrong with it.

use std::fmt;

/// A rejected field, named by its JSON path (`spec.filters[0].cesql`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A replace changed a field that is fixed once the object exists; the message
    /// is the one Kubernetes uses, so clients that know it recognise it.
    pub fn immutable(field: impl Into<String>) -> Self {
        Self::new(field, "field is immutable")
    }

    /// Prefixes the field path, so nested validators can report relative paths.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_string()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for Invalid {}
