//! Protobuf messages and gRPC stubs generated from `proto/` at build time
//! (nothing generated is checked in), and the descriptor set for gRPC
//! reflection.

/// Every file of `proto/`, encoded as a `FileDescriptorSet`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/switchboard_descriptor.bin"));

pub mod system {
    pub mod v1 {
        tonic::include_proto!("switchboard.system.v1");
    }
}

pub mod identity {
    pub mod v1 {
        tonic::include_proto!("switchboard.identity.v1");
    }
}

pub mod routing {
    pub mod v1 {
        tonic::include_proto!("switchboard.routing.v1");
    }
}

pub mod webhooks {
    pub mod v1 {
        tonic::include_proto!("switchboard.webhooks.v1");
    }
}

pub mod edge {
    pub mod v1 {
        tonic::include_proto!("switchboard.edge.v1");
    }
}

pub mod events {
    pub mod v1 {
        tonic::include_proto!("switchboard.events.v1");
    }
}

/// `google.protobuf.Timestamp` to and from `chrono`.
pub mod time {
    use chrono::{DateTime, Utc};

    pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
        prost_types::Timestamp {
            seconds: at.timestamp(),
            nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
        }
    }

    /// The instant of `timestamp`; `None` when it is out of range.
    pub fn datetime(timestamp: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
        let nanos = u32::try_from(timestamp.nanos).ok()?;
        DateTime::from_timestamp(timestamp.seconds, nanos)
    }
}
