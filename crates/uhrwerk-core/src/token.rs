//! Task tokens: the opaque bytes handed to workers and decoded on every completion.
//!
//! A token pins the task it was issued for (run, scheduled event id, attempt, started event id),
//! so a completion for anything else is detected as stale and answered with NOT_FOUND.

use prost::Message;

/// Leading bytes of every token; rejects garbage before prost sees it.
const MAGIC: &[u8; 3] = b"uw1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum TaskKind {
    Unspecified = 0,
    WorkflowTask = 1,
    ActivityTask = 2,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskToken {
    #[prost(enumeration = "TaskKind", tag = "1")]
    pub kind: i32,
    #[prost(string, tag = "2")]
    pub namespace: String,
    #[prost(string, tag = "3")]
    pub workflow_id: String,
    #[prost(string, tag = "4")]
    pub run_id: String,
    #[prost(int64, tag = "5")]
    pub scheduled_event_id: i64,
    #[prost(int64, tag = "6")]
    pub started_event_id: i64,
    #[prost(int32, tag = "7")]
    pub attempt: i32,
    /// Activity tokens also carry the activity id, for `*ById` cross-checks.
    #[prost(string, tag = "8")]
    pub activity_id: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("error deserializing task token")]
pub struct InvalidToken;

impl TaskToken {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAGIC.len() + self.encoded_len());
        out.extend_from_slice(MAGIC);
        self.encode_raw(&mut out);
        out
    }

    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, InvalidToken> {
        let body = bytes.strip_prefix(MAGIC.as_slice()).ok_or(InvalidToken)?;
        let token = Self::decode(body).map_err(|_| InvalidToken)?;
        let valid_kind = matches!(TaskKind::try_from(token.kind), Ok(TaskKind::WorkflowTask | TaskKind::ActivityTask));
        if !valid_kind || token.run_id.is_empty() || token.workflow_id.is_empty() || token.scheduled_event_id <= 0 {
            return Err(InvalidToken);
        }
        Ok(token)
    }

    pub fn task_kind(&self) -> TaskKind {
        TaskKind::try_from(self.kind).unwrap_or(TaskKind::Unspecified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let token = TaskToken {
            kind: TaskKind::ActivityTask as i32,
            namespace: "default".into(),
            workflow_id: "wf".into(),
            run_id: "run".into(),
            scheduled_event_id: 5,
            started_event_id: 0,
            attempt: 2,
            activity_id: "1".into(),
        };
        assert_eq!(TaskToken::decode_bytes(&token.encode()), Ok(token));
        assert_eq!(TaskToken::decode_bytes(b""), Err(InvalidToken));
        assert_eq!(TaskToken::decode_bytes(b"garbage-token"), Err(InvalidToken));
        assert_eq!(TaskToken::decode_bytes(b"uw1\xff\xff\xff"), Err(InvalidToken));
    }
}
