//! OpenAPI schemas of the configuration's values that are not derived from
//! a Rust type: a flow's definition (one schema per node type, from
//! [`switchboard_flows::schema`]) and a prompt. Each is a named schema
//! (`#/components/schemas/<name>`) the specs point at with
//! `#[schema(value_type = …)]`.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;
use switchboard_acd::{Channel, Strategy};
use switchboard_flows::schema::{DEFS, definitions};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// Where the OpenAPI document keeps named schemas.
const COMPONENTS: &str = "#/components/schemas/";

/// The flow schema `name` as the OpenAPI document holds it: its
/// references rewritten from `#/$defs/…` to `#/components/schemas/…`.
pub fn flow_schema_json(name: &str) -> Option<Value> {
    definitions()
        .into_iter()
        .find(|(defined, _)| *defined == name)
        .map(|(_, mut schema)| {
            rewrite_references(&mut schema);
            schema
        })
}

fn rewrite_references(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => {
                        if let Some(name) = reference.strip_prefix(DEFS) {
                            *reference = format!("{COMPONENTS}{name}");
                        }
                    }
                    ("mapping", Value::Object(mapping)) => {
                        for target in mapping.values_mut() {
                            if let Some(name) = target.as_str().and_then(|t| t.strip_prefix(DEFS)) {
                                *target = Value::String(format!("{COMPONENTS}{name}"));
                            }
                        }
                    }
                    (_, value) => rewrite_references(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_references),
        _ => {}
    }
}

/// The flow schema `name` as utoipa's model. The flow schemas are written
/// in the subset that model holds (a `oneOf` only at the top of a named
/// schema, every other schema typed); the gateway's tests check that each
/// converts without losing a keyword.
pub fn flow_schema(name: &str) -> RefOr<Schema> {
    let Some(json) = flow_schema_json(name) else {
        unreachable!("{name} is not a flow schema");
    };
    let converted = if json.get("oneOf").is_some() {
        serde_json::from_value(json)
            .map(Schema::OneOf)
            .map(RefOr::T)
    } else {
        serde_json::from_value(json)
    };
    // Constant data of our own, proven convertible by the gateway's tests.
    converted
        .unwrap_or_else(|error| unreachable!("the flow schema {name} does not convert: {error}"))
}

macro_rules! named_flow_schema {
    ($type:ident, $name:literal, $doc:literal) => {
        #[doc = $doc]
        pub struct $type;

        impl PartialSchema for $type {
            fn schema() -> RefOr<Schema> {
                flow_schema($name)
            }
        }

        impl ToSchema for $type {
            fn name() -> Cow<'static, str> {
                $name.into()
            }

            /// Every other flow schema, which this one may refer to.
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                for (name, _) in definitions() {
                    if name != $name {
                        schemas.push((name.to_owned(), flow_schema(name)));
                    }
                }
            }
        }
    };
}

named_flow_schema!(
    FlowDefinitionSchema,
    "FlowDefinition",
    "A flow's definition: its start node and its nodes, one of the node types each."
);
named_flow_schema!(
    PromptSchema,
    "Prompt",
    "What a caller hears: `{\"file\"}` or `{\"tts\"}`, with an optional `language`."
);

/// A trunk's name in an outbound rule: 1 to 64 characters, not blank.
pub struct TrunkNameSchema;

impl PartialSchema for TrunkNameSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(64))
            .pattern(Some(r"\S"))
            .into()
    }
}

impl ToSchema for TrunkNameSchema {
    fn name() -> Cow<'static, str> {
        "TrunkName".into()
    }
}

/// A string schema of `values` as they serialize.
fn serialized_enum<T: Serialize>(
    description: &str,
    values: impl IntoIterator<Item = T>,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(
            values
                .into_iter()
                .filter_map(|value| serde_json::to_value(value).ok()),
        ))
        .into()
}

/// A queue's channel, from [`Channel`].
pub struct ChannelSchema;

impl PartialSchema for ChannelSchema {
    fn schema() -> RefOr<Schema> {
        serialized_enum("The medium of a contact.", Channel::ALL)
    }
}

impl ToSchema for ChannelSchema {
    fn name() -> Cow<'static, str> {
        "Channel".into()
    }
}

/// A queue's strategy, from [`Strategy`].
pub struct StrategySchema;

impl StrategySchema {
    /// Every strategy; the match breaks the build when one is added.
    fn all() -> [Strategy; 3] {
        match Strategy::LongestIdle {
            Strategy::LongestIdle | Strategy::LeastOccupied | Strategy::RoundRobin => {}
        }
        [
            Strategy::LongestIdle,
            Strategy::LeastOccupied,
            Strategy::RoundRobin,
        ]
    }
}

impl PartialSchema for StrategySchema {
    fn schema() -> RefOr<Schema> {
        serialized_enum(
            "How a queue picks among the agents able to take its contact: the longest idle, \
             the least occupied since coming online, or in turn.",
            Self::all(),
        )
    }
}

impl ToSchema for StrategySchema {
    fn name() -> Cow<'static, str> {
        "Strategy".into()
    }
}

/// The configuration's tagged enums whose variants refuse unknown fields:
/// `#[serde(deny_unknown_fields)]` sits on the enum, and utoipa does not
/// carry it to the variants' schemas. [`close_variants`] does.
pub const CLOSED_ENUMS: [&str; 2] = ["NextStep", "CallerId"];

/// Sets `additionalProperties: false` on each object variant of `schema`
/// (a `oneOf`, as utoipa derives a tagged enum).
pub fn close_variants(schema: &mut RefOr<Schema>) {
    if let RefOr::T(Schema::OneOf(one_of)) = schema {
        for variant in &mut one_of.items {
            if let RefOr::T(Schema::Object(object)) = variant {
                object.additional_properties =
                    Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
        }
    }
}
