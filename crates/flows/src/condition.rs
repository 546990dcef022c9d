//! What a [`Branch`](crate::Branch) tests: the business-hours state of the
//! call's schedule, the caller's number, a flow variable or a customer
//! attribute.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::phone::{PhoneNumber, is_e164_prefix};

/// The business-hours state of the schedule the call is routed on, as the
/// caller's [`FlowContext`](crate::FlowContext) reports it.
///
/// The states are distinct: a `{"hours": "closed"}` condition does not
/// match on a holiday. A flow that treats holidays like any closed time
/// tests both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HoursState {
    Open,
    Closed,
    Holiday,
}

/// One test of a branch. In JSON, an object with exactly one subject:
///
/// - `{"hours": "open" | "closed" | "holiday"}`;
/// - `{"caller_prefix": "+44"}`: the caller's number starts with it (`+`
///   alone: the caller's number is known, not withheld);
/// - `{"caller_number": "+15551234567"}`: the caller's number is exactly it;
/// - `{"variable": "account", "equals": "123456"}` or
///   `{"variable": "account", "present": true}`: a variable a
///   `collect_digits` node set (variables are digit strings);
/// - `{"attribute": "vip", "equals": true}` or
///   `{"attribute": "elderly", "present": true}`: a customer attribute the
///   routing service found for the caller (`equals` any JSON value; numbers
///   compare by value, so `1` equals `1.0`; `present` means set and not
///   `null`).
///
/// `"present": false` tests that the variable or attribute is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ConditionJson", into = "ConditionJson")]
pub enum Condition {
    Hours(HoursState),
    CallerPrefix(String),
    CallerNumber(PhoneNumber),
    Variable {
        name: String,
        test: ValueTest<String>,
    },
    Attribute {
        name: String,
        test: ValueTest<Value>,
    },
}

/// How a variable or attribute is tested.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueTest<T> {
    /// It is set to this value.
    Equals(T),
    /// It is set (`true`) or not (`false`).
    Present(bool),
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hours: Option<HoursState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    caller_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    caller_number: Option<PhoneNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    variable: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    equals: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    present: Option<bool>,
}

impl TryFrom<ConditionJson> for Condition {
    type Error = String;

    fn try_from(json: ConditionJson) -> Result<Self, String> {
        let subjects = usize::from(json.hours.is_some())
            + usize::from(json.caller_prefix.is_some())
            + usize::from(json.caller_number.is_some())
            + usize::from(json.variable.is_some())
            + usize::from(json.attribute.is_some());
        if subjects != 1 {
            return Err(
                "a condition needs exactly one of \"hours\", \"caller_prefix\", \
                 \"caller_number\", \"variable\" or \"attribute\""
                    .to_owned(),
            );
        }
        let test = match (json.equals, json.present) {
            (Some(value), None) => Some(ValueTest::Equals(value)),
            (None, Some(present)) => Some(ValueTest::Present(present)),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err("a condition takes \"equals\" or \"present\", not both".to_owned());
            }
        };
        if let Some(name) = json.variable {
            if !is_variable_name(&name) {
                return Err(format!(
                    "variable {name:?} must be 1 to 64 letters, digits or \"_\""
                ));
            }
            let test = match test {
                Some(ValueTest::Equals(Value::String(digits))) => ValueTest::Equals(digits),
                Some(ValueTest::Equals(_)) => {
                    return Err(
                        "a variable holds the digits the caller typed: compare it with a string"
                            .to_owned(),
                    );
                }
                Some(ValueTest::Present(present)) => ValueTest::Present(present),
                None => return Err(needs_test("variable")),
            };
            return Ok(Condition::Variable { name, test });
        }
        if let Some(name) = json.attribute {
            if name.is_empty() || name.len() > 64 {
                return Err(format!("attribute {name:?} must be 1 to 64 characters"));
            }
            let test = test.ok_or_else(|| needs_test("attribute"))?;
            return Ok(Condition::Attribute { name, test });
        }
        if test.is_some() {
            return Err(
                "\"equals\" and \"present\" only go with \"variable\" or \"attribute\"".to_owned(),
            );
        }
        if let Some(hours) = json.hours {
            return Ok(Condition::Hours(hours));
        }
        if let Some(number) = json.caller_number {
            return Ok(Condition::CallerNumber(number));
        }
        let prefix = json.caller_prefix.unwrap_or_default();
        if !is_e164_prefix(&prefix) {
            return Err(format!(
                "caller_prefix {prefix:?} must be \"+\" and at most 15 digits, the first not 0"
            ));
        }
        Ok(Condition::CallerPrefix(prefix))
    }
}

fn needs_test(subject: &str) -> String {
    format!("{subject:?} needs \"equals\" or \"present\"")
}

impl From<Condition> for ConditionJson {
    fn from(condition: Condition) -> Self {
        match condition {
            Condition::Hours(hours) => ConditionJson {
                hours: Some(hours),
                ..ConditionJson::default()
            },
            Condition::CallerPrefix(prefix) => ConditionJson {
                caller_prefix: Some(prefix),
                ..ConditionJson::default()
            },
            Condition::CallerNumber(number) => ConditionJson {
                caller_number: Some(number),
                ..ConditionJson::default()
            },
            Condition::Variable { name, test } => {
                let test = match test {
                    ValueTest::Equals(digits) => ValueTest::Equals(Value::String(digits)),
                    ValueTest::Present(present) => ValueTest::Present(present),
                };
                let (equals, present) = split(test);
                ConditionJson {
                    variable: Some(name),
                    equals,
                    present,
                    ..ConditionJson::default()
                }
            }
            Condition::Attribute { name, test } => {
                let (equals, present) = split(test);
                ConditionJson {
                    attribute: Some(name),
                    equals,
                    present,
                    ..ConditionJson::default()
                }
            }
        }
    }
}

fn split(test: ValueTest<Value>) -> (Option<Value>, Option<bool>) {
    match test {
        ValueTest::Equals(value) => (Some(value), None),
        ValueTest::Present(present) => (None, Some(present)),
    }
}

/// Whether `name` can name a flow variable: 1 to 64 ASCII letters, digits
/// or `_`.
pub(crate) fn is_variable_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

/// JSON equality, except that numbers compare by value (`1` equals `1.0`).
pub(crate) fn json_equals(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(left), Value::Number(right)) => {
            if left.is_f64() || right.is_f64() {
                left.as_f64() == right.as_f64()
            } else {
                left == right
            }
        }
        (Value::Array(left), Value::Array(right)) => {
            left.len() == right.len() && left.iter().zip(right).all(|(l, r)| json_equals(l, r))
        }
        (Value::Object(left), Value::Object(right)) => {
            left.len() == right.len()
                && left
                    .iter()
                    .all(|(key, l)| right.get(key).is_some_and(|r| json_equals(l, r)))
        }
        _ => left == right,
    }
}
