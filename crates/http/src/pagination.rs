//! Cursor pagination for list endpoints.
//!
//! A list request carries `?limit=&cursor=`; the answer is a [`Page`] with
//! `data` and a `next_cursor` to pass back for the next page (`null` on the
//! last). The cursor is opaque to clients: base64url (no padding, RFC 4648
//! §5) of a JSON value the endpoint chooses, usually the sort key of the
//! last row (`[created_at, id]`), so the next page is a keyset query
//! (`WHERE (created_at, id) > (…)`) that stays right while rows are added.
//!
//! ```text
//! async fn list(Query(query): Query<PageQuery>) -> Result<ApiJson<Page<Agent>>, Problem> {
//!     let page = PageRequest::from_query(query.limit, query.cursor)?;
//!     let after: Option<(DateTime<Utc>, AgentId)> = page.after()?;
//!     let rows = store.list_agents(&tenant, after, page.fetch_limit()).await?;
//!     Ok(ApiJson(Page::from_rows(rows, page.limit(), |agent| (agent.created_at, agent.id))?))
//! }
//! ```

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::problem::{FieldError, Problem};

/// The pagination parameters of a list request's query string. Not
/// `deny_unknown_fields`: it is usually flattened next to an endpoint's own
/// filters. Turn it into a checked [`PageRequest`] with
/// [`PageRequest::from_query`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A checked page request: a limit within bounds and an optional cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    limit: u32,
    cursor: Option<String>,
}

impl PageRequest {
    /// The page size when the client gives none.
    pub const DEFAULT_LIMIT: u32 = 50;
    /// The largest page size a client may ask for.
    pub const MAX_LIMIT: u32 = 200;

    /// Checks `limit` (default 50, 1..=200) and keeps `cursor` (an empty one
    /// is no cursor). Refuses with 400 `validation_failed` naming `limit`.
    pub fn from_query(limit: Option<u32>, cursor: Option<String>) -> Result<Self, Problem> {
        let limit = limit.unwrap_or(Self::DEFAULT_LIMIT);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(Problem::validation(vec![FieldError::new(
                "limit",
                format!("must be between 1 and {}", Self::MAX_LIMIT),
            )]));
        }
        Ok(Self {
            limit,
            cursor: cursor.filter(|cursor| !cursor.is_empty()),
        })
    }

    /// How many rows to return.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// How many rows to fetch: one more than [`Self::limit`], so
    /// [`Page::from_rows`] knows whether there is a next page.
    pub fn fetch_limit(&self) -> u64 {
        u64::from(self.limit) + 1
    }

    /// The key the previous page ended at (`None` for the first page).
    /// Refuses a cursor this API did not issue (or issued for another key
    /// type) with 400 `validation_failed` naming `cursor`.
    pub fn after<K: DeserializeOwned>(&self) -> Result<Option<K>, Problem> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .map(Some)
            .ok_or_else(|| {
                Problem::validation(vec![FieldError::new(
                    "cursor",
                    "is not a cursor this API returned; pass `next_cursor` from the previous page unchanged",
                )])
            })
    }
}

/// One page of a list answer. `next_cursor` is `null` on the last page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds the page from up to `limit + 1` rows in order
    /// ([`PageRequest::fetch_limit`]): if there are more than `limit`, the
    /// extra row is dropped and the cursor points after the last row kept.
    /// Fails (500) only if `key_of`'s key cannot be serialized as JSON,
    /// which is a bug in the caller.
    pub fn from_rows<K: Serialize>(
        mut rows: Vec<T>,
        limit: u32,
        key_of: impl Fn(&T) -> K,
    ) -> Result<Self, Problem> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if rows.len() <= limit {
            return Ok(Self {
                data: rows,
                next_cursor: None,
            });
        }
        rows.truncate(limit);
        let next_cursor = match rows.last() {
            Some(last) => Some(encode_cursor(&key_of(last))?),
            // limit 0: nothing to point after; PageRequest never allows it.
            None => None,
        };
        Ok(Self {
            data: rows,
            next_cursor,
        })
    }
}

/// The opaque cursor for `key`: base64url, no padding, of its JSON.
pub fn encode_cursor<K: Serialize>(key: &K) -> Result<String, Problem> {
    let json = serde_json::to_vec(key).map_err(|error| {
        tracing::error!(%error, "cannot serialize a page cursor");
        Problem::internal()
    })?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use axum::http::StatusCode;

    use super::*;

    #[test]
    fn the_limit_defaults_to_50() {
        let page = PageRequest::from_query(None, None).unwrap();
        assert_eq!(page.limit(), 50);
        assert_eq!(page.fetch_limit(), 51);
        assert_eq!(page.after::<u64>().unwrap(), None);
    }

    #[test]
    fn a_limit_outside_1_to_200_is_a_validation_error_naming_limit() {
        for limit in [0, 201, u32::MAX] {
            let problem = PageRequest::from_query(Some(limit), None).unwrap_err();
            assert_eq!(problem.status(), StatusCode::BAD_REQUEST);
            assert_eq!(problem.slug(), "validation_failed");
            assert_eq!(problem.errors()[0].field, "limit");
        }
        for limit in [1, 200] {
            assert_eq!(
                PageRequest::from_query(Some(limit), None).unwrap().limit(),
                limit
            );
        }
    }

    #[test]
    fn a_cursor_round_trips_the_key_of_the_last_row() {
        let rows: Vec<(i64, String)> = (1..=4).map(|n| (n, format!("row-{n}"))).collect();
        let page = Page::from_rows(rows, 3, |(n, name)| (*n, name.clone())).unwrap();
        assert_eq!(page.data.len(), 3);
        let cursor = page.next_cursor.expect("a fourth row means a next page");
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{cursor}"
        );
        let next = PageRequest::from_query(Some(3), Some(cursor)).unwrap();
        assert_eq!(
            next.after::<(i64, String)>().unwrap(),
            Some((3, "row-3".to_owned()))
        );
    }

    #[test]
    fn the_last_page_has_no_cursor() {
        let page = Page::from_rows(vec![1, 2, 3], 3, |n| *n).unwrap();
        assert_eq!(page.data, vec![1, 2, 3]);
        assert_eq!(page.next_cursor, None);
        let empty = Page::from_rows(Vec::<u8>::new(), 3, |n| *n).unwrap();
        assert_eq!(empty.next_cursor, None);
    }

    #[test]
    fn a_page_serializes_as_data_and_next_cursor() {
        let page = Page::from_rows(vec!["a", "b"], 1, |s| s.to_string()).unwrap();
        let json = serde_json::to_value(&page).unwrap();
        assert_eq!(json["data"], serde_json::json!(["a"]));
        assert_eq!(
            json["next_cursor"],
            serde_json::json!(encode_cursor(&"a").unwrap())
        );
    }

    #[test]
    fn a_garbage_cursor_is_a_validation_error_naming_cursor() {
        let wrong_type = encode_cursor(&"text").unwrap();
        for cursor in [
            "not base64!",
            "e30=",
            &URL_SAFE_NO_PAD.encode("{oops"),
            &wrong_type,
        ] {
            let page = PageRequest::from_query(None, Some(cursor.to_owned())).unwrap();
            let problem = page.after::<(i64, i64)>().unwrap_err();
            assert_eq!(problem.slug(), "validation_failed", "{cursor}");
            assert_eq!(problem.errors()[0].field, "cursor");
        }
    }

    #[test]
    fn an_empty_cursor_means_the_first_page() {
        let page = PageRequest::from_query(None, Some(String::new())).unwrap();
        assert_eq!(page.after::<u64>().unwrap(), None);
    }

    #[test]
    fn page_query_ignores_other_query_parameters() {
        let query: PageQuery = serde_json::from_value(serde_json::json!({
            "limit": 10, "cursor": "abc", "status": "ready"
        }))
        .unwrap();
        assert_eq!(query.limit, Some(10));
        assert_eq!(query.cursor.as_deref(), Some("abc"));
    }

    #[test]
    fn a_key_that_is_not_json_serializable_is_an_internal_error() {
        let key: BTreeMap<(u8, u8), u8> = BTreeMap::from([((1, 2), 3)]);
        let problem = Page::from_rows(vec![1, 2], 1, |_| key.clone()).unwrap_err();
        assert_eq!(problem.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
