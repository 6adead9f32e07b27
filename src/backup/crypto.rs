//! Encryption of everything that goes into the backup bucket: age, to one or more X25519 recipients,
//! streaming. The server needs only the public keys; the private key (identity) is needed to read a
//! backup (full verification, drills, restores).

use age::x25519;
use bytes::Bytes;
use secrecy::ExposeSecret;
use std::{
    io::{self, Write},
    path::Path,
    str::FromStr,
    sync::{Arc, Mutex},
};
use tokio::io::{AsyncBufRead, AsyncRead};
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

/// What the recipient set is called when backups are stored unencrypted.
pub const UNENCRYPTED: &str = "none";

/// The first bytes of every age file.
const AGE_MAGIC: &[u8] = b"age-encryption.org/";

/// The public keys backups are encrypted to, or none (unencrypted backups, only when allowed).
#[derive(Clone)]
pub struct Recipients(Vec<x25519::Recipient>);

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.fingerprint())
    }
}

impl Recipients {
    /// Parses age public keys (`age1…`), separated by commas, spaces or new lines.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for word in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty())
        {
            keys.push(
                x25519::Recipient::from_str(word)
                    .map_err(|err| format!("{word:?} is not an age X25519 public key (age1…): {err}"))?,
            );
        }
        Ok(Self::new(keys))
    }

    /// A set of recipients (sorted, without repeats).
    pub fn new(mut keys: Vec<x25519::Recipient>) -> Self {
        keys.sort_by_key(ToString::to_string);
        keys.dedup_by_key(|key| key.to_string());
        Self(keys)
    }

    /// No recipients: objects are stored as they are.
    pub fn unencrypted() -> Self {
        Self(Vec::new())
    }

    /// Whether objects are stored unencrypted.
    pub fn is_unencrypted(&self) -> bool {
        self.0.is_empty()
    }

    /// The sorted public keys joined by spaces ([`UNENCRYPTED`] for none): what the catalogue keys
    /// deduplication on, so a new recipient set re-encrypts everything.
    pub fn fingerprint(&self) -> String {
        if self.0.is_empty() {
            return UNENCRYPTED.to_owned();
        }
        self.0
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A sealer that encrypts one object to these recipients.
    pub fn sealer(&self) -> io::Result<Sealer> {
        if self.0.is_empty() {
            return Ok(Sealer(Seal::Plain));
        }
        let encryptor = age::Encryptor::with_recipients(self.0.iter().map(|key| key as &dyn age::Recipient))
            .map_err(io::Error::other)?;
        let sink = SharedSink::default();
        let writer = encryptor.wrap_output(sink.clone())?;
        Ok(Sealer(Seal::Age { writer, sink }))
    }
}

/// Private keys that can read backups.
pub struct Identities(Vec<x25519::Identity>);

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identities({} keys)", self.0.len())
    }
}

impl Identities {
    /// Reads age identity files (lines `AGE-SECRET-KEY-1…`; `#` comments and blank lines ignored).
    pub fn from_files(paths: &[impl AsRef<Path>]) -> Result<Self, String> {
        let mut keys = Vec::new();
        for path in paths {
            let path = path.as_ref();
            let text = std::fs::read_to_string(path)
                .map_err(|err| format!("cannot read the identity file {}: {err}", path.display()))?;
            let before = keys.len();
            for line in text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
            {
                keys.push(x25519::Identity::from_str(line).map_err(|_| {
                    format!(
                        "{} holds a line that is not an age secret key (AGE-SECRET-KEY-1…)",
                        path.display()
                    )
                })?);
            }
            if keys.len() == before {
                return Err(format!("{} holds no age secret key", path.display()));
            }
        }
        Ok(Self(keys))
    }

    /// The identities as age wants them.
    fn as_age(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.0.iter().map(|key| key as &dyn age::Identity)
    }

    /// Their public keys.
    pub fn recipients(&self) -> Recipients {
        Recipients::new(self.0.iter().map(x25519::Identity::to_public).collect())
    }
}

/// A new key pair: the identity file's text (with the public key in a comment) and the public key.
pub fn generate_key_pair() -> (String, String) {
    let identity = x25519::Identity::generate();
    let public = identity.to_public().to_string();
    let created = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let text = format!(
        "# Pawfile backup key, created {created}\n# public key: {public}\n{}\n",
        identity.to_string().expose_secret()
    );
    (text, public)
}

/// Output of the encryptor, drained after every write so memory stays at one age chunk (64 KiB).
#[derive(Clone, Default)]
struct SharedSink(Arc<Mutex<Vec<u8>>>);

impl SharedSink {
    fn take(&self) -> Bytes {
        let mut buffer = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Bytes::from(std::mem::take(&mut *buffer))
    }
}

impl Write for SharedSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Encrypts one object as its plaintext streams in.
pub struct Sealer(Seal);

enum Seal {
    /// Unencrypted backups: bytes pass through.
    Plain,
    /// age encryption into a buffer that each call drains.
    Age {
        writer: age::stream::StreamWriter<SharedSink>,
        sink: SharedSink,
    },
}

impl Sealer {
    /// Encrypts `plaintext`; returns the ciphertext produced so far (maybe empty).
    pub fn push(&mut self, plaintext: Bytes) -> io::Result<Bytes> {
        match &mut self.0 {
            Seal::Plain => Ok(plaintext),
            Seal::Age { writer, sink } => {
                writer.write_all(&plaintext)?;
                Ok(sink.take())
            }
        }
    }

    /// Ends the stream; returns the last ciphertext.
    pub fn finish(self) -> io::Result<Bytes> {
        match self.0 {
            Seal::Plain => Ok(Bytes::new()),
            Seal::Age { writer, sink } => {
                writer.finish()?;
                Ok(sink.take())
            }
        }
    }
}

/// Why a backup object could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// None of the identities is a recipient of the object.
    #[error(
        "none of the given keys can decrypt it (a wrong --identity, or a backup made to other recipients)"
    )]
    WrongKey,
    /// The object is encrypted and no identity was given.
    #[error("it is encrypted and no key was given (--identity FILE)")]
    NoKey,
    /// The bytes are not an age file, or are damaged.
    #[error("it is damaged or not a Pawfile backup object: {0}")]
    Damaged(String),
}

/// Opens a backup object's bytes: decrypts an age file with `identities`, or passes an unencrypted one
/// through when `encrypted` is false.
pub async fn open<R>(
    mut reader: R,
    encrypted: bool,
    identities: Option<&Identities>,
) -> Result<Box<dyn AsyncRead + Send + Unpin>, OpenError>
where
    R: AsyncBufRead + Send + Unpin + 'static,
{
    use tokio::io::AsyncBufReadExt;
    if !encrypted {
        return Ok(Box::new(reader));
    }
    let head = reader
        .fill_buf()
        .await
        .map_err(|err| OpenError::Damaged(err.to_string()))?;
    if !head.starts_with(AGE_MAGIC) {
        return Err(OpenError::Damaged(
            "it does not start with an age header".to_owned(),
        ));
    }
    let identities = identities.ok_or(OpenError::NoKey)?;
    let decryptor = age::Decryptor::new_async_buffered(reader.compat())
        .await
        .map_err(|err| OpenError::Damaged(err.to_string()))?;
    match decryptor.decrypt_async(identities.as_age()) {
        Ok(plaintext) => Ok(Box::new(plaintext.compat())),
        Err(age::DecryptError::NoMatchingKeys) => Err(OpenError::WrongKey),
        Err(err) => Err(OpenError::Damaged(err.to_string())),
    }
}

/// Whether `head` (the first bytes of an object) is an age file.
pub fn is_age(head: &[u8]) -> bool {
    head.starts_with(AGE_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn key_pair() -> (tempfile::NamedTempFile, Recipients) {
        let (text, public) = generate_key_pair();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        (file, Recipients::parse(&public).unwrap())
    }

    async fn seal(recipients: &Recipients, plaintext: &[u8]) -> Vec<u8> {
        let mut sealer = recipients.sealer().unwrap();
        let mut out = Vec::new();
        for chunk in plaintext.chunks(10_000) {
            out.extend_from_slice(&sealer.push(Bytes::copy_from_slice(chunk)).unwrap());
        }
        out.extend_from_slice(&sealer.finish().unwrap());
        out
    }

    #[tokio::test]
    async fn what_is_sealed_opens_with_the_key_and_only_with_it() {
        let (identity, recipients) = key_pair();
        let plaintext: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let sealed = seal(&recipients, &plaintext).await;
        assert!(is_age(&sealed));
        assert!(!sealed.windows(64).any(|w| w == &plaintext[1000..1064]));

        let identities = Identities::from_files(&[identity.path()]).unwrap();
        let mut opened = open(io::Cursor::new(sealed.clone()), true, Some(&identities))
            .await
            .unwrap();
        let mut back = Vec::new();
        opened.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, plaintext);

        let (other, _) = key_pair();
        let wrong = Identities::from_files(&[other.path()]).unwrap();
        let err = open(io::Cursor::new(sealed.clone()), true, Some(&wrong))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, OpenError::WrongKey), "{err}");
        let err = open(io::Cursor::new(sealed), true, None).await.err().unwrap();
        assert!(matches!(err, OpenError::NoKey), "{err}");
    }

    #[test]
    fn recipient_sets_are_compared_sorted() {
        let (_, a) = key_pair();
        let (_, b) = key_pair();
        let (a, b) = (a.fingerprint(), b.fingerprint());
        let one = Recipients::parse(&format!("{a}, {b}")).unwrap();
        let two = Recipients::parse(&format!("{b}\n{a} {a}")).unwrap();
        assert_eq!(one.fingerprint(), two.fingerprint());
        assert_eq!(Recipients::parse("").unwrap().fingerprint(), UNENCRYPTED);
        assert!(
            Recipients::parse("age1notakey")
                .unwrap_err()
                .contains("age1notakey")
        );
    }

    #[test]
    fn identity_files_must_hold_a_key() {
        let mut empty = tempfile::NamedTempFile::new().unwrap();
        writeln!(empty, "# nothing here").unwrap();
        assert!(
            Identities::from_files(&[empty.path()])
                .unwrap_err()
                .contains("no age secret key")
        );
        let (identity, recipients) = key_pair();
        let identities = Identities::from_files(&[identity.path()]).unwrap();
        assert_eq!(identities.recipients().fingerprint(), recipients.fingerprint());
    }
}
