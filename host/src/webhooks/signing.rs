//! Signing a delivery as the Standard Webhooks specification says
//! (<https://www.standardwebhooks.com/>): the receiver recomputes
//! `HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")` with the secret it was
//! given and compares it with the `v1,<base64>` in `webhook-signature`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a secret in the form the specification's libraries take.
const PREFIX: &str = "whsec_";

/// A tenant's signing key: the decoded bytes of its `whsec_<base64>` secret.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

/// Why a configured secret cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret must start with `whsec_` followed by base64 (whsec_<base64>)")]
    NoPrefix,
    #[error("the part after `whsec_` is not base64: {0}")]
    NotBase64(String),
    #[error("the secret's key is {0} bytes; use 24 to 64 random bytes (openssl rand -base64 32)")]
    BadLength(usize),
}

impl SigningKey {
    /// Reads a `whsec_<base64>` secret.
    pub fn parse(secret: &str) -> Result<Self, SecretError> {
        let encoded = secret
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(SecretError::NoPrefix)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|e| SecretError::NotBase64(e.to_string()))?;
        if !(24..=64).contains(&key.len()) {
            return Err(SecretError::BadLength(key.len()));
        }
        Ok(Self(key))
    }

    /// The `webhook-signature` header's value for one attempt.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed vector of the standardwebhooks libraries' own test suites.
    #[test]
    fn signature_matches_the_specifications_test_vector() {
        let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        assert_eq!(
            key.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_without_the_prefix_or_with_bad_base64_are_refused() {
        assert_eq!(
            SigningKey::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            SecretError::NoPrefix
        );
        assert!(matches!(
            SigningKey::parse("whsec_not base64!"),
            Err(SecretError::NotBase64(_))
        ));
        assert_eq!(
            SigningKey::parse("whsec_c2hvcnQ=").unwrap_err(),
            SecretError::BadLength(5)
        );
    }
}
