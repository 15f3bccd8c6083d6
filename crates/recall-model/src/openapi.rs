//! OpenAPI schemas of the validated value types and of the client-data
//! answer's hand-serialized parts (feature `openapi`).
//!
//! Their serde goes through hand-written `Serialize` and `Deserialize`, so
//! their schemas are written by hand too, stating the same rules as their
//! constructors: a server that documents its API with utoipa then gets, for
//! every model holding them, a schema that accepts exactly what the type
//! can serialize.
//!
//! ```
//! use recall_model::{PhoneNumber, openapi::E164_PATTERN};
//! use utoipa::PartialSchema;
//!
//! let schema = serde_json::to_value(PhoneNumber::schema()).unwrap();
//! assert_eq!(schema["pattern"], E164_PATTERN);
//! ```

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::{
    AgentId, ClientDataType, ConversationId, DynamicValue, DynamicVariables, MAX_ID_LEN,
    MemorySector, PhoneNumber, Salience,
};

/// [`PhoneNumber`]'s rule as a regular expression: `+`, a digit 1-9, then
/// 1 to 14 digits.
pub const E164_PATTERN: &str = r"^\+[1-9][0-9]{1,14}$";

/// [`ConversationId`]'s and [`AgentId`]'s rule as a regular expression
/// (the length, 1 to [`MAX_ID_LEN`] bytes, is stated apart): no `/`, `\`,
/// `..`, control characters (U+0000-U+001F, U+007F-U+009F) or white
/// space, and not `.`. It reads: single dots between allowed characters.
pub const PATH_SAFE_ID_PATTERN: &str =
    r"^\.?(?:[^./\\\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]\.?)+$";

fn text(pattern: &str, description: &str, example: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .examples([example])
}

impl PartialSchema for PhoneNumber {
    fn schema() -> RefOr<Schema> {
        text(
            E164_PATTERN,
            "An E.164 telephone number: '+', a digit 1-9, then 1 to 14 digits",
            "+16129782029",
        )
        .into()
    }
}

impl ToSchema for PhoneNumber {}

/// The schema of a path-safe id: `minLength` and `maxLength` count
/// characters, which for the ASCII ids ElevenLabs issues are bytes.
fn path_safe_id(description: &str, example: &str) -> RefOr<Schema> {
    text(PATH_SAFE_ID_PATTERN, description, example)
        .min_length(Some(1))
        .max_length(Some(MAX_ID_LEN))
        .into()
}

impl PartialSchema for ConversationId {
    fn schema() -> RefOr<Schema> {
        path_safe_id(
            "An ElevenLabs conversation id: 1 to 128 bytes; no '/', '\\', '..', control characters or white space; not '.'",
            "conv_01jxd5y165f62a0v7gtr6bkg56",
        )
    }
}

impl ToSchema for ConversationId {}

impl PartialSchema for AgentId {
    fn schema() -> RefOr<Schema> {
        path_safe_id(
            "An ElevenLabs agent id: 1 to 128 bytes; no '/', '\\', '..', control characters or white space; not '.'",
            "agent_7101k5zvyjhmfg983brhmhkd98n6",
        )
    }
}

impl ToSchema for AgentId {}

impl PartialSchema for Salience {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
            .minimum(Some(Salience::MIN.get()))
            .maximum(Some(Salience::MAX.get()))
            .description(Some("How important a memory is, 0.0 to 1.0"))
            .into()
    }
}

impl ToSchema for Salience {}

impl PartialSchema for MemorySector {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(MemorySector::ALL.map(MemorySector::as_str)))
            .description(Some(
                "The kind of a memory: semantic (facts), episodic (events), procedural (how-to), emotional (feelings) or reflective (meta-thoughts)",
            ))
            .into()
    }
}

impl ToSchema for MemorySector {}

impl PartialSchema for ClientDataType {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([ClientDataType::VALUE]))
            .description(Some("Always `conversation_initiation_client_data`"))
            .into()
    }
}

impl ToSchema for ClientDataType {}

impl PartialSchema for DynamicValue {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([
                Type::String,
                Type::Number,
                Type::Boolean,
            ]))
            .description(Some(
                "A dynamic variable's value: a string, a number or a bool, never null",
            ))
            .into()
    }
}

impl ToSchema for DynamicValue {}

impl PartialSchema for DynamicVariables {
    fn schema() -> RefOr<Schema> {
        let text = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("user_name", text("The caller's name, or empty"))
            .required("user_name")
            .property(
                "user_profile_summary",
                text("A short profile of the caller, or empty"),
            )
            .required("user_profile_summary")
            .property(
                "last_call_summary",
                text("The summary of the caller's previous call, or empty"),
            )
            .required("last_call_summary")
            .additional_properties(Some(DynamicValue::schema()))
            .description(Some(
                "Values for the agent's dynamic variables: the three Recall knows, always present, and any others",
            ))
            .into()
    }
}

impl ToSchema for DynamicVariables {}
