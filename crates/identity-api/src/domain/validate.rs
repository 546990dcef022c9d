//! Validation of what people type: each failure names its field.

use switchboard_rpc::FieldError;

/// An email address as we store it: trimmed and lower-cased (addresses are
/// unique per tenant, case-insensitively). Checks the shape RFC 5321 limits
/// allow in practice (one `@`, local part ≤ 64, whole ≤ 254, a dotted
/// domain, no spaces or control characters); deliverability is proven by
/// the verification mail, not here.
pub fn normalize_email(field: &str, email: &str) -> Result<String, FieldError> {
    let email = email.trim().to_lowercase();
    let invalid = |why: &str| {
        Err(FieldError::new(
            field,
            format!("is not a valid email address: {why}"),
        ))
    };
    if email.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    if email.len() > 254 {
        return invalid("longer than 254 characters");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("contains spaces or control characters");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return invalid("no @");
    };
    if local.is_empty() || local.len() > 64 {
        return invalid("the part before @ must be 1 to 64 characters");
    }
    if domain.contains('@') {
        return invalid("more than one @");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels.iter().any(|label| {
            label.is_empty() || label.len() > 63 || label.starts_with('-') || label.ends_with('-')
        })
        || !domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
    {
        return invalid("the domain is not a valid host name");
    }
    Ok(email)
}

/// A person's name as shown in the desktop: 1 to 100 characters after
/// trimming, no control characters.
pub fn validate_display_name(field: &str, name: &str) -> Result<String, FieldError> {
    validate_name(field, name, 100)
}

/// A free-text name (company, client organization, API key): 1 to `max`
/// characters after trimming, no control characters.
pub fn validate_name(field: &str, name: &str, max: usize) -> Result<String, FieldError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    if name.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// An IANA time zone name (`Europe/Paris`), checked against the tz database.
pub fn validate_time_zone(field: &str, zone: &str) -> Result<String, FieldError> {
    zone.parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_owned())
        .map_err(|_| {
            FieldError::new(
                field,
                format!("{zone:?} is not an IANA time zone (e.g. Europe/Paris)"),
            )
        })
}

/// A URL-safe handle from a company name: lower-case ASCII letters, digits
/// and single dashes, 3 to 40 characters (`Acme Support, Inc.` →
/// `acme-support-inc`).
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.len() < 3 {
        format!("tenant-{slug}").trim_end_matches('-').to_owned()
    } else {
        slug
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(
            normalize_email("email", "  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@@example.com",
            "ada@-x.com",
        ] {
            let error = normalize_email("email", bad).unwrap_err();
            assert_eq!(error.field, "email", "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(normalize_email("email", &long).is_err());
    }

    #[test]
    fn time_zones_come_from_the_tz_database() {
        assert_eq!(
            validate_time_zone("time_zone", "Europe/Paris").unwrap(),
            "Europe/Paris"
        );
        assert_eq!(
            validate_time_zone("time_zone", "America/New_York").unwrap(),
            "America/New_York"
        );
        assert!(validate_time_zone("time_zone", "Mars/Olympus").is_err());
        assert!(validate_time_zone("time_zone", "").is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(validate_name("company", "  Acme ", 100).unwrap(), "Acme");
        assert!(validate_name("company", "   ", 100).is_err());
        assert!(validate_name("company", &"x".repeat(101), 100).is_err());
        assert!(validate_name("company", "a\u{0}b", 100).is_err());
    }

    #[test]
    fn slugs_are_url_safe() {
        assert_eq!(slugify("Acme Support, Inc."), "acme-support-inc");
        assert_eq!(
            slugify("Ünïcode Çorp"),
            "n-code-orp",
            "non-ASCII letters become separators"
        );
        assert_eq!(slugify("AB"), "tenant-ab");
        assert_eq!(slugify("!!!"), "tenant");
        assert!(slugify(&"x".repeat(100)).len() <= 40);
    }
}
