//! fresco's shared event stream on [Redis Streams](https://redis.io/docs/latest/develop/data-types/streams/).
//!
//! [`RedisStream`] implements [`fresco::events::EventStream`] over one Redis stream key:
//! producers append with a [`Publisher`](fresco::events::Publisher), every replica
//! tails it with a [`Follower`](fresco::events::Follower), and windowed aggregates
//! agree across the fleet (see `fresco::events` for the rules).
//!
//! - **Positions** are Redis entry ids `ms-seq`; an entry's **arrival** is the end of
//!   its id's millisecond (the Redis server's clock, never a replica's).
//! - **Appends** run as one Lua script per batch: atomic, in order, and once per
//!   `(producer, sequence)`: the last sequence of each producer is kept in the hash
//!   `KEY:producers`, so a retry after a lost answer appends nothing.
//! - **Trims** ([`EventStream::trim`]) run `XTRIM MINID` and record the last id
//!   trimmed in `KEY:trimmed`, in one script. **Reads** run `XRANGE` with that record
//!   and `XINFO STREAM`'s `max-deleted-entry-id` (entries removed by `XDEL`) in one
//!   script, so a reader whose position is older than anything removed always gets
//!   [`StreamError::Trimmed`], never a silent gap. Trim only through this API (or
//!   `fresco events archive --trim`): an `XTRIM` or `MAXLEN` by other clients is not
//!   recorded. A reader with nothing to read waits in `XREAD BLOCK`.
//! - For Redis Cluster, put the key in braces (`{fresco:events}`): the stream and its
//!   `:producers` and `:trimmed` keys then share a slot, as the scripts need.
//!
//! Redis 7.0 or later (for `max-deleted-entry-id`). Events survive a Redis restart only
//! with persistence on (`appendonly yes`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use fresco::aggregates::Definitions;
//! use fresco::events::{Follower, FollowerConfig, PublishPolicy, Publisher};
//! use fresco_redis::RedisStream;
//!
//! let stream = Arc::new(RedisStream::open("redis://127.0.0.1:6379", "fresco:events")?);
//! let definitions = Definitions::from_toml_file("orders.toml")?;
//! let follower = Follower::start(definitions, stream.clone(), FollowerConfig::default().snapshots("snapshots"))?;
//! let publisher = Arc::new(Publisher::new(stream, PublishPolicy::default()));
//! // ClientBuilder::aggregates(follower.store()).events(publisher)
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Mutex;
use std::time::Duration;

use fresco::Timestamp;
use fresco::events::{Batch, Entry, Event, EventStream, Position, StreamError};
use redis::Value;

/// Appends a batch once per (producer, sequence). KEYS: stream, producers hash.
/// ARGV: producer, sequence, then stream, key, ts, value per event.
const APPEND: &str = r"
local last = redis.call('HGET', KEYS[2], ARGV[1])
if last and tonumber(last) >= tonumber(ARGV[2]) then return false end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local id = false
for i = 3, #ARGV, 4 do
  id = redis.call('XADD', KEYS[1], '*', 'stream', ARGV[i], 'key', ARGV[i + 1], 'ts', ARGV[i + 2], 'value', ARGV[i + 3])
end
return id
";

/// Entries from a position, with the largest ids ever deleted and trimmed, at one
/// instant. KEYS: stream, trim record. ARGV: XRANGE start, count.
const READ: &str = r"
local trimmed = redis.call('GET', KEYS[2]) or '0-0'
if redis.call('EXISTS', KEYS[1]) == 0 then return {'0-0', trimmed, {}} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local deleted = '0-0'
for i = 1, #info, 2 do
  if info[i] == 'max-deleted-entry-id' then deleted = info[i + 1] end
end
return {deleted, trimmed, redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])}
";

/// Trims through an id and records the last id trimmed (`XTRIM` does not move the
/// stream's own `max-deleted-entry-id`). KEYS: stream, trim record. ARGV: the id to
/// trim through, the first id kept.
const TRIM: &str = r"
local last = redis.call('XREVRANGE', KEYS[1], ARGV[1], '-', 'COUNT', 1)
if #last == 0 then return 0 end
local id = last[1][1]
local function parts(s)
  local ms, seq = string.match(s, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local old = redis.call('GET', KEYS[2])
local newer = true
if old then
  local oms, oseq = parts(old)
  local nms, nseq = parts(id)
  newer = nms > oms or (nms == oms and nseq > oseq)
end
if newer then redis.call('SET', KEYS[2], id) end
return redis.call('XTRIM', KEYS[1], 'MINID', ARGV[2])
";

/// An [`EventStream`] on one Redis stream key (see [the crate](crate)).
///
/// Cheap to share (`Arc`): connections are pooled, and a failed one is dropped and
/// opened again on the next call, so a Redis restart needs nothing from the caller.
pub struct RedisStream {
    client: redis::Client,
    key: String,
    producers_key: String,
    trimmed_key: String,
    name: String,
    timeout: Duration,
    pool: Mutex<Vec<redis::Connection>>,
    append: redis::Script,
    read: redis::Script,
    trim: redis::Script,
}

impl std::fmt::Debug for RedisStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStream").field("stream", &self.name).finish_non_exhaustive()
    }
}

impl RedisStream {
    /// The stream `key` on the server at `url` (`redis://[user:password@]host:port[/db]`,
    /// or `rediss://` for TLS where the `redis` crate is built with it). Connects on
    /// first use; commands time out after 5 s.
    pub fn open(url: &str, key: &str) -> Result<Self, StreamError> {
        let client = redis::Client::open(url).map_err(|e| StreamError::Unreachable {
            stream: key.to_owned(),
            reason: format!("`{url}` is not a Redis address: {e}"),
        })?;
        if key.is_empty() {
            return Err(StreamError::Protocol { stream: url.to_owned(), reason: "the stream key is empty".into() });
        }
        let name = format!("{key} on {}", client.get_connection_info().addr());
        Ok(RedisStream {
            client,
            key: key.to_owned(),
            producers_key: format!("{key}:producers"),
            trimmed_key: format!("{key}:trimmed"),
            name,
            timeout: Duration::from_secs(5),
            pool: Mutex::new(Vec::new()),
            append: redis::Script::new(APPEND),
            read: redis::Script::new(READ),
            trim: redis::Script::new(TRIM),
        })
    }

    /// The stream's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Entries in the stream now.
    pub fn len(&self) -> Result<u64, StreamError> {
        self.with(self.timeout, |con| redis::cmd("XLEN").arg(&self.key).query::<u64>(con))
    }

    /// Whether the stream holds no entries.
    pub fn is_empty(&self) -> Result<bool, StreamError> {
        Ok(self.len()? == 0)
    }

    /// A connection that failed, timed out, or a server still loading its data is
    /// unreachable (callers retry); any other error reply is a protocol error.
    fn unreachable(&self, e: &redis::RedisError) -> StreamError {
        let down = e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.code() == Some("LOADING");
        if down {
            StreamError::Unreachable { stream: self.name.clone(), reason: e.to_string() }
        } else {
            self.protocol(e.to_string())
        }
    }

    fn protocol(&self, reason: impl Into<String>) -> StreamError {
        StreamError::Protocol { stream: self.name.clone(), reason: reason.into() }
    }

    /// Runs `f` on a pooled connection (read timeout `timeout`); a connection that
    /// failed is not returned to the pool. A pooled connection that turns out dead (the
    /// server restarted since it was used) is replaced once: every operation here may
    /// run twice (appends are idempotent per producer sequence).
    fn with<T>(
        &self,
        timeout: Duration,
        f: impl Fn(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StreamError> {
        let pooled = self.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let from_pool = pooled.is_some();
        match self.run_on(pooled, timeout, &f) {
            Err(e) if from_pool && (e.is_io_error() || e.is_connection_dropped()) => {
                self.run_on(None, timeout, &f).map_err(|e| self.unreachable(&e))
            }
            result => result.map_err(|e| self.unreachable(&e)),
        }
    }

    fn run_on<T>(
        &self,
        con: Option<redis::Connection>,
        timeout: Duration,
        f: &impl Fn(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> redis::RedisResult<T> {
        let mut con = match con {
            Some(con) => con,
            None => self.client.get_connection_with_timeout(self.timeout)?,
        };
        con.set_read_timeout(Some(timeout))?;
        con.set_write_timeout(Some(self.timeout))?;
        let result = f(&mut con)?;
        self.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(con);
        Ok(result)
    }

    fn entry(&self, value: &Value) -> Result<Entry, StreamError> {
        let Value::Array(parts) = value else { return Err(self.protocol("an entry is not an array")) };
        let [id, fields] = parts.as_slice() else { return Err(self.protocol("an entry is not [id, fields]")) };
        let position = self.position(id)?;
        let millis = i64::try_from(position.hi())
            .ok()
            .and_then(|ms| ms.checked_mul(1_000))
            .and_then(|us| us.checked_add(999))
            .ok_or_else(|| self.protocol(format!("entry id {position} is beyond any time")))?;
        let Value::Array(fields) = fields else { return Err(self.protocol("an entry's fields are not an array")) };
        Ok(Entry { position, arrival: Timestamp::from_micros(millis), event: event(fields) })
    }

    fn position(&self, id: &Value) -> Result<Position, StreamError> {
        let text = text(id).ok_or_else(|| self.protocol("an entry id is not text"))?;
        text.parse().map_err(|e: fresco::events::PositionError| self.protocol(e.to_string()))
    }
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

/// An entry's fields as an event, or why they are not one.
fn event(fields: &[Value]) -> Result<Event, String> {
    let mut found: [Option<&str>; 4] = [None; 4];
    for pair in fields.chunks(2) {
        let [name, value] = pair else { return Err("an odd number of field names and values".into()) };
        let slot = match text(name) {
            Some("stream") => 0,
            Some("key") => 1,
            Some("ts") => 2,
            Some("value") => 3,
            _ => continue,
        };
        found[slot] = Some(text(value).ok_or("a field value is not UTF-8 text")?);
    }
    let field = |i: usize, name: &str| found[i].ok_or_else(|| format!("no field `{name}`"));
    let (stream, key) = (field(0, "stream")?, field(1, "key")?);
    let ts: i64 =
        field(2, "ts")?.parse().map_err(|_| format!("field `ts` is not integer microseconds: {:?}", found[2]))?;
    let value: f64 =
        field(3, "value")?.parse().map_err(|_| format!("field `value` is not a number: {:?}", found[3]))?;
    Ok(Event::new(stream, key, Timestamp::from_micros(ts), value))
}

impl EventStream for RedisStream {
    fn publish(&self, batch: &Batch) -> Result<Option<Position>, StreamError> {
        if batch.events.is_empty() {
            return Ok(None);
        }
        let mut invocation = self.append.key(&self.key);
        invocation.key(&self.producers_key).arg(&batch.producer).arg(batch.sequence);
        for e in &batch.events {
            // `{:?}` of an f64 reads back as the same f64 (shortest round trip).
            invocation.arg(&e.stream).arg(&e.key).arg(e.ts.as_micros()).arg(format!("{:?}", e.value));
        }
        let reply: Value = self.with(self.timeout, |con| invocation.invoke(con))?;
        match reply {
            Value::Nil => Ok(None),
            id => self.position(&id).map(Some),
        }
    }

    fn read(&self, after: Option<Position>, max: usize, wait: Duration) -> Result<Vec<Entry>, StreamError> {
        let start = after.map_or_else(|| "-".to_owned(), |p| format!("({p}"));
        let reply: Value = self.with(self.timeout, |con| {
            // Redis counts are signed 64-bit.
            let count = i64::try_from(max).unwrap_or(i64::MAX).max(1);
            self.read.key(&self.key).key(&self.trimmed_key).arg(&start).arg(count).invoke(con)
        })?;
        let Value::Array(parts) = reply else { return Err(self.protocol("the read script answered no array")) };
        let [deleted, trimmed, entries] = parts.as_slice() else {
            return Err(self.protocol("the read script answered no triple"));
        };
        let gone = self.position(deleted)?.max(self.position(trimmed)?);
        if gone > Position::new(0, 0) && after.is_none_or(|a| a < gone) {
            return Err(StreamError::Trimmed { stream: self.name.clone(), after, trimmed_through: gone });
        }
        let Value::Array(entries) = entries else { return Err(self.protocol("XRANGE answered no array")) };
        if !entries.is_empty() || wait.is_zero() {
            return entries.iter().map(|e| self.entry(e)).collect();
        }
        // Nothing yet: wait for an entry after `after`, then read through the script
        // again (the trim check and the entries come from one instant).
        let from = after.map_or_else(|| "0-0".to_owned(), |p| p.to_string());
        let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        let woke: Value = self.with(wait.saturating_add(self.timeout), |con| {
            redis::cmd("XREAD")
                .arg("COUNT")
                .arg(1)
                .arg("BLOCK")
                .arg(millis)
                .arg("STREAMS")
                .arg(&self.key)
                .arg(&from)
                .query(con)
        })?;
        if matches!(woke, Value::Nil) {
            return Ok(Vec::new());
        }
        self.read(after, max, Duration::ZERO)
    }

    fn end(&self) -> Result<Option<Position>, StreamError> {
        let reply: Value = self.with(self.timeout, |con| {
            redis::cmd("XREVRANGE").arg(&self.key).arg("+").arg("-").arg("COUNT").arg(1).query(con)
        })?;
        let Value::Array(entries) = reply else { return Err(self.protocol("XREVRANGE answered no array")) };
        entries.first().map(|e| self.entry(e).map(|e| e.position)).transpose()
    }

    fn trim(&self, through: Position) -> Result<(), StreamError> {
        let Some(first_kept) = through.successor() else {
            return Err(self.protocol("cannot trim past the last position"));
        };
        self.with(self.timeout, |con| {
            self.trim
                .key(&self.key)
                .key(&self.trimmed_key)
                .arg(through.to_string())
                .arg(first_kept.to_string())
                .invoke::<u64>(con)
        })?;
        Ok(())
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}
