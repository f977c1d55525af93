//! Stream, subject and consumer names from Kubernetes names. Kubernetes names
//! hold `[a-z0-9.-]`; NATS subjects split on `.` and stream and consumer names
//! may not hold it, so `.` becomes `_`, which no Kubernetes name holds: the
//! mapping stays one to one.

const PREFIX: &str = "MB";

fn token(name: &str) -> String {
    name.replace('.', "_")
}

/// The stream of a namespace's Brokers.
pub fn broker_stream(namespace: &str) -> String {
    format!("{PREFIX}_BROKERS_{}", token(namespace))
}

/// Every Broker subject of a namespace (its stream's subjects).
pub fn broker_subjects(namespace: &str) -> String {
    format!("mb.broker.{}.*", token(namespace))
}

pub fn broker_subject(namespace: &str, name: &str) -> String {
    format!("mb.broker.{}.{}", token(namespace), token(name))
}

/// A Channel's stream (a Channel per Application).
pub fn channel_stream(namespace: &str, name: &str) -> String {
    format!("{PREFIX}_CHANNEL_{}_{}", token(namespace), token(name))
}

pub fn channel_subject(namespace: &str, name: &str) -> String {
    format!("mb.channel.{}.{}", token(namespace), token(name))
}

/// Whether a stream is one of ours (the others on the server are left alone).
pub fn is_ours(stream: &str) -> bool {
    stream.starts_with(&format!("{PREFIX}_BROKERS_"))
        || stream.starts_with(&format!("{PREFIX}_CHANNEL_"))
}

/// Whose stream a stream of ours is: (namespace, None) for a namespace's
/// Brokers, (namespace, Some(Channel)) for a Channel's.
pub fn log_of_stream(stream: &str) -> Option<(String, Option<String>)> {
    let name_of = |token: &str| token.replace('_', ".");
    if let Some(namespace) = stream.strip_prefix(&format!("{PREFIX}_BROKERS_")) {
        return Some((name_of(namespace), None));
    }
    let rest = stream.strip_prefix(&format!("{PREFIX}_CHANNEL_"))?;
    let (namespace, channel) = rest.split_once('_')?;
    Some((name_of(namespace), Some(name_of(channel))))
}

/// A durable consumer: a Trigger's or a Subscription's, by its object's uid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsumerName(String);

impl ConsumerName {
    pub fn new(kind: &str, uid: &str) -> Self {
        Self(format!("{kind}-{}", token(uid)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ConsumerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_dots_keep_subjects_whole_and_stay_distinct() {
        assert_eq!(
            broker_subject("team-a", "default"),
            "mb.broker.team-a.default"
        );
        assert_eq!(
            broker_subject("team-a", "v1.orders"),
            "mb.broker.team-a.v1_orders"
        );
        assert_ne!(
            channel_stream("a", "b.c"),
            channel_stream("a-b", "c"),
            "the namespace and name stay apart"
        );
        assert!(is_ours(&broker_stream("team-a")));
        assert!(is_ours(&channel_stream("kyma-integration", "commerce")));
        assert!(!is_ours("ORDERS"));
        assert_eq!(
            log_of_stream(&channel_stream("kyma-integration", "v1.commerce")),
            Some(("kyma-integration".into(), Some("v1.commerce".into())))
        );
        assert_eq!(
            log_of_stream(&broker_stream("team-a")),
            Some(("team-a".into(), None))
        );
        assert_eq!(log_of_stream("ORDERS"), None);
        assert_eq!(
            ConsumerName::new("trigger", "1f0c-9a").as_str(),
            "trigger-1f0c-9a"
        );
    }
}
