//! dmsg discovery entries: `Entry::from_json` / `from_json_prefix`, signature verification,
//! validation, and the exact re-serialisation.
//!
//! Property checked besides "never panics": an entry that parses re-serialises (`to_json`) to
//! text that parses back to the same entry, and that text is a fixed point of
//! `to_json(from_json(..))`. The signed payload is the same text without the signature.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skywire_dmsg::disc::entry::{Entry, entries_to_json};

/// 2023-11-14T22:13:20Z, the timestamp of the vector entries.
const NOW_NS: i64 = 1_700_000_000_000_000_000;

fn check(e: &Entry) {
    let _ = e.verify_signature();
    let _ = e.validate_at(None);
    let _ = e.validate_at(Some(NOW_NS));
    let _ = e.validate_at(Some(i64::MIN));
    let _ = e.validate_at(Some(i64::MAX));
    let _ = e.validate_iteration(e);
    let _ = e.has_newer_fields();

    let text = e.to_json();
    let back = match Entry::from_json(text.as_bytes()) {
        Ok(b) => b,
        Err(err) => panic!("to_json output does not parse: {err}\n{text}"),
    };
    assert_eq!(
        &back, e,
        "to_json/from_json round trip changed the entry\n{text}"
    );
    assert_eq!(back.to_json(), text, "to_json is not a fixed point");
    assert_eq!(e.to_string(), text);

    let payload = e.signed_payload();
    if e.signature.is_none() {
        assert_eq!(payload, text);
    } else {
        assert!(payload.len() < text.len());
    }
    let list = entries_to_json(std::slice::from_ref(e));
    assert_eq!(list, format!("[{text}]"));
}

fuzz_target!(|data: &[u8]| {
    let full = Entry::from_json(data);
    if let Ok(e) = &full {
        check(e);
    }
    match Entry::from_json_prefix(data) {
        Ok(e) => {
            check(&e);
            // A complete document parses the same way both ways.
            if let Ok(f) = &full {
                assert_eq!(f, &e, "from_json and from_json_prefix disagree");
            }
        }
        Err(_) => assert!(
            full.is_err(),
            "from_json accepted what from_json_prefix refused"
        ),
    }
});
