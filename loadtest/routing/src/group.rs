//! A prototype of group commit for the engine host, measured next to the
//! real [`switchboard_routing::EngineHost`] to size the proposed fix. It is
//! not the service's code and runs one tenant only.
//!
//! The real host holds the tenant's lock across each operation's Redis
//! write, so a tenant does at most one operation per Redis round trip.
//! Here one task owns the tenant's engine: it takes every operation
//! waiting for it, applies them in memory one after another, writes the
//! union of the records they changed (as they are after the last one) in
//! ONE [`Cache::fenced_write`], and only then answers each caller. A
//! caller still hears of its operation only once it is in Redis, and the
//! write is still fenced by the lease; what changes is that a round trip
//! carries every operation that queued up during the previous one.
//!
//! Same keys, lease, record format and events journal as the host (each
//! operation's routing events, `switchboard_routing::events::events_of`,
//! written as `j:<seq>` fields in the same write), so the state it leaves
//! in Redis loads with [`Engine::from_records`]. Trimming the journal
//! (`journal_done`) does not take a write of its own: its deletes ride
//! along with the next batch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use switchboard_acd::{AcdError, Changed, Engine, Outcome};
use switchboard_events::Event;
use switchboard_platform::Cache;
use switchboard_routing::HostError;
use switchboard_routing::events::events_of;
use switchboard_tenancy::TenantId;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::scenario::Operation;

pub fn lease_key(tenant: TenantId) -> String {
    format!("routing:{{{tenant}}}:lease")
}

pub fn state_key(tenant: TenantId) -> String {
    format!("routing:{{{tenant}}}:state")
}

/// The host's journal field of event `seq`.
fn journal_field(seq: u64) -> String {
    format!("j:{seq:020}")
}

enum Job {
    Operation {
        operation: Operation,
        reply: oneshot::Sender<Result<Outcome, HostError>>,
    },
    /// Up to `max` journaled events' seqs, oldest first (answered at once).
    Journal {
        max: usize,
        reply: oneshot::Sender<Vec<u64>>,
    },
    /// These events are in the outbox: delete them with the next write.
    Done {
        seqs: Vec<u64>,
        reply: oneshot::Sender<Result<(), HostError>>,
    },
}

/// What a write answers once it is in Redis.
enum Answer {
    Operation(
        oneshot::Sender<Result<Outcome, HostError>>,
        Result<Outcome, AcdError>,
    ),
    Done(oneshot::Sender<Result<(), HostError>>),
}

/// What the writer did, for the profile.
#[derive(Default)]
pub struct GroupStats {
    pub batches: AtomicU64,
    pub operations: AtomicU64,
    /// Applying the batch in memory and encoding its records.
    pub apply_ns: AtomicU64,
    /// The fenced write.
    pub write_ns: AtomicU64,
    pub fields: AtomicU64,
    pub bytes: AtomicU64,
}

impl GroupStats {
    pub fn snapshot(&self) -> [u64; 6] {
        [
            self.batches.load(Ordering::Relaxed),
            self.operations.load(Ordering::Relaxed),
            self.apply_ns.load(Ordering::Relaxed),
            self.write_ns.load(Ordering::Relaxed),
            self.fields.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        ]
    }
}

pub struct GroupHost {
    jobs: mpsc::UnboundedSender<Job>,
    writer: JoinHandle<Engine>,
    pub stats: Arc<GroupStats>,
}

impl GroupHost {
    /// Takes the tenant's lease and loads its state (empty for a new
    /// tenant), then starts the writer.
    pub async fn start(
        cache: Arc<dyn Cache>,
        tenant: TenantId,
        lease_ttl: Duration,
        max_batch: usize,
    ) -> anyhow::Result<Self> {
        let token = uuid::Uuid::new_v4().as_bytes().to_vec();
        anyhow::ensure!(
            cache
                .set_if_absent(&lease_key(tenant), &token, lease_ttl)
                .await?,
            "the tenant's lease is held by someone else"
        );
        let records = cache.hash_get_all(&state_key(tenant)).await?;
        let engine = if records.is_empty() {
            Engine::new()
        } else {
            Engine::from_records(records)?
        };
        let (jobs, receiver) = mpsc::unbounded_channel();
        let stats = Arc::new(GroupStats::default());
        let writer = tokio::spawn(write_loop(Writer {
            cache,
            tenant,
            token,
            lease_ttl,
            max_batch,
            engine,
            stats: stats.clone(),
            receiver,
        }));
        Ok(Self {
            jobs,
            writer,
            stats,
        })
    }

    pub async fn execute(
        &self,
        operation: impl FnOnce(&mut Engine) -> Result<Outcome, AcdError> + Send + 'static,
    ) -> Result<Outcome, HostError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || failure("the group-commit writer stopped");
        self.jobs
            .send(Job::Operation {
                operation: Box::new(operation),
                reply,
            })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Seqs of up to `max` events not yet moved out, oldest first.
    pub async fn journal(&self, max: usize) -> Vec<u64> {
        let (reply, answer) = oneshot::channel();
        if self.jobs.send(Job::Journal { max, reply }).is_err() {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    /// Trims moved events from the journal (with the next write).
    pub async fn journal_done(&self, seqs: Vec<u64>) -> Result<(), HostError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || failure("the group-commit writer stopped");
        self.jobs
            .send(Job::Done { seqs, reply })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Stops the writer (after the operations already sent) and gives the
    /// engine back; the lease is left to expire.
    pub async fn stop(self) -> anyhow::Result<Engine> {
        drop(self.jobs);
        Ok(self.writer.await?)
    }
}

struct Writer {
    cache: Arc<dyn Cache>,
    tenant: TenantId,
    token: Vec<u8>,
    lease_ttl: Duration,
    max_batch: usize,
    engine: Engine,
    stats: Arc<GroupStats>,
    receiver: mpsc::UnboundedReceiver<Job>,
}

/// The writer failed or stopped: nothing more is written (the real host
/// would drop the tenant and reload it).
fn failure(reason: &str) -> HostError {
    HostError::Cache(switchboard_platform::Error::backend(
        switchboard_platform::BackendKind::Cache,
        reason,
    ))
}

fn merge(into: &mut Changed, from: &Changed) {
    into.agents.extend(from.agents.iter().copied());
    into.contacts.extend(from.contacts.iter().copied());
    into.queues.extend(from.queues.iter().copied());
}

async fn write_loop(mut w: Writer) -> Engine {
    let (lease, state) = (lease_key(w.tenant), state_key(w.tenant));
    let mut renew_at = Instant::now() + w.lease_ttl / 3;
    let mut journal: BTreeMap<u64, Event> = BTreeMap::new();
    let mut next_seq = 0_u64;
    let mut batch: Vec<Job> = Vec::new();
    let mut failed: Option<String> = None;
    while let Some(first) = w.receiver.recv().await {
        batch.push(first);
        while batch.len() < w.max_batch {
            match w.receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if failed.is_none() && Instant::now() >= renew_at {
            match w.cache.renew_lease(&lease, &w.token, w.lease_ttl).await {
                Ok(true) => renew_at = Instant::now() + w.lease_ttl / 3,
                _ => failed = Some("the lease was lost".into()),
            }
        }
        if let Some(reason) = &failed {
            for job in batch.drain(..) {
                match job {
                    Job::Operation { reply, .. } => {
                        let _ = reply.send(Err(failure(reason)));
                    }
                    Job::Journal { reply, .. } => {
                        let _ = reply.send(Vec::new());
                    }
                    Job::Done { reply, .. } => {
                        let _ = reply.send(Err(failure(reason)));
                    }
                }
            }
            continue;
        }

        // Apply the batch in memory, in arrival order.
        let started = Instant::now();
        let mut changed = Changed::default();
        let mut answers = Vec::with_capacity(batch.len());
        let mut events: Vec<Event> = Vec::new();
        let mut trimmed: Vec<u64> = Vec::new();
        let mut operations = 0_u64;
        for job in batch.drain(..) {
            match job {
                Job::Operation { operation, reply } => {
                    operations += 1;
                    let result = operation(&mut w.engine);
                    if let Ok(outcome) = &result {
                        merge(&mut changed, &outcome.changed);
                        events.extend(events_of(w.tenant, outcome, &w.engine));
                    }
                    answers.push(Answer::Operation(reply, result));
                }
                Job::Journal { max, reply } => {
                    let _ = reply.send(journal.keys().take(max).copied().collect());
                }
                Job::Done { seqs, reply } => {
                    trimmed.extend(seqs);
                    answers.push(Answer::Done(reply));
                }
            }
        }
        if answers.is_empty() {
            continue;
        }

        // One write: the changed records, the new events, the trims.
        let mut puts = Vec::new();
        let mut deletes = Vec::new();
        let mut bytes = 0;
        if !changed.is_empty() {
            for (field, value) in w.engine.changed_records(&changed) {
                match value {
                    Some(value) => {
                        bytes += field.len() + value.len();
                        puts.push((field, Bytes::from(value)));
                    }
                    None => {
                        bytes += field.len();
                        deletes.push(field);
                    }
                }
            }
        }
        let first_seq = next_seq;
        for (offset, event) in events.iter().enumerate() {
            let field = journal_field(first_seq + offset as u64);
            let value = event.encode();
            bytes += field.len() + value.len();
            puts.push((field, Bytes::from(value)));
        }
        for seq in &trimmed {
            let field = journal_field(*seq);
            bytes += field.len();
            deletes.push(field);
        }
        let encoded = Instant::now();
        let written = w
            .cache
            .fenced_write(&lease, &w.token, &state, &puts, &deletes)
            .await;
        let s = &w.stats;
        s.batches.fetch_add(1, Ordering::Relaxed);
        s.operations.fetch_add(operations, Ordering::Relaxed);
        s.apply_ns
            .fetch_add((encoded - started).as_nanos() as u64, Ordering::Relaxed);
        s.write_ns
            .fetch_add(encoded.elapsed().as_nanos() as u64, Ordering::Relaxed);
        s.fields
            .fetch_add((puts.len() + deletes.len()) as u64, Ordering::Relaxed);
        s.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        let problem = match written {
            Ok(true) => None,
            Ok(false) => Some("the lease was lost".to_owned()),
            Err(error) => Some(format!("the write failed: {error}")),
        };
        if problem.is_none() {
            for event in events {
                journal.insert(next_seq, event);
                next_seq += 1;
            }
            for seq in &trimmed {
                journal.remove(seq);
            }
        }
        for answer in answers {
            match (answer, &problem) {
                (Answer::Operation(reply, result), None) => {
                    let _ = reply.send(result.map_err(HostError::Refused));
                }
                (Answer::Operation(reply, _), Some(reason)) => {
                    let _ = reply.send(Err(failure(reason)));
                }
                (Answer::Done(reply), None) => {
                    let _ = reply.send(Ok(()));
                }
                (Answer::Done(reply), Some(reason)) => {
                    let _ = reply.send(Err(failure(reason)));
                }
            }
        }
        if problem.is_some() {
            failed = problem;
        }
    }
    w.engine
}
