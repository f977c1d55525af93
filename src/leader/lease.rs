//! The Lease as an election record: read it, and take or renew it with an
//! optimistic write (the record's resourceVersion), so two candidates that
//! read the same record cannot both win.

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

/// What a candidate saw in the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub holder: Option<String>,
    pub renewed: Option<Timestamp>,
    pub transitions: i32,
}

pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration_seconds: i32,
}

/// Why a try did not write the record.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another candidate wrote the Lease first")]
    Lost,
    #[error(transparent)]
    Api(#[from] kube::Error),
}

impl LeaseLock {
    pub fn new(api: Api<Lease>, name: &str, identity: &str, duration_seconds: i32) -> Self {
        Self {
            api,
            name: name.to_string(),
            identity: identity.to_string(),
            duration_seconds,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The record as it is now, with the Lease to write it back (None: no Lease).
    pub async fn read(&self) -> Result<Option<(Record, Lease)>, kube::Error> {
        let lease = self.api.get_opt(&self.name).await?;
        Ok(lease.map(|lease| {
            let spec = lease.spec.clone().unwrap_or_default();
            let record = Record {
                holder: spec.holder_identity.filter(|h| !h.is_empty()),
                renewed: spec.renew_time.map(|t| t.0),
                transitions: spec.lease_transitions.unwrap_or(0),
            };
            (record, lease)
        }))
    }

    /// Writes this candidate as the holder, renewed now: into `current` (the
    /// Lease as read) or as a new Lease.
    pub async fn hold(&self, current: Option<Lease>) -> Result<(), LockError> {
        let now = MicroTime(Timestamp::now());
        let result = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(self.duration_seconds),
                        acquire_time: Some(now.clone()),
                        renew_time: Some(now),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => {
                let spec = lease.spec.get_or_insert_with(Default::default);
                if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                    spec.holder_identity = Some(self.identity.clone());
                    spec.acquire_time = Some(now.clone());
                    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                }
                spec.lease_duration_seconds = Some(self.duration_seconds);
                spec.renew_time = Some(now);
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match result {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => Err(LockError::Lost),
            Err(error) => Err(error.into()),
        }
    }

    /// Gives the Lease up on a clean stop, so another replica takes over at
    /// once instead of after the lease duration.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some((record, mut lease)) = self.read().await? else {
            return Ok(());
        };
        if record.holder.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        let spec = lease.spec.get_or_insert_with(Default::default);
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await?;
        Ok(())
    }
}
