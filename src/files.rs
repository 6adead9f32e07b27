//! Files and folders Pawfile creates in its data folder: keys, credentials, mail, the embedded stores.
//! Only the server's own user may read them: files are created 0600 and folders 0700, whatever the
//! process's umask.

use std::{io, path::Path};

/// Creates `path` (and the folders above it, 0700) holding `contents`, readable by this user only.
/// Fails if it exists already, so a key is never overwritten. Atomic: the contents are written and
/// synced to a temporary file beside it, which then takes the name only if nothing has it, so a crash
/// never leaves an empty or half-written key behind.
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    create_private_dir(parent)?;
    // tempfile creates it 0600, with a name of its own (nobody's to guess).
    let mut file = tempfile::Builder::new()
        .prefix(".pawfile-")
        .suffix(".partial")
        .tempfile_in(parent)?;
    file.write_all(contents)?;
    file.as_file().sync_all()?;
    file.persist_noclobber(path).map_err(|err| err.error)?;
    #[cfg(unix)]
    std::fs::File::open(parent)?.sync_all()?;
    Ok(())
}

/// Creates `path` and the folders above it that are missing, each 0700 (folders that exist are left
/// as they are).
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_are_0600_and_new_folders_0700_and_nothing_is_overwritten() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a/b/key.txt");
        write_private(&path, b"secret").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&root.path().join("a/b")), 0o700);
        assert_eq!(
            write_private(&path, b"other").unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
        let left: Vec<_> = std::fs::read_dir(root.path().join("a/b"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("key.txt")],
            "no temporary file left"
        );
    }
}
