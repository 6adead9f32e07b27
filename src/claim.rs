//! Claim codes: how an owner takes a pet a clinic registered for them into their account. A code is
//! 12 characters of Crockford base32 (60 bits), shown once; only its SHA-256 is stored.

use rand::Rng;
use sha2::{Digest, Sha256};

/// Crockford's base32: no I, L, O or U, so codes survive being read aloud and typed.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const LENGTH: usize = 12;

/// A fresh code, `XXXX-XXXX-XXXX`.
pub fn generate() -> String {
    let mut rng = rand::rng();
    let raw: String = (0..LENGTH)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{}-{}-{}", &raw[0..4], &raw[4..8], &raw[8..12])
}

/// The code as typed, in canonical form: upper case, separators dropped, look-alikes mapped (O to 0,
/// I and L to 1). `None` if it cannot be a code.
pub fn normalise(input: &str) -> Option<String> {
    let canonical: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    (canonical.len() == LENGTH && canonical.bytes().all(|b| ALPHABET.contains(&b))).then_some(canonical)
}

/// What is stored for a code.
pub fn hash(canonical: &str) -> Vec<u8> {
    Sha256::digest(canonical.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_normalise_to_themselves() {
        for _ in 0..100 {
            let code = generate();
            assert_eq!(code.len(), 14);
            assert_eq!(normalise(&code).unwrap(), code.replace('-', ""));
        }
    }

    #[test]
    fn typing_variations_are_forgiven() {
        assert_eq!(normalise("abcd efgh jk0o").unwrap(), "ABCDEFGHJK00");
        assert_eq!(normalise("1il1-2222-3333").unwrap(), "111122223333");
    }

    #[test]
    fn non_codes_are_refused() {
        assert_eq!(normalise("ABCD-EFGH-JK"), None);
        assert_eq!(normalise("ABCD-EFGH-JKMU"), None, "U is not in the alphabet");
        assert_eq!(normalise(""), None);
    }

    #[test]
    fn hashes_differ_per_code() {
        assert_ne!(hash("AAAAAAAAAAAA"), hash("AAAAAAAAAAAB"));
    }
}
