//! Embeddings: memories are embedded by the worker when it writes them,
//! questions when the memory tool asks them, and memories stored before
//! (or by another model) by a backfill at start-up.

use std::sync::Arc;
use std::time::Instant;

use recall_memory::embed::{EmbedError, Embedder, Embedding};
use recall_memory::{ErrorChain, MemoryError, NewMemory};

use crate::Service;

/// Memories embedded per backfill step.
const BACKFILL_BATCH: usize = 256;

/// What a backfill did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct BackfillReport {
    /// Memories given an embedding.
    pub embedded: usize,
    /// Memories that were gone by the time their embedding was ready.
    pub gone: usize,
}

/// The text embedded for a memory: its content, with the underscores of
/// field ids (`insurance_provider`) read as spaces.
pub(crate) fn embedding_text(content: &str) -> String {
    content.replace('_', " ")
}

/// Embeds `texts` with `embedder`, on a blocking thread unless it is cheap.
async fn embed_texts(
    embedder: &Arc<dyn Embedder>,
    texts: Vec<String>,
) -> Result<Vec<Embedding>, EmbedError> {
    if embedder.is_cheap() {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        return embedder.embed_batch(&refs);
    }
    let embedder = Arc::clone(embedder);
    let span = tracing::Span::current();
    crate::blocking::spawn(move || {
        let _entered = span.enter();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        embedder.embed_batch(&refs)
    })
    .await
    .map_err(|e| EmbedError::model("embedding task failed").with_source(e))?
}

impl Service {
    /// Gives each memory the embedding of its content. A model failure is
    /// logged and the memories are written without (the backfill tries
    /// again at the next start): a memory is never held back for it.
    pub(crate) async fn embed_memories(&self, memories: &mut [NewMemory]) {
        let Some(embedder) = self.embedder() else {
            return;
        };
        let texts = memories
            .iter()
            .map(|m| embedding_text(&m.content))
            .collect();
        match embed_texts(embedder, texts).await {
            Ok(vectors) => {
                for (memory, vector) in memories.iter_mut().zip(vectors) {
                    memory.embedding = Some(vector);
                }
            }
            Err(e) => {
                tracing::warn!(error = %ErrorChain(&e), "embedding failed: memories written without embeddings");
            }
        }
    }

    /// The embedding of a question, or `None` (no embedder, or it failed:
    /// the search then ranks by words).
    pub(crate) async fn embed_query(&self, text: &str) -> Option<Embedding> {
        let embedder = self.embedder()?;
        match embed_texts(embedder, vec![text.to_owned()]).await {
            Ok(mut v) => v.pop(),
            Err(e) => {
                tracing::warn!(error = %ErrorChain(&e), "question embedding failed: searching by words");
                None
            }
        }
    }

    /// Embeds every stored memory whose embedding is missing or of
    /// another model, page by page, logging progress. Resumable: an
    /// interrupted backfill continues where it stopped at the next call,
    /// because embedded memories leave the backlog. Nothing to do without
    /// an embedder.
    pub async fn backfill_embeddings(&self) -> Result<BackfillReport, MemoryError> {
        let Some(embedder) = self.embedder().cloned() else {
            return Ok(BackfillReport::default());
        };
        let model = embedder.tag();
        let started = Instant::now();
        let mut report = BackfillReport::default();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .store()
                .embedding_backlog(model, cursor.as_deref(), BACKFILL_BATCH)
                .await?;
            if page.tasks.is_empty() {
                break;
            }
            if report == BackfillReport::default() {
                tracing::info!(
                    model = embedder.model_id(),
                    "embedding stored memories (backfill)"
                );
            }
            let texts = page
                .tasks
                .iter()
                .map(|t| embedding_text(&t.content))
                .collect();
            let vectors = embed_texts(&embedder, texts)
                .await
                .map_err(|e| MemoryError::internal("backfill").with_source(e))?;
            for (task, vector) in page.tasks.iter().zip(vectors) {
                match self
                    .store()
                    .set_embedding(&task.user, &task.id, vector)
                    .await
                {
                    Ok(()) => report.embedded += 1,
                    Err(MemoryError::NotFound(_)) => report.gone += 1,
                    Err(e) => return Err(e),
                }
            }
            tracing::info!(
                embedded = report.embedded,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "backfill progress"
            );
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        if report != BackfillReport::default() {
            tracing::info!(
                embedded = report.embedded,
                gone = report.gone,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "backfill finished"
            );
        }
        Ok(report)
    }
}
