//! What differs between two message types that share a topic name: the first difference of
//! their schema texts, named by field, for [`Error::TypeMismatch`](crate::Error::TypeMismatch).

/// The two types, as a topic stores them and as a process asks for them.
pub(crate) struct Described<'a> {
    pub name: &'a str,
    pub schema: &'a str,
    pub size: u64,
    pub align: u64,
}

/// Says what differs between `existing` and `requested`, the first difference first.
pub(crate) fn difference(existing: &Described<'_>, requested: &Described<'_>) -> String {
    let (a, b) = (existing.schema, requested.schema);
    if a == b {
        if existing.align != requested.align {
            return format!(
                "the same fields, but alignment {} there and {} here",
                existing.align, requested.align
            );
        }
        return if existing.name == requested.name {
            "the same schema text; the types differ in what the text does not show (their \
             fingerprints were computed from different definitions)"
                .to_owned()
        } else {
            format!(
                "the same layout under another type name (`{}` there, `{}` here)",
                existing.name, requested.name
            )
        };
    }
    let at = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i);
    let (enclosing, field) = field_path(&a[..at]);
    if let Some((what, there, here)) = annotation(a, b, at) {
        let whose = match (field, enclosing.is_empty()) {
            (Some(f), true) => format!("field `{f}`"),
            (Some(f), false) => format!("field `{}.{f}`", enclosing.join(".")),
            (None, false) => format!("field `{}`", enclosing.join(".")),
            (None, true) => "the type".to_owned(),
        };
        return format!("{whose} has {what} {there} there, {here} here");
    }
    let (here, there) = (token(b, at), token(a, at));
    let mut out = match (field, enclosing.is_empty()) {
        (Some(f), true) => format!("field `{f}` differs"),
        (Some(f), false) => format!("field `{}.{f}` differs", enclosing.join(".")),
        (None, false) => format!("in field `{}`", enclosing.join(".")),
        (None, true) => "the top-level types differ".to_owned(),
    };
    out.push_str(&format!(": `{there}` there, `{here}` here"));
    if existing.size != requested.size {
        out.push_str(&format!(
            " ({} bytes there, {} here)",
            existing.size, requested.size
        ));
    }
    out
}

/// The grammar's delimiters around one field (`name@offset:type`) or enum variant.
const OPEN: &[char] = &['{', '(', '['];
const SEP: &[char] = &[',', ';'];
const CLOSE: &[char] = &['}', ')', ']'];

/// The field or variant of `text` around byte `at`: from after the delimiter before it to
/// the delimiter after it (what is there if `at` is past the end: `(end)`).
fn token(text: &str, at: usize) -> &str {
    let at = at.min(text.len());
    let start = text[..at]
        .rfind(|c| OPEN.contains(&c) || SEP.contains(&c))
        .map_or(0, |i| i + 1);
    let end = text[at..]
        .find(|c| SEP.contains(&c) || CLOSE.contains(&c))
        .map_or(text.len(), |i| at + i);
    if start >= end {
        "(end)"
    } else {
        &text[start..end]
    }
}

/// When byte `at` lies in a `(size,align)` annotation of both texts: which of the two numbers
/// it is, and each text's value.
fn annotation<'a>(a: &'a str, b: &'a str, at: usize) -> Option<(&'static str, &'a str, &'a str)> {
    let open = a[..at].rfind(['(', ')', '{', '}', '[', ']'])?;
    if a.as_bytes()[open] != b'(' || b.get(open..open + 1) != Some("(") {
        return None;
    }
    let what = if a[open..at].contains(',') {
        "alignment"
    } else {
        "size"
    };
    let number = |t: &'a str| -> Option<&'a str> {
        let inner = &t[open + 1..];
        let inner = &inner[..inner.find(')')?];
        let (size, align) = inner.split_once(',')?;
        Some(if what == "size" { size } else { align })
    };
    Some((what, number(a)?, number(b)?))
}

/// The names of the fields that are open at the end of `prefix` (a prefix of schema text),
/// outermost first, and the name of the field it stops in, if it stops past that name.
fn field_path(prefix: &str) -> (Vec<&str>, Option<&str>) {
    let mut open: Vec<&str> = Vec::new();
    let mut current = "";
    let mut start = 0;
    for (i, c) in prefix.char_indices() {
        match c {
            '(' => {
                // A `(size,align)` annotation: the field it belongs to stays current.
                open.push(current);
                current = "";
            }
            ')' => current = open.pop().unwrap_or(""),
            '{' | '[' => {
                open.push(current);
                current = "";
                start = i + 1;
            }
            '}' | ']' => {
                open.pop();
                current = "";
                start = i + 1;
            }
            ',' | ';' => {
                current = "";
                start = i + 1;
            }
            '@' if current.is_empty() => current = &prefix[start..i],
            _ => {}
        }
    }
    open.retain(|n| !n.is_empty());
    (open, (!current.is_empty()).then_some(current))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(a: &str, b: &str) -> String {
        let d = |schema| Described {
            name: "T",
            schema,
            size: 8,
            align: 8,
        };
        difference(&d(a), &d(b))
    }

    #[test]
    fn the_first_differing_field_is_named_with_its_path() {
        assert_eq!(
            diff(
                "Pose(16,8){seq@0:u64,x@8:f64}",
                "Pose(16,8){seq@0:u64,x@8:f32}"
            ),
            "field `x` differs: `x@8:f64` there, `x@8:f32` here"
        );
        assert_eq!(
            diff(
                "Robot(24,8){pose@0:Pose(16,8){x@0:f64,y@8:f64},ok@16:bool,_p@17:[u8;7]}",
                "Robot(24,8){pose@0:Pose(16,8){x@0:f64,z@8:f64},ok@16:bool,_p@17:[u8;7]}"
            ),
            "in field `pose`: `y@8:f64` there, `z@8:f64` here"
        );
        assert_eq!(
            diff(
                "Robot(24,8){pose@0:Pose(16,8){x@0:f64,y@8:f64},ok@16:bool,_p@17:[u8;7]}",
                "Robot(24,8){pose@0:Pose(16,8){x@0:f64,y@8:f32},ok@16:bool,_p@17:[u8;7]}"
            ),
            "field `pose.y` differs: `y@8:f64` there, `y@8:f32` here"
        );
        assert!(diff("A(1,1){a@0:u8}", "B(1,1){a@0:u8}").contains("top-level"));
        assert_eq!(
            diff("P(8,4){a@0:u32,b@4:u32}", "P(8,8){a@0:u32,b@4:u32}"),
            "the type has alignment 4 there, 8 here"
        );
        assert_eq!(
            diff(
                "R(16,8){p@0:P(8,4){a@0:u32,b@4:u32},q@8:u64}",
                "R(16,8){p@0:P(8,8){a@0:u32,b@4:u32},q@8:u64}"
            ),
            "field `p` has alignment 4 there, 8 here"
        );
        assert_eq!(
            diff("R(8,8){x@0:u64}", "R(16,8){x@0:u64}"),
            "the type has size 8 there, 16 here"
        );
        assert_eq!(
            diff("[u8;4]", "[u8;8]"),
            "the top-level types differ: `4` there, `8` here"
        );
    }

    #[test]
    fn the_same_text_says_what_else_differs() {
        let a = Described {
            name: "A",
            schema: "A(8,8){x@0:u64}",
            size: 8,
            align: 8,
        };
        let b = Described { name: "B", ..a };
        assert!(difference(&a, &b).contains("another type name"));
        let c = Described { align: 16, ..a };
        assert!(difference(&a, &c).contains("alignment 8 there and 16 here"));
    }
}
