//! The closed sets of names on the wire: task states, event names and error codes.
//! States and event names are typed fields (a new one is a change of the v1 contract).
//! `error.code` stays a string field, so a client keeps working when a newer server adds
//! a code; [`ErrorCode`] is the list (`ErrorDetail::kind` parses it). The coordinator's
//! tests check that every name the server can produce is listed here.

use serde::{Deserialize, Serialize};

macro_rules! wire_names {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_names! {
    /// A task's state. `failed` is the dead-letter set.
    TaskState {
        Scheduled = "scheduled",
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
        Expired = "expired",
    }
}

impl TaskState {
    /// Finished tasks change again only through an operator's `requeue`.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Cancelled | Self::Expired
        )
    }
}

wire_names! {
    /// The name of a task lifecycle event.
    EventName {
        Enqueued = "enqueued",
        Joined = "joined",
        Scheduled = "scheduled",
        Claimed = "claimed",
        Progress = "progress",
        Released = "released",
        AttemptFailed = "attempt_failed",
        Succeeded = "succeeded",
        Failed = "failed",
        CancelRequested = "cancel_requested",
        Cancelled = "cancelled",
        Expired = "expired",
        Requeued = "requeued",
    }
}

wire_names! {
    /// Every `error.code` the server answers with.
    ErrorCode {
        InvalidRequest = "invalid_request",
        PayloadTooLarge = "payload_too_large",
        BatchTooLarge = "batch_too_large",
        NotFound = "not_found",
        LeaseLost = "lease_lost",
        TaskFinished = "task_finished",
        NotRequeueable = "not_requeueable",
        QueueFull = "queue_full",
        TooManyQueues = "too_many_queues",
        NotLeader = "not_leader",
        NoLeader = "no_leader",
        NoQuorum = "no_quorum",
        StorageFull = "storage_full",
        Indeterminate = "indeterminate",
        Unavailable = "unavailable",
        Refused = "refused",
        MethodNotAllowed = "method_not_allowed",
        Unauthorized = "unauthorized",
        Forbidden = "forbidden",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_are_the_listed_strings() {
        for s in TaskState::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(TaskState::parse(s.as_str()), Some(*s));
        }
        for e in EventName::ALL {
            assert_eq!(serde_json::to_value(e).unwrap(), e.as_str());
            assert_eq!(EventName::parse(e.as_str()), Some(*e));
        }
        for c in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
            assert_eq!(ErrorCode::parse(c.as_str()), Some(*c));
        }
        assert_eq!(ErrorCode::parse("nope"), None);
    }
}
