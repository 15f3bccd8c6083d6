//! What the operator reads about callers and calls: one service call per
//! question, each rule decided here rather than in an HTTP handler.

use recall_memory::{ListRequest, MemoryPage};
use recall_model::ui::User;
use recall_model::{ConversationId, PhoneNumber};

use crate::event_log::StoredAudio;
use crate::{CallIndex, CallQuery, Service, ServiceError};

/// How many of a caller's newest calls are looked at for the last call's
/// summary.
const RECENT_CALLS: u32 = 20;

impl Service {
    /// What is known of a caller: name and profile from their memories, and
    /// the summary of their newest call that connected and has one. `None`
    /// when nothing is known: no memory and no indexed call.
    ///
    /// # Errors
    /// [`ServiceError::Store`] or [`ServiceError::Index`] when a store fails.
    pub async fn caller(&self, phone: &PhoneNumber) -> Result<Option<User>, ServiceError> {
        let profile = self.store().profile(phone).await.inspect_err(|_| {
            self.stats().add_store_error();
        })?;
        let recent = match self.call_index() {
            Some(index) => {
                index
                    .list_calls(CallQuery {
                        phone: Some(phone.clone()),
                        limit: Some(RECENT_CALLS),
                        ..CallQuery::default()
                    })
                    .await?
                    .items
            }
            None => Vec::new(),
        };
        if profile.memory_count == 0 && recent.is_empty() {
            return Ok(None);
        }
        let last_call_summary = recent
            .into_iter()
            .filter(|c| !c.initiation_failed)
            .find_map(|c| c.call.summary);
        Ok(Some(User {
            phone_number: phone.clone(),
            name: profile.name,
            profile_summary: profile.summary,
            last_call_summary,
        }))
    }

    /// A page of a caller's memories, newest first.
    ///
    /// # Errors
    /// [`ServiceError::Store`] (an invalid cursor is
    /// [`MemoryError::InvalidCursor`](recall_memory::MemoryError::InvalidCursor)).
    pub async fn memories(
        &self,
        phone: &PhoneNumber,
        request: &ListRequest,
    ) -> Result<MemoryPage, ServiceError> {
        Ok(self.store().list(phone, request).await?)
    }

    /// The call index, for the operator's reads (list, call detail,
    /// analytics).
    ///
    /// # Errors
    /// [`ServiceError::NoCallIndex`] when the service has none.
    pub fn calls(&self) -> Result<&dyn CallIndex, ServiceError> {
        self.call_index()
            .map(|index| index.as_ref())
            .ok_or(ServiceError::NoCallIndex)
    }

    /// A call's decoded audio (MP3) for streaming, with its length;
    /// `None` when none is stored.
    ///
    /// # Errors
    /// [`ServiceError::Io`] when the event log cannot open it.
    pub async fn call_audio(
        &self,
        conversation: &ConversationId,
    ) -> Result<Option<StoredAudio>, ServiceError> {
        Ok(self.payloads().open_audio(conversation).await?)
    }
}
