//! The SDK clients of one command, built once from aws-config's default chain, and the
//! current-thread runtime the AWS commands run on.

use crate::AwsError;

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
