//! The names a schema may hold, checked at compile time: the same rules as
//! `shmx::schema_text` applies at run time (`is_identifier`, `type_name_problem`), so that
//! every derived type has exactly one schema text and no name can break the grammar or reach
//! a terminal as a control sequence.

/// The longest type name a topic stores (`shmx::message::MAX_TYPE_NAME_LEN`).
const MAX_TYPE_NAME_LEN: usize = 1024;

/// Names a message type may not have: the grammar's own words.
const RESERVED: [&str; 16] = [
    "u8", "u16", "u32", "u64", "u128", "i8", "i16", "i32", "i64", "i128", "f32", "f64", "bool",
    "rel", "relstr", "rkyv",
];

/// An ASCII letter or `_`, then ASCII letters, digits and `_`.
pub fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Why `name` cannot be a message type's name in a schema, or `None`.
pub fn type_name_problem(name: &str) -> Option<String> {
    if name.len() > MAX_TYPE_NAME_LEN {
        Some(format!(
            "the schema name is {} bytes long, over the limit of {MAX_TYPE_NAME_LEN}",
            name.len()
        ))
    } else if RESERVED.contains(&name) {
        Some(format!(
            "`{name}` is a word of the schema grammar (a primitive, `rel`, `relstr` or `rkyv`) \
             and cannot name a message type; choose another with `#[shm(name = \"...\")]`"
        ))
    } else if !name.split("::").all(is_identifier) {
        Some(format!(
            "the schema name {name:?} must be ASCII identifiers joined by `::` (letters, digits \
             and `_`, not starting with a digit, e.g. \"geo::Pose\"): tools and other languages \
             read it from the topic"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_grammar() {
        for good in ["Pose", "_P", "geo::Pose", "a::b::c9", "u8x"] {
            assert_eq!(type_name_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "1a",
            "a,b",
            "u8,b@1:u8",
            "a::",
            "::a",
            "Grüße",
            "\u{1b}]0;x",
            "u8",
        ] {
            assert!(type_name_problem(bad).is_some(), "{bad:?}");
        }
        assert!(type_name_problem(&"a".repeat(1025)).is_some());
    }
}
