//! The `Sec-WebSocket-Extensions` grammar (RFC 6455 §9.1), split element by element so that a
//! server can skip one malformed offer and still accept the next.
//!
//! ```text
//! extension-list = 1#extension
//! extension = extension-token *( ";" extension-param )
//! extension-param = token [ "=" (token | quoted-string) ]
//! ```

use alloc::vec::Vec;

/// Most parameters one extension element may carry before it is declined unparsed. The four
/// permessage-deflate parameters, each once, are all a valid offer can hold; the cap keeps a
/// hostile header from making us collect thousands of them.
const MAX_PARAMS: usize = 8;

/// One extension from the list: its name and its parameters, values unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element<'a> {
    pub(crate) name: &'a [u8],
    pub(crate) params: Vec<Param<'a>>,
}

/// One `extension-param`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Param<'a> {
    pub(crate) name: &'a [u8],
    /// The value after quoted-string unescaping (`None` for a bare parameter). An unescaped
    /// value is a token, and tokens contain no backslash, so unescaping only drops the quotes
    /// and the backslashes: the value is rebuilt from the raw bytes without allocating when
    /// it has no escapes.
    pub(crate) value: Option<Value<'a>>,
}

/// A parameter value: a token, or a quoted-string holding one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    /// The token as written (also a quoted-string without escapes, quotes removed).
    Plain(&'a [u8]),
    /// A quoted-string with backslash escapes, unescaped.
    Unescaped(Vec<u8>),
}

impl Value<'_> {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Value::Plain(b) => b,
            Value::Unescaped(v) => v,
        }
    }
}

/// RFC 7230 §3.2.6: `tchar`.
pub(crate) const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
        | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

const fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits a header value at the commas that are not inside a quoted-string. Empty elements
/// (RFC 7230 §7: "a recipient MUST accept empty list elements") come out as empty slices; an
/// unterminated quoted-string runs to the end of the value.
pub(crate) fn split_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(value);
    core::iter::from_fn(move || {
        let s = rest?;
        let mut quoted = false;
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'\\' if quoted => i += 1, // the escaped byte is skipped below
                b'"' => quoted = !quoted,
                b',' if !quoted => {
                    rest = Some(&s[i + 1..]);
                    return Some(&s[..i]);
                }
                _ => {}
            }
            i += 1;
        }
        rest = None;
        Some(s)
    })
}

/// Parses one element (the text between two commas). `Ok(None)` for an empty element;
/// `Err` with the reason for anything §9.1's grammar does not allow.
pub(crate) fn parse_element(element: &[u8]) -> Result<Option<Element<'_>>, &'static str> {
    let mut p = Cursor { s: element, i: 0 };
    p.skip_ows();
    if p.peek().is_none() {
        return Ok(None);
    }
    let name = p.token().ok_or("expected an extension name")?;
    let mut params = Vec::new();
    loop {
        p.skip_ows();
        match p.peek() {
            None => break,
            Some(b';') => p.i += 1,
            Some(_) => return Err("expected ';' after an extension name or parameter"),
        }
        p.skip_ows();
        let pname = p.token().ok_or("expected an extension parameter name")?;
        p.skip_ows();
        let value = if p.peek() == Some(b'=') {
            p.i += 1;
            p.skip_ows();
            if p.peek() == Some(b'"') {
                Some(p.quoted_token()?)
            } else {
                Some(Value::Plain(
                    p.token().ok_or("expected an extension parameter value")?,
                ))
            }
        } else {
            None
        };
        if params.len() == MAX_PARAMS {
            return Err("too many extension parameters");
        }
        params.push(Param { name: pname, value });
    }
    Ok(Some(Element { name, params }))
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ows(&mut self) {
        while self.peek().is_some_and(is_ows) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| &self.s[start..self.i])
    }

    /// A quoted-string whose unescaped content is a token.
    fn quoted_token(&mut self) -> Result<Value<'a>, &'static str> {
        self.i += 1; // the opening quote
        let start = self.i;
        let mut unescaped: Option<Vec<u8>> = None;
        loop {
            let b = self.peek().ok_or("unterminated quoted string")?;
            self.i += 1;
            let c = match b {
                b'"' => break,
                b'\\' => {
                    let c = self.peek().ok_or("unterminated quoted string")?;
                    if unescaped.is_none() {
                        unescaped = Some(self.s[start..self.i - 1].to_vec());
                    }
                    self.i += 1;
                    c
                }
                c => c,
            };
            // RFC 6455 §9.1: "When using the quoted-string syntax variant, the value after
            // quoted-string unescaping MUST conform to the 'token' ABNF."
            if !is_tchar(c) {
                return Err("quoted extension parameter value is not a token");
            }
            if let Some(v) = unescaped.as_mut() {
                v.push(c);
            }
        }
        let value = match unescaped {
            Some(v) => Value::Unescaped(v),
            None => Value::Plain(&self.s[start..self.i - 1]),
        };
        if value.as_bytes().is_empty() {
            return Err("empty quoted extension parameter value");
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(value: &str) -> Vec<Result<Option<Vec<u8>>, &'static str>> {
        split_elements(value.as_bytes())
            .map(|e| parse_element(e).map(|o| o.map(|e| e.name.to_vec())))
            .collect()
    }

    #[test]
    fn rfc6455_9_1_commas_inside_quoted_strings_do_not_split() {
        let parts: Vec<&[u8]> = split_elements(br#"a; x="1,2", b"#).collect();
        assert_eq!(parts, [&br#"a; x="1,2""#[..], &b" b"[..]]);
    }

    #[test]
    fn rfc6455_9_1_quoted_value_is_unescaped_and_must_be_a_token() {
        let e = parse_element(br#"permessage-deflate; client_max_window_bits="1\0""#)
            .unwrap()
            .unwrap();
        assert_eq!(e.params[0].value.as_ref().unwrap().as_bytes(), b"10");
        let e = parse_element(br#"x; y="15""#).unwrap().unwrap();
        assert_eq!(e.params[0].value, Some(Value::Plain(b"15")));
        assert!(parse_element(br#"x; y="1 5""#).is_err());
        assert!(parse_element(br#"x; y="""#).is_err());
        assert!(parse_element(br#"x; y="15"#).is_err());
    }

    #[test]
    fn rfc7230_7_empty_list_elements_are_skipped_and_bad_ones_reported() {
        let got = names(" , a ;b=1 ;c, ,  ;x, d");
        assert_eq!(got[0], Ok(None));
        assert_eq!(got[1], Ok(Some(b"a".to_vec())));
        assert_eq!(got[2], Ok(None));
        assert!(got[3].is_err());
        assert_eq!(got[4], Ok(Some(b"d".to_vec())));
    }

    #[test]
    fn parameters_beyond_the_cap_decline_the_element() {
        let many = alloc::format!("a{}", "; p".repeat(MAX_PARAMS + 1));
        assert!(parse_element(many.as_bytes()).is_err());
    }
}
