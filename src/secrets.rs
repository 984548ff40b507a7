//! Every generated secret is derived, not random (a foundation every stage uses): HMAC-SHA256
//! of the platform secret key and the secret's name. Same key and config → same bytes on any
//! machine; another key → other secrets. A [`Secret`] never shows its value in `Debug` or
//! `Display`, only a fingerprint.

use std::fmt;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::encode::{fingerprint, hex};

/// A secret value. Printing it shows `sha256:` and the first 12 hex digits of its hash.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The value itself, for the one place it is written: a Secret manifest or a derivation.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `sha256:` and 12 hex digits: enough to tell two values apart, useless to recover one.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.0.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.fingerprint())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fingerprint())
    }
}

/// The shape a consumer needs a secret in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// 64 lowercase hex digits (32 bytes): tokens, cookie secrets, CryptKeeper and Flask keys.
    Hex64,
    /// A Fernet key: 32 bytes, URL-safe base64 with padding (44 characters).
    Fernet,
    /// A password of 32 characters from letters, digits and `-_.~!*+=,;:@?#&%$`: it is
    /// percent-encoded wherever it enters a URI.
    Password,
    /// A password AWS RDS accepts for a master user: 32 characters, no `/`, `@`, `"` or space.
    RdsPassword,
}

const PASSWORD_CHARS: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~!*+=,;:@?#&%$";
const RDS_PASSWORD_CHARS: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~!*+=,;:?#&%$";
const PASSWORD_LEN: usize = 32;

/// Derives secrets from the platform key.
pub struct Deriver {
    key: Vec<u8>,
    platform: String,
    /// Rotated secrets and their generation (from the lock file); the others are at 1.
    generations: std::collections::BTreeMap<String, u32>,
    /// Every name derived so far: the secrets a render uses, which `rotate` can bump.
    used: std::sync::Mutex<std::collections::BTreeMap<String, Secret>>,
}

impl fmt::Debug for Deriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deriver")
            .field("key", &fingerprint(&self.key))
            .field("platform", &self.platform)
            .finish()
    }
}

type HmacSha256 = Hmac<Sha256>;

impl Deriver {
    pub fn new(key: &Secret, platform: &str) -> Self {
        Deriver {
            key: key.expose().as_bytes().to_vec(),
            platform: platform.to_owned(),
            generations: Default::default(),
            used: Default::default(),
        }
    }

    /// Uses the generations of rotated secrets, by name.
    pub fn with_generations(
        mut self,
        generations: std::collections::BTreeMap<String, u32>,
    ) -> Self {
        self.generations = generations;
        self
    }

    /// The generation of secret `name`: 1 unless it was rotated.
    pub fn generation(&self, name: &str) -> u32 {
        self.generations.get(name).copied().unwrap_or(1)
    }

    /// The secret named `name` (for example `airflow/fernet-key`), at its current generation.
    pub fn derive(&self, name: &str, policy: Policy) -> Secret {
        let generation = self.generation(name);
        let secret = self.derive_generation(name, generation, policy);
        if let Ok(mut used) = self.used.lock() {
            used.insert(name.to_owned(), secret.clone());
        }
        secret
    }

    /// The names derived so far, with their values, sorted by name.
    pub fn used(&self) -> std::collections::BTreeMap<String, Secret> {
        self.used.lock().map(|u| u.clone()).unwrap_or_default()
    }

    /// A checksum of secret bytes for a pod annotation: HMAC-SHA256 under the platform key, so
    /// it changes with every value (a rotation rolls the pods) yet tells nothing without the
    /// key, even about a short password. `hmac:` and 16 hex digits.
    pub fn checksum(&self, bytes: &[u8]) -> String {
        #[allow(clippy::expect_used)] // HMAC takes keys of any length
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("any key length");
        mac.update(format!("mlplat/v1/{}/checksum\0", self.platform).as_bytes());
        mac.update(bytes);
        format!("hmac:{}", &hex(&mac.finalize().into_bytes())[..16])
    }

    /// The secret named `name` at a given generation: rotating bumps the generation.
    pub fn derive_generation(&self, name: &str, generation: u32, policy: Policy) -> Secret {
        let mut stream = Stream::new(self, name, generation);
        let value = match policy {
            Policy::Hex64 => hex(&stream.block()),
            Policy::Fernet => base64::engine::general_purpose::URL_SAFE.encode(stream.block()),
            Policy::Password => stream.chars(PASSWORD_CHARS, PASSWORD_LEN),
            Policy::RdsPassword => stream.chars(RDS_PASSWORD_CHARS, PASSWORD_LEN),
        };
        // Never printed from now on, in any of the spellings it is written in.
        crate::redact::secret_with_spellings(&value);
        Secret(value)
    }
}

/// An HMAC-SHA256 keystream in counter mode: block i = HMAC(key, info || i).
struct Stream<'a> {
    deriver: &'a Deriver,
    info: String,
    counter: u32,
}

impl<'a> Stream<'a> {
    fn new(deriver: &'a Deriver, name: &str, generation: u32) -> Self {
        Stream {
            deriver,
            info: format!("mlplat/v1/{}/{name}/{generation}", deriver.platform),
            counter: 0,
        }
    }

    fn block(&mut self) -> [u8; 32] {
        #[allow(clippy::expect_used)] // HMAC takes keys of any length
        let mut mac = HmacSha256::new_from_slice(&self.deriver.key).expect("any key length");
        mac.update(self.info.as_bytes());
        mac.update(&self.counter.to_be_bytes());
        self.counter += 1;
        mac.finalize().into_bytes().into()
    }

    /// `len` characters drawn uniformly from `alphabet` by rejection sampling.
    fn chars(&mut self, alphabet: &[u8], len: usize) -> String {
        let limit = 256 - (256 % alphabet.len());
        let mut out = String::with_capacity(len);
        while out.len() < len {
            for b in self.block() {
                if (b as usize) < limit && out.len() < len {
                    out.push(alphabet[b as usize % alphabet.len()] as char);
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn deriver(key: &str) -> Deriver {
        Deriver::new(&Secret::new(key.to_owned()), "mlops")
    }

    #[test]
    fn same_key_same_secret_other_key_other_secret() {
        let a = deriver("k1-k1-k1-k1-k1-k1-k1-k1-k1-k1-k1-k1");
        let b = deriver("k2-k2-k2-k2-k2-k2-k2-k2-k2-k2-k2-k2");
        for p in [
            Policy::Hex64,
            Policy::Fernet,
            Policy::Password,
            Policy::RdsPassword,
        ] {
            assert_eq!(a.derive("x/y", p), a.derive("x/y", p));
            assert_ne!(a.derive("x/y", p), b.derive("x/y", p));
            assert_ne!(a.derive("x/y", p), a.derive("x/z", p));
            assert_ne!(
                a.derive_generation("x/y", 1, p),
                a.derive_generation("x/y", 2, p)
            );
        }
    }

    #[test]
    fn derivation_is_pinned() {
        // A change here changes every secret of every platform: it must be deliberate.
        let d = deriver("mlplat-test-key-0123456789abcdef0123");
        assert_eq!(
            d.derive("airflow/fernet-key", Policy::Hex64).expose(),
            hex(&{
                let mut mac =
                    HmacSha256::new_from_slice(b"mlplat-test-key-0123456789abcdef0123").unwrap();
                mac.update(b"mlplat/v1/mlops/airflow/fernet-key/1");
                mac.update(&0u32.to_be_bytes());
                <[u8; 32]>::from(mac.finalize().into_bytes())
            })
        );
    }

    #[test]
    fn policies_give_their_shapes() {
        let d = deriver("mlplat-test-key-0123456789abcdef0123");
        let h = d.derive("a", Policy::Hex64);
        assert_eq!(h.expose().len(), 64);
        assert!(
            h.expose()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let f = d.derive("a", Policy::Fernet);
        let raw = base64::engine::general_purpose::URL_SAFE
            .decode(f.expose())
            .unwrap();
        assert_eq!((f.expose().len(), raw.len()), (44, 32));
        for name in ["a", "b", "c", "d", "e"] {
            let p = d.derive(name, Policy::Password);
            assert_eq!(p.expose().len(), 32);
            assert!(p.expose().bytes().all(|b| PASSWORD_CHARS.contains(&b)));
            let r = d.derive(name, Policy::RdsPassword);
            assert!(!r.expose().contains(['/', '@', '"', ' ']));
        }
    }

    #[test]
    fn secrets_print_as_fingerprints() {
        let s = Secret::new("hunter2-very-secret".to_owned());
        assert!(!format!("{s} {s:?}").contains("hunter2"));
        assert!(s.to_string().starts_with("sha256:"));
        let d = deriver("mlplat-test-key-0123456789abcdef0123");
        assert!(!format!("{d:?}").contains("mlplat-test-key"));
    }
}
