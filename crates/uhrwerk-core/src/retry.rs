//! Retry policies: defaults, validation, retryability of a failure and the next backoff.
//!
//! Semantics follow Temporal's server: unset fields get defaults (1 s initial interval,
//! coefficient 2.0, maximum 100 x initial, unlimited attempts), `next_retry_delay` overrides the
//! computed interval but is still clamped to the maximum, and the schedule-to-close deadline
//! bounds all attempts.

use crate::pb::{common::v1 as common_pb, enums::v1 as enums_pb, failure::v1 as failure_pb};
use crate::time::{self, Millis};

use enums_pb::RetryState;
use failure_pb::failure::FailureInfo;

pub const DEFAULT_INITIAL_INTERVAL_MS: Millis = 1000;
pub const DEFAULT_BACKOFF_COEFFICIENT: f64 = 2.0;

/// Why a retry policy is invalid; the message is what the client sees.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidRetryPolicy(pub String);

/// Fills unset fields with Temporal's defaults and validates the result.
pub fn normalize(policy: Option<&common_pb::RetryPolicy>) -> Result<common_pb::RetryPolicy, InvalidRetryPolicy> {
    let mut p = policy.cloned().unwrap_or_default();
    if time::is_negative(&p.initial_interval) {
        return Err(InvalidRetryPolicy("InitialInterval cannot be negative on retry policy.".into()));
    }
    if time::is_negative(&p.maximum_interval) {
        return Err(InvalidRetryPolicy("MaximumInterval cannot be negative on retry policy.".into()));
    }
    if p.maximum_attempts < 0 {
        return Err(InvalidRetryPolicy("MaximumAttempts cannot be negative on retry policy.".into()));
    }
    if p.backoff_coefficient != 0.0 && p.backoff_coefficient < 1.0 || p.backoff_coefficient.is_nan() {
        return Err(InvalidRetryPolicy("BackoffCoefficient cannot be less than 1 on retry policy.".into()));
    }
    let mut initial = time::duration_ms(&p.initial_interval);
    if initial == 0 {
        initial = DEFAULT_INITIAL_INTERVAL_MS;
    }
    let maximum = time::duration_ms(&p.maximum_interval);
    if maximum != 0 && maximum < initial {
        return Err(InvalidRetryPolicy("MaximumInterval cannot be less than InitialInterval on retry policy.".into()));
    }
    p.initial_interval = Some(time::duration(initial));
    if p.backoff_coefficient == 0.0 {
        p.backoff_coefficient = DEFAULT_BACKOFF_COEFFICIENT;
    }
    if maximum == 0 {
        p.maximum_interval = Some(time::duration(initial.saturating_mul(100)));
    }
    Ok(p)
}

/// Whether a failure may be retried under `policy`.
pub fn is_retryable(failure: &failure_pb::Failure, policy: &common_pb::RetryPolicy) -> bool {
    match &failure.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(info)) => {
            !info.non_retryable && !policy.non_retryable_error_types.iter().any(|t| t == &info.r#type)
        }
        Some(FailureInfo::TimeoutFailureInfo(info)) => {
            let kind = enums_pb::TimeoutType::try_from(info.timeout_type).unwrap_or(enums_pb::TimeoutType::Unspecified);
            let name = match kind {
                enums_pb::TimeoutType::StartToClose => "TemporalTimeout:START_TO_CLOSE",
                enums_pb::TimeoutType::Heartbeat => "TemporalTimeout:HEARTBEAT",
                _ => return false,
            };
            !policy.non_retryable_error_types.iter().any(|t| t == name)
        }
        Some(FailureInfo::ServerFailureInfo(info)) => !info.non_retryable,
        Some(FailureInfo::CanceledFailureInfo(_)) | Some(FailureInfo::TerminatedFailureInfo(_)) => false,
        _ => true,
    }
}

/// The decision after attempt `attempt` failed at `now`.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Retry after this many milliseconds.
    Retry(Millis),
    /// Stop; the final event carries this retry state.
    Stop(RetryState),
}

/// Decides whether attempt `attempt` (1-based) is followed by another one.
/// `expiration_ms` is the absolute deadline of all attempts (0 = none).
pub fn decide(
    failure: &failure_pb::Failure,
    policy: &common_pb::RetryPolicy,
    attempt: i32,
    now: Millis,
    expiration_ms: Millis,
) -> Decision {
    if !is_retryable(failure, policy) {
        return Decision::Stop(RetryState::NonRetryableFailure);
    }
    if policy.maximum_attempts > 0 && attempt >= policy.maximum_attempts {
        return Decision::Stop(RetryState::MaximumAttemptsReached);
    }
    let maximum = time::duration_ms(&policy.maximum_interval);
    let explicit = match &failure.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(info)) => time::duration_ms(&info.next_retry_delay),
        _ => 0,
    };
    let mut interval = if explicit > 0 {
        explicit
    } else {
        let initial = time::duration_ms(&policy.initial_interval).max(1) as f64;
        let computed = initial * policy.backoff_coefficient.max(1.0).powi(attempt.saturating_sub(1));
        if computed.is_finite() && computed < i64::MAX as f64 { computed as Millis } else { Millis::MAX }
    };
    if maximum > 0 {
        interval = interval.min(maximum);
    }
    if expiration_ms > 0 && now.saturating_add(interval) >= expiration_ms {
        return Decision::Stop(RetryState::Timeout);
    }
    Decision::Retry(interval)
}

#[cfg(test)]
mod tests {
    use super::*;
    use failure_pb::ApplicationFailureInfo;

    fn app_failure(non_retryable: bool, kind: &str) -> failure_pb::Failure {
        failure_pb::Failure {
            message: "boom".into(),
            failure_info: Some(FailureInfo::ApplicationFailureInfo(ApplicationFailureInfo {
                r#type: kind.into(),
                non_retryable,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_filled() {
        let p = normalize(None).expect("default policy is valid");
        assert_eq!(time::duration_ms(&p.initial_interval), 1000);
        assert_eq!(p.backoff_coefficient, 2.0);
        assert_eq!(time::duration_ms(&p.maximum_interval), 100_000);
        assert_eq!(p.maximum_attempts, 0);
    }

    #[test]
    fn invalid_policies_are_rejected() {
        let bad_coefficient = common_pb::RetryPolicy { backoff_coefficient: 0.5, ..Default::default() };
        assert!(normalize(Some(&bad_coefficient)).is_err());
        let bad_attempts = common_pb::RetryPolicy { maximum_attempts: -1, ..Default::default() };
        assert!(normalize(Some(&bad_attempts)).is_err());
        let max_below_initial = common_pb::RetryPolicy {
            initial_interval: Some(time::duration(5000)),
            maximum_interval: Some(time::duration(1000)),
            ..Default::default()
        };
        assert!(normalize(Some(&max_below_initial)).is_err());
    }

    #[test]
    fn backoff_grows_and_is_clamped() {
        let p = normalize(Some(&common_pb::RetryPolicy {
            initial_interval: Some(time::duration(100)),
            maximum_interval: Some(time::duration(300)),
            ..Default::default()
        }))
        .expect("valid");
        let f = app_failure(false, "E");
        assert_eq!(decide(&f, &p, 1, 0, 0), Decision::Retry(100));
        assert_eq!(decide(&f, &p, 2, 0, 0), Decision::Retry(200));
        assert_eq!(decide(&f, &p, 3, 0, 0), Decision::Retry(300));
        assert_eq!(decide(&f, &p, 30, 0, 0), Decision::Retry(300));
    }

    #[test]
    fn stop_rules() {
        let mut p = normalize(None).expect("valid");
        p.maximum_attempts = 3;
        p.non_retryable_error_types = vec!["Fatal".into()];
        assert_eq!(decide(&app_failure(true, "E"), &p, 1, 0, 0), Decision::Stop(RetryState::NonRetryableFailure));
        assert_eq!(decide(&app_failure(false, "Fatal"), &p, 1, 0, 0), Decision::Stop(RetryState::NonRetryableFailure));
        assert_eq!(decide(&app_failure(false, "E"), &p, 3, 0, 0), Decision::Stop(RetryState::MaximumAttemptsReached));
        assert_eq!(decide(&app_failure(false, "E"), &p, 1, 0, 500), Decision::Stop(RetryState::Timeout));
    }

    #[test]
    fn next_retry_delay_is_clamped_to_maximum() {
        let p = normalize(Some(&common_pb::RetryPolicy {
            maximum_interval: Some(time::duration(2000)),
            ..Default::default()
        }))
        .expect("valid");
        let mut f = app_failure(false, "E");
        if let Some(FailureInfo::ApplicationFailureInfo(info)) = &mut f.failure_info {
            info.next_retry_delay = Some(time::duration(60_000));
        }
        assert_eq!(decide(&f, &p, 1, 0, 0), Decision::Retry(2000));
    }
}
