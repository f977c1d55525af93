//! A certificate's validity window: from a minute ago (so a client whose clock
//! runs a little behind accepts it at once) to `validity` from now, in whole
//! seconds because certificates carry no more.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::CertificateParams;

/// How far back a certificate's validity starts.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The last second a certificate can name: 9999-12-31T23:59:59Z.
const LAST_SECOND: u64 = 253_402_300_799;

pub(super) struct Window {
    pub(super) not_before: SystemTime,
    pub(super) not_after: SystemTime,
}

impl Window {
    pub(super) fn from_now(validity: Duration) -> Result<Window, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| "the system clock is before 1970".to_string())?
            .as_secs();
        let end = now
            .checked_add(validity.as_secs())
            .filter(|end| *end <= LAST_SECOND)
            .ok_or_else(|| format!("a validity of {validity:?} ends after the year 9999"))?;
        Ok(Window {
            not_before: UNIX_EPOCH + Duration::from_secs(now) - CLOCK_SKEW,
            not_after: UNIX_EPOCH + Duration::from_secs(end),
        })
    }

    pub(super) fn apply(&self, params: &mut CertificateParams) {
        // Both lie between 1970 and 9999, where the conversion cannot panic.
        params.not_before = self.not_before.into();
        params.not_after = self.not_after.into();
    }
}
