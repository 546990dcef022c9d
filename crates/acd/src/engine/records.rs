//! The engine's state as separate records, so that a host persisting it
//! (the routing service, in a Redis hash per tenant) writes only the
//! records an operation changed instead of the whole snapshot.
//!
//! Fields are `q:<queue id>`, `a:<agent id>`, `c:<contact id>` and `meta`
//! (the FIFO sequence); values are JSON. A `c:` field holds a queue's
//! contact, or an agent's outbound contact wrapped as `{"outbound": …}`:
//! one field per contact id whatever its kind, so a write or a deletion
//! never leaves a stale record of the other kind behind.

use std::collections::BTreeMap;

use super::{AgentRecord, ContactRecord, Engine, OutboundRecord, QueueRecord, Snapshot, State};
use crate::error::AcdError;
use crate::ids::{AgentId, ContactId, QueueId};
use crate::outcome::Changed;

/// The field holding the engine-wide counters.
pub const META_FIELD: &str = "meta";

#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    next_seq: u64,
}

/// The `c:` value of an outbound contact: the key `outbound` tells it
/// from a queue's contact, which has none.
#[derive(serde::Serialize, serde::Deserialize)]
struct Outbound<R> {
    outbound: R,
}

/// What a `c:` value holds.
enum StoredContact {
    Queued(ContactRecord),
    Outbound(OutboundRecord),
}

/// Reads a `c:` value; an error is that of the kind the value claims to be.
fn parse_contact(value: &[u8]) -> Result<StoredContact, serde_json::Error> {
    let queued = match serde_json::from_slice::<ContactRecord>(value) {
        Ok(record) => return Ok(StoredContact::Queued(record)),
        Err(error) => error,
    };
    match serde_json::from_slice::<Outbound<OutboundRecord>>(value) {
        Ok(stored) => Ok(StoredContact::Outbound(stored.outbound)),
        Err(outbound) => {
            #[derive(serde::Deserialize)]
            struct Claim {
                outbound: Option<serde::de::IgnoredAny>,
            }
            let claims_outbound =
                serde_json::from_slice::<Claim>(value).is_ok_and(|claim| claim.outbound.is_some());
            Err(if claims_outbound { outbound } else { queued })
        }
    }
}

/// A record to write (`Some`) or delete (`None`), by field.
pub type RecordChange = (String, Option<Vec<u8>>);

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("engine records serialise to JSON")
}

impl Engine {
    /// Every record of the state, for a first write or a full copy.
    pub fn records(&self) -> Vec<(String, Vec<u8>)> {
        let state = &self.state;
        let mut records = Vec::with_capacity(
            state.queues.len()
                + state.agents.len()
                + state.contacts.len()
                + state.outbound.len()
                + 1,
        );
        records.push((META_FIELD.to_owned(), self.meta()));
        records.extend(
            state
                .queues
                .iter()
                .map(|(id, r)| (format!("q:{id}"), encode(r))),
        );
        records.extend(
            state
                .agents
                .iter()
                .map(|(id, r)| (format!("a:{id}"), encode(r))),
        );
        records.extend(
            state
                .contacts
                .iter()
                .map(|(id, r)| (format!("c:{id}"), encode(r))),
        );
        records.extend(
            state
                .outbound
                .iter()
                .map(|(id, r)| (format!("c:{id}"), encode(&Outbound { outbound: r }))),
        );
        records
    }

    /// The records an operation's [`Changed`] names, as they are now: a
    /// record no longer in the state (an ended contact, a removed queue or
    /// agent) is a deletion. `meta` is always included.
    pub fn changed_records(&self, changed: &Changed) -> Vec<RecordChange> {
        let state = &self.state;
        let mut records = Vec::with_capacity(
            changed.queues.len() + changed.agents.len() + changed.contacts.len() + 1,
        );
        records.push((META_FIELD.to_owned(), Some(self.meta())));
        for id in &changed.queues {
            records.push((format!("q:{id}"), state.queues.get(id).map(encode)));
        }
        for id in &changed.agents {
            records.push((format!("a:{id}"), state.agents.get(id).map(encode)));
        }
        for id in &changed.contacts {
            let value = match state.contacts.get(id) {
                Some(record) => Some(encode(record)),
                None => state
                    .outbound
                    .get(id)
                    .map(|record| encode(&Outbound { outbound: record })),
            };
            records.push((format!("c:{id}"), value));
        }
        records
    }

    /// An engine rebuilt from [`Engine::records`] (kept up to date with
    /// [`Engine::changed_records`]). Fails with [`AcdError::InvalidConfig`]
    /// naming the field when a record does not parse, and when the records
    /// do not form a consistent state.
    pub fn from_records<F, V>(records: impl IntoIterator<Item = (F, V)>) -> Result<Engine, AcdError>
    where
        F: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let mut state = State {
            queues: BTreeMap::new(),
            agents: BTreeMap::new(),
            contacts: BTreeMap::new(),
            outbound: BTreeMap::new(),
            next_seq: 0,
        };
        for (field, value) in records {
            let (field, value) = (field.as_ref(), value.as_ref());
            let bad = |error: &dyn std::fmt::Display| {
                AcdError::InvalidConfig(format!("record {field}: {error}"))
            };
            let id = |raw: &str| uuid::Uuid::parse_str(raw).map_err(|e| bad(&e));
            match field.split_once(':') {
                None if field == META_FIELD => {
                    let meta: Meta = serde_json::from_slice(value).map_err(|e| bad(&e))?;
                    state.next_seq = meta.next_seq;
                }
                Some(("q", raw)) => {
                    let record: QueueRecord = serde_json::from_slice(value).map_err(|e| bad(&e))?;
                    state.queues.insert(QueueId::from_uuid(id(raw)?), record);
                }
                Some(("a", raw)) => {
                    let record: AgentRecord = serde_json::from_slice(value).map_err(|e| bad(&e))?;
                    state.agents.insert(AgentId::from_uuid(id(raw)?), record);
                }
                Some(("c", raw)) => {
                    let contact = ContactId::from_uuid(id(raw)?);
                    match parse_contact(value).map_err(|e| bad(&e))? {
                        StoredContact::Queued(record) => {
                            state.contacts.insert(contact, record);
                        }
                        StoredContact::Outbound(record) => {
                            state.outbound.insert(contact, record);
                        }
                    }
                }
                _ => return Err(bad(&"unknown record kind")),
            }
        }
        Engine::restore(Snapshot(state))
    }

    fn meta(&self) -> Vec<u8> {
        encode(&Meta {
            next_seq: self.state.next_seq,
        })
    }
}
