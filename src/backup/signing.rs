//! What Pawfile reads back from the backup bucket is signed, so that the bucket's credentials alone
//! cannot make Pawfile believe anything: whoever holds them (the hardened key included) can write any
//! object there, and can encrypt to the public age key, but cannot sign.
//!
//! Signed are the objects Pawfile acts on when it reads them back: manifests (which name every other
//! object of a snapshot with its SHA-256, so the data objects are authenticated through them), drill
//! reports and account-deletion markers. Each is stored as an envelope: a magic line, the Ed25519
//! public key that signed it, the signature, then the payload (a manifest's payload is its age
//! ciphertext, so it is authenticated before anything decrypts or parses it). The signature covers a
//! fixed context string, the object's name and the payload: an object copied under another name (an old
//! manifest presented as new, one account's deletion marker as another's) does not verify.
//!
//! The signing key lives with the server (`PAWFILE_BACKUP_SIGNING_KEY`, or generated once into the
//! data folder); its public half is what a restore, a drill or a verification elsewhere needs
//! (`PAWFILE_BACKUP_TRUSTED_KEYS`), kept by the operator beside the age private key.

use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD as BASE64};
use ed25519_dalek::{Signature, Signer};
use secrecy::{ExposeSecret, SecretString};
use std::{fmt, sync::Arc};

/// The most bytes a manifest may have when read back (the server holds a snapshot's manifest in memory
/// anyway; about three million files).
pub const MANIFEST_MAX_BYTES: u64 = 1 << 30;
/// The most bytes a drill report or a deletion marker may have when read back.
pub const SMALL_OBJECT_MAX_BYTES: u64 = 1 << 20;

/// The first line of every signed object.
const MAGIC: &[u8] = b"PAWFILE-SIGNED-1\n";
/// What every signature covers before the object's name.
const CONTEXT: &[u8] = b"pawfile backup object v1\0";
const SECRET_PREFIX: &str = "pawfile-backup-signing-key-1:";
const PUBLIC_PREFIX: &str = "pawfile-backup-verify-key-1:";

/// The key the server signs backup objects with.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.verifying_key())
    }
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&rand::random()))
    }

    /// Reads a key in the form [`SigningKey::to_text`] writes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| format!("a backup signing key starts with {SECRET_PREFIX}"))?;
        let bytes: [u8; 32] = BASE64
            .decode(encoded)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or("the backup signing key is not 32 bytes of base64")?;
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&bytes)))
    }

    /// The key as one line of text (secret: it signs backups).
    pub fn to_text(&self) -> SecretString {
        SecretString::from(format!("{SECRET_PREFIX}{}", BASE64.encode(self.0.to_bytes())))
    }

    /// Its public half, which verifies what it signs.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.verifying_key())
    }
}

/// A public key whose signatures are trusted.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

impl fmt::Display for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", BASE64.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for VerifyingKey {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let encoded = text.trim().strip_prefix(PUBLIC_PREFIX).ok_or_else(|| {
            format!(
                "{:?}: a backup verify key starts with {PUBLIC_PREFIX}",
                text.trim()
            )
        })?;
        let bytes: [u8; 32] = BASE64
            .decode(encoded)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| format!("{:?} is not 32 bytes of base64", text.trim()))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| format!("{:?} is not an Ed25519 public key", text.trim()))
    }
}

/// Why an object read back from the backup bucket is not believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unauthentic {
    /// It carries no signature at all.
    #[error("it is not signed")]
    NotSigned,
    /// It is signed, by a key that is not trusted.
    #[error("it is signed by a key this server does not trust ({0})")]
    UnknownKey(String),
    /// The signature does not match its name and content.
    #[error("its signature does not match (it was altered, or copied under another name)")]
    BadSignature,
}

/// The keys backups are signed and checked with: the server's signing key (absent where a restore runs
/// with only the public halves), and every key whose signatures are believed.
#[derive(Debug, Clone)]
pub struct BackupKeys {
    signing: Option<Arc<SigningKey>>,
    trusted: Vec<VerifyingKey>,
    accept_unsigned: bool,
}

impl BackupKeys {
    /// Signing with `signing`, trusting its own signatures and those of `also_trusted` (older keys, or
    /// other installations' whose backups are restored here).
    pub fn new(signing: Option<SigningKey>, also_trusted: Vec<VerifyingKey>) -> Self {
        let mut trusted = also_trusted;
        if let Some(key) = &signing {
            trusted.insert(0, key.verifying_key());
        }
        trusted.dedup();
        Self {
            signing: signing.map(Arc::new),
            trusted,
            accept_unsigned: false,
        }
    }

    /// Also believes manifests that carry no signature (backups written before they were signed), and
    /// only manifests: an unsigned deletion marker or drill report is still refused. Only for a restore
    /// an operator asks for explicitly, naming the snapshot (see [`crate::recovery::restore`]).
    pub fn accepting_unsigned_manifests(mut self) -> Self {
        self.accept_unsigned = true;
        self
    }

    /// Whether unsigned manifests are believed.
    pub fn accepts_unsigned_manifests(&self) -> bool {
        self.accept_unsigned
    }

    /// The public half of the signing key, if there is one.
    pub fn verifying_key(&self) -> Option<VerifyingKey> {
        self.signing.as_ref().map(|key| key.verifying_key())
    }

    /// Every trusted key.
    pub fn trusted(&self) -> &[VerifyingKey] {
        &self.trusted
    }

    /// `payload`, signed for storing as `name`. Fails without a signing key.
    pub fn seal(&self, name: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
        let key = self.signing.as_ref().ok_or(
            "no backup signing key: set PAWFILE_BACKUP_SIGNING_KEY (make one with `pawfile backup signing-keygen`)",
        )?;
        let signature = key.0.sign(&message(name, payload));
        let mut sealed = Vec::with_capacity(MAGIC.len() + 32 + 64 + payload.len());
        sealed.extend_from_slice(MAGIC);
        sealed.extend_from_slice(key.0.verifying_key().as_bytes());
        sealed.extend_from_slice(&signature.to_bytes());
        sealed.extend_from_slice(payload);
        Ok(sealed)
    }

    /// What the first [`HEAD_LEN`] bytes of an envelope already tell: that it is not signed (and not
    /// to be believed unsigned), or signed by a key this server does not trust.
    fn check_head(&self, name: &str, head: &[u8]) -> Result<(), Unauthentic> {
        let Some(rest) = head.strip_prefix(MAGIC) else {
            return if self.accept_unsigned && name.starts_with(super::MANIFEST_PREFIX) {
                Ok(())
            } else {
                Err(Unauthentic::NotSigned)
            };
        };
        match rest.get(..32) {
            Some(key) if !self.trusted.iter().any(|trusted| trusted.0.as_bytes() == key) => {
                Err(self.unknown(key))
            }
            _ => Ok(()),
        }
    }

    fn unknown(&self, key: &[u8]) -> Unauthentic {
        Unauthentic::UnknownKey(
            match <[u8; 32]>::try_from(key)
                .ok()
                .and_then(|key| ed25519_dalek::VerifyingKey::from_bytes(&key).ok())
            {
                Some(key) => VerifyingKey(key).to_string(),
                None => "not a valid key".to_owned(),
            },
        )
    }

    /// The payload of `sealed`, read back from `name`, if a trusted key signed it for that name.
    pub fn open<'a>(&self, name: &str, sealed: &'a [u8]) -> Result<&'a [u8], Unauthentic> {
        let Some(rest) = sealed.strip_prefix(MAGIC) else {
            return if self.accept_unsigned && name.starts_with(super::MANIFEST_PREFIX) {
                Ok(sealed)
            } else {
                Err(Unauthentic::NotSigned)
            };
        };
        if rest.len() < 32 + 64 {
            return Err(Unauthentic::BadSignature);
        }
        let (key, rest) = rest.split_at(32);
        let (signature, payload) = rest.split_at(64);
        let key: [u8; 32] = key.try_into().map_err(|_| Unauthentic::BadSignature)?;
        let Some(trusted) = self.trusted.iter().find(|trusted| trusted.0.as_bytes() == &key) else {
            return Err(self.unknown(&key));
        };
        let signature: [u8; 64] = signature.try_into().map_err(|_| Unauthentic::BadSignature)?;
        trusted
            .0
            .verify_strict(&message(name, payload), &Signature::from_bytes(&signature))
            .map_err(|_| Unauthentic::BadSignature)?;
        Ok(payload)
    }
}

fn message(name: &str, payload: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(CONTEXT.len() + name.len() + 1 + payload.len());
    message.extend_from_slice(CONTEXT);
    message.extend_from_slice(name.as_bytes());
    message.push(0);
    message.extend_from_slice(payload);
    message
}

/// How many bytes of an envelope say whether it is signed and by which key.
const HEAD_LEN: usize = MAGIC.len() + 32;

/// Reads the signed object `name` (at most `most` bytes) and opens it: `Ok(Err(why))` when it is
/// refused (too large, unsigned, forged), an error when the store fails or the object is gone. Whether
/// it is signed, and by a trusted key, is told by its first bytes: one that is not is refused before the
/// rest is read (it could be large), and so is one larger than `most`. Only an object that names a
/// trusted key is read whole to check its signature.
pub async fn read_signed(
    store: &crate::storage::ObjectStore,
    keys: &BackupKeys,
    name: &str,
    most: u64,
) -> Result<Result<bytes::Bytes, String>, crate::storage::StorageError> {
    use futures::StreamExt;
    let too_large = || {
        crate::storage::StorageError::TooLarge {
            key: name.to_owned(),
            most,
        }
        .to_string()
    };
    let body = store.get_stream(name, None).await?;
    if body.length > most {
        return Ok(Err(too_large()));
    }
    let mut sealed = Vec::with_capacity(usize::try_from(body.length).unwrap_or(0));
    let mut head_checked = false;
    let chunks = body.into_stream();
    futures::pin_mut!(chunks);
    while let Some(chunk) = chunks.next().await {
        let chunk =
            chunk.map_err(|err| crate::storage::StorageError::Other(format!("reading {name}: {err}")))?;
        if (sealed.len() + chunk.len()) as u64 > most {
            return Ok(Err(too_large()));
        }
        sealed.extend_from_slice(&chunk);
        if !head_checked && sealed.len() >= HEAD_LEN {
            head_checked = true;
            if let Err(why) = keys.check_head(name, &sealed) {
                return Ok(Err(why.to_string()));
            }
        }
    }
    let sealed = bytes::Bytes::from(sealed);
    Ok(match keys.open(name, &sealed) {
        Ok(payload) => Ok(sealed.slice(sealed.len() - payload.len()..)),
        Err(why) => Err(why.to_string()),
    })
}

/// Reads the signing key from its text (a setting), or else from `path`, generating it there (0600)
/// the first time. Returns the key and whether it was generated now.
pub fn load_or_generate(
    configured: Option<&SecretString>,
    path: &std::path::Path,
) -> Result<(SigningKey, bool), String> {
    if let Some(text) = configured {
        return SigningKey::parse(text.expose_secret()).map(|key| (key, false));
    }
    match std::fs::read_to_string(path) {
        Ok(text) => SigningKey::parse(&text)
            .map(|key| (key, false))
            .map_err(|err| format!("{}: {err}", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate();
            crate::files::write_private(path, format!("{}\n", key.to_text().expose_secret()).as_bytes())
                .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
            Ok((key, true))
        }
        Err(err) => Err(format!("cannot read {}: {err}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_and_parse_back() {
        let key = SigningKey::generate();
        let again = SigningKey::parse(key.to_text().expose_secret()).unwrap();
        assert_eq!(again.verifying_key(), key.verifying_key());
        let public: VerifyingKey = key.verifying_key().to_string().parse().unwrap();
        assert_eq!(public, key.verifying_key());
        assert!(!format!("{key:?}").contains(key.to_text().expose_secret()));
        assert!(SigningKey::parse("pawfile-backup-signing-key-1:short").is_err());
        assert!(
            "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgp"
                .parse::<VerifyingKey>()
                .is_err()
        );
    }

    #[test]
    fn what_a_trusted_key_signed_opens_under_its_name_only() {
        let keys = BackupKeys::new(Some(SigningKey::generate()), Vec::new());
        let sealed = keys.seal("manifests/a", b"the manifest").unwrap();
        assert_eq!(keys.open("manifests/a", &sealed), Ok(&b"the manifest"[..]));
        assert_eq!(
            keys.open("manifests/b", &sealed),
            Err(Unauthentic::BadSignature),
            "copied under another name"
        );
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(keys.open("manifests/a", &altered), Err(Unauthentic::BadSignature));
        assert_eq!(
            keys.open("manifests/a", &sealed[..MAGIC.len() + 10]),
            Err(Unauthentic::BadSignature)
        );
    }

    #[test]
    fn unsigned_objects_and_other_keys_are_refused() {
        let ours = BackupKeys::new(Some(SigningKey::generate()), Vec::new());
        let theirs = BackupKeys::new(Some(SigningKey::generate()), Vec::new());
        let forged = theirs.seal("drills/x", b"{}").unwrap();
        assert!(matches!(
            ours.open("drills/x", &forged),
            Err(Unauthentic::UnknownKey(_))
        ));
        assert_eq!(ours.open("drills/x", b"{}"), Err(Unauthentic::NotSigned));
        // Accepting unsigned manifests accepts those, and nothing else unsigned.
        let lenient = ours.accepting_unsigned_manifests();
        assert_eq!(lenient.open("manifests/x", b"{}"), Ok(&b"{}"[..]));
        assert_eq!(lenient.open("drills/x", b"{}"), Err(Unauthentic::NotSigned));
        assert_eq!(lenient.open("deletions/x", b"{}"), Err(Unauthentic::NotSigned));
        // A key trusted explicitly (an older one, say) verifies.
        let both = BackupKeys::new(
            Some(SigningKey::generate()),
            vec![theirs.verifying_key().unwrap()],
        );
        assert_eq!(both.open("drills/x", &forged), Ok(&b"{}"[..]));
    }

    #[test]
    fn the_first_bytes_tell_an_unsigned_object_or_an_unknown_key() {
        let ours = BackupKeys::new(Some(SigningKey::generate()), Vec::new());
        let theirs = BackupKeys::new(Some(SigningKey::generate()), Vec::new());
        let large = vec![b'x'; 4096];
        let forged = theirs.seal("manifests/x", &large).unwrap();
        let signed = ours.seal("manifests/x", &large).unwrap();
        assert!(matches!(
            ours.check_head("manifests/x", &forged[..HEAD_LEN]),
            Err(Unauthentic::UnknownKey(_))
        ));
        assert_eq!(
            ours.check_head("manifests/x", &large[..HEAD_LEN]),
            Err(Unauthentic::NotSigned)
        );
        let lenient = ours.clone().accepting_unsigned_manifests();
        assert_eq!(lenient.check_head("manifests/x", &large[..HEAD_LEN]), Ok(()));
        assert_eq!(
            lenient.check_head("deletions/x", &large[..HEAD_LEN]),
            Err(Unauthentic::NotSigned)
        );
        // A trusted key: only the whole envelope tells whether its signature holds.
        assert_eq!(ours.check_head("manifests/x", &signed[..HEAD_LEN]), Ok(()));
        let mut altered = signed;
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(ours.check_head("manifests/x", &altered[..HEAD_LEN]), Ok(()));
        assert_eq!(ours.open("manifests/x", &altered), Err(Unauthentic::BadSignature));
    }

    #[test]
    fn without_a_signing_key_nothing_is_signed_but_trusted_keys_verify() {
        let signer = BackupKeys::new(Some(SigningKey::generate()), Vec::new());
        let verifier = BackupKeys::new(None, vec![signer.verifying_key().unwrap()]);
        assert!(verifier.seal("x", b"y").is_err());
        let sealed = signer.seal("x", b"y").unwrap();
        assert_eq!(verifier.open("x", &sealed), Ok(&b"y"[..]));
    }
}
