//! What a bucket's own settings leave open (no public-access block, no default encryption), where
//! its store answers.

use super::ObjectStore;
use aws_sdk_s3::error::ProvideErrorMetadata;

/// What a store said of a bucket setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer<T> {
    /// It answered with the setting.
    Configured(T),
    /// It answered that the bucket has none.
    Missing,
    /// It cannot or will not say.
    Unknown,
}

/// The problems [`ObjectStore::exposure`] reports, from what the store answered.
fn exposure_problems(
    bucket: &str,
    public_access: Answer<Option<[Option<bool>; 4]>>,
    encryption: Answer<Option<usize>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    match public_access {
        Answer::Missing => problems.push(format!(
            "bucket {bucket} has no public-access block: turn Block Public Access on for it"
        )),
        Answer::Configured(flags)
            if !flags.is_some_and(|flags| flags.iter().all(|flag| *flag == Some(true))) =>
        {
            problems.push(format!(
                "bucket {bucket} blocks public access only in part: turn all four Block Public Access settings on"
            ));
        }
        _ => {}
    }
    match encryption {
        Answer::Missing | Answer::Configured(None | Some(0)) => problems.push(format!(
            "bucket {bucket} has no default encryption: turn default (server-side) encryption on"
        )),
        _ => {}
    }
    problems
}

impl ObjectStore {
    /// What the bucket's own settings leave open, where the store answers: no public-access block (or
    /// one that blocks only in part), no default encryption. Stores that do not implement these calls
    /// (Garage, the embedded endpoint) or refuse them to this key say nothing.
    pub async fn exposure(&self) -> Vec<String> {
        let public_access = match self
            .client
            .get_public_access_block()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(output) => Answer::Configured(output.public_access_block_configuration().map(|block| {
                [
                    block.block_public_acls(),
                    block.ignore_public_acls(),
                    block.block_public_policy(),
                    block.restrict_public_buckets(),
                ]
            })),
            Err(err) if err.code() == Some("NoSuchPublicAccessBlockConfiguration") => Answer::Missing,
            Err(_) => Answer::Unknown,
        };
        let encryption = match self
            .client
            .get_bucket_encryption()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(output) => Answer::Configured(
                output
                    .server_side_encryption_configuration()
                    .map(|config| config.rules().len()),
            ),
            Err(err) if err.code() == Some("ServerSideEncryptionConfigurationNotFoundError") => {
                Answer::Missing
            }
            Err(_) => Answer::Unknown,
        };
        exposure_problems(&self.bucket, public_access, encryption)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_is_reported_only_where_the_store_answered() {
        let all = Answer::Configured(Some([Some(true); 4]));
        assert!(exposure_problems("b", all, Answer::Configured(Some(1))).is_empty());
        assert!(exposure_problems("b", Answer::Unknown, Answer::Unknown).is_empty());
        let open = exposure_problems("b", Answer::Missing, Answer::Missing);
        assert_eq!(open.len(), 2, "{open:?}");
        assert!(open[0].contains("no public-access block") && open[1].contains("no default encryption"));
        let partial = exposure_problems(
            "b",
            Answer::Configured(Some([Some(true), Some(false), Some(true), Some(true)])),
            Answer::Configured(Some(1)),
        );
        assert_eq!(partial.len(), 1);
        assert!(partial[0].contains("only in part"));
    }
}
