//! The JSON bodies of the routing configuration (`/v1/numbers`,
//! `/v1/queues`, `/v1/flows`, …). Requests are the routing service's own
//! settings types (`…Spec`, which refuse unknown fields); answers are an
//! item's id and timestamps beside its settings. The structs here exist
//! only to name those answers in the OpenAPI document.

use chrono::{DateTime, Utc};
use serde::Serialize;
use switchboard_routing::config::{
    AgentGroupSpec, AgentProfileSpec, FlowSpec, ForcedMode, InboundRuleSpec, NumberSpec,
    OutboundRuleSpec, QueueSpec, ReasonCodeSpec, RingGroupSpec, ScheduleSpec, SkillSpec,
    VoicemailBoxSpec,
};
use utoipa::ToSchema;
use uuid::Uuid;

macro_rules! item_schema {
    ($name:ident, $spec:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Serialize, ToSchema)]
        #[allow(dead_code)]
        pub(crate) struct $name {
            pub id: Uuid,
            #[serde(flatten)]
            pub spec: $spec,
            pub created_at: DateTime<Utc>,
            pub updated_at: DateTime<Utc>,
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

/// An inbound rule, with its forced mode while one is set.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct InboundRuleDoc {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: InboundRuleSpec,
    #[schema(required = true)]
    pub forced: Option<ForcedMode>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An IVR flow's draft and its latest published version.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct FlowDoc {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: FlowSpec,
    /// The draft's fingerprint (SHA-256 of the flow as normalised).
    pub fingerprint: String,
    /// Calls start on it; `null` until the first publication.
    #[schema(required = true)]
    pub latest_version: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A published, immutable version of a flow.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct FlowVersionDoc {
    pub flow_id: Uuid,
    pub version: i32,
    pub definition: serde_json::Value,
    pub fingerprint: String,
    pub published_at: DateTime<Utc>,
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
            #[schema(required = true)]
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
