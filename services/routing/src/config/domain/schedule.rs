//! Schedules: named business hours for inbound rules.

use serde::{Deserialize, Serialize};
use switchboard_hours::BusinessHours;

use super::{ConfigKind, FieldError, Kind, Ref, Result, check_name, finish};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Business hours with a name, for inbound rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 100, pattern = r"\S")
    )]
    pub name: String,
    /// `{"time_zone", "weekly": [{"day", "open", "close"}], "special_days":
    /// [{"date", "name", "annual", "hours"}]}` (see switchboard-hours).
    #[cfg_attr(feature = "openapi", schema(value_type = Object, example = json!({
        "time_zone": "Europe/Paris",
        "weekly": [{"day": "mon", "open": "09:00", "close": "17:00"}],
        "special_days": [{"date": "2025-12-25", "name": "Christmas", "annual": true}]
    })))]
    pub hours: BusinessHours,
}

impl ConfigKind for ScheduleSpec {
    const KIND: Kind = Kind::Schedule;

    fn validate(self) -> Result<Self> {
        let mut errors = Vec::new();
        let name = check_name("name", &self.name, &mut errors);
        if let Err(error) = self.hours.validate() {
            errors.push(FieldError::new(
                format!("hours.{}", error.field()),
                error.to_string(),
            ));
        }
        finish(
            ScheduleSpec {
                name,
                hours: self.hours,
            },
            errors,
        )
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn references(&self) -> Vec<Ref> {
        Vec::new()
    }
}
