//! TestService (`temporal.api.testservice.v1`): the time-skipping controls of Temporal's test
//! server, served by `uhrwerk-test-server` over the clock in `crate::time_skipping`.

use std::time::Duration;

use tonic::{Request, Response, Status};
use uhrwerk_proto::server::testservice::test_service_server::{TestService, TestServiceServer};
use uhrwerk_proto::temporal::api::testservice::v1 as pb;
use uhrwerk_proto::wkt;

use crate::clock::Clock;
use crate::time_skipping::SkippingClock;

/// Every TestService method.
pub const IMPLEMENTED: &[&str] =
    &["LockTimeSkipping", "UnlockTimeSkipping", "Sleep", "SleepUntil", "UnlockTimeSkippingWithSleep", "GetCurrentTime"];

/// The TestService over one time-skipping clock.
#[derive(Clone)]
pub struct TimeSkipping {
    clock: SkippingClock,
}

impl TimeSkipping {
    pub fn server(clock: SkippingClock) -> TestServiceServer<TimeSkipping> {
        TestServiceServer::new(Self { clock })
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
            .send_compressed(tonic::codec::CompressionEncoding::Gzip)
    }
}

type RpcResult<T> = std::result::Result<Response<T>, Status>;

/// An unbalanced unlock: the Java test server throws, which its gRPC layer answers as UNKNOWN.
fn unbalanced(e: crate::time_skipping::Unbalanced) -> Status {
    Status::unknown(e.to_string())
}

fn duration_ms(duration: Option<&wkt::Duration>) -> Result<Duration, Status> {
    let d = duration.ok_or_else(|| Status::invalid_argument("duration is required"))?;
    if d.seconds < 0 || d.nanos < 0 {
        return Err(Status::invalid_argument("duration must not be negative"));
    }
    Ok(Duration::new(d.seconds as u64, d.nanos as u32))
}

#[tonic::async_trait]
impl TestService for TimeSkipping {
    async fn lock_time_skipping(
        &self,
        _request: Request<pb::LockTimeSkippingRequest>,
    ) -> RpcResult<pb::LockTimeSkippingResponse> {
        self.clock.lock();
        Ok(Response::new(pb::LockTimeSkippingResponse {}))
    }

    async fn unlock_time_skipping(
        &self,
        _request: Request<pb::UnlockTimeSkippingRequest>,
    ) -> RpcResult<pb::UnlockTimeSkippingResponse> {
        self.clock.unlock().map_err(unbalanced)?;
        Ok(Response::new(pb::UnlockTimeSkippingResponse {}))
    }

    async fn sleep(&self, request: Request<pb::SleepRequest>) -> RpcResult<pb::SleepResponse> {
        let wait = duration_ms(request.get_ref().duration.as_ref())?;
        self.clock.sleep_until_time(self.clock.now_ms() + wait.as_millis() as i64).await;
        Ok(Response::new(pb::SleepResponse {}))
    }

    async fn sleep_until(&self, request: Request<pb::SleepUntilRequest>) -> RpcResult<pb::SleepResponse> {
        let at =
            request.get_ref().timestamp.as_ref().ok_or_else(|| Status::invalid_argument("timestamp is required"))?;
        let at_ms = at.seconds.saturating_mul(1000) + i64::from(at.nanos / 1_000_000);
        self.clock.sleep_until_time(at_ms).await;
        Ok(Response::new(pb::SleepResponse {}))
    }

    async fn unlock_time_skipping_with_sleep(
        &self,
        request: Request<pb::SleepRequest>,
    ) -> RpcResult<pb::SleepResponse> {
        let wait = duration_ms(request.get_ref().duration.as_ref())?;
        self.clock.unlock_and_sleep(wait).await.map_err(unbalanced)?;
        Ok(Response::new(pb::SleepResponse {}))
    }

    async fn get_current_time(&self, _request: Request<()>) -> RpcResult<pb::GetCurrentTimeResponse> {
        let ms = self.clock.now_ms();
        let time = wkt::Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 };
        Ok(Response::new(pb::GetCurrentTimeResponse { time: Some(time) }))
    }
}
