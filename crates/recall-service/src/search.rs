//! Search: the agent's memory tool during the call.

use recall_memory::{ErrorChain, MemoryFilter, SearchQuery};
use recall_model::{MemoryItem, ProfileData, Salience, SearchDataRequest, SearchDataResponse};
use serde_json::Value;

use crate::{SearchError, Service};

impl Service {
    /// Answers the search-data tool: the caller's profile and their
    /// memories most relevant to `query`, compact enough for an LLM.
    ///
    /// * `user_id` must be the caller's E.164 number (the tool sends
    ///   `system__caller_id`); anything else is
    ///   [`SearchError::InvalidCaller`]. Only that caller's memories are
    ///   read.
    /// * `query` must not be blank ([`SearchError::InvalidQuery`]).
    /// * Optional extra fields of the request: `k` (how many memories,
    ///   default [`search_default_k`](crate::ServiceConfig::search_default_k),
    ///   capped at [`search_max_k`](crate::ServiceConfig::search_max_k)),
    ///   `min_salience` (0.0 to 1.0) and `same_agent_only` (`true` keeps
    ///   only what the requesting `agent_id` learnt).
    #[tracing::instrument(name = "search", skip_all, fields(agent_id = req.agent_id.as_deref().unwrap_or("")))]
    pub async fn search(&self, req: &SearchDataRequest) -> Result<SearchDataResponse, SearchError> {
        let config = self.config();
        let caller = req.caller().map_err(|reason| {
            SearchError::InvalidCaller(format!(
                "user_id: {reason}: must be the caller's E.164 number (send system__caller_id)"
            ))
        })?;
        let text = req
            .query_text()
            .map_err(|e| SearchError::InvalidQuery(e.to_string()))?;
        let k = match req.extra.get("k") {
            None | Some(Value::Null) => config.search_default_k,
            // A whole number, also when an LLM writes it as `5.0`.
            Some(v) => match v.as_u64().or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 1.0)
                    .map(|f| f as u64)
            }) {
                Some(k) if k >= 1 => usize::try_from(k)
                    .unwrap_or(usize::MAX)
                    .min(config.search_max_k),
                _ => {
                    return Err(SearchError::InvalidQuery(format!(
                        "k: must be a whole number of at least 1 (got {v})"
                    )));
                }
            },
        };
        let mut filter = MemoryFilter::default();
        match req.extra.get("min_salience") {
            None | Some(Value::Null) => {}
            Some(v) => {
                let s = v
                    .as_f64()
                    .and_then(|f| Salience::new(f).ok())
                    .ok_or_else(|| {
                        SearchError::InvalidQuery(format!(
                            "min_salience: must be a number from 0.0 to 1.0 (got {v})"
                        ))
                    })?;
                filter.min_salience = Some(s);
            }
        }
        match req.extra.get("same_agent_only") {
            None | Some(Value::Null | Value::Bool(false)) => {}
            Some(Value::Bool(true)) => {
                let agent = req
                    .agent()
                    .ok_or_else(|| {
                        SearchError::InvalidQuery(
                            "agent_id: is required when same_agent_only is true".into(),
                        )
                    })?
                    .map_err(|e| SearchError::InvalidQuery(e.to_string()))?;
                filter.agent_id = Some(agent);
            }
            Some(v) => {
                return Err(SearchError::InvalidQuery(format!(
                    "same_agent_only: must be true or false (got {v})"
                )));
            }
        }
        let mut query = SearchQuery::new(text, k).filter(filter).at(self.now());
        if let Some(vector) = self.embed_query(text).await {
            query = query.vector(vector);
            if let Some(embedder) = self.embedder() {
                query = query.embedder(embedder.clone());
            }
        }
        let store = self.store();
        let (profile, found) = match store.search_with_profile(&caller, &query).await {
            Ok(both) => both,
            Err(e) => {
                self.stats().add_store_error();
                tracing::warn!(caller = %caller.masked(), error = %ErrorChain(&e), "memory search failed");
                return Err(SearchError::Store(e));
            }
        };
        let profile = (profile.name.is_some() || profile.summary.is_some()).then(|| ProfileData {
            name: profile.name,
            summary: profile.summary,
            phone_number: Some(caller.clone()),
        });
        let memories = found
            .into_iter()
            .take(k)
            .map(|scored| MemoryItem {
                content: scored.memory.content,
                sector: scored.memory.sector,
                salience: scored.memory.salience,
                timestamp: Some(scored.memory.created_at),
                score: Some((scored.score * 1000.0).round() / 1000.0),
            })
            .collect::<Vec<_>>();
        tracing::debug!(caller = %caller.masked(), k, found = memories.len(), "memory search");
        Ok(SearchDataResponse { profile, memories })
    }
}
