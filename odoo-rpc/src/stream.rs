//! `search_read` as a stream of records, paged by id with bounded memory.

use futures_core::Stream;
use serde::de::DeserializeOwned;

use crate::client::Client;
use crate::domain::Domain;
use crate::error::{Error, Result};

struct State<T> {
    client: Client,
    model: String,
    domain: Domain,
    fields: Vec<String>,
    page_size: usize,
    /// The last id of the previous page.
    last_id: Option<i64>,
    /// The records of the current page not yet yielded.
    page: std::vec::IntoIter<T>,
    done: bool,
}

pub(crate) fn search_read_stream<T>(
    client: Client,
    model: String,
    domain: Domain,
    fields: Vec<String>,
    page_size: usize,
) -> impl Stream<Item = Result<T>> + Send + 'static
where
    T: DeserializeOwned + Send + 'static,
{
    let state = State {
        client,
        model,
        domain,
        fields,
        page_size,
        last_id: None,
        page: Vec::new().into_iter(),
        done: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        if let Some(record) = state.page.next() {
            return Some((Ok(record), state));
        }
        if state.done {
            return None;
        }
        if state.page_size == 0 {
            state.done = true;
            return Some((Err(Error::config("page_size must be at least 1")), state));
        }
        // release the consumed page before fetching the next one
        state.page = Vec::new().into_iter();
        let fetched = state
            .client
            .search_read_page::<T>(
                &state.model,
                &state.domain,
                &state.fields,
                state.last_id,
                state.page_size,
            )
            .await;
        let (records, count, last) = match fetched {
            Ok(page) => page,
            Err(e) => {
                state.done = true;
                return Some((Err(e), state));
            }
        };
        if count < state.page_size {
            state.done = true;
        }
        match (state.last_id, last) {
            (Some(previous), Some(last)) if last <= previous => {
                state.done = true;
                return Some((
                    Err(Error::protocol(format!(
                        "paging by id went backwards ({last} after {previous}): the server ignored the id filter"
                    ))),
                    state,
                ));
            }
            (_, Some(_)) => state.last_id = last,
            (_, None) => state.done = true,
        }
        state.page = records.into_iter();
        let record = state.page.next()?;
        Some((Ok(record), state))
    })
}
