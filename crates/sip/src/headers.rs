//! Header names: compact forms and case-insensitive comparison (RFC 3261
//! §7.3.1, §7.3.3; IANA "Header Fields" registry for the compact forms
//! assigned since).

/// The full name of a compact header name (`v` → `Via`), or `None` when
/// `name` is not a compact form.
pub fn expand_compact(name: &str) -> Option<&'static str> {
    if name.len() != 1 {
        return None;
    }
    Some(match name.as_bytes()[0].to_ascii_lowercase() {
        b'a' => "Accept-Contact",      // RFC 3841
        b'b' => "Referred-By",         // RFC 3892
        b'c' => "Content-Type",        // RFC 3261
        b'd' => "Request-Disposition", // RFC 3841
        b'e' => "Content-Encoding",    // RFC 3261
        b'f' => "From",                // RFC 3261
        b'i' => "Call-ID",             // RFC 3261
        b'j' => "Reject-Contact",      // RFC 3841
        b'k' => "Supported",           // RFC 3261
        b'l' => "Content-Length",      // RFC 3261
        b'm' => "Contact",             // RFC 3261
        b'o' => "Event",               // RFC 6665
        b'r' => "Refer-To",            // RFC 3515
        b's' => "Subject",             // RFC 3261
        b't' => "To",                  // RFC 3261
        b'u' => "Allow-Events",        // RFC 6665
        b'v' => "Via",                 // RFC 3261
        b'x' => "Session-Expires",     // RFC 4028
        b'y' => "Identity",            // RFC 8224
        _ => return None,
    })
}

/// Whether `name` is `canonical` (a full name), compared as SIP compares
/// header names: case-insensitively, compact forms included.
pub fn is(name: &str, canonical: &str) -> bool {
    name.eq_ignore_ascii_case(canonical)
        || expand_compact(name).is_some_and(|full| full.eq_ignore_ascii_case(canonical))
}

/// RFC 3261 §25.1 `token` characters.
pub(crate) fn is_token_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&byte)
}

/// Whether `text` is a non-empty `token`.
pub(crate) fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_token_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_forms_expand_and_compare_like_full_names() {
        assert_eq!(expand_compact("v"), Some("Via"));
        assert_eq!(expand_compact("I"), Some("Call-ID"));
        assert_eq!(expand_compact("Via"), None);
        assert_eq!(expand_compact("z"), None);
        assert!(is("l", "Content-Length"));
        assert!(is("cOnTeNt-LeNgTh", "Content-Length"));
        assert!(!is("Content-Type", "Content-Length"));
    }

    #[test]
    fn tokens_are_rfc_3261_tokens() {
        assert!(is_token("INVITE"));
        assert!(is_token("NEWMETHOD"));
        assert!(is_token("!interesting-Method0123456789_*+`.%indeed'~"));
        assert!(!is_token(""));
        assert!(!is_token("IN VITE"));
        assert!(!is_token("INV:ITE"));
    }
}
