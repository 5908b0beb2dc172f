//! Query parameters the list endpoints share: `q`, `page`, `per_page`.
//! A bad value is refused with a message naming the parameter.

use std::collections::HashMap;

use super::error::ApiError;

const DEFAULT_PER_PAGE: usize = 50;
const MAX_PER_PAGE: usize = 500;

/// The decoded query string.
pub type Params = HashMap<String, String>;

/// One page of a list.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Paging {
    pub page: usize,
    pub per_page: usize,
}

impl Paging {
    pub fn from_params(params: &Params) -> Result<Self, ApiError> {
        let page = number(params, "page", 1, usize::MAX)?.unwrap_or(1);
        let per_page = number(params, "per_page", 1, MAX_PER_PAGE)?.unwrap_or(DEFAULT_PER_PAGE);
        Ok(Paging { page, per_page })
    }

    /// The entries of this page.
    pub fn slice<'a, T>(&self, all: &'a [T]) -> &'a [T] {
        let start = (self.page - 1).saturating_mul(self.per_page).min(all.len());
        let end = start.saturating_add(self.per_page).min(all.len());
        &all[start..end]
    }
}

/// `q` lowered, for case-insensitive substring search; empty means all.
pub fn search(params: &Params) -> String {
    params
        .get("q")
        .map(|q| q.trim().to_lowercase())
        .unwrap_or_default()
}

/// Whether `text` matches a lowered search.
pub fn matches(text: &str, search: &str) -> bool {
    search.is_empty() || text.to_lowercase().contains(search)
}

fn number(params: &Params, key: &str, min: usize, max: usize) -> Result<Option<usize>, ApiError> {
    let Some(text) = params.get(key).filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    match text.parse::<usize>() {
        Ok(value) if (min..=max).contains(&value) => Ok(Some(value)),
        _ if max == usize::MAX => Err(ApiError::bad_request(format!(
            "{key}={text:?}: give a whole number from {min}"
        ))),
        _ => Err(ApiError::bad_request(format!(
            "{key}={text:?}: give a whole number from {min} to {max}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn pages_past_the_end_are_empty_and_bad_numbers_are_named() {
        let paging = Paging::from_params(&params(&[("page", "3"), ("per_page", "2")]))
            .expect("valid paging");
        assert_eq!(paging.slice(&[1, 2, 3, 4, 5]), &[5]);
        let far = Paging::from_params(&params(&[("page", "99999999999")])).expect("valid");
        assert!(far.slice(&[1, 2, 3]).is_empty());
        for bad in [
            ("page", "0"),
            ("page", "-1"),
            ("per_page", "501"),
            ("per_page", "x"),
        ] {
            let error = Paging::from_params(&params(&[bad])).expect_err("refused");
            assert!(format!("{error:?}").contains(bad.0), "{error:?}");
        }
    }
}
