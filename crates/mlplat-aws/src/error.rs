//! Errors of the AWS steps. Each names the resource and, for a refused call, AWS's error code,
//! and says what to do. AWS messages never hold a password (the SDK redacts sensitive inputs,
//! and mlplat prints no input).

use std::fmt;
use std::time::Duration;

// The SDK crates re-export the smithy error types: one set serves RDS, S3 and EC2.
use aws_sdk_rds::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error(
        "no AWS region: set AWS_REGION (or AWS_PROFILE with a region in ~/.aws/config) and run again"
    )]
    NoRegion,
    #[error("{resource}: {action} failed: {}{message}{}", code.as_ref().map(|c| format!("{c}: ")).unwrap_or_default(), hint.as_ref().map(|h| format!("\n  = help: {h}")).unwrap_or_default())]
    Call {
        resource: String,
        action: String,
        code: Option<String>,
        message: String,
        hint: Option<String>,
    },
    #[error("{resource}: still `{status}` after {}; AWS carries on: run `mlplat provision` again to wait for it", Elapsed(*waited))]
    Timeout {
        resource: String,
        status: String,
        waited: Duration,
    },
    #[error("{resource}: AWS reports status `{status}`: {hint}")]
    BadState {
        resource: String,
        status: String,
        hint: String,
    },
    #[error("{resource}: {reason}\n  = help: {hint}")]
    Refused {
        resource: String,
        reason: String,
        hint: String,
    },
}

impl AwsError {
    /// The AWS error code of a refused call.
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Call { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// A call the SDK gave up on that a later poll may pass: throttling, a dropped connection.
    pub fn is_transient(&self) -> bool {
        match self {
            AwsError::Call { code: Some(c), .. } => matches!(
                c.as_str(),
                "Throttling"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "SlowDown"
                    | "TooManyRequestsException"
                    | "RequestThrottled"
                    | "ServiceUnavailable"
                    | "InternalFailure"
            ),
            AwsError::Call {
                code: None, action, ..
            } => action.ends_with("(no answer)"),
            _ => false,
        }
    }

    /// A refused call, for tests and fakes.
    pub fn call(resource: &str, action: &str, code: &str, message: &str) -> AwsError {
        AwsError::Call {
            resource: resource.to_owned(),
            action: action.to_owned(),
            code: Some(code.to_owned()),
            message: message.to_owned(),
            hint: hint(code, resource),
        }
    }
}

/// What to do about an AWS error code.
fn hint(code: &str, resource: &str) -> Option<String> {
    let h = match code {
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" | "TokenRefreshRequired" => {
            "your AWS session has expired: log in again (`aws sso login`, or new AWS_SESSION_TOKEN) and run again".to_owned()
        }
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "AuthFailure"
        | "AllAccessDisabled" => format!(
            "the credentials in use may not do this to {resource}: check AWS_PROFILE and that its IAM policy allows the action"
        ),
        "InvalidClientTokenId" | "SignatureDoesNotMatch" | "UnrecognizedClientException"
        | "InvalidAccessKeyId" => {
            "AWS does not know these credentials: check AWS_PROFILE / AWS_ACCESS_KEY_ID".to_owned()
        }
        "BucketAlreadyExists" => "bucket names are global and another account owns this one: choose another backends.artifacts.s3.bucket".to_owned(),
        "InvalidDBInstanceClass" | "InvalidDBInstanceClassFault" => "this instance class is not offered for this engine and version in this region: see `aws rds describe-orderable-db-instance-options --engine postgres`".to_owned(),
        "InvalidParameterValue" | "InvalidParameterCombination" | "InvalidParameter" => {
            "AWS refused a value of the config: fix the key the message names (instanceClass, engineVersion, storage) and run again".to_owned()
        }
        "InstanceQuotaExceeded" | "StorageQuotaExceeded" | "DBSubnetGroupQuotaExceeded"
        | "DBSubnetQuotaExceededFault" | "SecurityGroupLimitExceeded"
        | "RulesPerSecurityGroupLimitExceeded" | "TooManyBuckets" | "VpcLimitExceeded" => {
            "an account quota is reached: remove unused resources or ask AWS (Service Quotas) for more".to_owned()
        }
        "InvalidVpcID.NotFound" | "InvalidSubnetID.NotFound" | "InvalidSubnet"
        | "InvalidVPCNetworkStateFault" | "DBSubnetGroupDoesNotCoverEnoughAZs" => {
            "check vpcId and privateSubnets: they must exist in this region, and the subnets span two availability zones".to_owned()
        }
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "SlowDown" => {
            "AWS is throttling requests: wait a minute and run again".to_owned()
        }
        _ => return None,
    };
    Some(h)
}

/// Turns an SDK error into one that names the resource, the code and what to do.
pub fn from_sdk<E>(resource: &str, action: &str, err: SdkError<E>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            let code = err.code().map(str::to_owned);
            let message = err
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{}", DisplayErrorContext(&err)));
            let hint = code.as_deref().and_then(|c| hint(c, resource));
            AwsError::Call {
                resource: resource.to_owned(),
                action: action.to_owned(),
                code,
                message,
                hint,
            }
        }
        _ => {
            let text = format!("{}", DisplayErrorContext(&err));
            let hint = if text.contains("credentials") {
                "no usable AWS credentials: set AWS_PROFILE (and `aws sso login`) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            } else {
                "AWS did not answer: check the network (and AWS_ENDPOINT_URL, if set) and run again; what exists is found again"
            };
            AwsError::Call {
                resource: resource.to_owned(),
                action: format!("{action} (no answer)"),
                code: None,
                message: text,
                hint: Some(hint.to_owned()),
            }
        }
    }
}

/// A duration as `1m05s`.
#[derive(Debug, Clone, Copy)]
pub struct Elapsed(pub Duration);

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        if s >= 60 {
            write!(f, "{}m{:02}s", s / 60, s % 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_calls_name_the_resource_the_code_and_what_to_do() {
        for (code, says) in [
            ("ExpiredToken", "aws sso login"),
            ("AccessDenied", "IAM policy"),
            ("BucketAlreadyExists", "another account owns this one"),
            (
                "InvalidDBInstanceClass",
                "describe-orderable-db-instance-options",
            ),
            ("InstanceQuotaExceeded", "Service Quotas"),
        ] {
            let e = AwsError::call("RDS instance mlops-airflow", "CreateDBInstance", code, "no");
            let text = e.to_string();
            assert!(
                text.starts_with(&format!(
                    "RDS instance mlops-airflow: CreateDBInstance failed: {code}: no"
                )),
                "{text}"
            );
            assert!(text.contains(says), "{text}");
        }
        let unknown = AwsError::call("S3 bucket b", "PutBucketTagging", "Odd", "odd");
        assert!(!unknown.to_string().contains("help"));
        assert!(AwsError::call("x", "y", "Throttling", "slow").is_transient());
        assert!(!AwsError::call("x", "y", "AccessDenied", "no").is_transient());
    }

    #[test]
    fn elapsed_time_reads_as_minutes_and_seconds() {
        assert_eq!(Elapsed(Duration::from_secs(42)).to_string(), "42s");
        assert_eq!(Elapsed(Duration::from_secs(125)).to_string(), "2m05s");
    }
}
