//! Core integration tests, against a real Postgres (a fresh database per test) and real S3 servers (a
//! fresh bucket per test, on the embedded endpoint and on Garage).

/// Runs each named `async fn(S3Backend)` as a test against the embedded endpoint and against Garage.
macro_rules! on_both_s3_servers {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(pawfile::testing::S3Backend::Embedded).await;
                }
            )*
        }
        mod garage {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(pawfile::testing::S3Backend::Garage).await;
                }
            )*
        }
    };
}

/// Runs each named `async fn(S3Backend, PgPool)` as a test (a fresh database each) against the embedded
/// endpoint and against Garage.
macro_rules! on_both_s3_servers_with_pool {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
                async fn $name(pool: sqlx::PgPool) {
                    super::$name(pawfile::testing::S3Backend::Embedded, pool).await;
                }
            )*
        }
        mod garage {
            $(
                #[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
                async fn $name(pool: sqlx::PgPool) {
                    super::$name(pawfile::testing::S3Backend::Garage, pool).await;
                }
            )*
        }
    };
}

mod accounts;
mod admin;
mod alerts;
mod backup;
mod db;
mod deletion;
mod documents;
mod fixtures;
mod floors;
mod home;
mod pets;
mod quotas;
mod records;
mod storage;
mod writer;
