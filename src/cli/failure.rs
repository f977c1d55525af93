//! What went wrong in a client command, said for a person; the exit code
//! follows from which it is.

#[derive(Debug)]
pub enum Failure {
    /// The server refused (its status and message) or could not be reached (exit code 1).
    Refused(String),
    /// The command itself is wrong (exit code 2).
    Usage(String),
}
