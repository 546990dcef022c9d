//! Redis cache: one multiplexed connection that reconnects by itself
//! (`ConnectionManager`), every key under the configured prefix.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, Script};

use super::{
    Bucket, Cache, ChannelEvent, ChannelMessages, GCRA_EPOCH_UNIX_SECONDS, RateDecision, TokenTake,
};
use crate::{BackendKind, Error, Result};

/// [`super::gcra`] in Lua, run atomically by Redis on its own clock (`TIME`)
/// so replicas with skewed clocks agree on every bucket, for one bucket
/// ([`Cache::take_tokens`]) or several in turn ([`Cache::take_tokens_many`]).
/// The theoretical arrival time is stored as `%.17g` text (an exact `f64`),
/// expiring when the bucket is full again so idle buckets vanish.
///
/// KEYS: the buckets, in order. ARGV[1]: the epoch (Unix seconds); then
/// capacity, per_second, cost of each bucket. Every bucket's stored value
/// is read and checked first (erroring with `not a rate-limit bucket`
/// before anything is written); then the buckets are taken in turn, up to
/// and including the first refused one. Returns `{allowed (0/1), remaining,
/// retry_after_us, reset_after_us}` of each bucket taken, flattened.
static TAKE_TOKENS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local epoch = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = (tonumber(time[1]) - epoch) * 1000000 + tonumber(time[2])

local stored_tat = {}
for i = 1, #KEYS do
  if stored_tat[KEYS[i]] == nil then
    local stored = redis.call('GET', KEYS[i])
    stored_tat[KEYS[i]] = false
    if stored then
      local parsed = tonumber(stored)
      if parsed == nil or parsed ~= parsed or parsed == math.huge or parsed == -math.huge then
        return redis.error_reply('ERR not a rate-limit bucket')
      end
      stored_tat[KEYS[i]] = parsed
    end
  end
end

local answers = {}
for i = 1, #KEYS do
  local capacity = tonumber(ARGV[3 * i - 1])
  local per_second = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])

  local tat = now
  if stored_tat[KEYS[i]] then
    tat = math.max(stored_tat[KEYS[i]], now)
  end

  local interval = 1000000 / per_second
  local burst = capacity * interval
  local slack = math.min(interval / 2, 1)
  local new_tat = tat + cost * interval
  local allow_at = new_tat - burst
  local allowed = now - allow_at >= -slack

  local kept_tat = tat
  if allowed then kept_tat = new_tat end
  local remaining = math.floor((burst - (kept_tat - now) + slack) / interval)
  remaining = math.max(0, math.min(capacity, remaining))
  local reset_after = math.max(0, kept_tat - now)

  if not allowed then
    table.insert(answers, 0)
    table.insert(answers, remaining)
    table.insert(answers, math.ceil(allow_at - now))
    table.insert(answers, math.ceil(reset_after))
    return answers
  end
  if cost > 0 then
    local keep_ms = math.max(1, math.ceil(reset_after / 1000))
    redis.call('SET', KEYS[i], string.format('%.17g', new_tat), 'PX', keep_ms)
    stored_tat[KEYS[i]] = new_tat
  end
  table.insert(answers, 1)
  table.insert(answers, remaining)
  table.insert(answers, 0)
  table.insert(answers, math.ceil(reset_after))
end
return answers
"#,
    )
});

/// [`Cache::renew_lease`]: KEYS[1] the lease, ARGV[1] the token, ARGV[2]
/// the new expiry in milliseconds. Returns 1 if renewed, else 0.
static RENEW_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#,
    )
});

/// [`Cache::release_lease`]: KEYS[1] the lease, ARGV[1] the token. Returns 1
/// if deleted, else 0.
static RELEASE_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#,
    )
});

/// [`Cache::fenced_write`]: KEYS[1] the lease, KEYS[2] the hash. ARGV[1]
/// the token, ARGV[2] the number of fields to set, then that many
/// field/value pairs, then the fields to delete. Returns 1 if written, 0 if
/// the lease does not hold the token. The hash's type is checked before any
/// write, and arguments go to HSET/HDEL in chunks (Lua's `unpack` has a
/// stack limit), so an error leaves everything as it was.
static FENCED_WRITE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local kind = redis.call('TYPE', KEYS[2]).ok
if kind ~= 'hash' and kind ~= 'none' then
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
local last_put = 2 + 2 * tonumber(ARGV[2])
local chunk = 1000
local i = 3
while i <= last_put do
  local j = math.min(i + chunk - 1, last_put)
  redis.call('HSET', KEYS[2], unpack(ARGV, i, j))
  i = j + 1
end
while i <= #ARGV do
  local j = math.min(i + chunk - 1, #ARGV)
  redis.call('HDEL', KEYS[2], unpack(ARGV, i, j))
  i = j + 1
end
return 1
"#,
    )
});

#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
    /// Opens the dedicated connections of subscriptions.
    client: redis::Client,
    prefix: String,
}

/// Messages a subscription buffers for a slow reader before it reports a
/// gap instead.
const SUBSCRIPTION_BACKLOG: usize = 16_384;

impl RedisCache {
    /// Connects now (so a wrong URL fails at start); later outages are
    /// reconnected in the background. Keys become `<key_prefix>:<key>`.
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|error| {
            Error::backend(BackendKind::Cache, format!("invalid Redis URL: {error}"))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let connection = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|error| {
                Error::unavailable(
                    BackendKind::Cache,
                    format!("cannot connect to Redis: {error}"),
                )
            })?;
        let prefix = if key_prefix.is_empty() {
            String::new()
        } else {
            format!("{key_prefix}:")
        };
        Ok(Self {
            connection,
            client,
            prefix,
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T> {
        let mut connection = self.connection.clone();
        command
            .query_async(&mut connection)
            .await
            .map_err(map_error)
    }
}

/// Keeps a `PSUBSCRIBE` of `pattern` (prefixed) open until `sender`'s
/// reader goes away: reconnects with backoff after a drop, and tells the
/// reader about every stretch in which messages may have been lost.
async fn forward_subscription(
    client: redis::Client,
    prefix: String,
    pattern: String,
    mut pubsub: Option<redis::aio::PubSub>,
    sender: tokio::sync::mpsc::Sender<ChannelEvent>,
) {
    use futures::StreamExt;
    let mut delay = Duration::from_millis(50);
    loop {
        let connection = match pubsub.take() {
            Some(connection) => Some(connection),
            None => match client.get_async_pubsub().await {
                Ok(mut connection) => match connection.psubscribe(&pattern).await {
                    Ok(()) => Some(connection),
                    Err(_) => None,
                },
                Err(_) => None,
            },
        };
        if let Some(connection) = connection {
            delay = Duration::from_millis(50);
            let mut messages = connection.into_on_message();
            let mut lost = false;
            while let Some(message) = messages.next().await {
                let channel = message.get_channel_name();
                let channel = channel.strip_prefix(&prefix).unwrap_or(channel).to_owned();
                let event = ChannelEvent::Message {
                    channel,
                    payload: Bytes::copy_from_slice(message.get_payload_bytes()),
                };
                if lost {
                    if sender.try_send(ChannelEvent::Gap).is_ok() {
                        lost = false;
                    } else if sender.is_closed() {
                        return;
                    }
                }
                match sender.try_send(event) {
                    Ok(()) => {}
                    Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => lost = true,
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
        }
        // Disconnected (or could not connect): whatever was published
        // meanwhile is lost.
        if sender.send(ChannelEvent::Gap).await.is_err() {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

fn millis(duration: Duration) -> u64 {
    // Redis rejects a zero expiry; the shortest it accepts is 1 ms.
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn map_error(error: RedisError) -> Error {
    if error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
    {
        Error::unavailable(BackendKind::Cache, format!("Redis: {error}"))
    } else if error.kind() == ErrorKind::Server(redis::ServerErrorKind::ResponseError)
        && error.to_string().contains("not an integer")
    {
        Error::InvalidArgument(format!("cache value is not an integer: {error}"))
    } else if error.code() == Some("WRONGTYPE") || error.to_string().contains("WRONGTYPE") {
        // A value operation on a hash, or a hash operation on a value.
        Error::InvalidArgument(format!("cache key holds the wrong kind of value: {error}"))
    } else {
        Error::backend(BackendKind::Cache, format!("Redis: {error}"))
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let value: Option<Vec<u8>> = self.query(redis::cmd("GET").arg(self.key(key))).await?;
        Ok(value.map(Bytes::from))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut command = redis::cmd("MGET");
        for key in keys {
            command.arg(self.key(key));
        }
        let values: Vec<Option<Vec<u8>>> = self.query(&command).await?;
        if values.len() != keys.len() {
            return Err(Error::backend(
                BackendKind::Cache,
                format!(
                    "Redis answered {} values for {} keys",
                    values.len(),
                    keys.len()
                ),
            ));
        }
        Ok(values
            .into_iter()
            .map(|value| value.map(Bytes::from))
            .collect())
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<()> {
        let mut command = redis::cmd("SET");
        command.arg(self.key(key)).arg(value);
        if let Some(ttl) = ttl {
            command.arg("PX").arg(millis(ttl));
        }
        self.query::<()>(&command).await
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        let reply: Option<String> = self
            .query(
                redis::cmd("SET")
                    .arg(self.key(key))
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl)),
            )
            .await?;
        Ok(reply.is_some())
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let removed: i64 = self.query(redis::cmd("DEL").arg(self.key(key))).await?;
        Ok(removed > 0)
    }

    async fn increment(&self, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64> {
        let key = self.key(key);
        let mut connection = self.connection.clone();
        match ttl {
            None => redis::cmd("INCRBY")
                .arg(&key)
                .arg(delta)
                .query_async(&mut connection)
                .await
                .map_err(map_error),
            Some(ttl) => {
                // MULTI/EXEC: create the key at 0 with its expiry only if it
                // is absent, then add; both or neither happen.
                let (value,): (i64,) = redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(&key)
                    .arg(0)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl))
                    .ignore()
                    .cmd("INCRBY")
                    .arg(&key)
                    .arg(delta)
                    .query_async(&mut connection)
                    .await
                    .map_err(map_error)?;
                Ok(value)
            }
        }
    }

    async fn take_tokens(
        &self,
        key: &str,
        capacity: u32,
        per_second: f64,
        cost: u32,
    ) -> Result<RateDecision> {
        let take = TokenTake {
            key,
            capacity,
            per_second,
            cost,
        };
        let mut decisions = self.take_tokens_many(&[take]).await?;
        decisions.pop().ok_or_else(|| {
            Error::backend(BackendKind::Cache, "Redis answered no rate-limit decision")
        })
    }

    async fn take_tokens_many(&self, takes: &[TokenTake<'_>]) -> Result<Vec<RateDecision>> {
        let buckets = takes
            .iter()
            .map(|take| Bucket::new(take.key, take.capacity, take.per_second, take.cost))
            .collect::<Result<Vec<_>>>()?;
        if buckets.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = TAKE_TOKENS.arg(GCRA_EPOCH_UNIX_SECONDS);
        for (take, bucket) in takes.iter().zip(&buckets) {
            invocation
                .key(self.key(take.key))
                .arg(bucket.capacity)
                // `Display` of f64 is exact (shortest round-trip) and never
                // uses an exponent, so Lua's `tonumber` reads the same value.
                .arg(bucket.per_second.to_string())
                .arg(bucket.cost);
        }
        let mut connection = self.connection.clone();
        let answers: Vec<i64> =
            invocation
                .invoke_async(&mut connection)
                .await
                .map_err(|error| {
                    if error.to_string().contains("not a rate-limit bucket") {
                        let keys: Vec<&str> = takes.iter().map(|take| take.key).collect();
                        Error::InvalidArgument(format!(
                            "a cache key of {keys:?} does not hold a rate-limit bucket"
                        ))
                    } else {
                        map_error(error)
                    }
                })?;
        if answers.is_empty()
            || !answers.len().is_multiple_of(4)
            || answers.len() / 4 > buckets.len()
        {
            return Err(Error::backend(
                BackendKind::Cache,
                format!("Redis answered {} rate-limit fields", answers.len()),
            ));
        }
        let micros = |value: i64| Duration::from_micros(u64::try_from(value).unwrap_or(0));
        Ok(answers
            .chunks_exact(4)
            .zip(&buckets)
            .map(|(answer, bucket)| RateDecision {
                allowed: answer[0] == 1,
                limit: bucket.capacity,
                remaining: u32::try_from(answer[1]).unwrap_or(0),
                retry_after: micros(answer[2]),
                reset_after: micros(answer[3]),
            })
            .collect())
    }

    async fn renew_lease(&self, key: &str, token: &[u8], ttl: Duration) -> Result<bool> {
        let mut connection = self.connection.clone();
        let renewed: i64 = RENEW_LEASE
            .key(self.key(key))
            .arg(token)
            .arg(millis(ttl))
            .invoke_async(&mut connection)
            .await
            .map_err(map_error)?;
        Ok(renewed == 1)
    }

    async fn release_lease(&self, key: &str, token: &[u8]) -> Result<bool> {
        let mut connection = self.connection.clone();
        let released: i64 = RELEASE_LEASE
            .key(self.key(key))
            .arg(token)
            .invoke_async(&mut connection)
            .await
            .map_err(map_error)?;
        Ok(released == 1)
    }

    async fn fenced_write(
        &self,
        lease_key: &str,
        token: &[u8],
        hash_key: &str,
        puts: &[(String, Bytes)],
        deletes: &[String],
    ) -> Result<bool> {
        let mut invocation = FENCED_WRITE.key(self.key(lease_key));
        invocation
            .key(self.key(hash_key))
            .arg(token)
            .arg(puts.len());
        for (field, value) in puts {
            invocation.arg(field.as_str()).arg(value.as_ref());
        }
        for field in deletes {
            invocation.arg(field.as_str());
        }
        let mut connection = self.connection.clone();
        let written: i64 = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(map_error)?;
        Ok(written == 1)
    }

    async fn hash_get_all(&self, hash_key: &str) -> Result<Vec<(String, Bytes)>> {
        let fields: HashMap<String, Vec<u8>> = self
            .query(redis::cmd("HGETALL").arg(self.key(hash_key)))
            .await?;
        Ok(fields
            .into_iter()
            .map(|(field, value)| (field, Bytes::from(value)))
            .collect())
    }

    async fn hash_set(&self, hash_key: &str, field: &str, value: &[u8]) -> Result<()> {
        let _: i64 = self
            .query(
                redis::cmd("HSET")
                    .arg(self.key(hash_key))
                    .arg(field)
                    .arg(value),
            )
            .await?;
        Ok(())
    }

    async fn hash_delete(&self, hash_key: &str, field: &str) -> Result<bool> {
        let removed: i64 = self
            .query(redis::cmd("HDEL").arg(self.key(hash_key)).arg(field))
            .await?;
        Ok(removed > 0)
    }

    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<()> {
        let _: i64 = self
            .query(redis::cmd("PUBLISH").arg(self.key(channel)).arg(payload))
            .await?;
        Ok(())
    }

    async fn subscribe(&self, pattern: &str) -> Result<ChannelMessages> {
        let pattern = self.key(pattern);
        // Subscribed before returning, so nothing published after this
        // call is missed.
        let mut pubsub = self.client.get_async_pubsub().await.map_err(map_error)?;
        pubsub.psubscribe(&pattern).await.map_err(map_error)?;
        let (sender, receiver) = tokio::sync::mpsc::channel(SUBSCRIPTION_BACKLOG);
        let task = tokio::spawn(forward_subscription(
            self.client.clone(),
            self.prefix.clone(),
            pattern,
            Some(pubsub),
            sender,
        ));
        Ok(ChannelMessages::remote(receiver, task))
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        let millis: i64 = self.query(redis::cmd("PTTL").arg(self.key(key))).await?;
        // -2: no such key; -1: no expiry.
        Ok(u64::try_from(millis).ok().map(Duration::from_millis))
    }

    async fn ping(&self) -> Result<()> {
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
    }
}
