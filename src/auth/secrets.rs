//! Random tokens and their digests.

use sha2::{Digest, Sha256};

use crate::ids::hex;

/// A random token: `prefix` and 64 hex digits (256 bits).
pub fn generate_token(prefix: &str) -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{prefix}{}", hex(&bytes)))
}

/// Computed for every authenticated request, so built in one allocation.
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// Compares digests without an early exit, so timing reveals nothing.
pub fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_prefixed() {
        let a = generate_token("mb_").expect("random");
        let b = generate_token("mb_").expect("random");
        assert_ne!(a, b);
        assert!(a.starts_with("mb_") && a.len() == 67);
    }

    #[test]
    fn digests_are_lower_case_hex() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn digests_compare_by_value() {
        assert!(same_digest(&sha256_hex("x"), &sha256_hex("x")));
        assert!(!same_digest(&sha256_hex("x"), &sha256_hex("y")));
    }
}
