//! Identifiers: UUID newtypes, so an agent id cannot be passed where a
//! queue id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The id whose UUID has this 128-bit value; handy in tests.
            pub const fn from_u128(value: u128) -> Self {
                Self(Uuid::from_u128(value))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl From<$name> for Uuid {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

id!(
    /// An agent (a seat that takes contacts).
    AgentId
);
id!(
    /// A queue of waiting contacts.
    QueueId
);
id!(
    /// A contact: a call, chat, SMS conversation or email.
    ContactId
);
id!(
    /// A skill an agent has and a queue may require.
    SkillId
);

/// Why an agent is not ready ("lunch", "training", "missed", …).
pub type ReasonCode = String;
