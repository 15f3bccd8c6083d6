//! Exporting everything Recall holds about one caller as one JSON
//! document ([`recall_model::ui::CallerExport`]), written incrementally:
//! memories and calls are read a page at a time and each item is written
//! as soon as it is read, so memory use does not grow with the caller's
//! history.

use recall_memory::{ListRequest, MAX_RESULTS};
use recall_model::ui::MemoryDisplay;
use recall_model::{PhoneNumber, UnixTimestamp};
use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use crate::{CallQuery, MAX_CALL_PAGE, Service, ServiceError};

/// What [`Service::export_caller`] wrote.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct ExportReport {
    /// Memories written.
    pub memories: u64,
    /// Calls written.
    pub calls: u64,
}

async fn write_json<W: AsyncWrite + Unpin, T: Serialize>(
    out: &mut W,
    value: &T,
) -> Result<(), ServiceError> {
    let bytes = serde_json::to_vec(value).map_err(std::io::Error::from)?;
    out.write_all(&bytes).await?;
    Ok(())
}

impl Service {
    /// Writes the export of `caller` to `out`: `phoneNumber`, `exportedAt`,
    /// `profile` (`null` when none), `memories` (newest first) and `calls`
    /// (newest first, each with its transcript and `hasAudio`), in that
    /// order. Only `caller`'s memories and the calls the index attributes
    /// to them are read. Does not flush or shut `out` down.
    ///
    /// # Errors
    /// [`ServiceError::Store`] or [`ServiceError::Index`] when a store
    /// fails, [`ServiceError::Io`] when `out` does: the document written so
    /// far is then incomplete (not valid JSON), never silently short.
    #[tracing::instrument(name = "export_caller", skip_all, fields(caller = %caller.masked()))]
    pub async fn export_caller<W: AsyncWrite + Unpin>(
        &self,
        caller: &PhoneNumber,
        out: &mut W,
    ) -> Result<ExportReport, ServiceError> {
        let mut report = ExportReport::default();
        let profile = self.caller(caller).await?;
        out.write_all(b"{\"phoneNumber\":").await?;
        write_json(out, caller).await?;
        out.write_all(b",\"exportedAt\":").await?;
        write_json(out, &UnixTimestamp::now().to_rfc3339()).await?;
        out.write_all(b",\"profile\":").await?;
        write_json(out, &profile).await?;

        out.write_all(b",\"memories\":[").await?;
        let mut request = ListRequest::first(MAX_RESULTS);
        loop {
            let page = self.memories(caller, &request).await?;
            for memory in page.items {
                debug_assert_eq!(&memory.user_id, caller);
                if report.memories > 0 {
                    out.write_all(b",").await?;
                }
                let display = MemoryDisplay::new(
                    memory.content,
                    memory.sector,
                    memory.salience,
                    Some(memory.created_at),
                );
                write_json(out, &display).await?;
                report.memories += 1;
            }
            match page.next_cursor {
                Some(cursor) => request.cursor = Some(cursor),
                None => break,
            }
        }

        out.write_all(b"],\"calls\":[").await?;
        if let Some(index) = self.call_index() {
            let mut cursor = None;
            loop {
                let page = index
                    .list_calls(CallQuery {
                        phone: Some(caller.clone()),
                        limit: Some(MAX_CALL_PAGE),
                        cursor,
                        ..CallQuery::default()
                    })
                    .await?;
                for call in page.items {
                    // The index only holds valid ids; one that is not is
                    // skipped rather than failing the whole export.
                    let Ok(id) = recall_model::ConversationId::parse(&call.call.conversation_id)
                    else {
                        continue;
                    };
                    // Read one call's transcript at a time; a call erased
                    // meanwhile is left out.
                    let Some(detail) = index.get_call(&id).await? else {
                        continue;
                    };
                    if detail.caller_phone.as_ref() != Some(caller) {
                        continue;
                    }
                    if report.calls > 0 {
                        out.write_all(b",").await?;
                    }
                    write_json(out, &detail).await?;
                    report.calls += 1;
                }
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        out.write_all(b"]}").await?;
        tracing::info!(?report, "caller exported");
        Ok(report)
    }
}
