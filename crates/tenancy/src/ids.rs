//! Id newtypes: UUIDv7 (time-ordered, so ids sort by creation and serve as
//! stable cursors), one type per kind so they cannot be mixed up.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A string that is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a valid id")]
pub struct ParseIdError(pub String);

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The id whose UUID has this 128-bit value; handy in tests.
            pub const fn from_u128(value: u128) -> Self {
                Self(Uuid::from_u128(value))
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(text).map(Self).map_err(|_| ParseIdError(text.to_owned()))
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

id_type!(
    /// A tenant: one customer company (or outsourcer) of the platform.
    TenantId
);
id_type!(
    /// A user of a tenant.
    UserId
);
id_type!(
    /// A client organization of an outsourcer tenant.
    ClientId
);
id_type!(
    /// An API key of a tenant.
    ApiKeyId
);
id_type!(
    /// A login session: one refresh-token family.
    SessionId
);
id_type!(
    /// An agent (a seat that takes contacts).
    AgentId
);
id_type!(
    /// A queue of waiting contacts.
    QueueId
);
id_type!(
    /// A contact: a call, chat, SMS conversation or email.
    ContactId
);
id_type!(
    /// A skill an agent has and a queue may require.
    SkillId
);
id_type!(
    /// A ring group: agents rung all at once or in turn.
    RingGroupId
);
id_type!(
    /// A voicemail box.
    VoicemailBoxId
);
id_type!(
    /// A carrier trunk of a tenant (the edge's).
    TrunkId
);
