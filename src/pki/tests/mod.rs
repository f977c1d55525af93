//! The CA's tests, with real keys and signatures: what an issued certificate
//! says, what is refused and why, the CA on disk, and reading certificates back.
//! Certificates are read with x509-parser and, where it matters, verified by
//! rustls as the broker's listeners will.

mod fixtures;
mod loading;
mod reading;
mod refusals;
mod signing;
