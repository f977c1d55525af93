//! The CESQL type system: the three primitive types, owned values (what an
//! evaluation returns) and borrowed values (what attribute lookups and the
//! evaluator pass around, so that reading a string attribute never copies it).

use std::borrow::Cow;
use std::fmt;

/// One of the three CESQL primitive types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    String,
    Integer,
    Boolean,
}

impl Type {
    /// The type's zero value: what an operator or function of this return type
    /// yields when it cannot compute a result (spec 3.1 and 3.3).
    pub fn zero(self) -> ValueRef<'static> {
        match self {
            Type::String => ValueRef::String(Cow::Borrowed("")),
            Type::Integer => ValueRef::Integer(0),
            Type::Boolean => ValueRef::Boolean(false),
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::String => "String",
            Type::Integer => "Integer",
            Type::Boolean => "Boolean",
        })
    }
}

/// An owned CESQL value, as returned by [`Expression::evaluate`](super::Expression::evaluate).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    String(String),
    Integer(i32),
    Boolean(bool),
}

impl Value {
    pub fn type_of(&self) -> Type {
        match self {
            Value::String(_) => Type::String,
            Value::Integer(_) => Type::Integer,
            Value::Boolean(_) => Type::Boolean,
        }
    }

    /// Borrows this value without copying a string payload.
    pub fn as_value_ref(&self) -> ValueRef<'_> {
        match self {
            Value::String(s) => ValueRef::String(Cow::Borrowed(s)),
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Boolean(b) => ValueRef::Boolean(*b),
        }
    }
}

/// Strings print unquoted; integers in base 10; booleans as `true`/`false`
/// (the same text the String cast produces).
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_value_ref().fmt(f)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Integer(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

/// A CESQL value whose string payload is borrowed when possible.
///
/// [`Attributes`](super::Attributes) implementations return this so that a
/// string attribute is handed to the evaluator as a `&str` into the event; the
/// `Owned` case exists for attributes that have to be rendered (a timestamp
/// kept in a typed field, a JSON number outside the Integer range).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ValueRef<'a> {
    String(Cow<'a, str>),
    Integer(i32),
    Boolean(bool),
}

impl ValueRef<'_> {
    pub fn type_of(&self) -> Type {
        match self {
            ValueRef::String(_) => Type::String,
            ValueRef::Integer(_) => Type::Integer,
            ValueRef::Boolean(_) => Type::Boolean,
        }
    }

    /// Copies the payload if it is borrowed.
    pub fn into_owned(self) -> Value {
        match self {
            ValueRef::String(s) => Value::String(s.into_owned()),
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Boolean(b) => Value::Boolean(b),
        }
    }
}

impl fmt::Display for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueRef::String(s) => f.write_str(s),
            ValueRef::Integer(i) => write!(f, "{i}"),
            ValueRef::Boolean(b) => write!(f, "{b}"),
        }
    }
}

impl<'a> From<&'a Value> for ValueRef<'a> {
    fn from(v: &'a Value) -> Self {
        v.as_value_ref()
    }
}

impl<'a> From<&'a str> for ValueRef<'a> {
    fn from(s: &'a str) -> Self {
        ValueRef::String(Cow::Borrowed(s))
    }
}

impl From<String> for ValueRef<'_> {
    fn from(s: String) -> Self {
        ValueRef::String(Cow::Owned(s))
    }
}

impl From<i32> for ValueRef<'_> {
    fn from(i: i32) -> Self {
        ValueRef::Integer(i)
    }
}

impl From<bool> for ValueRef<'_> {
    fn from(b: bool) -> Self {
        ValueRef::Boolean(b)
    }
}
