//! Inbound rules, their forced modes, and how a rule picks its step.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_hours::{BusinessHours, HoursStatus};
use uuid::Uuid;

use super::{
    ConfigKind, FieldError, Kind, MAX_DESCRIPTION_CHARS, NextStep, Ref, Result, check_name, finish,
};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// What calls to a number do: by the schedule's status (open, closed,
/// holiday), unless a forced mode is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InboundRuleSpec {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 100, pattern = r"\S")
    )]
    pub name: String,
    /// Without a schedule the rule is always open.
    #[serde(default)]
    pub schedule_id: Option<Uuid>,
    pub open: NextStep,
    pub closed: NextStep,
    /// On a holiday; the closed step if absent.
    #[serde(default)]
    pub holiday: Option<NextStep>,
}

impl ConfigKind for InboundRuleSpec {
    const KIND: Kind = Kind::InboundRule;

    fn validate(self) -> Result<Self> {
        let mut errors = Vec::new();
        let name = check_name("name", &self.name, &mut errors);
        let open = self.open.validate("open", &mut errors);
        let closed = self.closed.validate("closed", &mut errors);
        let holiday = self
            .holiday
            .map(|step| step.validate("holiday", &mut errors));
        finish(
            InboundRuleSpec {
                name,
                schedule_id: self.schedule_id,
                open,
                closed,
                holiday,
            },
            errors,
        )
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn references(&self) -> Vec<Ref> {
        let mut refs = Vec::new();
        if let Some(schedule) = self.schedule_id {
            refs.push(Ref::new(Kind::Schedule, schedule, "schedule_id"));
        }
        refs.extend(self.open.reference("open"));
        refs.extend(self.closed.reference("closed"));
        if let Some(holiday) = &self.holiday {
            refs.extend(holiday.reference("holiday"));
        }
        refs
    }
}

/// A forced mode's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ForcedKind {
    /// No forced mode: the schedule decides (clears a forced mode).
    None,
    Closed,
    Open,
    Holiday,
    /// Every call goes to `destination`.
    Destination,
}

/// A supervisor's override of an inbound rule's schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ForcedModeSpec {
    pub mode: ForcedKind,
    /// Required with `destination`, refused otherwise.
    #[serde(default)]
    pub destination: Option<NextStep>,
    /// Why (at most 500 characters).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub reason: Option<String>,
}

impl ForcedModeSpec {
    pub fn validate(self) -> Result<Self> {
        let mut errors = Vec::new();
        let destination = match (self.mode, self.destination) {
            (ForcedKind::Destination, Some(step)) => {
                Some(step.validate("destination", &mut errors))
            }
            (ForcedKind::Destination, None) => {
                errors.push(FieldError::new(
                    "destination",
                    "required with mode \"destination\"",
                ));
                None
            }
            (_, Some(_)) => {
                errors.push(FieldError::new(
                    "destination",
                    "only with mode \"destination\"",
                ));
                None
            }
            (_, None) => None,
        };
        let reason = self
            .reason
            .map(|reason| reason.trim().to_owned())
            .filter(|reason| !reason.is_empty());
        if reason
            .as_ref()
            .is_some_and(|reason| reason.chars().count() > MAX_DESCRIPTION_CHARS)
        {
            errors.push(FieldError::new(
                "reason",
                format!("at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        finish(
            ForcedModeSpec {
                mode: self.mode,
                destination,
                reason,
            },
            errors,
        )
    }

    pub fn references(&self) -> Vec<Ref> {
        self.destination
            .iter()
            .filter_map(|step| step.reference("destination"))
            .collect()
    }
}

/// A forced mode in effect, with who set it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ForcedMode {
    pub mode: ForcedKind,
    #[serde(default)]
    pub destination: Option<NextStep>,
    #[serde(default)]
    pub reason: Option<String>,
    /// `user` or `api_key`.
    pub set_by_type: String,
    pub set_by: Option<Uuid>,
    pub set_at: DateTime<Utc>,
}

/// Why a rule chose its step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum Basis {
    /// The schedule's status at the instant.
    Schedule { status: HoursStatus },
    /// A forced mode.
    Forced { mode: ForcedKind },
}

/// Picks an inbound rule's step at an instant: a forced mode wins;
/// otherwise the schedule's status (no schedule: open). A holiday without
/// its own step takes the closed one.
pub fn decide(
    rule: &InboundRuleSpec,
    forced: Option<&ForcedMode>,
    hours: Option<&BusinessHours>,
    at: DateTime<Utc>,
) -> (NextStep, Basis) {
    let holiday = || rule.holiday.clone().unwrap_or_else(|| rule.closed.clone());
    if let Some(forced) = forced {
        let step = match (forced.mode, &forced.destination) {
            (ForcedKind::Open, _) => Some(rule.open.clone()),
            (ForcedKind::Closed, _) => Some(rule.closed.clone()),
            (ForcedKind::Holiday, _) => Some(holiday()),
            (ForcedKind::Destination, Some(step)) => Some(step.clone()),
            (ForcedKind::Destination, None) | (ForcedKind::None, _) => None,
        };
        if let Some(step) = step {
            return (step, Basis::Forced { mode: forced.mode });
        }
    }
    let status = hours.map_or(HoursStatus::Open, |hours| hours.status_at(at));
    let step = match &status {
        HoursStatus::Open => rule.open.clone(),
        HoursStatus::Closed => rule.closed.clone(),
        HoursStatus::Holiday { .. } => holiday(),
    };
    (step, Basis::Schedule { status })
}
