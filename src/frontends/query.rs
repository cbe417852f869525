//! The query string as the HTTP front ends read it: form-decoded pairs (`+`
//! for a space, as Python's `urlencode` writes it), and RFC 3986
//! percent-encoding, which both Alibaba's and AWS's signatures canonicalise with.

/// `a=1&b=x+y` as decoded pairs; `None` if a value is not UTF-8 once decoded.
pub fn form_pairs(text: &str) -> Option<Vec<(String, String)>> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((form_decode(name)?, form_decode(value)?))
        })
        .collect()
}

fn form_decode(text: &str) -> Option<String> {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().ok().map(|s| s.into_owned())
}

/// Percent-encoding as RFC 3986 wants it: everything but `A-Z a-z 0-9 - _ . ~`.
pub fn rfc3986(text: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_encoded_query_decodes_plus_as_space_and_utf8() {
        let pairs = form_pairs("A=x+y&B=%E4%BD%A0%2A&C=&D").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("A".into(), "x y".into()),
                ("B".into(), "你*".into()),
                ("C".into(), String::new()),
                ("D".into(), String::new())
            ]
        );
        assert!(form_pairs("A=%FF").is_none(), "not UTF-8 once decoded");
    }

    #[test]
    fn rfc3986_encodes_all_but_the_unreserved_set() {
        assert_eq!(rfc3986("a b~*'()!/你"), "a%20b~%2A%27%28%29%21%2F%E4%BD%A0");
    }
}
