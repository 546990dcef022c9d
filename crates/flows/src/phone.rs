//! Phone numbers in E.164 form (ITU-T E.164: `+`, a country code and the
//! national number, at most 15 digits in all, the first not 0).
//!
//! Only the shape is checked, which is all a flow needs: whether a number
//! is allocated or reachable is the carrier's business. A full numbering
//! plan library would be far more than that.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A phone number in E.164 form, such as `+15551234567`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = String;

    fn try_from(number: String) -> Result<Self, String> {
        if is_e164_prefix(&number) && number.len() > 1 {
            Ok(PhoneNumber(number))
        } else {
            Err(format!(
                "{number:?} is not an E.164 number (\"+\" and 1 to 15 digits, the first not 0)"
            ))
        }
    }
}

impl From<PhoneNumber> for String {
    fn from(number: PhoneNumber) -> String {
        number.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `text` can start an E.164 number: `+` and up to 15 digits, the
/// first not 0. `+` alone is a prefix of every E.164 number.
pub(crate) fn is_e164_prefix(text: &str) -> bool {
    let Some(digits) = text.strip_prefix('+') else {
        return false;
    };
    digits.len() <= 15
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && !digits.starts_with('0')
}
