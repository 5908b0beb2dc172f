//! Query strings: lookup of parameters, and `n`/`last` pagination with the
//! `Link` header the spec describes.

use std::collections::HashMap;

use registry_core::{ErrorCode, RegistryError};

/// Most entries one page may hold, whatever `n` asks for.
const MAX_PAGE: usize = 10_000;

/// The decoded query parameters of a request.
#[derive(Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned();
        Query(pairs.collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// One page of a lexically ordered list.
#[derive(Debug)]
pub struct Page {
    pub entries: Vec<String>,
    /// The `last` to ask for the next page with, when there is one.
    pub next_last: Option<String>,
    pub size: usize,
}

/// What a page asks for: at most `size` entries after `after`.
#[derive(Debug)]
pub struct PageRequest {
    pub size: usize,
    /// Empty for the first page.
    pub after: String,
}

impl PageRequest {
    /// `n` (at most [`MAX_PAGE`]) and `last` of the query.
    pub fn parse(query: &Query) -> Result<Self, RegistryError> {
        let size = match query.get("n") {
            None | Some("") => MAX_PAGE,
            // More digits than a number can hold ask for everything.
            Some(n) if n.len() > 18 && n.bytes().all(|byte| byte.is_ascii_digit()) => MAX_PAGE,
            Some(n) => n.parse::<usize>().map_err(|_| {
                RegistryError::new(
                    ErrorCode::PaginationNumberInvalid,
                    format!("n={n:?} is not a non-negative whole number"),
                )
            })?,
        }
        .min(MAX_PAGE);
        let after = query.get("last").unwrap_or_default().to_owned();
        Ok(PageRequest { size, after })
    }

    /// The page of `entries` (in lexical order, after `after`, at least
    /// one more than `size` when there is a next page).
    pub fn page(&self, mut entries: Vec<String>) -> Page {
        let next_last = if entries.len() > self.size {
            entries.truncate(self.size);
            entries.last().cloned()
        } else {
            None
        };
        Page {
            entries,
            next_last,
            size: self.size,
        }
    }
}

/// Cuts `sorted` (in lexical order) after `last`, `n` entries at most.
pub fn paginate<T: AsRef<str>>(sorted: &[T], query: &Query) -> Result<Page, RegistryError> {
    let request = PageRequest::parse(query)?;
    let start = sorted.partition_point(|entry| entry.as_ref() <= request.after.as_str());
    let entries = sorted[start..]
        .iter()
        .take(request.size.saturating_add(1))
        .map(|entry| entry.as_ref().to_owned())
        .collect();
    Ok(request.page(entries))
}

impl Page {
    /// The `Link` header value for the next page under `path`, if any.
    pub fn link(&self, path: &str) -> Option<String> {
        let last = self.next_last.as_ref()?;
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("n", &self.size.to_string())
            .append_pair("last", last)
            .finish();
        Some(format!("<{path}?{query}>; rel=\"next\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Vec<String> {
        ["a", "b", "c", "d"].map(String::from).to_vec()
    }

    #[test]
    fn pages_follow_last_and_n() {
        let page = paginate(&list(), &Query::parse(Some("n=2"))).expect("page");
        assert_eq!(page.entries, ["a", "b"]);
        assert_eq!(
            page.link("/v2/_catalog").as_deref(),
            Some("</v2/_catalog?n=2&last=b>; rel=\"next\"")
        );
        let page = paginate(&list(), &Query::parse(Some("n=2&last=b"))).expect("page");
        assert_eq!(page.entries, ["c", "d"]);
        assert_eq!(page.link("/x"), None);
        let page = paginate(&list(), &Query::parse(Some("n=0"))).expect("page");
        assert!(page.entries.is_empty());
        assert!(paginate(&list(), &Query::parse(Some("n=-1"))).is_err());
        let huge = paginate(&list(), &Query::parse(Some("n=99999999999999999999999")));
        assert_eq!(huge.expect("capped").entries.len(), 4);
    }
}
