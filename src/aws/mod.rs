//! The AWS backends: RDS PostgreSQL and S3, looked up, created, changed and removed with the AWS
//! SDK. Only `plan`, `provision` and `destroy` come here; `render` reads the lock file instead.
//!
//! [`spec`] computes what the config asks for (no call); [`ec2`], [`rds`] and [`s3`] observe
//! and change one kind of resource each; [`plan`] compares the two; [`provision`] and
//! [`destroy`] run the steps; [`wait`] polls until an instance is ready, with progress.
//! [`Clients`] is built once per command from aws-config's default chain (`AWS_PROFILE`,
//! `AWS_REGION`, `AWS_ENDPOINT_URL`, …); a step that needs another service adds its client there.

pub mod destroy;
pub mod ec2;
pub mod error;
pub mod lock;
pub mod plan;
pub mod provision;
pub mod rds;
pub mod s3;
pub mod spec;
pub mod wait;

pub use error::AwsError;

/// The SDK clients of one command, sharing one loaded configuration.
#[derive(Debug, Clone)]
pub struct Clients {
    pub region: String,
    pub rds: aws_sdk_rds::Client,
    pub s3: aws_sdk_s3::Client,
    pub ec2: aws_sdk_ec2::Client,
    /// The loaded configuration, for clients built on demand (Secrets Manager).
    pub config: aws_config::SdkConfig,
}

impl Clients {
    /// Loads credentials, region and endpoint from the default chain.
    pub async fn load() -> Result<Clients, AwsError> {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let Some(region) = config.region().map(|r| r.to_string()) else {
            return Err(AwsError::NoRegion);
        };
        // An emulator on a custom endpoint serves buckets by path, not by host name.
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(path_style)
            .build();
        Ok(Clients {
            region,
            rds: aws_sdk_rds::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            ec2: aws_sdk_ec2::Client::new(&config),
            config,
        })
    }
}

/// A current-thread runtime, built only by the commands that talk to AWS.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
