//! Property tests of the parser and decoder over arbitrary input: schema text from topic
//! files is not ours, and neither are sample bytes. Whatever they hold, parsing returns (a
//! type or an error, never a panic), and decoding a sample materialises no more values
//! than the parser's bound allows.

use super::{decode, parse, Ty};
use proptest::prelude::*;

/// Schema text built from the grammar's pieces, nested, with lengths that include zero-sized
/// elements and large counts: most of it parses, and much of it is near the limits. Each
/// piece comes with its size and alignment, so that structs are laid out as `repr(C)` does
/// (with explicit padding fields), as the parser demands.
fn schema() -> impl Strategy<Value = String> {
    typed_schema().prop_map(|(text, _, _)| text)
}

/// Schema text with the size and alignment of the type it describes.
fn typed_schema() -> impl Strategy<Value = (String, usize, usize)> {
    let piece = |text: &str, size: usize, align: usize| Just((text.to_owned(), size, align));
    let leaf = prop_oneof![
        piece("u8", 1, 1),
        piece("u64", 8, 8),
        piece("bool", 1, 1),
        piece("f32", 4, 4),
        piece("E(0,1){}", 0, 1),
        piece("relstr", 8, 4),
        piece("M:u8{A=0,B=1}", 1, 1),
    ];
    leaf.prop_recursive(6, 64, 4, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop_oneof![0usize..4, Just(65536usize), Just(1 << 20)]
            )
                .prop_map(|((elem, size, align), len)| {
                    (format!("[{elem};{len}]"), size.saturating_mul(len), align)
                }),
            inner
                .clone()
                .prop_map(|(elem, _, _)| (format!("rel[{elem}]"), 8, 4)),
            (proptest::collection::vec(inner, 0..4), 0u32..4).prop_map(|(fields, raise)| {
                let mut body = Vec::new();
                let (mut end, mut align) = (0usize, 1usize << raise);
                let pad = |body: &mut Vec<String>, from: usize, to: usize| {
                    if to > from {
                        body.push(format!("_p{}@{from}:[u8;{}]", body.len(), to - from));
                    }
                };
                for (i, (ty, size, a)) in fields.iter().enumerate() {
                    let offset = end.next_multiple_of(*a);
                    pad(&mut body, end, offset);
                    body.push(format!("f{i}@{offset}:{ty}"));
                    end = offset.saturating_add(*size);
                    align = align.max(*a);
                }
                let size = end.next_multiple_of(align);
                pad(&mut body, end, size);
                (
                    format!("S({size},{align}){{{}}}", body.join(",")),
                    size,
                    align,
                )
            }),
        ]
    })
}

/// The most values decoding a sample of `ty` may show: relative slices show up to
/// `max_elements` elements and a marker of how many were left out.
fn shown_at_most(ty: &Ty, max_elements: usize) -> usize {
    match ty {
        Ty::RelSlice { elem } => shown_at_most(elem, max_elements)
            .saturating_mul(max_elements)
            .saturating_add(2),
        Ty::Struct { fields, .. } => fields.iter().fold(1usize, |n, (_, _, t)| {
            n.saturating_add(shown_at_most(t, max_elements))
        }),
        Ty::Array { elem, len } => shown_at_most(elem, max_elements)
            .saturating_mul(*len)
            .saturating_add(1),
        _ => 1,
    }
}

/// How many JSON values `v` holds (itself and everything inside).
fn count(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(items) => 1 + items.iter().map(count).sum::<usize>(),
        serde_json::Value::Object(map) => 1 + map.values().map(count).sum::<usize>(),
        _ => 1,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_parses_or_is_refused_without_a_panic(text in ".{0,200}") {
        let _ = parse(&text);
    }

    #[test]
    fn laid_out_text_parses_to_its_layout_and_prints_back((text, size, align) in typed_schema()) {
        // Refusals are for limits (values, zero-sized arrays, sizes), or for relative
        // pointers in a slice's elements; what parses has the layout the text states.
        match parse(&text) {
            Ok(ty) => {
                prop_assert_eq!((ty.size(), ty.align()), (size, align), "{}", text);
                prop_assert_eq!(ty.to_string(), text);
            }
            Err(e) => prop_assert!(
                ["over the limit", "too long", "too large", "hold relative pointers",
                 "lies outside", "cover"]
                    .iter()
                    .any(|why| e.contains(why)),
                "{}", e
            ),
        }
    }

    #[test]
    fn decoding_any_bytes_stays_within_the_parsers_bound(
        text in schema(),
        seed in any::<u64>(),
        max_elements in 0usize..100,
    ) {
        let Ok(ty) = parse(&text) else { return Ok(()) };
        let bound = ty.size().saturating_mul(65).saturating_add(1 << 16);
        prop_assert!(ty.values() <= bound, "{text}: {} values", ty.values());
        if ty.size() > 1 << 16 {
            return Ok(()); // the bound is proved above; decoding a large sample is slow
        }
        // Arbitrary bytes for the message and a tail after it.
        let mut bytes = vec![0u8; ty.size() + 256];
        let mut x = seed;
        for b in bytes.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        if let Ok(value) = decode(&ty, &bytes, max_elements) {
            let shown = count(&value);
            // Relative slices show up to `max_elements` elements (and a marker).
            let limit = shown_at_most(&ty, max_elements);
            prop_assert!(shown <= limit, "{text}: {shown} values shown, limit {limit}");
        }
    }
}

#[test]
fn a_struct_of_many_fields_parses_in_linear_time_and_duplicates_are_still_found() {
    // 100,000 fields took 56 s with the old pairwise duplicate check.
    let n = 100_000;
    let fields: Vec<String> = (0..n).map(|i| format!("f{i}@{i}:u8")).collect();
    let text = format!("S({n},1){{{}}}", fields.join(","));
    let Ty::Struct { fields: parsed, .. } = parse(&text).unwrap() else {
        panic!("a struct")
    };
    assert_eq!(parsed.len(), n);
    let dup = format!("S({},1){{{},f7@{n}:u8}}", n + 1, fields.join(","));
    assert!(parse(&dup).unwrap_err().contains("duplicate field"));
}
