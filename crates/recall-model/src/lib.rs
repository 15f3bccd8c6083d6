//! The Recall domain model: the seed's ERD as types, with validation.
//!
//! * [`values`]: validated value types — [`PhoneNumber`], [`Salience`],
//!   [`MemorySector`], [`DecayLambda`], [`UnixTimestamp`], [`WebhookType`],
//!   [`ConversationId`], [`AgentId`]. Deserialization goes through their
//!   constructors, so an invalid value cannot exist.
//! * [`identity`]: [`classify_caller_id`] turns a raw caller id into a
//!   phone number or a reason why there is no identity.
//! * [`client_data`]: the client-data webhook ([`ClientDataRequest`],
//!   [`ClientDataResponse`], [`DynamicVariables`], overrides).
//! * [`search`]: the search-data tool ([`SearchDataRequest`],
//!   [`SearchDataResponse`], [`ProfileData`], [`MemoryItem`]).
//! * [`post_call`]: the post-call webhook ([`PostCallWebhookRequest`],
//!   [`PostCallEvent`], [`PostCallData`] and all its parts); stored events
//!   are read field by field with [`PostCallWebhookRequest::from_value_tolerant`].
//! * [`ui`]: the seed's UI models in camelCase, and the other answers of
//!   the operator API.
//! * `openapi` (feature `openapi`): OpenAPI schemas (utoipa's `ToSchema`)
//!   of the value types; the types Recall's HTTP API answers (the UI models,
//!   the webhooks' answers, the client-data request) derive theirs.
//!
//! Wire types (ElevenLabs' JSON) are tolerant: fields real payloads omit
//! are optional, unknown fields are kept, and ids stay plain strings until
//! an accessor validates them. Types this service writes (responses, UI
//! models) hold validated values.
//!
//! No I/O happens in this crate.
//!
//! ```
//! use recall_model::{ClientDataRequest, ClientDataResponse, DynamicVariables, NoIdentity};
//!
//! let request: ClientDataRequest = serde_json::from_str(
//!     r#"{"caller_id":"anonymous","agent_id":"agent_1","called_number":"+12025550158"}"#,
//! ).unwrap();
//! assert_eq!(request.caller(), Err(NoIdentity::Withheld));
//!
//! let response = ClientDataResponse::new(DynamicVariables::default())
//!     .with_first_message("Hello! Who am I speaking with?");
//! let json = serde_json::to_value(&response).unwrap();
//! assert_eq!(json["type"], "conversation_initiation_client_data");
//! assert_eq!(json["dynamic_variables"]["user_name"], "");
//! assert_eq!(
//!     json["conversation_config_override"]["agent"]["first_message"],
//!     "Hello! Who am I speaking with?"
//! );
//! ```

pub mod client_data;
pub mod error;
pub mod identity;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod post_call;
pub mod search;
pub mod timefmt;
pub mod tolerant;
pub mod ui;
pub mod values;
mod wire;

pub use client_data::{
    AgentOverride, ClientDataRequest, ClientDataResponse, ClientDataType,
    ConversationConfigOverride, DynamicValue, DynamicVariables, PromptOverride, TtsOverride,
};
pub use error::ValueError;
pub use identity::{NoIdentity, classify_caller_id};
pub use post_call::{
    AgentMetadata, AgentTestingFeatures, Analysis, CallError, CallInitiationFailureData,
    CallMetadata, ConversationInitiationClientData, ConversationTurnMetrics,
    DataCollectionJsonSchema, DataCollectionResult, DeletionSettings, EvaluationCriteriaResult,
    FailureMetadata, FeatureEntry, FeatureUsage, FeaturesUsage, MetadataFeedback, PhoneCallDetails,
    PhoneCallInfo, PostCallAudioData, PostCallData, PostCallEvent, PostCallWebhookRequest,
    SipFailureBody, SourceInfo, TranscriptEntry, TranscriptRole, TurnMetricsShape,
    WorkflowFeatures,
};
pub use search::{MemoryItem, ProfileData, SearchDataRequest, SearchDataResponse};
pub use tolerant::FieldProblem;
pub use values::{
    AgentId, ConversationId, DecayLambda, MAX_ID_LEN, MemorySector, PhoneNumber, Salience,
    SalienceLabel, UnixTimestamp, WebhookType,
};
