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

pub mod events {
    pub mod v1 {
        tonic::include_proto!("switchboard.events.v1");
    }
}
