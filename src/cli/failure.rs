//! What went wrong in a client command, said for a person; the exit code
//! follows from which it is.

#[derive(Debug)]
pub enum Failure {
    /// The server refused: its status and message (exit code 1).
    Refused(String),
    /// No answer came: why, cause by cause (exit code 1).
    Unreachable(String),
    /// The command itself is wrong (exit code 2).
    Usage(String),
}

impl Failure {
    /// A request that got no answer, with its causes in full (refused, a
    /// name that does not resolve, a certificate not trusted); one that could
    /// not even be built (a bad URL or header value) is the command's fault.
    pub fn unreachable(target: &str, error: &reqwest::Error) -> Self {
        let mut said = error.to_string();
        let mut cause = std::error::Error::source(error);
        while let Some(next) = cause {
            said.push_str(": ");
            said.push_str(&next.to_string());
            cause = next.source();
        }
        if error.is_builder() {
            Self::Usage(format!("cannot send to {target}: {said}"))
        } else {
            Self::Unreachable(format!("cannot reach {target}: {said}"))
        }
    }
}
