//! The routing configuration (`/v1/numbers`, `/v1/schedules`,
//! `/v1/inbound-rules`, `/v1/flows`, `/v1/queues`, `/v1/skills`,
//! `/v1/agent-profiles`, `/v1/agent-groups`, `/v1/ring-groups`,
//! `/v1/voicemail-boxes`, `/v1/outbound-rules`, `/v1/reason-codes`).
//!
//! Reads take the routing-read permission (owners, admins, supervisors;
//! API keys with `read`, `full` or `routing:read`), changes the
//! routing-manage one (owners, admins; `full` or `routing:write`), and an
//! inbound rule's forced mode the force permission (supervisors too). A
//! credential limited to some client organizations sees and manages only
//! its clients' numbers, flows and queues; the other kinds are settings of
//! the whole tenant (403 `client_scope`). Items are replaced whole (`PUT`).

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use std::sync::Arc;
use switchboard_http::{ApiJson, Page, PageQuery};
use switchboard_identity_api::{Permission, Principal};

use switchboard_routing_api::config::{
    AgentGroupSpec, AgentProfileSpec, ChangedBy, FlowSpec, FlowVersionView, FlowView,
    ForcedModeSpec, InboundRuleSpec, Item, NumberSpec, OutboundRuleSpec, QueueSpec, ReasonCodeSpec,
    RingGroupSpec, RoutingConfigApi, RoutingConfigExt, RuleView, ScheduleSpec, SkillSpec, Tenant,
    VoicemailBoxSpec,
};
use uuid::Uuid;

use crate::Gateway;
use crate::dto::routing_config::*;
use crate::error::ApiResult;
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PageParams, PayloadTooLarge, UnsupportedMediaType,
};
use crate::routes::{id_of, page_of};

/// The caller's tenant context, if it may read the configuration.
fn reader(principal: &Principal) -> ApiResult<Tenant> {
    principal.require(Permission::ReadRouting)?;
    Ok(principal.tenant.clone())
}

/// The caller's tenant context and the configuration acting as the caller
/// (so each write is audited with who made it), if it may change it.
fn manager(
    gateway: &Gateway,
    principal: &Principal,
) -> ApiResult<(Tenant, Arc<dyn RoutingConfigApi>)> {
    principal.require(Permission::ManageRouting)?;
    Ok((
        principal.tenant.clone(),
        gateway.routing_config.acting(changed_by(principal)),
    ))
}

fn changed_by(principal: &Principal) -> ChangedBy {
    let (actor_type, id) = principal.audit_actor();
    ChangedBy {
        actor_type,
        actor_id: Some(id),
    }
}

/// List, create, get, replace and delete of one kind.
macro_rules! crud {
    (
        $module:ident, $spec:ident, $doc:ident, $page:ident, $noun:literal,
        $collection:literal, $item:literal,
        ops($list_op:literal, $create_op:literal, $get_op:literal, $replace_op:literal, $delete_op:literal),
        docs($list_doc:literal, $create_doc:literal, $get_doc:literal, $replace_doc:literal, $delete_doc:literal)
    ) => {
        pub(crate) mod $module {
            use super::*;

            #[doc = $list_doc]
            #[utoipa::path(
                        get,
                        path = $collection,
                        tag = "routing",
                        operation_id = $list_op,
                        params(PageParams),
                        responses(
                            (status = 200, description = "One page, oldest first.", body = $page),
                            (status = 400, response = BadRequest),
                            (status = 403, response = Forbidden),
                        )
                    )]
            pub(crate) async fn list(
                State(gateway): State<Gateway>,
                Extension(principal): Extension<Principal>,
                query: Result<Query<PageQuery>, QueryRejection>,
            ) -> ApiResult<ApiJson<Page<Item<$spec>>>> {
                let tenant = reader(&principal)?;
                let page = page_of(query)?;
                let after = page.after::<Uuid>()?;
                let rows = gateway
                    .routing_config
                    .list::<$spec>(&tenant, after, page.fetch_limit())
                    .await?;
                Ok(ApiJson(Page::from_rows(rows, page.limit(), |item| {
                    item.id
                })?))
            }

            #[doc = $create_doc]
            #[utoipa::path(
                        post,
                        path = $collection,
                        tag = "routing",
                        operation_id = $create_op,
                        request_body = $spec,
                        responses(
                            (status = 201, description = "Created.", body = $doc),
                            (status = 400, response = BadRequest),
                            (status = 403, response = Forbidden),
                            (status = 409, response = Conflict),
                            (status = 413, response = PayloadTooLarge),
                            (status = 415, response = UnsupportedMediaType),
                        )
                    )]
            pub(crate) async fn create(
                State(gateway): State<Gateway>,
                Extension(principal): Extension<Principal>,
                ApiJson(body): ApiJson<$spec>,
            ) -> ApiResult<(StatusCode, ApiJson<Item<$spec>>)> {
                let (tenant, config) = manager(&gateway, &principal)?;
                let created = config.create(&tenant, body).await?;
                Ok((StatusCode::CREATED, ApiJson(created)))
            }

            #[doc = $get_doc]
            #[utoipa::path(
                        get,
                        path = $item,
                        tag = "routing",
                        operation_id = $get_op,
                        params(("id" = Uuid, Path, description = "The id.")),
                        responses(
                            (status = 200, description = "Found.", body = $doc),
                            (status = 403, response = Forbidden),
                            (status = 404, response = NotFound),
                        )
                    )]
            pub(crate) async fn get(
                State(gateway): State<Gateway>,
                Extension(principal): Extension<Principal>,
                Path(id): Path<String>,
            ) -> ApiResult<ApiJson<Item<$spec>>> {
                let tenant = reader(&principal)?;
                let id = id_of::<Uuid>(&id, $noun)?;
                Ok(ApiJson(
                    gateway.routing_config.get::<$spec>(&tenant, id).await?,
                ))
            }

            #[doc = $replace_doc]
            #[utoipa::path(
                        put,
                        path = $item,
                        tag = "routing",
                        operation_id = $replace_op,
                        params(("id" = Uuid, Path, description = "The id.")),
                        request_body = $spec,
                        responses(
                            (status = 200, description = "Replaced.", body = $doc),
                            (status = 400, response = BadRequest),
                            (status = 403, response = Forbidden),
                            (status = 404, response = NotFound),
                            (status = 409, response = Conflict),
                            (status = 413, response = PayloadTooLarge),
                            (status = 415, response = UnsupportedMediaType),
                        )
                    )]
            pub(crate) async fn replace(
                State(gateway): State<Gateway>,
                Extension(principal): Extension<Principal>,
                Path(id): Path<String>,
                ApiJson(body): ApiJson<$spec>,
            ) -> ApiResult<ApiJson<Item<$spec>>> {
                let (tenant, config) = manager(&gateway, &principal)?;
                let id = id_of::<Uuid>(&id, $noun)?;
                Ok(ApiJson(
                    config.replace(&tenant, id, body).await?,
                ))
            }

            #[doc = $delete_doc]
            #[utoipa::path(
                        delete,
                        path = $item,
                        tag = "routing",
                        operation_id = $delete_op,
                        params(("id" = Uuid, Path, description = "The id.")),
                        responses(
                            (status = 204, description = "Deleted."),
                            (status = 403, response = Forbidden),
                            (status = 404, response = NotFound),
                            (status = 409, response = Conflict),
                        )
                    )]
            pub(crate) async fn delete(
                State(gateway): State<Gateway>,
                Extension(principal): Extension<Principal>,
                Path(id): Path<String>,
            ) -> ApiResult<StatusCode> {
                let (tenant, config) = manager(&gateway, &principal)?;
                let id = id_of::<Uuid>(&id, $noun)?;
                config.delete::<$spec>(&tenant, id).await?;
                Ok(StatusCode::NO_CONTENT)
            }
        }
    };
}

crud!(
    skills,
    SkillSpec,
    SkillDoc,
    SkillPage,
    "skill",
    "/v1/skills",
    "/v1/skills/{id}",
    ops(
        "list_skills",
        "create_skill",
        "get_skill",
        "replace_skill",
        "delete_skill"
    ),
    docs(
        "List skills",
        "Create a skill\n\nNames are unique in the tenant (409 `name_taken`).",
        "Get a skill",
        "Replace a skill",
        "Delete a skill\n\n409 `in_use` while a queue or an agent profile has it."
    )
);

crud!(
    reason_codes,
    ReasonCodeSpec,
    ReasonCodeDoc,
    ReasonCodePage,
    "reason code",
    "/v1/reason-codes",
    "/v1/reason-codes/{id}",
    ops(
        "list_reason_codes",
        "create_reason_code",
        "get_reason_code",
        "replace_reason_code",
        "delete_reason_code"
    ),
    docs(
        "List not-ready reason codes",
        "Create a not-ready reason code\n\n`missed` and `declined` are the routing engine's own.",
        "Get a reason code",
        "Replace a reason code",
        "Delete a reason code"
    )
);

crud!(
    queues,
    QueueSpec,
    QueueDoc,
    QueuePage,
    "queue",
    "/v1/queues",
    "/v1/queues/{id}",
    ops(
        "list_queues",
        "create_queue",
        "get_queue",
        "replace_queue",
        "delete_queue"
    ),
    docs(
        "List queues",
        "Create a queue\n\nRequired skills (minimum proficiency 1 to 10), priority, service level, \
         limits with overflow steps, ring timeout, wrap-up, strategy, announcements, music on \
         hold and a callback offer. A client-scoped credential creates queues of its clients.",
        "Get a queue",
        "Replace a queue",
        "Delete a queue\n\n409 `in_use` while a flow (draft or latest version) or a rule sends \
         contacts to it."
    )
);

crud!(
    agent_groups,
    AgentGroupSpec,
    AgentGroupDoc,
    AgentGroupPage,
    "agent group",
    "/v1/agent-groups",
    "/v1/agent-groups/{id}",
    ops(
        "list_agent_groups",
        "create_agent_group",
        "get_agent_group",
        "replace_agent_group",
        "delete_agent_group"
    ),
    docs(
        "List agent groups",
        "Create an agent group",
        "Get an agent group",
        "Replace an agent group",
        "Delete an agent group\n\n409 `in_use` while an agent profile or an outbound rule names it."
    )
);

crud!(
    ring_groups,
    RingGroupSpec,
    RingGroupDoc,
    RingGroupPage,
    "ring group",
    "/v1/ring-groups",
    "/v1/ring-groups/{id}",
    ops(
        "list_ring_groups",
        "create_ring_group",
        "get_ring_group",
        "replace_ring_group",
        "delete_ring_group"
    ),
    docs(
        "List ring groups",
        "Create a ring group\n\nMembers are agents (users with an agent profile), rung all at \
         once or one after the other.",
        "Get a ring group",
        "Replace a ring group",
        "Delete a ring group"
    )
);

crud!(
    voicemail_boxes,
    VoicemailBoxSpec,
    VoicemailBoxDoc,
    VoicemailBoxPage,
    "voicemail box",
    "/v1/voicemail-boxes",
    "/v1/voicemail-boxes/{id}",
    ops(
        "list_voicemail_boxes",
        "create_voicemail_box",
        "get_voicemail_box",
        "replace_voicemail_box",
        "delete_voicemail_box"
    ),
    docs(
        "List voicemail boxes",
        "Create a voicemail box",
        "Get a voicemail box",
        "Replace a voicemail box",
        "Delete a voicemail box"
    )
);

crud!(
    schedules,
    ScheduleSpec,
    ScheduleDoc,
    SchedulePage,
    "schedule",
    "/v1/schedules",
    "/v1/schedules/{id}",
    ops(
        "list_schedules",
        "create_schedule",
        "get_schedule",
        "replace_schedule",
        "delete_schedule"
    ),
    docs(
        "List schedules",
        "Create a schedule\n\nBusiness hours in an IANA time zone: weekly ranges, holidays and \
         special days. Inverted or overlapping ranges are refused naming the range \
         (`hours.weekly[1]`).",
        "Get a schedule",
        "Replace a schedule",
        "Delete a schedule"
    )
);

crud!(
    numbers,
    NumberSpec,
    NumberDoc,
    NumberPage,
    "number",
    "/v1/numbers",
    "/v1/numbers/{id}",
    ops(
        "list_numbers",
        "create_number",
        "get_number",
        "replace_number",
        "delete_number"
    ),
    docs(
        "List phone numbers",
        "Add a phone number\n\nE.164, bound to an inbound rule. A number belongs to one tenant: \
         one held elsewhere is refused with 409 `number_unavailable`.",
        "Get a phone number",
        "Replace a phone number",
        "Remove a phone number"
    )
);

crud!(
    outbound_rules,
    OutboundRuleSpec,
    OutboundRuleDoc,
    OutboundRulePage,
    "outbound rule",
    "/v1/outbound-rules",
    "/v1/outbound-rules/{id}",
    ops(
        "list_outbound_rules",
        "create_outbound_rule",
        "get_outbound_rule",
        "replace_outbound_rule",
        "delete_outbound_rule"
    ),
    docs(
        "List outbound rules",
        "Create an outbound rule\n\nAn agent group's trunks in order, how to pick among them, and \
         the caller id to present (one of the tenant's numbers).",
        "Get an outbound rule",
        "Replace an outbound rule",
        "Delete an outbound rule"
    )
);

// The kinds with more than the five generic routes, one file each.
pub(crate) mod agent_profiles;
pub(crate) mod flows;
pub(crate) mod inbound_rules;
