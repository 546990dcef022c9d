//! AMQP 0-9-1 topic-exchange matching (RabbitMQ's semantics): words are
//! separated by `.`, `*` matches exactly one word, `#` matches zero or more.

/// Whether `routing_key` matches the binding `pattern`.
pub fn topic_matches(pattern: &str, routing_key: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = routing_key.split('.').collect();
    matches_from(&pattern, &key)
}

fn matches_from(pattern: &[&str], key: &[&str]) -> bool {
    match pattern.split_first() {
        None => key.is_empty(),
        Some((&"#", rest)) => (0..=key.len()).any(|skip| matches_from(rest, &key[skip..])),
        Some((&word, rest)) => match key.split_first() {
            Some((first, key_rest)) if word == "*" || word == *first => {
                matches_from(rest, key_rest)
            }
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::topic_matches;

    #[test]
    fn star_matches_exactly_one_word() {
        assert!(topic_matches(
            "*.identity.user_created",
            "t1.identity.user_created"
        ));
        assert!(!topic_matches("*.identity", "t1.identity.user_created"));
        assert!(!topic_matches("*.t1.identity", "t1.identity"));
    }

    #[test]
    fn hash_matches_zero_or_more_words() {
        assert!(topic_matches("#", "a.b.c"));
        assert!(topic_matches("#", ""));
        assert!(topic_matches("t1.#", "t1"));
        assert!(topic_matches("t1.#", "t1.identity.user_created"));
        assert!(topic_matches("#.user_created", "t1.identity.user_created"));
        assert!(topic_matches("t1.#.created", "t1.a.b.created"));
        assert!(!topic_matches("t2.#", "t1.identity"));
    }

    #[test]
    fn literal_words_must_match_exactly() {
        assert!(topic_matches(
            "t1.identity.user_created",
            "t1.identity.user_created"
        ));
        assert!(!topic_matches(
            "t1.identity.user_created",
            "t1.identity.user_deleted"
        ));
        assert!(!topic_matches("t1.identity", "t1.identity.x"));
    }
}
