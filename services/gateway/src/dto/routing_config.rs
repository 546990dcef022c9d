//! The JSON bodies of the routing configuration (`/v1/numbers`,
//! `/v1/queues`, `/v1/flows`, …). Requests are the routing service's own
//! settings types (`…Spec`, which refuse unknown fields); answers are an
//! item's id and timestamps beside its settings. The structs here exist
//! only to name those answers in the OpenAPI document.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use switchboard_routing_api::config::openapi::FlowDefinitionSchema;
use switchboard_routing_api::config::{
    AgentGroupSpec, AgentProfileSpec, FlowSpec, ForcedMode, InboundRuleSpec, NumberSpec,
    OutboundRuleSpec, QueueSpec, ReasonCodeSpec, RingGroupSpec, ScheduleSpec, SkillSpec,
    VoicemailBoxSpec,
};
use utoipa::openapi::schema::{
    AllOfBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
};
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

/// The answer's schema of an item whose settings are `spec`: the spec's
/// own object schema (which refuses unknown fields) with `fields` added,
/// each required. Not `allOf` of the spec and the added fields: under the
/// spec's `additionalProperties: false` no answer would validate.
fn answer(
    spec: RefOr<Schema>,
    description: &str,
    fields: Vec<(&str, RefOr<Schema>)>,
) -> RefOr<Schema> {
    match spec {
        RefOr::T(Schema::Object(mut object)) => {
            for (name, schema) in fields {
                object.properties.insert(name.to_owned(), schema);
                object.required.push(name.to_owned());
            }
            object.description = Some(description.to_owned());
            object.into()
        }
        // A spec that is not an object cannot be extended: say both.
        other => {
            let mut added = ObjectBuilder::new();
            for (name, schema) in fields {
                added = added.property(name, schema).required(name);
            }
            AllOfBuilder::new()
                .description(Some(description))
                .item(other)
                .item(added)
                .into()
        }
    }
}

/// `null`, or the named schema `T`.
fn nullable<T: ToSchema>() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .item(Ref::from_schema_name(T::name()))
        .into()
}

/// `id`, then the timestamps: what every item's answer adds to its spec.
fn item_fields(extra: Vec<(&'static str, RefOr<Schema>)>) -> Vec<(&'static str, RefOr<Schema>)> {
    let string = |format: KnownFormat| -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
            .into()
    };
    let mut fields = vec![("id", string(KnownFormat::Uuid))];
    fields.extend(extra);
    fields.push(("created_at", string(KnownFormat::DateTime)));
    fields.push(("updated_at", string(KnownFormat::DateTime)));
    fields
}

macro_rules! item_schema {
    ($name:ident, $spec:ty, $doc:literal) => {
        item_schema!($name, $spec, $doc, []);
    };
    ($name:ident, $spec:ty, $doc:literal, [$(($field:literal, $schema:expr)),*] $(, $also:ty)*) => {
        #[doc = $doc]
        pub(crate) struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                answer(
                    <$spec as PartialSchema>::schema(),
                    $doc,
                    item_fields(vec![$(($field, $schema)),*]),
                )
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                <$spec as ToSchema>::schemas(schemas);
                $(
                    schemas.push((<$also as ToSchema>::name().into_owned(), <$also as PartialSchema>::schema()));
                    <$also as ToSchema>::schemas(schemas);
                )*
            }
        }
    };
}

item_schema!(SkillDoc, SkillSpec, "A skill.");
item_schema!(ReasonCodeDoc, ReasonCodeSpec, "A not-ready reason code.");
item_schema!(QueueDoc, QueueSpec, "A queue.");
item_schema!(
    AgentProfileDoc,
    AgentProfileSpec,
    "An agent profile; `id` is the user's."
);
item_schema!(AgentGroupDoc, AgentGroupSpec, "An agent group.");
item_schema!(RingGroupDoc, RingGroupSpec, "A ring group.");
item_schema!(VoicemailBoxDoc, VoicemailBoxSpec, "A voicemail box.");
item_schema!(ScheduleDoc, ScheduleSpec, "Business hours.");
item_schema!(NumberDoc, NumberSpec, "A phone number of the tenant.");
item_schema!(OutboundRuleDoc, OutboundRuleSpec, "An outbound rule.");
item_schema!(
    InboundRuleDoc,
    InboundRuleSpec,
    "An inbound rule, with its forced mode (`null` while none is set).",
    [("forced", nullable::<ForcedMode>())],
    ForcedMode
);
item_schema!(
    FlowDoc,
    FlowSpec,
    "An IVR flow's draft, with its fingerprint (SHA-256 of the flow as normalised) and its \
     latest published version (calls start on it; `null` until the first publication).",
    [
        (
            "fingerprint",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[0-9a-f]{64}$"))
                .into()
        ),
        ("latest_version", <Option<i32> as PartialSchema>::schema())
    ]
);

/// A published, immutable version of a flow.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct FlowVersionDoc {
    pub flow_id: Uuid,
    pub version: i32,
    #[schema(value_type = FlowDefinitionSchema)]
    pub definition: serde_json::Value,
    /// SHA-256 (hex) of the definition as normalised.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub fingerprint: String,
    pub published_at: DateTime<Utc>,
    /// `user` or `api_key`; `null` when the system published it.
    #[schema(required = true)]
    pub published_by_type: Option<String>,
    #[schema(required = true)]
    pub published_by: Option<Uuid>,
}

macro_rules! page_schema {
    ($name:ident, $item:ty, $what:literal) => {
        #[doc = concat!("One page of ", $what, ". `next_cursor` is `null` on the last page.")]
        #[derive(ToSchema)]
        #[allow(dead_code)]
        pub(crate) struct $name {
            data: Vec<$item>,
            /// Pass as `cursor` to get the next page.
            #[schema(required = true, pattern = "^[A-Za-z0-9_-]+$")]
            next_cursor: Option<String>,
        }
    };
}

page_schema!(SkillPage, SkillDoc, "skills");
page_schema!(ReasonCodePage, ReasonCodeDoc, "reason codes");
page_schema!(QueuePage, QueueDoc, "queues");
page_schema!(AgentProfilePage, AgentProfileDoc, "agent profiles");
page_schema!(AgentGroupPage, AgentGroupDoc, "agent groups");
page_schema!(RingGroupPage, RingGroupDoc, "ring groups");
page_schema!(VoicemailBoxPage, VoicemailBoxDoc, "voicemail boxes");
page_schema!(SchedulePage, ScheduleDoc, "schedules");
page_schema!(NumberPage, NumberDoc, "numbers");
page_schema!(OutboundRulePage, OutboundRuleDoc, "outbound rules");
page_schema!(InboundRulePage, InboundRuleDoc, "inbound rules");
page_schema!(FlowPage, FlowDoc, "flows");
page_schema!(
    FlowVersionPage,
    FlowVersionDoc,
    "flow versions, oldest first"
);
