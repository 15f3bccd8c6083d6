//! Erasing a caller everywhere: memories, stored events, audio, call
//! index rows and quarantined bodies that mention them.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use recall_model::{ConversationId, PhoneNumber, WebhookType};

use crate::error::join_error;
use crate::payload::{CALLER_FILE, EventState, remove_if_exists, sync_dir, write_atomic};
use crate::{PayloadStore, ProcessedEvent, Service, ServiceError};

/// What [`Service::erase_caller`] erased. Erasing again finds nothing and
/// reports zeros.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct EraseReport {
    /// Memories erased from the store.
    pub memories: u64,
    /// Conversations whose folder was removed.
    pub conversations: u64,
    /// Stored events (raw payloads) removed.
    pub payloads: u64,
    /// Decoded audio files removed.
    pub audio: u64,
    /// Quarantined (invalid) bodies removed because they mention the
    /// caller's number.
    pub quarantined: u64,
    /// Calls removed from the call index.
    pub indexed_calls: u64,
}

/// The caller recorded for a conversation; for an event not processed
/// yet, decided from the payload by the one caller rule (and recorded, so
/// this is done once).
fn resolve_caller(
    payloads: &PayloadStore,
    conversation: &ConversationId,
) -> io::Result<Option<String>> {
    if let Some(caller) = payloads.caller_of(conversation)? {
        return Ok(Some(caller));
    }
    let events = payloads.events(conversation)?;
    let pending = |kind: &WebhookType| {
        events
            .iter()
            .any(|e| e.kind == kind.as_str() && e.state != EventState::Done)
    };
    let kind = if pending(&WebhookType::PostCallTranscription) {
        WebhookType::PostCallTranscription
    } else if pending(&WebhookType::CallInitiationFailure) {
        WebhookType::CallInitiationFailure
    } else {
        return Ok(None);
    };
    let request = match payloads.read_event(conversation, &kind) {
        Ok(Some((request, _))) => request,
        Ok(None) | Err(crate::StoredEventError::Unusable(_)) => return Ok(None),
        Err(crate::StoredEventError::Io(e)) => return Err(e),
    };
    let Some(caller) = ProcessedEvent::from_request(conversation.clone(), request).caller else {
        return Ok(None);
    };
    write_atomic(
        &payloads.conversation_dir(conversation),
        CALLER_FILE,
        caller.as_str().as_bytes(),
    )?;
    Ok(Some(caller.as_str().to_owned()))
}

/// Whether the file mentions `number` as a whole number (not as the start
/// of a longer one), reading it in bounded chunks.
fn mentions_number(path: &Path, number: &str) -> io::Result<bool> {
    let needle = number.as_bytes();
    let mut file = File::open(path)?;
    let mut window: Vec<u8> = Vec::with_capacity(64 * 1024 + needle.len());
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        let eof = n == 0;
        window.extend_from_slice(&buf[..n]);
        let mut from = 0;
        while let Some(at) = window[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
        {
            match window.get(at + needle.len()) {
                Some(next) if next.is_ascii_digit() => from = at + 1,
                Some(_) => return Ok(true),
                None if eof => return Ok(true),
                // The byte after it has not been read yet.
                None => break,
            }
        }
        if eof {
            return Ok(false);
        }
        let keep = needle.len().min(window.len());
        window.drain(..window.len() - keep);
    }
}

/// Removes the quarantined bodies (and their reasons) that mention
/// `number`; returns how many bodies were removed.
fn forget_quarantined(payloads: &PayloadStore, number: &str) -> io::Result<u64> {
    let dir = payloads.quarantine_dir();
    let mut removed = 0;
    for entry in fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        if mentions_number(&path, number)? {
            fs::remove_file(&path)?;
            remove_if_exists(&path.with_extension("reason"))?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(&dir)?;
        payloads.recount_quarantine()?;
    }
    Ok(removed)
}

impl Service {
    /// Erases a caller everywhere, together: every memory (through the
    /// store), every stored event and audio of their conversations (found
    /// through the per-conversation caller record, so calls that never
    /// connected count when they were to or from the caller), their rows
    /// in the call index (and the stored events of any call the index
    /// attributes to them), and every quarantined body that mentions their
    /// number. Idempotent: erasing again reports zeros.
    ///
    /// Runs exclusively with processing, so an event of this caller
    /// cannot be turned into memories while it runs. When the memory store
    /// fails, nothing is deleted and the error is returned.
    ///
    /// # Errors
    /// [`ServiceError::Store`] (nothing deleted), [`ServiceError::Io`] or
    /// [`ServiceError::Index`] when the payloads or the index failed after
    /// the memories were erased: erasing again finishes the job.
    #[tracing::instrument(name = "erase_caller", skip_all, fields(caller = %caller.masked()))]
    pub async fn erase_caller(&self, caller: &PhoneNumber) -> Result<EraseReport, ServiceError> {
        let _lock = self.inner.process_lock.lock().await;
        let payloads = self.payloads().clone();
        let number = caller.as_str().to_owned();
        let mut theirs = crate::blocking::spawn(move || -> io::Result<_> {
            let mut theirs = Vec::new();
            for c in payloads.conversations()? {
                if resolve_caller(&payloads, &c)?.as_deref() == Some(number.as_str()) {
                    theirs.push(c);
                }
            }
            Ok(theirs)
        })
        .await
        .map_err(join_error)??;

        let memories = match self.store().erase_user(caller).await {
            Ok(n) => n,
            Err(e) => {
                self.stats().add_store_error();
                return Err(e.into());
            }
        };
        let indexed = match self.call_index() {
            Some(index) => index.forget_caller(caller).await?,
            None => Vec::new(),
        };
        for c in &indexed {
            if !theirs.contains(c) {
                theirs.push(c.clone());
            }
        }

        self.pending().retain(|(c, _), _| !theirs.contains(c));
        for c in &theirs {
            self.drop_failures_of(c);
        }
        let payloads = self.payloads().clone();
        let number = caller.as_str().to_owned();
        let mut report = crate::blocking::spawn(move || -> io::Result<EraseReport> {
            let mut report = EraseReport::default();
            for c in &theirs {
                if let Some(removed) = payloads.remove_conversation(c)? {
                    report.payloads += removed.events;
                    report.audio += u64::from(removed.audio);
                    report.conversations += 1;
                }
            }
            if report.conversations > 0 {
                sync_dir(payloads.root())?;
            }
            report.quarantined = forget_quarantined(&payloads, &number)?;
            Ok(report)
        })
        .await
        .map_err(join_error)??;
        report.memories = memories;
        report.indexed_calls = indexed.len() as u64;
        tracing::info!(?report, "caller erased");
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn a_number_is_found_only_as_a_whole_number() {
        let n = "+16129782029";
        assert!(mentions_number(file(b"{\"caller\":\"+16129782029\"").path(), n).unwrap());
        assert!(mentions_number(file(b"+16129782029").path(), n).unwrap());
        assert!(!mentions_number(file(b"+161297820291").path(), n).unwrap());
        assert!(!mentions_number(file(b"+1612978202").path(), n).unwrap());
        assert!(!mentions_number(file(b"").path(), n).unwrap());
    }

    #[test]
    fn a_number_across_chunk_boundaries_is_found() {
        let n = "+16129782029";
        for offset in [64 * 1024 - 12, 64 * 1024 - 5, 64 * 1024 - 1, 64 * 1024] {
            let mut body = vec![b'x'; offset];
            body.extend_from_slice(n.as_bytes());
            body.extend_from_slice(b"\"}");
            assert!(mentions_number(file(&body).path(), n).unwrap(), "{offset}");
            // Followed by a digit just after the boundary: another number.
            let mut longer = vec![b'x'; offset];
            longer.extend_from_slice(n.as_bytes());
            longer.push(b'7');
            assert!(
                !mentions_number(file(&longer).path(), n).unwrap(),
                "{offset}"
            );
        }
    }
}
