//! Publish/subscribe beside the cache: notifications between the replicas
//! of a service (Redis `PUBLISH`/`PSUBSCRIBE`; a broadcast channel in
//! process). Delivery is at most once and only to subscribers connected at
//! the time: a subscriber that was disconnected, or fell too far behind,
//! receives [`ChannelEvent::Gap`] and repairs what it missed by reading the
//! state the notifications describe.

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// A message published on `channel` (without the cache's key prefix).
    Message { channel: String, payload: Bytes },
    /// Messages may have been lost since the previous event (reconnect or
    /// overflow): re-read the state.
    Gap,
}

/// Messages on the channels matching one pattern, from
/// [`Cache::subscribe`](super::Cache::subscribe). Dropping it unsubscribes.
pub struct ChannelMessages {
    source: Source,
}

enum Source {
    Local {
        receiver: broadcast::Receiver<(String, Bytes)>,
        pattern: String,
    },
    Remote {
        receiver: mpsc::Receiver<ChannelEvent>,
        _task: AbortOnDrop,
    },
}

pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ChannelMessages {
    pub(crate) fn local(receiver: broadcast::Receiver<(String, Bytes)>, pattern: &str) -> Self {
        Self {
            source: Source::Local {
                receiver,
                pattern: pattern.to_owned(),
            },
        }
    }

    pub(crate) fn remote(
        receiver: mpsc::Receiver<ChannelEvent>,
        task: tokio::task::JoinHandle<()>,
    ) -> Self {
        Self {
            source: Source::Remote {
                receiver,
                _task: AbortOnDrop(task),
            },
        }
    }

    /// The next message or gap; `None` once the cache is gone.
    pub async fn next(&mut self) -> Option<ChannelEvent> {
        match &mut self.source {
            Source::Local { receiver, pattern } => loop {
                match receiver.recv().await {
                    Ok((channel, payload)) if glob_matches(pattern, &channel) => {
                        return Some(ChannelEvent::Message { channel, payload });
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return Some(ChannelEvent::Gap),
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            },
            Source::Remote { receiver, .. } => receiver.recv().await,
        }
    }
}

/// Redis's glob subset used by patterns here: `*` matches any run of
/// characters (also none), `?` one character; everything else itself.
pub(crate) fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it matched up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if *c == '?' || *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn globs_match_like_redis() {
        assert!(glob_matches("routing:*:notify", "routing:{t1}:notify"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "ac"));
        assert!(!glob_matches("routing:*:notify", "routing:{t1}:ops"));
        assert!(!glob_matches("exact", "exact2"));
        assert!(glob_matches("exact", "exact"));
        assert!(glob_matches("*:ops", "a:b:ops"));
    }
}
